"""A kind cluster for a run: created (or reused), loaded with the pipeline image, and deleted again.

:class:`KindCluster` drives the ``kind`` and ``docker`` (or ``podman``) command
lines. On enter it

1. reads the host ports of the cluster's NodePorts (S3 through the fault proxy, the
   proxy's control API, MinIO direct, Prometheus) from ``clusters/kind/cluster.yaml``;
2. checks that ``kind`` is installed and the container tool's daemon answers;
3. creates ``mlchaos-<run>`` (``kind create cluster --wait 120s``), or checks that the
   cluster named with ``--kind-name`` exists and reuses it;
4. builds the pipeline image (:mod:`harness.cluster.image`) and loads it into the nodes;
5. writes the cluster's kubeconfig to ``<workdir>/kubeconfig`` (mode 600).

A cluster it creates gets an undo record (kind ``kind-cluster``) *before* ``kind create``
runs, so :func:`harness.undo.heal` deletes it, half-created or not, after a killed run.
On exit the cluster is deleted unless it was kept (``keep``) or reused.

The cluster is created with ``--kubeconfig <workdir>/kubeconfig``: the user's own
kubeconfig and its current context are left alone.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from harness.cluster import image as image_mod
from harness.errors import HarnessError
from harness.undo import UndoLog, UndoRecord, register_kind

__all__ = [
    "DEFAULT_CONFIG",
    "KIND_INSTALL_HINT",
    "UNDO_KIND",
    "KindCluster",
    "KindEndpoints",
    "add_kind_cluster_record",
    "cluster_name_for",
    "endpoints_from_config",
]

DEFAULT_CONFIG = image_mod.REPO_ROOT / "clusters" / "kind" / "cluster.yaml"
UNDO_KIND = "kind-cluster"
KIND_INSTALL_HINT = ("kind is not installed: install it from "
                     "https://kind.sigs.k8s.io/docs/user/quick-start/#installation "
                     "(or Debian's kind package), or run with --cluster embedded")

# The NodePorts of clusters/manifests/ (the containerPorts of the cluster's extraPortMappings).
S3_PROXY_NODE_PORT = 30080
PROXY_CONTROL_NODE_PORT = 30081
MINIO_NODE_PORT = 30900
PROMETHEUS_NODE_PORT = 30909

CREATE_WAIT = "120s"
"""``kind create cluster --wait``: how long kind waits for the control plane to be Ready."""
CREATE_TIMEOUT_S = 900.0  # the first create pulls the node image (~ 1 GB)
DELETE_TIMEOUT_S = 300.0
LOAD_TIMEOUT_S = 900.0  # the pipeline image (torch) goes into every node
QUERY_TIMEOUT_S = 60.0  # kind get ..., docker info
_MAX_NAME = 40  # kind names node containers <name>-control-plane, <name>-worker2: hostnames of at most 63

Progress = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


# --- running the command lines -------------------------------------------------------


def _last_line(*texts: str) -> str:
    for text in texts:
        lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return "no output"


def run_tool(argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run one command line to its end; HarnessError naming the command when it fails, times out or is missing."""
    command = shlex.join(argv)
    try:
        done = subprocess.run(list(argv), check=False, capture_output=True, text=True, timeout=timeout,
                              env=dict(env) if env is not None else None, cwd=cwd, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"`{command}` did not finish within {timeout:g} s; stopped it") from None
    except OSError as exc:
        raise HarnessError(f"`{command}` could not start: {exc.strerror or exc}") from None
    if done.returncode != 0:
        raise HarnessError(f"`{command}` failed with exit code {done.returncode}: "
                           f"{_last_line(done.stderr, done.stdout)}")
    return done


def _kind_env(provider: str) -> dict[str, str] | None:
    """kind talks to docker by default; with podman it must be told so (unless the user already did)."""
    if provider == "docker" or "KIND_EXPERIMENTAL_PROVIDER" in os.environ:
        return None
    return {**os.environ, "KIND_EXPERIMENTAL_PROVIDER": Path(provider).name}


