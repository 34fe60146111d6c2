"""The files of ``clusters/``: manifest templates, the kind cluster, the pipeline image.

Templates are validated strictly (unknown fields fail) with ``kubernetes-validate`` for
the Kubernetes versions in :data:`VALIDATED_VERSIONS`, and against the OpenAPI schema the
embedded cluster's 1.20 API server serves (``kubernetes-validate`` has no 1.20 schemas).
``deploy.apply``/``deploy.delete`` run against that API server.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate.utils as kubernetes_validate
import pytest
import yaml
from kubernetes import client, config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

from harness.cluster.embedded.binaries import KUBERNETES_VERSION
from harness.cluster.embedded.cluster import EmbeddedCluster
from harness.cluster.kube import deploy
from harness.cluster.kube.manifests import MANAGED_LABELS, RUN_LABEL
from harness.errors import HarnessError
from harness.services.pod_discovery import scrape_target

REPO = Path(__file__).resolve().parents[2]
KIND_CONFIG = REPO / "clusters" / "kind" / "cluster.yaml"
DOCKERFILE = REPO / "clusters" / "image" / "Dockerfile"

VALIDATED_VERSIONS = ("1.25.0", "1.36.0", "1.37.0")
"""The oldest and the two newest versions kubernetes-validate (1.37.0) ships; 1.20 is checked against the API server."""

KIND_NODE_PORTS = {30080, 30081, 30900, 30909}

RUN = "t3st0001"
NS = f"mlchaos-{RUN}"
VALUES: dict[str, str] = {
    "NAMESPACE": NS,
    "RUN": RUN,
    "IMAGE": "ml-chaos-pipeline:dev",
    "BUCKET": "mlchaos-data",
    "SERVICE_TYPE": "ClusterIP",
    "BACKFILL_PODS": "1",
    "S3_UPSTREAM": f"minio.{NS}.svc:9000",
    "MINIO_ROOT_USER": "mlchaos",
    "MINIO_ROOT_PASSWORD": "mlchaos-minio-secret",
    "SERVICES_NAMESPACE": "kube-public",
    "S3_ENDPOINT": f"http://fault-proxy.{NS}.svc:8080",
    "S3_DIRECT_ENDPOINT": "http://127.0.0.1:30900",
    "PROMETHEUS_URL": "http://127.0.0.1:30909",
    "S3_PROXY_CONTROL_URL": "http://127.0.0.1:30081",
    "S3_TEST_CREDENTIALS": "false",
}
TEMPLATES = deploy.template_names()
SERVICE_TYPES = deploy.SERVICE_TYPES


def rendered(service_type: str = "ClusterIP",
             values: Mapping[str, str] = VALUES) -> Iterator[tuple[str, dict[str, Any]]]:
    for name in TEMPLATES:
        for doc in deploy.render(name, {**values, "SERVICE_TYPE": service_type}):
            yield name, doc


def _describe(doc: Mapping[str, Any]) -> str:
    return f"{doc['kind']} {doc['metadata'].get('name')}"


# --- the templates ---------------------------------------------------------------------------


def test_the_expected_templates_exist_and_use_only_documented_placeholders() -> None:
    assert set(TEMPLATES) >= {"namespace", "rbac", "priorityclasses", "quota", "minio", "prometheus", "fault-proxy",
                              "services-configmap"}
    used = set().union(*(deploy.placeholders(name) for name in TEMPLATES))
    assert used == set(VALUES), "a placeholder was added or dropped: update VALUES and the README's list"


@pytest.mark.parametrize("version", VALIDATED_VERSIONS)
@pytest.mark.parametrize("service_type", SERVICE_TYPES)
@pytest.mark.parametrize("name", TEMPLATES)
def test_each_template_is_valid_strictly(name: str, service_type: str, version: str) -> None:
    docs = deploy.render(name, {**VALUES, "SERVICE_TYPE": service_type})
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}.yaml, {_describe(doc)}, Kubernetes {version}: {' '.join(str(exc).split())[:500]}")


def test_the_validated_versions_are_shipped_by_kubernetes_validate() -> None:
    shipped = {kubernetes_validate.major_minor(v) for v in kubernetes_validate.all_versions()}
    assert {kubernetes_validate.major_minor(v) for v in VALIDATED_VERSIONS} <= shipped
    newest = kubernetes_validate.major_minor(kubernetes_validate.latest_version())
    assert kubernetes_validate.major_minor(VALIDATED_VERSIONS[-1]) == newest


def _broken() -> dict[str, Any]:
    doc = deploy.render("fault-proxy", VALUES)[0]
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProb"] = {"httpGet": {"path": "/healthz", "port": 8081}}
    return doc


@pytest.mark.parametrize("version", VALIDATED_VERSIONS)
def test_the_strict_validator_catches_an_unknown_field(version: str) -> None:
    with pytest.raises(kubernetes_validate.ValidationError, match="readinessProb"):
        kubernetes_validate.validate(_broken(), version, strict=True)


@pytest.mark.parametrize("service_type", SERVICE_TYPES)
def test_every_object_carries_the_managed_and_run_labels(service_type: str) -> None:
    wanted = {**MANAGED_LABELS, RUN_LABEL: RUN}
    for name, doc in rendered(service_type):
        labels = doc["metadata"].get("labels") or {}
        assert wanted.items() <= labels.items(), f"{name}.yaml: {_describe(doc)} lacks {wanted}"
        pod_template = (doc.get("spec") or {}).get("template")
        if pod_template is not None:
            assert wanted.items() <= pod_template["metadata"]["labels"].items(), f"{name}.yaml: {_describe(doc)} pods"


def test_namespaced_objects_are_placed_in_the_namespace_they_are_told() -> None:
    for name, doc in rendered():
        if doc["kind"] in ("Namespace", "PriorityClass"):
            assert "namespace" not in doc["metadata"]
        elif name == "services-configmap":
            assert doc["metadata"]["namespace"] == VALUES["SERVICES_NAMESPACE"]
        else:
            assert doc["metadata"]["namespace"] == NS, f"{name}.yaml: {_describe(doc)}"


def _services(service_type: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in rendered(service_type) if doc["kind"] == "Service"}


def test_node_ports_are_the_kind_mappings_and_only_in_node_port_services() -> None:
    node_port_services = _services("NodePort")
    assert {s["spec"]["type"] for s in node_port_services.values()} == {"NodePort"}
    assert {p["nodePort"] for s in node_port_services.values() for p in s["spec"]["ports"]} == KIND_NODE_PORTS
    cluster_ip_services = _services("ClusterIP")
    assert cluster_ip_services.keys() == node_port_services.keys() == {"minio", "prometheus", "fault-proxy"}
    for service in cluster_ip_services.values():
        assert service["spec"]["type"] == "ClusterIP"
        assert all("nodePort" not in p for p in service["spec"]["ports"])


def test_the_fault_proxy_runs_the_image_between_the_pipeline_and_s3() -> None:
    deployment = next(d for _, d in rendered() if d["kind"] == "Deployment" and d["metadata"]["name"] == "fault-proxy")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == VALUES["IMAGE"]
    assert container["command"] == ["python", "-m", "harness.services.proxy", "--listen", "0.0.0.0:8080",
                                    "--upstream", VALUES["S3_UPSTREAM"], "--control", "0.0.0.0:8081"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8081}
    assert {p["name"]: p["port"] for p in _services("ClusterIP")["fault-proxy"]["spec"]["ports"]} == {
        "s3": 8080, "control": 8081}


def test_the_services_configmap_has_the_keys_the_harness_reads() -> None:
    (doc,) = deploy.render("services-configmap", VALUES)
    assert (doc["metadata"]["namespace"], doc["metadata"]["name"]) == ("kube-public", "mlchaos-services")
    assert doc["data"] == {"s3-endpoint": VALUES["S3_ENDPOINT"], "s3-direct-endpoint": VALUES["S3_DIRECT_ENDPOINT"],
                           "prometheus-url": VALUES["PROMETHEUS_URL"],
                           "s3-proxy-control-url": VALUES["S3_PROXY_CONTROL_URL"], "s3-test-credentials": "false"}


def test_the_priority_classes_are_the_backends() -> None:
    classes = {d["metadata"]["name"]: d["value"] for d in deploy.render("priorityclasses", VALUES)}
    assert classes == {"mlchaos-daily": 1000, "mlchaos-backfill": 0}
    (quota,) = deploy.render("quota", VALUES)
    assert quota["spec"]["hard"] == {"pods": "1"}
    assert quota["spec"]["scopeSelector"]["matchExpressions"][0]["values"] == ["mlchaos-backfill"]


def test_a_missing_value_is_one_line_naming_the_placeholder_and_the_file() -> None:
    values = {k: v for k, v in VALUES.items() if k != "BUCKET"}
    with pytest.raises(HarnessError, match=r"minio\.yaml needs a value for placeholder \$\{BUCKET\}") as info:
        deploy.render("minio", values)
    assert "\n" not in str(info.value)


def test_an_unknown_service_type_or_template_is_refused() -> None:
    with pytest.raises(HarnessError, match="SERVICE_TYPE"):
        deploy.render("minio", {**VALUES, "SERVICE_TYPE": "LoadBalancer"})
    with pytest.raises(HarnessError, match="no manifest template"):
        deploy.render("nope", VALUES)


# --- Prometheus ------------------------------------------------------------------------------


def _prometheus_config() -> dict[str, Any]:
    config_map = next(d for d in deploy.render("prometheus", VALUES) if d["kind"] == "ConfigMap")
    parsed: dict[str, Any] = yaml.safe_load(config_map["data"]["prometheus.yml"])
    return parsed


def test_prometheus_discovers_pods_in_the_run_namespace_only() -> None:
    cfg = _prometheus_config()
    assert cfg["global"]["scrape_interval"] == "1s"
    (scrape,) = cfg["scrape_configs"]
    (sd,) = scrape["kubernetes_sd_configs"]
    assert sd["role"] == "pod"
    assert sd["namespaces"] == {"names": [NS]}
    deployment = next(d for d in deploy.render("prometheus", VALUES) if d["kind"] == "Deployment")
    pod_spec = deployment["spec"]["template"]["spec"]
    assert pod_spec["serviceAccountName"] == "prometheus"
    assert "--web.enable-lifecycle" in pod_spec["containers"][0]["args"]


def _relabel(labels: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus's relabelling, for the actions the config uses (keep, replace); None: the target is dropped."""
    labels = dict(labels)
    for rule in rules:
        value = rule.get("separator", ";").join(labels.get(s, "") for s in rule.get("source_labels", []))
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        action = rule.get("action", "replace")
        if action == "keep":
            if match is None:
                return None
        elif action == "replace":
            if match is not None:
                result = match.expand(re.sub(r"\$(\d+)", r"\\g<\1>", rule.get("replacement", "$1")))
                if result:
                    labels[rule["target_label"]] = result
                else:
                    labels.pop(rule["target_label"], None)
        else:
            raise AssertionError(f"relabel action {action} is not emulated here")
    return labels


