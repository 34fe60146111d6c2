"""A TCP fault proxy between the pipeline and a dependency (S3 and others).

``FaultProxy`` relays connections through a real delay line (latency and jitter
without reordering or dividing throughput), a token-bucket bandwidth cap, resets,
a black hole, and an HTTP-aware mode that answers S3 requests with ``503 SlowDown``;
all set and cleared at run time with :class:`ProxyFaults`::

    with FaultProxy(upstream_host="127.0.0.1", upstream_port=s3_port) as proxy:
        proxy.set_faults(ProxyFaults(latency_ms=50, slowdown_probability=0.1, seed=1))
        boto3.client("s3", endpoint_url=proxy.url, ...)
        proxy.stats().slowdowns

A proxy in another process (``python -m harness.services.proxy``, e.g. a Deployment
in front of MinIO) serves an HTTP control API (:class:`ProxyControlServer`) that
:class:`ProxyControlClient` drives; both it and ``FaultProxy`` are a
:class:`ProxyControl`, which is what the harness's faults take. Importing this
package registers the ``proxy-faults`` undo kind (:mod:`.undo_kind`) with heal.
"""

from harness.services.proxy import undo_kind as _undo_kind  # noqa: F401  # registers "proxy-faults" with heal
from harness.services.proxy._faults import Direction, ProxyFaults, ProxyStats
from harness.services.proxy._proxy import FaultProxy
from harness.services.proxy.control import ProxyControl, ProxyControlClient, ProxyControlServer

__all__ = [
    "Direction",
    "FaultProxy",
    "ProxyControl",
    "ProxyControlClient",
    "ProxyControlServer",
    "ProxyFaults",
    "ProxyStats",
]
