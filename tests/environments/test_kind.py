"""``--cluster kind`` without kind: the services it deploys, its readiness wait, and its refusal when kind is missing.

A real kind cluster needs Docker, which this machine lacks; ``tests/cluster/test_kind_real.py``
covers that with ``--with-kind``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from harness.cluster.kind import DEFAULT_CONFIG, KIND_INSTALL_HINT, endpoints_from_config
from harness.cluster.options import ClusterOptions
from harness.environment import open_environment
from harness.environments.kind import _minio_credentials, service_documents, wait_for_services
from harness.errors import HarnessError, ServiceError
from harness.undo import UndoLog

NAMESPACE = "mlchaos-r1"


def documents() -> list[dict[str, object]]:
    return service_documents(namespace=NAMESPACE, run="r1", image="ml-chaos-harness/pipeline:abc", user="mlchaos-u",
                             password="secret-password")


def node_ports(kind: str = "Service") -> dict[str, int]:
    ports: dict[str, int] = {}
    for doc in documents():
        if doc["kind"] == kind:
            spec = doc["spec"]
            assert isinstance(spec, dict) and spec["type"] == "NodePort", doc
            for port in spec["ports"]:
                ports[f"{doc['metadata']['name']}/{port['name']}"] = port["nodePort"]  # type: ignore[index]
    return ports


def test_every_object_lands_in_the_runs_namespace_labelled_with_the_run() -> None:
    docs = documents()
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "Secret", "ConfigMap", "ServiceAccount", "Role"}
    for doc in docs:
        meta = doc["metadata"]
        assert isinstance(meta, dict)
        assert meta["namespace"] == NAMESPACE, doc
        assert meta["labels"]["mlchaos.io/run"] == "r1", doc


def test_the_node_ports_are_those_the_kind_config_maps_to_the_host() -> None:
    endpoints = endpoints_from_config(DEFAULT_CONFIG)
    ports = node_ports()
    mapped = {int(url.rsplit(":", 1)[1]) for url in (endpoints.s3_url, endpoints.s3_direct_url,
                                                     endpoints.proxy_control_url, endpoints.prometheus_url)}
    assert ports == {"minio/s3": 30900, "prometheus/web": 30909, "fault-proxy/s3": 30080,
                     "fault-proxy/control": 30081}
    # kind.yaml maps each NodePort to the same host port; the harness reads them from there.
    assert mapped == set(ports.values())


def test_the_proxy_forwards_to_the_runs_minio_with_the_runs_image_and_credentials() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in documents()}  # type: ignore[index]
    proxy = docs[("Deployment", "fault-proxy")]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert proxy["image"] == "ml-chaos-harness/pipeline:abc"
    assert proxy["command"][proxy["command"].index("--upstream") + 1] == f"minio.{NAMESPACE}.svc:9000"
    secret = docs[("Secret", "minio-root")]["stringData"]  # type: ignore[index]
    assert secret == {"MINIO_ROOT_USER": "mlchaos-u", "MINIO_ROOT_PASSWORD": "secret-password"}


def test_waiting_names_the_services_that_do_not_answer() -> None:
    endpoints = endpoints_from_config(DEFAULT_CONFIG)
    asked: list[str] = []

    def probe(url: str) -> bool:
        asked.append(url)
        return "30909" not in url  # Prometheus is down

    with pytest.raises(ServiceError, match=r"^Prometheus did not answer within 0 s .*kubectl --context kind-x -n ns"):
        wait_for_services(endpoints, namespace="ns", context="kind-x", timeout=0, probe=probe)
    assert any(url.endswith("/minio/health/ready") for url in asked)
    assert any(url.endswith("/healthz") for url in asked)
    wait_for_services(endpoints, namespace="ns", context="kind-x", timeout=0, probe=lambda url: True)


def test_the_harness_uses_the_runs_credentials_only_while_the_run_lasts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "users-own")
    monkeypatch.setenv("AWS_PROFILE", "prod")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    with _minio_credentials("mlchaos-u", "secret-password") as credentials:
        assert os.environ["AWS_ACCESS_KEY_ID"] == "mlchaos-u" == credentials["AWS_ACCESS_KEY_ID"]
        assert os.environ["AWS_SECRET_ACCESS_KEY"] == "secret-password"
        assert "AWS_PROFILE" not in os.environ
    assert os.environ["AWS_ACCESS_KEY_ID"] == "users-own"
    assert os.environ["AWS_PROFILE"] == "prod"
    assert "AWS_SECRET_ACCESS_KEY" not in os.environ


def test_without_kind_the_run_is_refused_and_leaves_nothing(tmp_path: Path, undo: UndoLog,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    before = set(Path(tempfile.gettempdir()).glob("mlchaos-kind-r1-*"))
    with pytest.raises(HarnessError) as raised, open_environment(options=ClusterOptions(kind="kind"), run="r1"):
        pytest.fail("the environment opened without kind")
    assert str(raised.value) == KIND_INSTALL_HINT
    assert undo.pending() == []
    assert set(Path(tempfile.gettempdir()).glob("mlchaos-kind-r1-*")) == before
