"""KindCluster and the pipeline image against stand-in ``kind``, ``docker`` and ``podman`` executables.

The stand-ins are one bash script (bash builtins only) linked under each name in a
folder that is all of PATH (plus ``git``). Each appends ``<name> <argv>`` to a log and
keeps plausible state: the clusters created so far, the images built. Nothing here
needs Docker or kind; ``tests/cluster/test_kind_real.py`` does, behind ``--with-kind``.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.cluster import image as image_mod
from harness.cluster.kind import (
    DEFAULT_CONFIG,
    KIND_INSTALL_HINT,
    UNDO_KIND,
    KindCluster,
    KindEndpoints,
    add_kind_cluster_record,
    cluster_name_for,
    endpoints_from_config,
)
from harness.errors import HarnessError
from harness.undo import UndoLog, heal

STUB = r"""#!/bin/bash
# A stand-in for kind, docker and podman (by the name it is called by). Bash builtins only.
tool="${0##*/}"
echo "$tool $*" >> "$STUB_LOG"
state="$STUB_STATE"
fails() { [[ " $STUB_FAIL " == *" $1 "* ]]; }
listed() { local c; while IFS= read -r c; do [[ "$c" == "$1" ]] && return 0; done < "$state/clusters"; return 1; }
opt() {  # the value after option $1 in the remaining arguments
    local want="$1"; shift
    while (( $# )); do [[ "$1" == "$want" ]] && { echo "$2"; return; }; shift; done
}
: >> "$state/clusters"; : >> "$state/images"

if [[ "$tool" == kind ]]; then
    name="$(opt --name "$@")"; name="${name:-kind}"
    case "$1 $2" in
    "get clusters")
        found=0
        while IFS= read -r c; do echo "$c"; found=1; done < "$state/clusters"
        (( found )) || echo "No kind clusters found." >&2
        exit 0 ;;
    "create cluster")
        echo "${KIND_EXPERIMENTAL_PROVIDER:-docker}" > "$state/provider"
        if listed "$name"; then
            echo "ERROR: failed to create cluster: node(s) already exist for a cluster with the name \"$name\"" >&2
            exit 1
        fi
        echo "$name" >> "$state/clusters"
        echo "Creating cluster \"$name\" ..." >&2
        if fails create; then echo "ERROR: failed to create cluster: could not pull the node image" >&2; exit 1; fi
        kc="$(opt --kubeconfig "$@")"
        [[ -n "$kc" ]] && echo "# kubeconfig of $name" > "$kc"
        exit 0 ;;
    "delete cluster")
        if fails delete; then echo "ERROR: failed to delete cluster \"$name\"" >&2; exit 1; fi
        echo "Deleting cluster \"$name\" ..." >&2
        kept=()
        while IFS= read -r c; do [[ "$c" != "$name" ]] && kept+=("$c"); done < "$state/clusters"
        : > "$state/clusters"
        for c in "${kept[@]}"; do echo "$c" >> "$state/clusters"; done
        exit 0 ;;
    "get kubeconfig")
        if ! listed "$name"; then
            echo "ERROR: could not locate any control plane nodes for cluster named '$name'" >&2; exit 1
        fi
        cat_kubeconfig() {
            echo "apiVersion: v1"
            echo "kind: Config"
            echo "clusters:"
            echo "- cluster: {server: 'https://127.0.0.1:6443'}"
            echo "  name: kind-$name"
            echo "contexts:"
            echo "- context: {cluster: kind-$name, user: kind-$name}"
            echo "  name: kind-$name"
            echo "current-context: kind-$name"
            echo "users:"
            echo "- name: kind-$name"
            echo "  user: {token: stub}"
        }
        cat_kubeconfig
        exit 0 ;;
    "load docker-image")
        listed "$name" || { echo "ERROR: unknown cluster \"$name\"" >&2; exit 1; }
        while IFS= read -r i; do [[ "$i" == "$3" ]] && exit 0; done < "$state/images"
        echo "ERROR: image: \"$3\" not present locally" >&2; exit 1 ;;
    "load image-archive")
        listed "$name" || { echo "ERROR: unknown cluster \"$name\"" >&2; exit 1; }
        [[ -f "$3" ]] || { echo "ERROR: no archive $3" >&2; exit 1; }
        exit 0 ;;
    esac
    echo "stub kind: unexpected arguments: $*" >&2; exit 2
