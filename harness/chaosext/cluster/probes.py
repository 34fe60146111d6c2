"""Chaos Toolkit probes of the cluster and the services it serves."""

from __future__ import annotations

import urllib.error
import urllib.request

from harness import runtime

__all__ = ["cluster_ready"]


def cluster_ready() -> bool:
    """True when the cluster has a Ready, schedulable node and the S3 store and Prometheus answer."""
    env = runtime.current().env
    if not any(n.schedulable and n.ready for n in env.cluster.nodes()):
        return False
    return _answers(env.s3_direct_url) and _answers(env.prometheus_url + "/-/ready")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, even if with an error status (S3 root without credentials)
    except (urllib.error.URLError, OSError):
        return False
