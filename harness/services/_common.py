"""Helpers shared by the services: starting a server on a free port, readiness polling, log tails."""

from __future__ import annotations

import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from harness import lifecycle
from harness.errors import ServiceError
from harness.undo import UndoLog


def start_on_free_port(
    *,
    what: str,
    argv: Callable[[int], list[str]],
    ready_url: Callable[[int], str],
    logfile: Path,
    cwd: Path,
    env: Mapping[str, str] | None,
    undo: UndoLog,
    timeout: float,
    any_status: bool = False,
    tls: ssl.SSLContext | None = None,
    started: Callable[[int], None] | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``what`` on a free 127.0.0.1 port and wait until ``ready_url(port)`` answers.

    A port probed free can be taken before the server binds it: then it retries
    on another (three tries). ``started(port)`` is called once the process exists, before it is ready.
    Returns the process and its port; raises
    ``ServiceError`` with the tail of its log when it never became ready.
    """
    why = ""
    for _ in range(3):
        port = lifecycle.free_port()
        with open(logfile, "ab") as out:
            proc = lifecycle.spawn(
                argv(port), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, undo=undo,
                description=f"{what} on 127.0.0.1:{port}",
            )
        if started is not None:
            started(port)
        reason = wait_http(ready_url(port), proc=proc, timeout=timeout, any_status=any_status, tls=tls)
        if reason is None:
            return proc, port
        why = reason
        lifecycle.stop(proc, grace=2.0)
        if "address already in use" not in log_tail(logfile, lines=3).lower():
            break
    raise ServiceError(f"{what} did not become ready: {why}; its log ends: {log_tail(logfile)}")


def http_ok(url: str, *, timeout: float = 1.0, any_status: bool = False, tls: ssl.SSLContext | None = None) -> bool:
    """True if ``url`` answers 200 (or any HTTP status when ``any_status``); ``tls`` verifies an https server."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=tls) as resp:
            return bool(resp.status == 200 or any_status)
    except urllib.error.HTTPError:
        return any_status
    except (OSError, ValueError):
        return False


def wait_http(
    url: str, *, proc: subprocess.Popen[bytes], timeout: float, any_status: bool = False,
    tls: ssl.SSLContext | None = None,
) -> str | None:
    """Poll ``url`` until it answers. Returns None when ready, else why not
    (the process exited, or the timeout passed)."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if http_ok(url, timeout=1.0, any_status=any_status, tls=tls):
            return None
        code = proc.poll()
        if code is not None:
            return f"it exited with status {code}"
        if time.monotonic() >= deadline:
            return f"it did not answer {url} within {timeout:g} s"
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def log_tail(path: Path, *, lines: int = 5) -> str:
    """The last ``lines`` lines of a log file, joined with ' | ' to keep errors on one line."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    tail = [line.strip() for line in text.strip().splitlines()[-lines:] if line.strip()]
    return " | ".join(tail) or "(empty log)"
