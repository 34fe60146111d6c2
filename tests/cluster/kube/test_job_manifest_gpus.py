"""GPU requests and per-Job placement in the Job manifest (the gpu-fragmentation fault's fillers)."""

from __future__ import annotations

from harness.cluster.base import JobSpec
from harness.cluster.kube.manifests import job_manifest


def _pod(spec: JobSpec, node_selector: dict[str, str] | None = None) -> dict:
    return job_manifest(spec, namespace="ns", image="img:1", node_selector=node_selector)["spec"]["template"]["spec"]


def test_gpus_become_an_nvidia_gpu_limit_beside_cpu_and_memory() -> None:
    pod = _pod(JobSpec(name="t", command=("x",), gpus=6, cpu_limit="1", memory_limit="1Gi"))
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "6"}


def test_a_jobs_node_selector_pins_it_on_top_of_the_clusters() -> None:
    spec = JobSpec(name="f", command=("x",), node_selector={"kubernetes.io/hostname": "node-b"})
    assert _pod(spec)["nodeSelector"] == {"kubernetes.io/hostname": "node-b"}
    assert _pod(spec, {"pool": "chaos"})["nodeSelector"] == {"pool": "chaos", "kubernetes.io/hostname": "node-b"}
    assert "nodeSelector" not in _pod(JobSpec(name="d", command=("x",)))
