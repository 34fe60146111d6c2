"""Event lines: one flushed JSON line per call, exactly the harness's fields, private kinds by registration."""

from __future__ import annotations

import json
import threading

import pytest

import mlchaos_probe as probe
from harness.history.events import CheckpointSaved, DigestTrail, EnvironmentReported, TrainStep, from_json
from mlchaos_probe import events


def lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_each_call_prints_one_line_with_kind_ts_and_exactly_its_fields(capsys: pytest.CaptureFixture[str]) -> None:
    probe.train_step(run_id="r", step=3, loss=0.25)
    probe.checkpoint_saved(run_id="r", step=3, manifest_key="k/MANIFEST.json", seconds=0.5, bytes=10,
                           reason="periodic", components={"parameters": "ab"})
    first, second = lines(capsys.readouterr().out)
    assert first.pop("ts") and first == {"event": "train_step", "run_id": "r", "step": 3, "loss": 0.25}
    assert second["components"] == {"parameters": "ab"} and second["reason"] == "periodic"


def test_the_harness_history_reads_every_line_as_its_typed_event(capsys: pytest.CaptureFixture[str]) -> None:
    probe.train_step(run_id="r", step=1, loss=1.0)
    probe.checkpoint_saved(run_id="r", step=1, manifest_key="m", seconds=0.1, bytes=1, reason="final")
    probe.digest_trail(run_id="r", step=1, components={"parameters": "cd"})
    probe.environment.report(run_id="r")
    parsed = [from_json(line) for line in capsys.readouterr().out.splitlines()]
    assert [type(e) for e in parsed] == [TrainStep, CheckpointSaved, DigestTrail, EnvironmentReported]
    saved, trail = parsed[1], parsed[2]
    assert isinstance(saved, CheckpointSaved) and dict(saved.components) == {}
    assert isinstance(trail, DigestTrail) and dict(trail.components) == {"parameters": "cd"}


def test_emit_refuses_missing_extra_and_unknown_fields(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="train_step"):
        events.emit("train_step", run_id="r", step=1)
    with pytest.raises(ValueError, match="train_step"):
        events.emit("train_step", run_id="r", step=1, loss=0.0, extra=1)
    with pytest.raises(ValueError, match="unknown event kind"):
        events.emit("no_such_kind", run_id="r")
    assert capsys.readouterr().out == ""


def test_components_may_be_left_out_of_checkpoint_events_only(capsys: pytest.CaptureFixture[str]) -> None:
    events.emit("checkpoint_restored", run_id="r", step=2, manifest_key="m", seconds=0.0)
    assert lines(capsys.readouterr().out)[0]["components"] == {}
    with pytest.raises(ValueError):
        events.emit("digest_trail", run_id="r", step=2)


def test_a_registered_private_kind_is_checked_like_a_standard_one(capsys: pytest.CaptureFixture[str]) -> None:
    events.register_kind("test_private_kind", ("run_id", "note"))
    events.register_kind("test_private_kind", ("note", "run_id"))  # the same fields again: allowed
    events.emit("test_private_kind", run_id="r", note="hi")
    assert lines(capsys.readouterr().out)[0]["note"] == "hi"
    with pytest.raises(ValueError):
        events.emit("test_private_kind", run_id="r")
    with pytest.raises(ValueError, match="already registered"):
        events.register_kind("test_private_kind", ("run_id",))
    with pytest.raises(ValueError, match="standard kind"):
        events.register_kind("train_step", ("run_id",))


def test_lines_from_many_threads_never_interleave(capsys: pytest.CaptureFixture[str]) -> None:
    def burst(n: int) -> None:
        for step in range(200):
            probe.train_step(run_id=f"thread-{n}-" + "x" * 200, step=step, loss=0.0)

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    parsed = lines(capsys.readouterr().out)  # a torn line would fail to parse
    assert len(parsed) == 800


def test_every_event_a_pipeline_prints_is_reexported_but_the_harness_owned_ones() -> None:
    import inspect

    import mlchaos_probe
    from mlchaos_probe import events

    printed = {name for name, fn in inspect.getmembers(events, inspect.isfunction)
               if fn.__module__ == events.__name__ and not name.startswith("_")}
    missing = printed - set(mlchaos_probe.__all__) - {"crash_point", "environment"}
    assert missing == set()
