"""Heal a cluster from the cluster's own records: what killed runs left, found by label.

The local undo log (``mlchaos heal``) knows what *this machine's* runs made.
A run killed on a CI runner that is gone left its namespace, its cordons and
its PriorityClasses in the cluster, where ``sweep`` finds them:

- namespaces labelled ``app.kubernetes.io/managed-by=ml-chaos-harness`` whose
  heartbeat is older than ``STALE_SECONDS`` (a live run's namespace is kept);
- nodes annotated ``mlchaos.io/cordoned-by`` with a namespace that is gone or
  stale: uncordoned, the annotation removed;
- PriorityClasses labelled ``mlchaos.io/created-by-run`` once no live run is left.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.cluster.kube.heartbeat import STALE_SECONDS, heartbeat_age
from harness.cluster.kube.manifests import CORDONED_BY_ANNOTATION, CREATED_BY_RUN_LABEL, MANAGED_LABELS
from harness.cluster.kube.objects import annotations_of, name_of

__all__ = ["sweep"]

_MANAGED = ",".join(f"{k}={v}" for k, v in MANAGED_LABELS.items())


def sweep(api_client: client.ApiClient, *, stale_seconds: float = STALE_SECONDS) -> list[str]:
    """Remove what dead runs left in the cluster; one line per thing done or deliberately kept."""
    core, scheduling = client.CoreV1Api(api_client), client.SchedulingV1Api(api_client)
    now = time.time()
    done: list[str] = []
    live: set[str] = set()
    dead: set[str] = set()
    for ns in core.list_namespace(label_selector=_MANAGED).items:
        name = name_of(ns)
        age = heartbeat_age(annotations_of(ns), now=now)
        if ns.status is not None and ns.status.phase == "Terminating":
            dead.add(name)
        elif age is not None and age < stale_seconds:
            live.add(name)
            done.append(f"kept namespace {name}: its run is alive (heartbeat {age:.0f} s ago)")
        else:
            dead.add(name)
            with _gone_is_fine():
                core.delete_namespace(name, propagation_policy="Background")
            done.append(f"deleted namespace {name}" + (f" (heartbeat {age:.0f} s ago)" if age is not None else ""))
    for node in core.list_node().items:
        owner = annotations_of(node).get(CORDONED_BY_ANNOTATION)
        if owner is None or owner in live:
            continue
        body = {"spec": {"unschedulable": False}, "metadata": {"annotations": {CORDONED_BY_ANNOTATION: None}}}
        with _gone_is_fine():
            core.patch_node(name_of(node), body)
        done.append(f"uncordoned node {name_of(node)} (cordoned by {owner})")
    classes = scheduling.list_priority_class(label_selector=f"{_MANAGED},{CREATED_BY_RUN_LABEL}").items
    for pc in classes:
        if live:
            done.append(f"kept PriorityClass {name_of(pc)}: {len(live)} run(s) alive may use it")
            continue
        with _gone_is_fine():
            scheduling.delete_priority_class(name_of(pc))
        done.append(f"deleted PriorityClass {name_of(pc)}")
    return done


@contextlib.contextmanager
def _gone_is_fine() -> Iterator[None]:
    """An object that is already gone (404) is not an error."""
    try:
        yield
    except ApiException as exc:
        if exc.status != 404:
            raise
