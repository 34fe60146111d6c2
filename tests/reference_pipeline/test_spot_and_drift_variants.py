"""ignore-notice and no-fingerprint-check are caught; the correct pipeline passes the same scenarios.

Real train processes against moto. The harness's part is played here, on bare processes: a spot
notice is SIGTERM then SIGKILL when the window ends (what the spot-preemption fault does to the
pod), a drifted environment is the next attempt's env (what the environment-drift fault makes the
node give it). The printed events, with the pod events the harness would record, become the
history the checks judge.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from conftest import Pipeline

from harness.checks.environment import check_environment
from harness.checks.preemption import check_preemption
from harness.history.events import Event, FaultInjected, PodExited, PodStarted, from_json

JOB = "train"
NOTICE = 4.0  # seconds: far longer than a checkpoint save of the small model
DRIFT = {"IMAGE_DIGEST": "sha256:" + "d" * 64, "TORCH_MATMUL_PRECISION": "medium"}


@dataclass
class Attempt:
    """One train process of the job, its events collected as the harness would (pod, attempt, received)."""

    proc: subprocess.Popen[str]
    attempt: int
    node: str
    events: list[Event] = field(default_factory=list)
    stderr: str = ""

    @property
    def pod(self) -> str:
        return f"{JOB}-{self.attempt}"

    def start_reading(self) -> None:
        assert self.proc.stdout is not None
        stdout = self.proc.stdout

        def read() -> None:
            for line in stdout:
                event = from_json(line, pod=self.pod, job=JOB, attempt=self.attempt, received=time.time())
                if event is not None:
                    self.events.append(event)

        threading.Thread(target=read, daemon=True).start()

    def wait_for(self, kind: str, predicate: Callable[[Event], bool] = lambda e: True, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        ended_at: float | None = None
        while not any(kind == e.KIND and predicate(e) for e in list(self.events)):
            if ended_at is None and self.proc.poll() is not None:
                ended_at = time.monotonic()  # give the reader a moment to drain the last lines
            assert ended_at is None or time.monotonic() < ended_at + 1, f"{self.pod} ended: {self.finish()}"
            assert time.monotonic() < deadline, f"no {kind} from {self.pod} within {timeout} s"
            time.sleep(0.05)

    def finish(self, timeout: float = 60) -> int:
        _, self.stderr = self.proc.communicate(timeout=timeout)
        time.sleep(0.2)  # the reader thread drains the last lines
        return _exit_code(self.proc.returncode)


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode  # as a kubelet reports a signal death


def start(pipeline: Pipeline, run_id: str, attempt: int, node: str, history: list[Event], **env: str) -> Attempt:
    history.append(PodStarted(ts=time.time(), pod=f"{JOB}-{attempt}", job=JOB, attempt=attempt, node=node,
                              pid=0))
    a = Attempt(pipeline.start("train", run_id, **env), attempt, node)
    a.start_reading()
    return a


def ended(a: Attempt, history: list[Event], code: int) -> None:
    history.extend(a.events)
    history.append(PodExited(ts=time.time(), pod=a.pod, job=JOB, attempt=a.attempt, node=a.node, exit_code=code,
                             reason="Error" if code else "Completed"))


def spot_notice(a: Attempt, history: list[Event]) -> int:
    """What spot-preemption does to the pod: SIGTERM, then SIGKILL when the notice window ends."""
    history.append(FaultInjected(ts=time.time(), pod=a.pod, job=JOB, attempt=a.attempt, fault="spot-preemption",
                                 fault_id="spot-preemption-1", target=a.node, detail="notice",
                                 grace_period_seconds=NOTICE))
    a.proc.send_signal(signal.SIGTERM)
    try:
        a.proc.wait(timeout=NOTICE)
    except subprocess.TimeoutExpired:
        a.proc.kill()  # the instance is gone
    code = a.finish()
    ended(a, history, code)
    return code


def preempted_run(pipeline: Pipeline, run_id: str, **env: str) -> tuple[list[Event], int, Attempt]:
    """Train until a periodic checkpoint exists and more, deliver the notice, then resume on another node
    and stop that attempt once it trains. Returns the history, the first attempt's exit code and the second."""
    env = {"TRAIN_STEPS": "100000", "CHECKPOINT_EVERY": "50", **env}
    history: list[Event] = []
    first = start(pipeline, run_id, 0, "node-a", history, **env)
    first.wait_for("train_step", lambda e: getattr(e, "step", 0) >= 120)
    code = spot_notice(first, history)
    second = start(pipeline, run_id, 1, "node-b", history, **{k: v for k, v in env.items() if k != "PIPELINE_BROKEN"})
    second.wait_for("train_step")
    second.proc.kill()
    ended(second, history, second.finish())
    return history, code, second