def _meta_labels(pod: dict[str, Any], job_name: str) -> dict[str, str]:
    """The labels Prometheus's pod discovery gives a pod that declares no container port."""
    def clean(key: str) -> str:
        return re.sub(r"[^a-zA-Z0-9_]", "_", key)
    meta = pod["metadata"]
    labels = {"job": job_name, "__address__": pod["status"].get("podIP", ""),
              "__meta_kubernetes_namespace": meta["namespace"], "__meta_kubernetes_pod_name": meta["name"],
              "__meta_kubernetes_pod_ip": pod["status"].get("podIP", ""),
              "__meta_kubernetes_pod_phase": pod["status"]["phase"],
              "__meta_kubernetes_pod_node_name": pod["spec"].get("nodeName", "")}
    labels.update({f"__meta_kubernetes_pod_label_{clean(k)}": v for k, v in meta.get("labels", {}).items()})
    labels.update({f"__meta_kubernetes_pod_annotation_{clean(k)}": v for k, v in meta.get("annotations", {}).items()})
    return labels


@pytest.mark.parametrize("annotations, phase, job_label", [
    ({"prometheus.io/scrape": "true", "prometheus.io/port": "9100"}, "Running", {"job-name": "train-1"}),
    ({"prometheus.io/scrape": "true", "prometheus.io/port": "9100"}, "Running", {}),
    ({"prometheus.io/scrape": "true", "prometheus.io/port": "9100"}, "Pending", {"job-name": "train-1"}),
    ({"prometheus.io/scrape": "false", "prometheus.io/port": "9100"}, "Running", {"job-name": "train-1"}),
    ({"prometheus.io/port": "9100"}, "Running", {"job-name": "train-1"}),
])
def test_the_relabelling_selects_and_labels_as_the_embedded_pod_discovery_does(
        annotations: dict[str, str], phase: str, job_label: dict[str, str]) -> None:
    pod = {"metadata": {"name": "train-1-abcde", "namespace": NS, "uid": "u1", "annotations": annotations,
                        "labels": {**MANAGED_LABELS, **job_label}},
           "spec": {"nodeName": "worker-1"}, "status": {"phase": phase, "podIP": "10.244.1.7"}}
    (scrape,) = _prometheus_config()["scrape_configs"]
    relabelled = _relabel(_meta_labels(pod, scrape["job_name"]), scrape["relabel_configs"])
    expected = scrape_target(pod)
    if expected is None:
        assert relabelled is None
        return
    assert relabelled is not None
    assert relabelled["__address__"] == expected.address
    final = {k: v for k, v in relabelled.items() if not k.startswith("__")}
    assert final == {k: v for k, v in expected.labels.items() if v}


