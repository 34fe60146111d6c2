"""A TCP fault proxy between the pipeline and a dependency (S3 and others).

``FaultProxy`` relays connections through a real delay line (latency and jitter
without reordering or dividing throughput), a token-bucket bandwidth cap, resets,
a black hole, and an HTTP-aware mode that answers S3 requests with ``503 SlowDown``;
all set and cleared at run time with :class:`ProxyFaults`::

    with FaultProxy(upstream_host="127.0.0.1", upstream_port=s3_port) as proxy:
        proxy.set_faults(ProxyFaults(latency_ms=50, slowdown_probability=0.1, seed=1))
        boto3.client("s3", endpoint_url=proxy.url, ...)
        proxy.stats().slowdowns
"""

from harness.services.proxy._faults import Direction, ProxyFaults, ProxyStats
from harness.services.proxy._proxy import FaultProxy

__all__ = ["Direction", "FaultProxy", "ProxyFaults", "ProxyStats"]