def _kind_clusters(env: Mapping[str, str] | None) -> list[str]:
    """``kind get clusters``: one name a line ("No kind clusters found." goes to stderr)."""
    done = run_tool(["kind", "get", "clusters"], timeout=QUERY_TIMEOUT_S, env=env)
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def _by_hand(name: str, provider: str = "docker") -> str:
    tool = Path(provider).name
    return (f"delete it by hand with `kind delete cluster --name {name}` (or "
            f"`{tool} rm -f $({tool} ps -aq --filter label=io.x-k8s.kind.cluster={name})`)")


# --- the undo kind -------------------------------------------------------------------


def add_kind_cluster_record(undo: UndoLog, *, name: str, provider: str = "docker") -> UndoRecord:
    """Record, before ``kind create cluster`` runs, that kind cluster ``name`` is to be deleted."""
    return undo.add(kind=UNDO_KIND, description=f"kind cluster {name}", extra={"name": name, "provider": provider})


def _heal_kind_cluster(record: UndoRecord) -> str:
    name = record.extra.get("name", "")
    provider = record.extra.get("provider") or "docker"
    if not name:
        raise HarnessError(f"the record of {record.description} names no cluster; check `kind get clusters`")
    if shutil.which("kind") is None:
        raise HarnessError(f"cannot delete kind cluster {name}: kind is not on PATH; install kind and run heal "
                           f"again, or {_by_hand(name, provider)}")
    env = _kind_env(provider)
    try:
        listed = _kind_clusters(env)
    except HarnessError as exc:
        raise HarnessError(f"cannot list kind clusters to delete {name} ({exc}); run heal again once "
                           f"{Path(provider).name} answers, or {_by_hand(name, provider)}") from None
    if name not in listed:
        return f"kind cluster {name} already gone"
    run_tool(["kind", "delete", "cluster", "--name", name], timeout=DELETE_TIMEOUT_S, env=env)
    return f"deleted kind cluster {name}"


register_kind(UNDO_KIND, _heal_kind_cluster)


# --- endpoints -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class KindEndpoints:
    """Where the harness reaches the cluster's services from the host (through the NodePort mappings)."""

    s3_url: str
    """S3 through the fault proxy (what the pipeline's faults act on)."""
    s3_direct_url: str
    """MinIO directly (the harness's own reads)."""
    proxy_control_url: str
    prometheus_url: str


