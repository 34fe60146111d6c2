"""The environment experiments run in: a cluster and the pipeline's services, chosen by ``ClusterOptions``.

``open_environment`` is the one factory the pytest plugin, the CLI and the
Chaos Toolkit control use. Every kind of cluster is driven by
:class:`harness.cluster.kube.backend.KubernetesCluster` inside the run's own
namespace; only how the cluster and its services are reached differs
(``harness/environments/<kind>.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.cluster.options import CLUSTER_KINDS, ClusterOptions
from harness.environments.embedded import embedded_environment
from harness.runtime import Environment

__all__ = ["CLUSTER_KINDS", "open_environment", "embedded_environment"]


@contextmanager
def open_environment(
    *, options: ClusterOptions | None = None, run: str, cache_dir: Path | None = None,
    kubeconfig_copy: Path | None = None, progress: Callable[[str], None] = lambda line: None,
) -> Iterator[Environment]:
    """The environment ``options`` describe (the embedded cluster by default), stopped on exit."""
    options = options or ClusterOptions()
    if options.kind == "existing":
        from harness.environments.existing import existing_environment

        with existing_environment(options=options, run=run, cache_dir=cache_dir, progress=progress) as env:
            yield env
    elif options.kind == "kind":
        from harness.environments.kind import kind_environment

        with kind_environment(options=options, run=run, cache_dir=cache_dir, kubeconfig_copy=kubeconfig_copy,
                              progress=progress) as env:
            yield env
    else:
        with embedded_environment(run=run, keep_workdir=options.keep_cluster, cache_dir=cache_dir,
                                  kubeconfig_copy=kubeconfig_copy, progress=progress) as env:
            yield env