def test_promtool_accepts_the_config_but_its_kubernetes_discovery(tmp_path: Path) -> None:
    """Debian's promtool is built without Kubernetes service discovery and rejects ``kubernetes_sd_configs``
    ("field kubernetes_sd_configs not found"); everything else (globals, relabel rules and their regexes)
    is checked with that block replaced by a static target."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    cfg = _prometheus_config()
    for scrape in cfg["scrape_configs"]:
        assert scrape.pop("kubernetes_sd_configs")
        scrape["static_configs"] = [{"targets": ["127.0.0.1:9"]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    done = subprocess.run([promtool, "check", "config", str(path)], check=False, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


# --- kind ------------------------------------------------------------------------------------


def test_the_kind_cluster_has_a_control_plane_two_labelled_workers_and_the_port_mappings() -> None:
    cluster = yaml.safe_load(KIND_CONFIG.read_text(encoding="utf-8"))
    assert (cluster["kind"], cluster["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    roles = [node["role"] for node in cluster["nodes"]]
    assert sorted(roles) == ["control-plane", "worker", "worker"]
    (control_plane,) = [n for n in cluster["nodes"] if n["role"] == "control-plane"]
    mappings = control_plane["extraPortMappings"]
    assert {m["containerPort"] for m in mappings} == KIND_NODE_PORTS
    for m in mappings:
        assert (m["hostPort"], m["listenAddress"], m.get("protocol", "TCP")) == (m["containerPort"], "127.0.0.1", "TCP")
    for worker in (n for n in cluster["nodes"] if n["role"] == "worker"):
        assert worker["labels"] == {"mlchaos.io/chaos-target": "true"}


# --- the image -------------------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends in a line continuation"
    return [(w[0].upper(), w[1] if len(w) > 1 else "") for w in (ln.strip().split(None, 1) for ln in logical)]


def test_the_dockerfile_copies_only_what_exists_and_all_the_packages() -> None:
    copies = [args.split() for instruction, args in _dockerfile_instructions() if instruction == "COPY"]
    assert copies
    sources: list[str] = []
    for words in copies:
        assert not any(w.startswith("--from") for w in words)
        sources += [w for w in words[:-1] if not w.startswith("--")]
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such path in the repository"
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    copied = {s.strip("/").split("/")[0] for s in sources}
    assert {"pyproject.toml", project["project"]["readme"]} <= copied
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, "a package pyproject.toml installs is not copied into the image"


def test_the_dockerfile_pins_the_torch_of_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    (torch_pin,) = [d for d in project["project"]["dependencies"] if re.match(r"torch\s*==", d)]
    args = dict(a.split("=", 1) for i, a in _dockerfile_instructions() if i == "ARG" and "=" in a)
    assert args["TORCH_VERSION"] == torch_pin.split("==", 1)[1].strip()
    assert args["BASE"] == "python:3.11-slim"
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    instructions = _dockerfile_instructions()
    assert any(i == "RUN" and '"torch==${TORCH_VERSION}"' in a and "${TORCH_INDEX_URL}" in a for i, a in instructions)
    assert any(i == "LABEL" and "org.opencontainers.image.revision=\"${REVISION}\"" in a for i, a in instructions)
    assert not any(i == "ENTRYPOINT" for i, _ in instructions)
    (user,) = [a for i, a in instructions if i == "USER"]
    assert not user.startswith(("0", "root"))


# --- against the embedded (Kubernetes 1.20) API server ---------------------------------------


@pytest.fixture(scope="module")
def api_client(embedded: EmbeddedCluster) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(embedded.kubeconfig))
    yield api
    api.close()


@pytest.fixture(scope="module")
def validate_1_20(api_client: client.ApiClient) -> Callable[[dict[str, Any]], None]:
    """Strict validation against the API server's own OpenAPI v2 schema: unknown fields fail, as they do
    in kubernetes-validate's strict schemas (built from the same OpenAPI documents)."""
    version = client.VersionApi(api_client).get_code().git_version
    assert version == KUBERNETES_VERSION
    method, url, headers, body, _ = api_client.param_serialize(
        "GET", "/openapi/v2", header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
    response = api_client.call_api(method, url, headers, body)
    response.read()
    assert response.data is not None
    spec = json.loads(response.data)
    definitions = copy.deepcopy(spec["definitions"])
    # As kubernetes-json-schema does: these two are "string" in OpenAPI, yet take numbers in YAML.
    definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {"type": ["string", "integer"]}
    definitions["io.k8s.apimachinery.pkg.api.resource.Quantity"] = {"type": ["string", "number"]}
    for definition in definitions.values():
        if "properties" in definition:
            definition.setdefault("additionalProperties", False)
    by_kind = {(f"{g['group']}/{g['version']}".lstrip("/"), g["kind"]): name
               for name, d in spec["definitions"].items() for g in d.get("x-kubernetes-group-version-kind", [])}

    def validate(doc: dict[str, Any]) -> None:
        name = by_kind.get((doc["apiVersion"], doc["kind"]))
        assert name is not None, f"Kubernetes {version} serves no {doc['kind']} in {doc['apiVersion']}"
        jsonschema.Draft4Validator({"definitions": definitions, "$ref": f"#/definitions/{name}"}).validate(doc)

    return validate


@pytest.mark.parametrize("service_type", SERVICE_TYPES)
def test_every_template_is_valid_strictly_for_kubernetes_1_20(
        validate_1_20: Callable[[dict[str, Any]], None], service_type: str) -> None:
    for name, doc in rendered(service_type):
        try:
            validate_1_20(doc)
        except jsonschema.ValidationError as exc:
            pytest.fail(f"{name}.yaml, {_describe(doc)}, Kubernetes {KUBERNETES_VERSION}: {exc.message}")
    with pytest.raises(jsonschema.ValidationError, match="readinessProb"):
        validate_1_20(_broken())


def _get(dyn: DynamicClient, obj: deploy.AppliedObject) -> Any:
    resource = dyn.resources.get(api_version=obj.api_version, kind=obj.kind)
    return dyn.get(resource, name=obj.name, namespace=obj.namespace or None)


def _exists(dyn: DynamicClient, obj: deploy.AppliedObject) -> bool:
    try:
        _get(dyn, obj)
    except NotFoundError:
        return False
    return True


def test_apply_is_idempotent_and_delete_removes_everything(api_client: client.ApiClient, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    ns = f"t-{run}"
    values = {**VALUES, "NAMESPACE": ns, "RUN": run, "SERVICES_NAMESPACE": ns, "S3_UPSTREAM": f"minio.{ns}.svc:9000",
              "SERVICE_TYPE": "ClusterIP"}
    docs = [d for name in ("namespace", "rbac", "quota", "services-configmap", "minio", "prometheus", "fault-proxy")
            for d in deploy.render(name, values) if d["kind"] != "Job"]
    for doc in docs:
        if doc["kind"] == "Deployment":
            # The embedded cluster's process nodes would run the containers' commands on this machine, in the
            # session's few pod slots: the objects are what is under test, not their pods.
            doc["spec"]["replicas"] = 0
    assert {d["kind"] for d in docs} == {"Namespace", "ServiceAccount", "Role", "RoleBinding", "ResourceQuota",
                                         "ConfigMap", "Secret", "Deployment", "Service"}
    dyn = DynamicClient(api_client, cache_file=str(tmp_path / "discovery.json"))
    applied: list[deploy.AppliedObject] = []
    try:
        applied = deploy.apply(api_client, docs)
        assert [(o.kind, o.name) for o in applied] == [(d["kind"], d["metadata"]["name"]) for d in docs]
        assert applied[0] == deploy.AppliedObject(api_version="v1", kind="Namespace", namespace="", name=ns)
        assert all(o.namespace == ns for o in applied[1:])
        wanted = {**MANAGED_LABELS, RUN_LABEL: run}
        first = {}
        for obj in applied:
            live = _get(dyn, obj)
            assert wanted.items() <= dict(live.metadata.labels).items(), str(obj)
            first[obj] = (live.metadata.uid, live.metadata.generation)

        assert deploy.apply(api_client, docs) == applied  # again: the same objects, updated in place
        for obj in applied:
            live = _get(dyn, obj)
            assert (live.metadata.uid, live.metadata.generation) == first[obj], f"{obj} changed on a second apply"
        configmap = _get(dyn, next(o for o in applied if o.name == "mlchaos-services"))
        assert configmap.data["prometheus-url"] == values["PROMETHEUS_URL"]
    finally:
        deploy.delete(api_client, applied)
    deadline = time.monotonic() + 60
    while any(_exists(dyn, obj) for obj in applied):
        assert time.monotonic() < deadline, [str(o) for o in applied if _exists(dyn, o)]
        time.sleep(0.25)
    deploy.delete(api_client, applied)  # what is gone already is skipped