def endpoints_from_config(path: Path) -> KindEndpoints:
    """The host side of the NodePort mappings in a kind cluster config (``extraPortMappings``, by containerPort)."""
    try:
        doc: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise HarnessError(f"cannot read the kind cluster config {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise HarnessError(f"the kind cluster config {path} is not valid YAML: {detail}") from None
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    mappings: dict[int, Mapping[str, Any]] = {}
    for node in nodes if isinstance(nodes, list) else []:
        for mapping in (node.get("extraPortMappings") or []) if isinstance(node, dict) else []:
            try:
                mappings.setdefault(int(mapping["containerPort"]), mapping)
            except (KeyError, TypeError, ValueError):
                raise HarnessError(f"{path}: an extraPortMappings entry has no numeric containerPort: "
                                   f"{mapping!r}") from None

    def url(node_port: int, what: str) -> str:
        mapping = mappings.get(node_port)
        if mapping is None:
            raise HarnessError(f"{path} maps no host port to NodePort {node_port} ({what}): add "
                               f"`- containerPort: {node_port}` with a hostPort to the control plane's "
                               f"extraPortMappings")
        try:
            host_port = int(mapping["hostPort"])
        except (KeyError, TypeError, ValueError):
            raise HarnessError(f"{path}: the extraPortMappings entry of containerPort {node_port} ({what}) "
                               f"has no numeric hostPort") from None
        address = str(mapping.get("listenAddress") or "127.0.0.1")
        if address in ("0.0.0.0", "::"):
            address = "127.0.0.1"
        if ":" in address:
            address = f"[{address}]"
        return f"http://{address}:{host_port}"

    return KindEndpoints(
        s3_url=url(S3_PROXY_NODE_PORT, "S3 through the fault proxy"),
        s3_direct_url=url(MINIO_NODE_PORT, "MinIO direct"),
        proxy_control_url=url(PROXY_CONTROL_NODE_PORT, "the fault proxy's control API"),
        prometheus_url=url(PROMETHEUS_NODE_PORT, "Prometheus"),
    )


def cluster_name_for(run: str) -> str:
    """``mlchaos-<run>``, cut to a name kind accepts (lower-case letters, digits, dashes; at most 40 characters)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", run.lower()).strip("-")
    if not slug:
        raise HarnessError(f"run id {run!r} gives no usable kind cluster name; name one with --kind-name")
    return f"mlchaos-{slug}"[:_MAX_NAME].rstrip("-")


# --- the cluster ---------------------------------------------------------------------


class KindCluster:
    """A kind cluster for one run. ``name`` None creates ``mlchaos-<run>``; a name reuses that existing cluster.

    ``image`` None tags the image with :func:`harness.cluster.image.image_tag`; ``build`` False loads an
    image that is already in the local container tool instead of building it.
    """

    def __init__(
        self,
        *,
        name: str | None,
        run: str,
        workdir: Path,
        undo: UndoLog,
        config: Path = DEFAULT_CONFIG,
        keep: bool = False,
        image: str | None = None,
        build: bool = True,
        base: str | None = None,
        repo_root: Path = image_mod.REPO_ROOT,
        progress: Progress = _print,
    ) -> None:
        self.reused = name is not None
        self._name = name if name is not None else cluster_name_for(run)
        self.run = run
        self._workdir = Path(workdir)
        self.undo = undo
        self._config = Path(config)
        self._keep = keep
        self._image = image
        self._build = build
        self._base = base
        self._repo_root = Path(repo_root)
        self._progress = progress
        self.image = image or ""
        """The image loaded into the nodes (set on enter when ``image`` was None)."""
        self._record: UndoRecord | None = None
        self._created = False
        self._reused_ok = False
        self._entered = False
        self._provider = "docker"
        self._endpoints: KindEndpoints | None = None
        self._kubeconfig: Path | None = None

    # --- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> Self:
        if self._entered:
            raise HarnessError("this KindCluster is already in use; create a new one")
        self._endpoints = endpoints_from_config(self._config)
        if shutil.which("kind") is None:
            raise HarnessError(KIND_INSTALL_HINT)
        self._provider = image_mod.container_tool()
        self._check_daemon()
        env = _kind_env(self._provider)
        self._entered = True
        try:
            listed = _kind_clusters(env)
            self._workdir.mkdir(parents=True, exist_ok=True)
            if self.reused:
                if self._name not in listed:
                    raise HarnessError(f"no kind cluster named {self._name!r} to reuse (kind get clusters lists: "
                                       f"{', '.join(listed) or 'none'}); leave out --kind-name to create one")
                self._reused_ok = True
                self._progress(f"reusing kind cluster {self._name}")
            else:
                if self._name in listed:
                    raise HarnessError(f"a kind cluster named {self._name!r} exists already; reuse it with "
                                       f"--kind-name {self._name}, or delete it with: kind delete cluster "
                                       f"--name {self._name}")
                self._create(env)
            tag = self._image or image_mod.image_tag(self._repo_root)
            self.image = tag
            if self._build:
                image_mod.build_image(tool=self._provider, repo_root=self._repo_root, tag=tag, base=self._base,
                                      progress=self._progress)
            self._load(tag, env)
            self._write_kubeconfig(env)
        except BaseException:
            self._close(failing=True)
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._close(failing=exc_type is not None)

    def _check_daemon(self) -> None:
        tool = self._provider
        try:
            run_tool([tool, "info"], timeout=QUERY_TIMEOUT_S)
        except HarnessError as exc:
            who = "Docker" if Path(tool).name == "docker" else Path(tool).name
            start = ("start it (sudo systemctl start docker, or open Docker Desktop) and check that "
                     "`docker info` works" if who == "Docker" else f"check that `{tool} info` works")
            raise HarnessError(f"{who} is installed but its daemon does not answer: {start}, or run with "
                               f"--cluster embedded ({exc})") from None

    def _create(self, env: Mapping[str, str] | None) -> None:
        config = self._config.resolve()
        argv = ["kind", "create", "cluster", "--name", self._name, "--config", str(config), "--wait", CREATE_WAIT,
                "--kubeconfig", str(self._kubeconfig_path)]
        # Written down before it exists: a Ctrl-C or SIGKILL during the create leaves a record heal acts on.
        self._record = add_kind_cluster_record(self.undo, name=self._name, provider=self._provider)
        self._created = True
        self._progress(f"creating kind cluster {self._name} ({config.name}); the first one pulls the node image")
        run_tool(argv, timeout=CREATE_TIMEOUT_S, env=env)
        if self._keep:
            # The user wants it to outlive the run: heal must not delete it after a crash either.
            self.undo.remove(self._record.id)
            self._record = None
        self._progress(f"kind cluster {self._name} is up (context {self.context})")

    def _load(self, tag: str, env: Mapping[str, str] | None) -> None:
        self._progress(f"loading image {tag} into kind cluster {self._name}")
        if Path(self._provider).name == "docker":
            run_tool(["kind", "load", "docker-image", tag, "--name", self._name], timeout=LOAD_TIMEOUT_S, env=env)
            return
        # `kind load docker-image` asks docker itself; other tools hand kind an archive.
        archive = self._workdir / "pipeline-image.tar"
        try:
            run_tool([self._provider, "save", "-o", str(archive), tag], timeout=LOAD_TIMEOUT_S)
            run_tool(["kind", "load", "image-archive", str(archive), "--name", self._name], timeout=LOAD_TIMEOUT_S,
                     env=env)
        finally:
            archive.unlink(missing_ok=True)

    def _write_kubeconfig(self, env: Mapping[str, str] | None) -> None:
        done = run_tool(["kind", "get", "kubeconfig", "--name", self._name], timeout=QUERY_TIMEOUT_S, env=env)
        path = self._kubeconfig_path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(done.stdout)
        os.chmod(path, 0o600)  # the file may have existed with wider permissions
        self._kubeconfig = path

    def _close(self, *, failing: bool) -> None:
        """Delete the cluster this run created (unless kept); say what stays. ``failing``: an error is on its
        way out, so a failed delete is reported here and left to heal instead of replacing that error."""
        if not self._entered:
            return
        self._entered = False
        if self._created and self._record is not None:
            self._delete(failing=failing)
        elif self._created and self._keep:
            self._progress(f"kept kind cluster {self._name} (context {self.context}); reuse it with --kind-name "
                           f"{self._name}, delete it with: kind delete cluster --name {self._name}")
        elif self._reused_ok:
            self._progress(f"kind cluster {self._name} stays: this run reused it")

    def _delete(self, *, failing: bool) -> None:
        assert self._record is not None
        self._progress(f"deleting kind cluster {self._name}")
        try:
            run_tool(["kind", "delete", "cluster", "--name", self._name], timeout=DELETE_TIMEOUT_S,
                     env=_kind_env(self._provider))
        except HarnessError as exc:
            message = (f"could not delete kind cluster {self._name} ({exc}); `mlchaos heal` retries, or "
                       f"{_by_hand(self._name, self._provider)}")
            if failing:
                self._progress(message)
                return
            raise HarnessError(message) from None
        self.undo.remove(self._record.id)
        self._record = None

    # --- accessors ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def context(self) -> str:
        """The kubeconfig context kind names the cluster by."""
        return f"kind-{self._name}"

    @property
    def _kubeconfig_path(self) -> Path:
        return self._workdir / "kubeconfig"

    @property
    def kubeconfig(self) -> Path:
        if self._kubeconfig is None:
            raise HarnessError("the kind cluster is not ready; use KindCluster as a context manager")
        return self._kubeconfig

    @property
    def endpoints(self) -> KindEndpoints:
        if self._endpoints is None:
            self._endpoints = endpoints_from_config(self._config)
        return self._endpoints