fi

case "$1" in
info)
    if fails info; then
        echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
        exit 1
    fi
    echo "Server Version: 99.0-stub"; exit 0 ;;
build)
    echo "$PWD" > "$state/build_cwd"
    echo "#1 [internal] load build definition from Dockerfile" >&2
    echo "#2 building the pipeline image"
    if fails build; then
        echo "#9 ERROR: process \"/bin/sh -c pip install .\" did not complete successfully: exit code: 1" >&2
        echo "ERROR: failed to solve: process \"/bin/sh -c pip install .\" did not complete successfully:" \
            "exit code: 1" >&2
        exit 1
    fi
    echo "$(opt -t "$@")" >> "$state/images"
    echo "#12 naming to docker.io/$(opt -t "$@") done" >&2
    exit 0 ;;
save)
    echo "image archive" > "$(opt -o "$@")"; exit 0 ;;
esac
echo "stub $tool: unexpected arguments: $*" >&2; exit 2
"""


@dataclass
class Stubs:
    bin: Path
    log: Path
    state: Path
    monkeypatch: pytest.MonkeyPatch

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def clusters(self) -> list[str]:
        path = self.state / "clusters"
        return path.read_text().split() if path.exists() else []

    def add_cluster(self, name: str) -> None:
        with open(self.state / "clusters", "a") as f:
            f.write(name + "\n")

    def fail(self, *steps: str) -> None:
        self.monkeypatch.setenv("STUB_FAIL", " ".join(steps))

    def remove(self, tool: str) -> None:
        (self.bin / tool).unlink()


@pytest.fixture
def stubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stubs:
    """kind, docker and podman stand-ins (podman removed: docker is the default) as the whole PATH, plus git."""
    bin_dir, state = tmp_path / "bin", tmp_path / "stub-state"
    bin_dir.mkdir()
    state.mkdir()
    script = tmp_path / "stub.sh"
    script.write_text(STUB)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    for tool in ("kind", "docker"):
        (bin_dir / tool).symlink_to(script)
    git = shutil.which("git")
    assert git, "these tests need git"
    (bin_dir / "git").symlink_to(git)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("STUB_LOG", str(tmp_path / "calls.log"))
    monkeypatch.setenv("STUB_STATE", str(state))
    monkeypatch.delenv("STUB_FAIL", raising=False)
    monkeypatch.delenv(image_mod.CONTAINER_TOOL_ENV, raising=False)
    monkeypatch.delenv("KIND_EXPERIMENTAL_PROVIDER", raising=False)
    return Stubs(bin=bin_dir, log=tmp_path / "calls.log", state=state, monkeypatch=monkeypatch)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com",
                           "-c", "commit.gpgsign=false", *args], check=True, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git checkout with a Dockerfile at clusters/image/Dockerfile and one commit."""
    root = tmp_path / "repo"
    (root / "clusters" / "image").mkdir(parents=True)
    (root / "clusters" / "image" / "Dockerfile").write_text("FROM scratch\n")
    (root / "README.md").write_text("readme\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


@dataclass
class Run:
    cluster: KindCluster
    lines: list[str]


def make(tmp_path: Path, repo: Path, undo: UndoLog, *, name: str | None = None, keep: bool = False,
         run: str = "r1") -> Run:
    lines: list[str] = []
    cluster = KindCluster(name=name, run=run, workdir=tmp_path / "work", undo=undo, keep=keep, repo_root=repo,
                          progress=lines.append)
    return Run(cluster, lines)


def enter(cluster: KindCluster) -> None:
    """Enter and leave at once (for a refusal or failure on enter)."""
    with cluster:
        pass


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")


def tag_of(repo: Path) -> str:
    return f"ml-chaos-harness/pipeline:{git(repo, 'rev-parse', '--short=12', 'HEAD')}"


def create_argv(tmp_path: Path, name: str) -> str:
    return (f"kind create cluster --name {name} --config {DEFAULT_CONFIG.resolve()} --wait 120s "
            f"--kubeconfig {tmp_path / 'work' / 'kubeconfig'}")


def build_argv(repo: Path) -> str:
    return f"docker build -f clusters/image/Dockerfile -t {tag_of(repo)} --build-arg REVISION={head(repo)} ."


# --- the run ---------------------------------------------------------------------------


def test_create_build_load_kubeconfig_then_delete(stubs: Stubs, repo: Path, tmp_path: Path, undo: UndoLog) -> None:
    r = make(tmp_path, repo, undo)
    with r.cluster as cluster:
        assert cluster.name == "mlchaos-r1"
        assert cluster.context == "kind-mlchaos-r1"
        assert cluster.image == tag_of(repo)
        assert stubs.clusters() == ["mlchaos-r1"]
        [record] = undo.pending()
        assert record.kind == UNDO_KIND and record.extra["name"] == "mlchaos-r1"
        assert cluster.kubeconfig == tmp_path / "work" / "kubeconfig"
        assert stat.S_IMODE(cluster.kubeconfig.stat().st_mode) == 0o600
        assert "current-context: kind-mlchaos-r1" in cluster.kubeconfig.read_text()
        assert cluster.endpoints == KindEndpoints(
            s3_url="http://127.0.0.1:30080", s3_direct_url="http://127.0.0.1:30900",
            proxy_control_url="http://127.0.0.1:30081", prometheus_url="http://127.0.0.1:30909")
        during = stubs.calls()
    assert during == [
        "docker info",
        "kind get clusters",
        create_argv(tmp_path, "mlchaos-r1"),
        build_argv(repo),
        f"kind load docker-image {tag_of(repo)} --name mlchaos-r1",
        "kind get kubeconfig --name mlchaos-r1",
    ]
    assert stubs.calls() == [*during, "kind delete cluster --name mlchaos-r1"]
    assert stubs.clusters() == []
    assert undo.pending() == []
    assert (stubs.state / "build_cwd").read_text().strip() == str(repo)
    assert "#2 building the pipeline image" in r.lines  # the build's output streams to progress
    assert f"#12 naming to docker.io/{tag_of(repo)} done" in r.lines


def test_keep_leaves_the_cluster_and_no_undo_record(stubs: Stubs, repo: Path, tmp_path: Path,
                                                   undo: UndoLog) -> None:
    r = make(tmp_path, repo, undo, keep=True)
    with r.cluster:
        assert undo.pending() == []  # heal must not delete what the user asked to keep
    assert not any(c.startswith("kind delete") for c in stubs.calls())
    assert stubs.clusters() == ["mlchaos-r1"]
    assert any("kept kind cluster mlchaos-r1" in line and "--kind-name mlchaos-r1" in line for line in r.lines)


def test_reusing_a_cluster_neither_creates_nor_deletes_it(stubs: Stubs, repo: Path, tmp_path: Path,
                                                         undo: UndoLog) -> None:
    stubs.add_cluster("mine")
    r = make(tmp_path, repo, undo, name="mine")
    with r.cluster as cluster:
        assert cluster.context == "kind-mine"
        assert undo.pending() == []
    assert stubs.calls() == [
        "docker info",
        "kind get clusters",
        build_argv(repo),
        f"kind load docker-image {tag_of(repo)} --name mine",
        "kind get kubeconfig --name mine",
    ]
    assert stubs.clusters() == ["mine"]


def test_reusing_a_missing_cluster_is_refused(stubs: Stubs, repo: Path, tmp_path: Path, undo: UndoLog) -> None:
    stubs.add_cluster("other")
    with pytest.raises(HarnessError) as info:
        enter(make(tmp_path, repo, undo, name="mine").cluster)
    message = str(info.value)
    assert "\n" not in message
    assert "no kind cluster named 'mine'" in message and "other" in message
    assert stubs.calls() == ["docker info", "kind get clusters"]
    assert undo.pending() == []


def test_a_new_name_that_exists_already_is_refused_and_not_deleted(stubs: Stubs, repo: Path, tmp_path: Path,
                                                                   undo: UndoLog) -> None:
    stubs.add_cluster("mlchaos-r1")  # someone else's: it must survive
    with pytest.raises(HarnessError, match="exists already.*--kind-name mlchaos-r1"):
        enter(make(tmp_path, repo, undo).cluster)
    assert stubs.calls() == ["docker info", "kind get clusters"]
    assert stubs.clusters() == ["mlchaos-r1"]
    assert undo.pending() == []


def test_kind_missing_gives_the_install_hint_and_runs_nothing(stubs: Stubs, repo: Path, tmp_path: Path,
                                                              undo: UndoLog) -> None:
    stubs.remove("kind")
    with pytest.raises(HarnessError) as info:
        enter(make(tmp_path, repo, undo).cluster)
    assert str(info.value) == (
        "kind is not installed: install it from https://kind.sigs.k8s.io/docs/user/quick-start/#installation "
        "(or Debian's kind package), or run with --cluster embedded")
    assert str(info.value) == KIND_INSTALL_HINT
    assert stubs.calls() == []


def test_docker_daemon_down_is_refused_before_create(stubs: Stubs, repo: Path, tmp_path: Path,
                                                     undo: UndoLog) -> None:
    stubs.fail("info")
    with pytest.raises(HarnessError) as info:
        enter(make(tmp_path, repo, undo).cluster)
    message = str(info.value)
    assert message.startswith("Docker is installed but its daemon does not answer: start it")
    assert "--cluster embedded" in message and "Cannot connect to the Docker daemon" in message
    assert "\n" not in message
    assert stubs.calls() == ["docker info"]
    assert undo.pending() == []


def test_no_container_tool(stubs: Stubs, repo: Path, tmp_path: Path, undo: UndoLog) -> None:
    stubs.remove("docker")
    with pytest.raises(HarnessError) as info:
        enter(make(tmp_path, repo, undo).cluster)
    assert str(info.value) == ("no container tool found: install Docker (https://docs.docker.com/engine/install/) "
                               "or podman, or run with --cluster embedded")
    assert stubs.calls() == []


def test_build_failure_deletes_the_cluster_and_names_the_build(stubs: Stubs, repo: Path, tmp_path: Path,
                                                               undo: UndoLog) -> None:
    stubs.fail("build")
    r = make(tmp_path, repo, undo)
    with pytest.raises(HarnessError) as info:
        enter(r.cluster)
    message = str(info.value)
    assert "\n" not in message
    assert f"`{build_argv(repo)}`" in message
    assert "exit code 1" in message
    assert message.endswith('ERROR: failed to solve: process "/bin/sh -c pip install ." did not complete '
                            'successfully: exit code: 1')
    assert stubs.calls() == [
        "docker info",
        "kind get clusters",
        create_argv(tmp_path, "mlchaos-r1"),
        build_argv(repo),
        "kind delete cluster --name mlchaos-r1",
    ]
    assert stubs.clusters() == []
    assert undo.pending() == []


def test_create_failure_deletes_what_kind_left(stubs: Stubs, repo: Path, tmp_path: Path, undo: UndoLog) -> None:
    stubs.fail("create")
    with pytest.raises(HarnessError, match=r"`kind create cluster --name mlchaos-r1 .*` failed with exit code 1: "
                                           r"ERROR: failed to create cluster: could not pull the node image"):
        enter(make(tmp_path, repo, undo, keep=True).cluster)  # kept or not: a half-made cluster goes
    assert stubs.calls()[-1] == "kind delete cluster --name mlchaos-r1"
    assert stubs.clusters() == []
    assert undo.pending() == []


def test_ctrl_c_after_create_deletes_the_cluster(stubs: Stubs, repo: Path, tmp_path: Path, undo: UndoLog) -> None:
    def progress(line: str) -> None:
        if line.startswith("kind cluster mlchaos-r1 is up"):
            raise KeyboardInterrupt

    cluster = KindCluster(name=None, run="r1", workdir=tmp_path / "work", undo=undo, repo_root=repo,
                          progress=progress)
    with pytest.raises(KeyboardInterrupt):
        enter(cluster)
    assert stubs.calls()[-2:] == [create_argv(tmp_path, "mlchaos-r1"), "kind delete cluster --name mlchaos-r1"]
    assert stubs.clusters() == []
    assert undo.pending() == []


def test_a_failed_delete_on_exit_is_reported_and_left_to_heal(stubs: Stubs, repo: Path, tmp_path: Path,
                                                              undo: UndoLog) -> None:
    r = make(tmp_path, repo, undo)
    with pytest.raises(HarnessError, match=r"could not delete kind cluster mlchaos-r1 .*mlchaos heal"), r.cluster:
        stubs.fail("delete")
    assert [r.extra["name"] for r in undo.pending()] == ["mlchaos-r1"]
    stubs.fail()
    assert heal(undo) == ["deleted kind cluster mlchaos-r1"]
    assert stubs.clusters() == []


def test_podman_saves_an_archive_and_tells_kind(stubs: Stubs, repo: Path, tmp_path: Path, undo: UndoLog) -> None:
    stubs.remove("docker")
    (stubs.bin / "podman").symlink_to(tmp_path / "stub.sh")
    enter(make(tmp_path, repo, undo).cluster)
    archive = tmp_path / "work" / "pipeline-image.tar"
    assert stubs.calls()[3:6] == [
        build_argv(repo).replace("docker build", "podman build"),
        f"podman save -o {archive} {tag_of(repo)}",
        f"kind load image-archive {archive} --name mlchaos-r1",
    ]
    assert (stubs.state / "provider").read_text().strip() == "podman"
    assert not archive.exists()


# --- heal ------------------------------------------------------------------------------


def test_heal_after_a_killed_run_deletes_the_cluster(stubs: Stubs, repo: Path, tmp_path: Path,
                                                     undo: UndoLog) -> None:
    r = make(tmp_path, repo, undo)
    r.cluster.__enter__()  # ... and the harness is SIGKILLed: no __exit__
    assert stubs.clusters() == ["mlchaos-r1"]
    assert heal(undo) == ["deleted kind cluster mlchaos-r1"]
    assert stubs.calls()[-2:] == ["kind get clusters", "kind delete cluster --name mlchaos-r1"]
    assert stubs.clusters() == []
    assert undo.pending() == []


def test_heal_of_a_cluster_already_gone(stubs: Stubs, undo: UndoLog) -> None:
    add_kind_cluster_record(undo, name="mlchaos-gone")
    assert heal(undo) == ["kind cluster mlchaos-gone already gone"]
    assert stubs.calls() == ["kind get clusters"]


def test_heal_without_kind_says_how_to_delete_by_hand(stubs: Stubs, undo: UndoLog) -> None:
    stubs.add_cluster("mlchaos-r9")
    add_kind_cluster_record(undo, name="mlchaos-r9")
    stubs.remove("kind")
    with pytest.raises(HarnessError) as info:
        heal(undo)
    assert "kind is not on PATH" in str(info.value)
    assert "kind delete cluster --name mlchaos-r9" in str(info.value)
    assert len(undo.pending()) == 1  # still to do


# --- endpoints and names ---------------------------------------------------------------


def test_endpoints_come_from_the_config_by_container_port(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text("""
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraPortMappings:
      - {containerPort: 30909, hostPort: 19090}
      - {containerPort: 30080, hostPort: 18080, listenAddress: "127.0.0.2"}
      - {containerPort: 30081, hostPort: 18081, listenAddress: "0.0.0.0"}
  - role: worker
    extraPortMappings:
      - {containerPort: 30900, hostPort: 19000, listenAddress: "::1"}
""")
    assert endpoints_from_config(config) == KindEndpoints(
        s3_url="http://127.0.0.2:18080", s3_direct_url="http://[::1]:19000",
        proxy_control_url="http://127.0.0.1:18081", prometheus_url="http://127.0.0.1:19090")


def test_a_missing_port_mapping_is_named(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text("kind: Cluster\nnodes:\n  - role: control-plane\n    extraPortMappings:\n"
                      "      - {containerPort: 30080, hostPort: 30080}\n")
    with pytest.raises(HarnessError, match=r"maps no host port to NodePort 30900 \(MinIO direct\)"):
        endpoints_from_config(config)


def test_a_missing_mapping_is_refused_before_anything_runs(stubs: Stubs, repo: Path, tmp_path: Path,
                                                           undo: UndoLog) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text("kind: Cluster\nnodes:\n  - role: control-plane\n")
    cluster = KindCluster(name=None, run="r1", workdir=tmp_path / "work", undo=undo, repo_root=repo, config=config,
                          progress=lambda line: None)
    with pytest.raises(HarnessError, match="NodePort 30080"):
        enter(cluster)
    assert stubs.calls() == []


def test_cluster_names() -> None:
    assert cluster_name_for("r1") == "mlchaos-r1"
    assert cluster_name_for("2024-05-01T12:00_Run") == "mlchaos-2024-05-01t12-00-run"
    long = cluster_name_for("a" * 100)
    assert len(long) <= 40 and long.startswith("mlchaos-a")
    with pytest.raises(HarnessError):
        cluster_name_for("__")


# --- the image -------------------------------------------------------------------------


def test_image_tag_follows_the_commit_and_dirt(repo: Path) -> None:
    short = git(repo, "rev-parse", "--short=12", "HEAD")
    assert len(short) == 12 and all(c in "0123456789abcdef" for c in short)
    assert image_mod.image_tag(repo) == f"ml-chaos-harness/pipeline:{short}"
    (repo / "untracked.txt").write_text("not part of any commit\n")
    assert image_mod.image_tag(repo) == f"ml-chaos-harness/pipeline:{short}"  # untracked files do not count
    (repo / "README.md").write_text("changed\n")
    assert image_mod.image_tag(repo) == f"ml-chaos-harness/pipeline:{short}-dirty"
    assert image_mod.revision(repo) == f"{head(repo)}-dirty"


def test_image_tag_outside_a_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no checkout above tmp_path counts either
    plain = tmp_path / "plain"
    plain.mkdir()
    assert image_mod.image_tag(plain) == "ml-chaos-harness/pipeline:local"
    assert image_mod.revision(plain) == "unknown"


def test_build_image_passes_base_and_streams(stubs: Stubs, repo: Path) -> None:
    lines: list[str] = []
    image_mod.build_image(repo_root=repo, tag="t:1", base="nvidia/cuda:12.8.1-runtime-ubuntu24.04",
                          progress=lines.append)
    assert stubs.calls() == [(f"docker build -f clusters/image/Dockerfile -t t:1 --build-arg REVISION={head(repo)} "
                              "--build-arg BASE=nvidia/cuda:12.8.1-runtime-ubuntu24.04 .")]
    assert "#1 [internal] load build definition from Dockerfile" in lines  # stderr
    assert "#2 building the pipeline image" in lines  # stdout


def test_container_tool_choice(stubs: Stubs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert image_mod.container_tool() == "docker"
    (stubs.bin / "podman").symlink_to(tmp_path / "stub.sh")
    assert image_mod.container_tool() == "docker"
    monkeypatch.setenv(image_mod.CONTAINER_TOOL_ENV, "podman")
    assert image_mod.container_tool() == "podman"
    monkeypatch.setenv(image_mod.CONTAINER_TOOL_ENV, "nerdctl")
    with pytest.raises(HarnessError, match="HARNESS_CONTAINER_TOOL=nerdctl is not an executable on PATH"):
        image_mod.container_tool()
    monkeypatch.delenv(image_mod.CONTAINER_TOOL_ENV)
    stubs.remove("docker")
    assert image_mod.container_tool() == "podman"


def test_the_stub_is_executable_by_bash_alone(stubs: Stubs) -> None:
    """Guard for the tests above: the stand-ins need no tool from PATH (PATH holds only them and git)."""
    assert os.environ["PATH"] == str(stubs.bin)
    done = subprocess.run([str(stubs.bin / "kind"), "get", "clusters"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "No kind clusters found." in done.stderr
