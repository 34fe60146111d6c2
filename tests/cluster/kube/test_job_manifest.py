"""The Job manifest the backend submits: placement, GPUs and the pod's view of itself."""

from __future__ import annotations

from harness.cluster.base import JobSpec
from harness.cluster.kube.manifests import job_manifest


def _pod(**spec: object) -> dict:
    manifest = job_manifest(JobSpec(name="r-train", command=("python", "-m", "x"), **spec),  # type: ignore[arg-type]
                            namespace="ns", image="img:1", node_selector={"pool": "chaos"},
                            tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    return manifest["spec"]["template"]["spec"]


def test_pods_go_where_the_node_selector_says_and_tolerate_what_they_are_told() -> None:
    pod = _pod()
    assert pod["nodeSelector"] == {"pool": "chaos"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_a_gpu_step_requests_nvidia_gpus_and_others_none() -> None:
    assert _pod(gpus=1)["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert "resources" not in _pod()["containers"][0]


def test_the_pod_learns_its_ip_to_serve_metrics_where_prometheus_scrapes() -> None:
    env = {e["name"]: e for e in _pod(metrics_port=9100)["containers"][0]["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert "METRICS_PORT" in env
