"""Scrape targets for Prometheus from the Kubernetes API: the pods the harness manages.

Debian's Prometheus is built without ``kubernetes_sd_configs``, so the harness
does that discovery itself and hands the result to Prometheus as file service
discovery. The selection is the conventional one: a Running pod annotated
``prometheus.io/scrape: "true"`` is scraped at its pod IP and the port in
``prometheus.io/port``; its series get ``namespace``, ``pod``, ``job`` (its
Job's name) and ``node`` labels.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from harness.services.prometheus import ScrapeTarget

__all__ = ["PodDiscovery", "scrape_target"]

log = logging.getLogger(__name__)

MANAGED_SELECTOR = "app.kubernetes.io/managed-by=ml-chaos-harness"


def scrape_target(pod: dict[str, Any]) -> ScrapeTarget | None:
    """The target a pod (as the API serves it) offers, or None when it is not to be scraped."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    annotations = meta.get("annotations") or {}
    port, ip = annotations.get("prometheus.io/port", ""), status.get("podIP") or ""
    if annotations.get("prometheus.io/scrape") != "true" or status.get("phase") != "Running":
        return None
    if not port.isdigit() or not ip:
        return None
    labels = {"namespace": meta.get("namespace", ""), "pod": meta.get("name", ""),
              "job": (meta.get("labels") or {}).get("job-name", ""),
              "node": (pod.get("spec") or {}).get("nodeName") or ""}
    return ScrapeTarget(address=f"{ip}:{port}", labels=labels)


class PodDiscovery:
    """Watches the managed pods of the cluster ``kubeconfig`` reaches and calls ``publish`` with the
    full target list whenever it changes. A context manager: the watch stops on exit."""

    def __init__(self, *, kubeconfig: Path, publish: Callable[[Sequence[ScrapeTarget]], None]) -> None:
        api_client = config.new_client_from_config(config_file=str(kubeconfig))
        self._api = client.CoreV1Api(api_client)
        self._serialize = api_client.sanitize_for_serialization
        self._publish = publish
        self._targets: dict[str, ScrapeTarget] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-discovery", daemon=True)

    def __enter__(self) -> PodDiscovery:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                listed = self._api.list_pod_for_all_namespaces(label_selector=MANAGED_SELECTOR)
                self._targets = {}
                for pod in listed.items:
                    self._apply("MODIFIED", self._serialize(pod))
                self._publish(list(self._targets.values()))
                version = listed.metadata.resource_version if listed.metadata else None
                for event in watch.Watch().stream(self._api.list_pod_for_all_namespaces,
                                                  label_selector=MANAGED_SELECTOR, timeout_seconds=120,
                                                  resource_version=version):
                    if self._stopping.is_set():
                        return
                    if self._apply(str(event["type"]), self._serialize(event["object"])):
                        self._publish(list(self._targets.values()))
            except Exception as exc:  # a dropped watch: list again
                if not self._stopping.is_set():
                    log.info("pod discovery restarts: %s", exc)
                    self._stopping.wait(0.5)

    def _apply(self, kind: str, pod: dict[str, Any]) -> bool:
        uid = pod["metadata"]["uid"]
        target = None if kind == "DELETED" else scrape_target(pod)
        before = self._targets.get(uid)
        if target is None:
            self._targets.pop(uid, None)
        else:
            self._targets[uid] = target
        return before != target
