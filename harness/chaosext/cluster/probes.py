"""Chaos Toolkit probes of the cluster and the services it serves."""

from __future__ import annotations

import urllib.error
import urllib.request

from harness import runtime

__all__ = ["cluster_ready"]


def cluster_ready() -> bool:
    """True when the cluster has a schedulable node and its S3 and Prometheus answer."""
    cluster = runtime.current().env.cluster
    if not any(n.schedulable for n in cluster.nodes()):
        return False
    return _answers(cluster.endpoint("s3")) and _answers(cluster.endpoint("prometheus") + "/-/ready")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, even if with an error status (S3 root without credentials)
    except (urllib.error.URLError, OSError):
        return False
