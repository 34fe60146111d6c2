"""Start the environment experiments run in: the embedded cluster by default."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from urllib.parse import urlsplit
from pathlib import Path

from harness.cluster.embedded import EmbeddedCluster
from harness.services.proxy import FaultProxy
from harness.runtime import Environment

NODES = {"node-a": 2, "node-b": 2}
# A ResourceQuota scoped to backfill pods: a backfill storm queues instead of taking every slot.
SCOPED_QUOTAS = {"kind=backfill": 1}

# moto accepts any credentials; a real S3/MinIO endpoint (HARNESS_S3_ENDPOINT) uses the caller's.
_MOTO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def embedded_environment(*, keep_workdir: bool = False, cache_dir: Path | None = None) -> Iterator[Environment]:
    """An ``Environment`` over a freshly started embedded cluster, stopped on exit."""
    with ExitStack() as stack:
        cluster = stack.enter_context(
            EmbeddedCluster(keep_workdir=keep_workdir, nodes=NODES, scoped_quotas=SCOPED_QUOTAS)
        )
        s3_url = urlsplit(cluster.endpoint("s3"))
        # Pipelines reach S3 through the fault proxy; the harness's own reads go direct.
        proxy = stack.enter_context(FaultProxy(upstream_host=s3_url.hostname or "127.0.0.1",
                                               upstream_port=s3_url.port or 80))
        s3_env = {"S3_ENDPOINT_URL": proxy.url}
        if not os.environ.get("HARNESS_S3_ENDPOINT"):
            s3_env.update(_MOTO_CREDENTIALS)
            for key, value in _MOTO_CREDENTIALS.items():  # the harness's own inventory reads, too
                os.environ.setdefault(key, value)
        yield Environment(
            cluster=cluster,
            s3_env=s3_env,
            cache_dir=cache_dir,
            logs_dir=cluster.workdir / "pods",
            pod_limit=sum(NODES.values()),
            scoped_quotas=SCOPED_QUOTAS,
            proxies={"s3": proxy},
            s3_direct_url=cluster.endpoint("s3"),
        )