@pytest.mark.parametrize("broken", ["", "ignore-notice"])
def test_ignore_notice_loses_steps_and_is_caught(broken: str, prepared: Pipeline) -> None:
    history, code, second = preempted_run(prepared, f"spot-{broken or 'ok'}", PIPELINE_BROKEN=broken)
    result = check_preemption(history)
    saved_on_notice = [e for e in history if e.KIND == "checkpoint_saved" and getattr(e, "reason", "") == "sigterm"]
    if broken:
        assert code == 137, "ignore-notice keeps training until the window ends"
        assert saved_on_notice == []
        assert result.verdict == "fail", result.evidence
        assert "no checkpoint saved on the notice although the window was long enough" in result.evidence[0]
        lost = int(result.evidence[0].split(" step(s) lost")[0].rsplit("; ", 1)[1])
        assert lost > 0, result.evidence
    else:
        assert code == 143 and len(saved_on_notice) == 1
        assert result.verdict == "pass", result.evidence
        assert "0 step(s) lost" in result.evidence[0]
        restored = [e for e in second.events if e.KIND == "checkpoint_restored"]
        assert getattr(restored[0], "step", None) == getattr(saved_on_notice[0], "step", -1)


def drifted_run(pipeline: Pipeline, run_id: str, *, broken: str, drift: dict[str, str]) -> tuple[list[Event], Attempt]:
    """Attempt 0 checkpoints on SIGTERM; attempt 1 starts under ``drift`` (what the re-imaged node gives it)."""
    env = {"TRAIN_STEPS": "100000", "CHECKPOINT_EVERY": "50", "PIPELINE_BROKEN": broken}
    history: list[Event] = []
    first = start(pipeline, run_id, 0, "node-a", history, **env)
    first.wait_for("train_step", lambda e: getattr(e, "step", 0) >= 30)
    first.proc.send_signal(signal.SIGTERM)
    ended(first, history, first.finish())
    second = start(pipeline, run_id, 1, "node-b", history, **env, **drift)
    deadline = time.monotonic() + 90
    while second.proc.poll() is None and not any(e.KIND == "train_step" for e in list(second.events)):
        assert time.monotonic() < deadline, "the second attempt neither refused nor trained"
        time.sleep(0.05)
    if second.proc.poll() is None:
        second.proc.send_signal(signal.SIGTERM)
    ended(second, history, second.finish())
    return history, second


@pytest.mark.parametrize("broken", ["", "no-fingerprint-check"])
def test_resuming_across_a_drifted_environment_is_caught(broken: str, prepared: Pipeline) -> None:
    history, second = drifted_run(prepared, f"drift-{broken or 'ok'}", broken=broken, drift=DRIFT)
    result = check_environment(history, run_id=f"drift-{broken or 'ok'}")
    prints = {getattr(e, "fingerprint", "") for e in history if e.KIND == "environment"}
    assert len(prints) == 2, "the drifted attempt reports another fingerprint"
    if broken:
        assert [e for e in second.events if e.KIND == "checkpoint_restored"], "it resumed silently"
        assert result.verdict == "fail", result.evidence
        assert "a silent resume across an environment change" in result.evidence[0]
    else:
        assert second.proc.returncode == 2, second.stderr
        assert "refusing to resume the checkpoint of step" in second.stderr
        assert "IMAGE_DIGEST" not in second.stderr and "image_digest: (unset) -> sha256:ddd" in second.stderr
        assert "torch_float32_matmul_precision: highest -> medium" in second.stderr
        refused = [e for e in second.events if e.KIND == "environment_refused"]
        assert refused and getattr(refused[0], "differing", "") == "image_digest,torch_float32_matmul_precision"
        assert not [e for e in second.events if e.KIND in ("checkpoint_restored", "train_step")]
        assert result.verdict == "pass", result.evidence


def test_the_same_environment_resumes_and_passes(prepared: Pipeline) -> None:
    history, second = drifted_run(prepared, "drift-none", broken="", drift={})
    assert [e for e in second.events if e.KIND == "checkpoint_restored"]
    result = check_environment(history, run_id="drift-none")
    assert result.verdict == "pass" and "one fingerprint" in result.evidence[0], result.evidence
