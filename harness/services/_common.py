"""Helpers shared by the services: readiness polling and log tails."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def http_ok(url: str, *, timeout: float = 1.0, any_status: bool = False) -> bool:
    """True if ``url`` answers 200 (or any HTTP status when ``any_status``)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bool(resp.status == 200 or any_status)
    except urllib.error.HTTPError:
        return any_status
    except (OSError, ValueError):
        return False


def wait_http(url: str, *, proc: subprocess.Popen[bytes], timeout: float, any_status: bool = False) -> str | None:
    """Poll ``url`` until it answers. Returns None when ready, else why not
    (the process exited, or the timeout passed)."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if http_ok(url, timeout=1.0, any_status=any_status):
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
