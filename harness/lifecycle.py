"""Starting and stopping child processes so that none outlives the harness.

Every process the harness starts goes through :func:`spawn`: it leads its own
process group (so one signal reaches everything it forked) and gets an undo
record right after the spawn (so :func:`harness.undo.heal` can kill it if the
harness itself is SIGKILLed). :func:`stop` ends the group and removes the record.

:func:`install_signal_handlers` turns SIGTERM/SIGHUP into an exception in the
main thread, so every ``with`` block unwinds and stops what it started, as on
Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

from harness.undo import UndoLog

__all__ = [
    "Interrupted",
    "spawn",
    "stop",
    "signal_group",
    "wait_exited",
    "finish",
    "free_port",
    "install_signal_handlers",
    "reinstall_signal_handlers",
    "restore_signal_handlers",
    "on_interrupt",
    "request_interrupt",
    "interruption",
]

Redirect = int | IO[Any] | None

_records: dict[subprocess.Popen[bytes], tuple[UndoLog, str]] = {}
_records_lock = threading.Lock()


class Interrupted(KeyboardInterrupt):
    """The harness received SIGTERM, SIGHUP or SIGINT. A KeyboardInterrupt, so ``except
    Exception`` does not swallow it and cleanup runs as on Ctrl-C."""


interruption = threading.Event()
"""Set once the harness was told to stop (a signal), even where a library swallowed the exception."""


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    cwd: Path | str | None,
    stdout: Redirect,
    stderr: Redirect,
    undo: UndoLog,
    description: str,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (its own process group) and record it in ``undo``.

    ``env`` None inherits the harness' environment. stdin is /dev/null. Raises
    OSError as :class:`subprocess.Popen` does (e.g. FileNotFoundError).
    """
    proc = subprocess.Popen(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        close_fds=True,
    )
    try:
        record = undo.add_process(pid=proc.pid, description=description)
    except BaseException:
        # Could not write the record: do not leave an unrecorded process behind.
        signal_group(proc, signal.SIGKILL)
        proc.wait()
        raise
    with _records_lock:
        _records[proc] = (undo, record.id)
    return proc


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> bool:
    """Send ``sig`` to ``proc``'s process group unless ``proc`` has been reaped.

    Returns False when there was nothing to signal. Safe against pid reuse as
    long as only :func:`finish` reaps ``proc`` (an unreaped pid is never reused).
    """
    if proc.returncode is not None:
        return False
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return False
    return True


def wait_exited(proc: subprocess.Popen[bytes], timeout: float | None = None) -> bool:
    """Wait until ``proc`` has exited, *without* reaping it (so its pid, and
    therefore its process group id, cannot be reused yet). True if it exited."""
    if proc.returncode is not None:
        return True
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            flags = os.WEXITED | os.WNOWAIT
            if deadline is not None:
                flags |= os.WNOHANG
            result = os.waitid(os.P_PID, proc.pid, flags)
        except ChildProcessError:
            return True  # reaped by someone else
        except InterruptedError:
            continue
        if result is not None:
            return True
        assert deadline is not None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.05)


def finish(proc: subprocess.Popen[bytes]) -> int:
    """After ``proc`` exited: SIGKILL what is left of its group (as Kubernetes does
    when a container's main process ends), reap it and drop its undo record.
    Returns :attr:`subprocess.Popen.returncode` (negative for a signal)."""
    wait_exited(proc)
    signal_group(proc, signal.SIGKILL)
    code = proc.wait()
    with _records_lock:
        entry = _records.pop(proc, None)
    if entry is not None:
        undo, record_id = entry
        undo.remove(record_id)
    return code


def stop(proc: subprocess.Popen[bytes], *, grace: float) -> int:
    """SIGTERM the group, wait up to ``grace`` seconds, SIGKILL the group, reap,
    remove the undo record. Idempotent; returns the exit status as Popen does."""
    if grace > 0 and signal_group(proc, signal.SIGTERM):
        wait_exited(proc, grace)
    signal_group(proc, signal.SIGKILL)
    return finish(proc)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the caller binds it soon)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_Handler = Any  # what signal.getsignal returns
_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
_installed: _Handler = None
_hooks: list[Callable[[str], None]] = []
_hooks_lock = threading.Lock()


def install_signal_handlers() -> dict[int, _Handler]:
    """Make SIGTERM, SIGHUP and SIGINT set :data:`interruption` and raise :class:`Interrupted` in the main thread.

    Only the first such signal raises; later ones are ignored so that cleanup
    already unwinding is not interrupted (SIGKILL plus ``heal`` remain the last
    resort). Returns the previous handlers for :func:`restore_signal_handlers`.
    Must be called from the main thread.
    """
    global _installed
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        request_interrupt(f"received {signal.Signals(signum).name}")
        if fired:
            return
        fired = True
        raise Interrupted(f"received {signal.Signals(signum).name}")

    interruption.clear()
    _installed = handler
    previous: dict[int, _Handler] = {}
    for sig in _SIGNALS:
        previous[sig] = signal.signal(sig, handler)
    return previous


def reinstall_signal_handlers() -> None:
    """Put the harness's handlers back where a library replaced them for a while (Chaos Toolkit turns
    SIGTERM into an exception that an activity can swallow). Main thread only; no-op when none are installed."""
    if _installed is not None:
        for sig in _SIGNALS:
            signal.signal(sig, _installed)


def on_interrupt(hook: Callable[[str], None]) -> Callable[[], None]:
    """Call ``hook(reason)`` (in a thread of its own) when the harness is told to stop; returns the remover."""
    with _hooks_lock:
        _hooks.append(hook)

    def remove() -> None:
        with _hooks_lock:
            if hook in _hooks:
                _hooks.remove(hook)

    return remove


def request_interrupt(reason: str) -> None:
    """Stop what is running: set :data:`interruption` and run the hooks. Safe in a signal handler: the
    hooks run in threads, so no lock the interrupted code holds is needed here."""
    interruption.set()
    with _hooks_lock:
        hooks = list(_hooks)
    for hook in hooks:
        threading.Thread(target=hook, args=(reason,), name="interrupt", daemon=True).start()


def restore_signal_handlers(previous: Mapping[int, _Handler]) -> None:
    """Put back the handlers :func:`install_signal_handlers` returned."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)
