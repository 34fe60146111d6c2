"""The pipeline image: its tag (from the commit) and its build with the local container tool.

The image is built from the repository root with ``clusters/image/Dockerfile``
and tagged ``ml-chaos-harness/pipeline:<12-hex commit>`` (``-dirty`` appended
when tracked files differ from the commit, ``:local`` outside a git checkout),
so a cluster runs the code of the commit the harness reports.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from harness.errors import HarnessError

__all__ = [
    "CONTAINER_TOOL_ENV",
    "DOCKERFILE",
    "IMAGE_REPOSITORY",
    "REPO_ROOT",
    "build_command",
    "build_image",
    "container_tool",
    "image_tag",
    "revision",
]

IMAGE_REPOSITORY = "ml-chaos-harness/pipeline"
DOCKERFILE = "clusters/image/Dockerfile"
"""Relative to the repository root, which is the build context."""
REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINER_TOOL_ENV = "HARNESS_CONTAINER_TOOL"
BUILD_TIMEOUT_S = 3600.0
"""A first CPU build downloads torch; a CUDA base is larger still."""
_GIT_TIMEOUT_S = 30.0


def container_tool() -> str:
    """``$HARNESS_CONTAINER_TOOL`` if set, else ``docker``, else ``podman``; HarnessError when none is on PATH."""
    chosen = os.environ.get(CONTAINER_TOOL_ENV, "").strip()
    if chosen:
        if shutil.which(chosen) is None:
            raise HarnessError(f"{CONTAINER_TOOL_ENV}={chosen} is not an executable on PATH; "
                               f"install it, or unset {CONTAINER_TOOL_ENV} to use docker or podman")
        return chosen
    for tool in ("docker", "podman"):
        if shutil.which(tool) is not None:
            return tool
    raise HarnessError("no container tool found: install Docker (https://docs.docker.com/engine/install/) "
                       "or podman, or run with --cluster embedded")


def _git(repo_root: Path, *args: str) -> str | None:
    """stdout of ``git -C repo_root ARGS``, or None when git is missing or fails (not a checkout)."""
    if shutil.which("git") is None:
        return None
    try:
        done = subprocess.run(["git", "-C", str(repo_root), *args], check=False, capture_output=True, text=True,
                              timeout=_GIT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _dirty(repo_root: Path) -> bool:
    """Tracked files differ from HEAD (``git status --porcelain`` without untracked files)."""
    status = _git(repo_root, "status", "--porcelain", "--untracked-files=no")
    return bool(status)


def image_tag(repo_root: Path) -> str:
    """``ml-chaos-harness/pipeline:<12-hex commit>[-dirty]``, or ``...:local`` outside a git checkout."""
    short = _git(repo_root, "rev-parse", "--short=12", "HEAD")
    if not short:
        return f"{IMAGE_REPOSITORY}:local"
    return f"{IMAGE_REPOSITORY}:{short}{'-dirty' if _dirty(repo_root) else ''}"


def revision(repo_root: Path) -> str:
    """The full commit (``-dirty`` appended as in :func:`image_tag`), or ``unknown`` outside a git checkout."""
    full = _git(repo_root, "rev-parse", "HEAD")
    if not full:
        return "unknown"
    return f"{full}-dirty" if _dirty(repo_root) else full


def build_command(*, tool: str, tag: str, revision: str, base: str | None = None) -> list[str]:
    """``TOOL build -f clusters/image/Dockerfile -t TAG --build-arg REVISION=... [--build-arg BASE=...] .``"""
    argv = [tool, "build", "-f", DOCKERFILE, "-t", tag, "--build-arg", f"REVISION={revision}"]
    if base:
        argv += ["--build-arg", f"BASE={base}"]
    return [*argv, "."]


def build_image(*, tool: str = "docker", repo_root: Path, tag: str, base: str | None = None,
                progress: Callable[[str], None], timeout: float = BUILD_TIMEOUT_S) -> None:
    """Build the pipeline image in ``repo_root`` (the build context), streaming each output line to ``progress``.

    A failure raises HarnessError naming the command, its exit code and its last stderr line.
    """
    argv = build_command(tool=tool, tag=tag, revision=revision(repo_root), base=base)
    command = shlex.join(argv)
    if not (Path(repo_root) / DOCKERFILE).is_file():
        raise HarnessError(f"cannot build the pipeline image: {Path(repo_root) / DOCKERFILE} does not exist")
    progress(f"building image {tag}: {command}")
    try:
        proc = subprocess.Popen(argv, cwd=repo_root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace", bufsize=1)
    except OSError as exc:
        raise HarnessError(f"`{command}` could not start: {exc}") from None
    lock = threading.Lock()
    last_stderr = [""]

    def pump(stream: IO[str], is_stderr: bool) -> None:
        for raw in stream:
            line = raw.rstrip("\r\n")
            if is_stderr and line.strip():
                last_stderr[0] = line.strip()
            with lock:
                progress(line)

    readers = [threading.Thread(target=pump, args=(proc.stdout, False), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, True), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"`{command}` did not finish within {timeout:g} s; stopped it") from None
    finally:
        if proc.poll() is None:  # a timeout, or Ctrl-C: a build nobody waits for must not go on
            proc.kill()
            proc.wait()
        for reader in readers:
            reader.join(timeout=5)
    if code != 0:
        last = last_stderr[0] or "no output on stderr"
        raise HarnessError(f"`{command}` (in {repo_root}) failed with exit code {code}: {last}")
