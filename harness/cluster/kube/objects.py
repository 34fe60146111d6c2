"""Typed reads of the Kubernetes client's models, and the dict bodies the harness sends.

The client's models mark every field optional, also those the API server always fills in (an
object's ``metadata.name``). These accessors say once what the harness relies on: a stored object
has a name, and a missing label or annotation map is an empty one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar, cast

from kubernetes import client

from harness.cluster.base import PodPhase
from harness.errors import ServiceError

__all__ = ["annotations_of", "as_body", "labels_of", "meta", "name_of", "pod_phase"]

_PHASES: dict[str, PodPhase] = {p: p for p in ("Pending", "Running", "Succeeded", "Failed", "Unknown")}

M = TypeVar("M")


class KubeObject(Protocol):
    """Any model with object metadata (pods, nodes, namespaces, jobs, ...)."""

    @property
    def metadata(self) -> client.V1ObjectMeta | None: ...


def meta(obj: KubeObject) -> client.V1ObjectMeta:
    """The object's metadata; an empty one when the client left it unset."""
    return obj.metadata or client.V1ObjectMeta()


def name_of(obj: KubeObject) -> str:
    """The object's name; ServiceError when the API server sent an object without one (it never should)."""
    name = meta(obj).name
    if not name:
        raise ServiceError(f"the Kubernetes API server returned a {type(obj).__name__} without a name")
    return name


def labels_of(obj: KubeObject) -> dict[str, str]:
    return dict(meta(obj).labels or {})


def annotations_of(obj: KubeObject) -> dict[str, str]:
    return dict(meta(obj).annotations or {})


def pod_phase(value: object) -> PodPhase:
    """A pod's ``status.phase``: Pending until the API server sets one, Unknown for a phase this code does not know."""
    return "Pending" if value is None else _PHASES.get(str(value), "Unknown")


def as_body(manifest: Mapping[str, Any], model: type[M]) -> M:
    """``manifest`` where the client's hints ask for the model ``model``.

    The client sends a mapping body as it is (``ApiClient.sanitize_for_serialization``), but its
    hints name only the model classes. The harness builds manifests as plain dicts (validated against
    the API schemas in the tests), so this is the one place that passes one for the other.
    """
    del model  # names the hinted type only
    return cast(M, manifest)
