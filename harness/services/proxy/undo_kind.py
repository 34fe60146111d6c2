"""The ``proxy-faults`` undo record: faults set on a fault proxy in another process.

A proxy in the harness's own process dies with it, faults and all; a standalone
one (``python -m harness.services.proxy``, a Deployment in front of MinIO) keeps
its faults when the harness is killed. The record names the proxy's control API;
:func:`harness.undo.heal` clears it with ``DELETE /faults``. A proxy that does
not answer is taken as gone, and a proxy that is gone has no faults to clear, so
that heals without error; one that answers but fails leaves the record pending.

The record's URL must be one a later ``heal`` can reach (a Service, a NodePort),
not a port-forward that dies with the harness; a proxy in the run's own namespace
is removed anyway with that namespace's (older, so later healed) record.
"""

from __future__ import annotations

from harness.errors import HarnessError, ServiceError
from harness.services.proxy.control import ProxyControlClient, ProxyUnreachableError
from harness.undo import UndoLog, UndoRecord, register_kind

__all__ = ["KIND", "add_proxy_faults_record"]

KIND = "proxy-faults"
HEAL_TIMEOUT_S = 5.0


def add_proxy_faults_record(undo: UndoLog, control_url: str) -> UndoRecord:
    """Record, before setting them, that faults will be set on the proxy whose control API
    is at ``control_url``; remove the record (``undo.remove(record.id)``) once cleared."""
    return undo.add(kind=KIND, description=f"faults on the fault proxy at {control_url}",
                    extra={"control_url": control_url})


def _heal_proxy_faults(record: UndoRecord) -> str:
    url = record.extra.get("control_url", "")
    try:
        ProxyControlClient(url, timeout=HEAL_TIMEOUT_S).clear()
    except ValueError as exc:  # a hand-edited record with no usable URL
        raise HarnessError(f"cannot clear {record.description}: {exc}") from None
    except ProxyUnreachableError as exc:
        return f"the fault proxy at {url} is gone ({exc}), and its faults with it"
    except ServiceError as exc:
        raise HarnessError(f"cannot clear {record.description}: {exc}; run heal again once it answers") from None
    return f"cleared the faults of the fault proxy at {url}"


register_kind(KIND, _heal_proxy_faults)
