"""A run's namespace says the run is alive: an annotation renewed every few seconds.

``mlchaos heal --context`` removes only namespaces whose heartbeat is stale, so
healing one run never deletes the namespace of another that is still going
(on this machine or a CI runner elsewhere).
"""

from __future__ import annotations

import logging
import threading
import time

from kubernetes import client

__all__ = ["HEARTBEAT_ANNOTATION", "HEARTBEAT_SECONDS", "STALE_SECONDS", "NamespaceHeartbeat", "heartbeat_age"]

log = logging.getLogger(__name__)

HEARTBEAT_ANNOTATION = "mlchaos.io/heartbeat"
HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 60.0
"""A namespace whose heartbeat is older than this belongs to a run that is gone (killed, or its machine lost)."""


def heartbeat_age(annotations: dict[str, str] | None, *, now: float) -> float | None:
    """Seconds since the namespace's last heartbeat, or None when it has none (or an unreadable one)."""
    raw = (annotations or {}).get(HEARTBEAT_ANNOTATION, "")
    try:
        return now - float(raw)
    except ValueError:
        return None


class NamespaceHeartbeat:
    """Renews ``namespace``'s heartbeat annotation until ``stop``. Failed renewals are retried, not raised:
    a namespace that stops beating is only ever removed by an explicit heal, never by the run itself."""

    def __init__(self, core: client.CoreV1Api, namespace: str, *, period: float = HEARTBEAT_SECONDS) -> None:
        self._core = core
        self._namespace = namespace
        self._period = period
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{namespace}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.wait(self._period):
            try:
                self._core.patch_namespace(self._namespace, {"metadata": {"annotations": {
                    HEARTBEAT_ANNOTATION: f"{time.time():.0f}"}}}, _request_timeout=5)
            except Exception as exc:  # the API server may be restarting; the next beat retries
                log.info("heartbeat of namespace %s failed: %s", self._namespace, exc)
