"""The night's report.html and junit.xml, from hand-built histories and summaries (no cluster)."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from harness.gameday import report
from harness.gameday.model import Badput, NightFigures, NightSummary, RunVerdict
from harness.gameday.report import (
    RunHistory,
    badput_png,
    mttr_png,
    night_recoveries,
    night_timeline_png,
    write_night_junit,
    write_night_reports,
)
from harness.history.events import (
    CheckpointRestored,
    Event,
    FaultHealed,
    FaultInjected,
    PodExited,
    PodStarted,
    TrainingStarted,
    TrainStep,
)

PNG = b"\x89PNG"
DELAY = 0.05  # how long a pipeline line takes to reach the harness


@dataclass
class RunBuilder:
    """Events of one run's training job, one step a second. The pod's clock is ``skew`` seconds off the
    harness's: pipeline events carry ``ts = harness time + skew`` and ``received = harness time + DELAY``."""

    run_id: str
    now: float
    skew: float = 0.0
    attempt: int = -1
    events: list[Event] = field(default_factory=list)

    @property
    def pod(self) -> str:
        return f"{self.run_id}-train-{self.attempt}"

    def _who(self) -> dict[str, Any]:
        return {"pod": self.pod, "job": f"{self.run_id}-train", "attempt": self.attempt}

    def _pipeline(self) -> dict[str, Any]:
        return {"ts": self.now + self.skew, "received": self.now + DELAY}

    def start(self, *, restore: int | None = None) -> RunBuilder:
        self.attempt += 1
        self.events.append(PodStarted(ts=self.now, node="n1", pid=1, **self._who()))
        self.now += 0.5
        if restore is not None:
            self.events.append(CheckpointRestored(run_id=self.run_id, step=restore, manifest_key=f"ck/{restore}",
                                                  seconds=0.1, **self._pipeline(), **self._who()))
        self.events.append(TrainingStarted(run_id=self.run_id, start_step=restore or 0, total_steps=40,
                                           checkpoint_every=10, seed=1, device="cpu",
                                           **self._pipeline(), **self._who()))
        return self

    def train(self, first: int, last: int) -> RunBuilder:
        for step in range(first, last + 1):
            self.now += 1.0
            self.events.append(TrainStep(run_id=self.run_id, step=step, loss=1.0,
                                         **self._pipeline(), **self._who()))
        return self

    def inject(self, fault: str, fault_id: str, *, target: str = "") -> RunBuilder:
        """A fault on the training pod, or on ``target`` (a service) when given."""
        self.now += 0.5
        who = self._who() if not target else {}
        self.events.append(FaultInjected(ts=self.now, fault=fault, fault_id=fault_id, target=target or self.pod,
                                         detail="d", **who))
        return self

    def heal(self, fault: str, fault_id: str) -> RunBuilder:
        self.now += 0.1
        self.events.append(FaultHealed(ts=self.now, fault=fault, fault_id=fault_id, detail="healed"))
        return self

    def exited(self, code: int) -> RunBuilder:
        self.now += 0.5
        self.events.append(PodExited(ts=self.now, node="n1", exit_code=code, reason="Deleted",
                                     **self._who()))
        return self


def verdict(index: int, status: str, checks: tuple[tuple[str, str, tuple[str, ...]], ...],
            score: float = 50.0) -> RunVerdict:
    date = f"2026-11-2{index}"
    return RunVerdict(index=index, run_id=f"gd-r{index}", date=date, folder=f"r00{index}-{date}", status=status,
                      score=score, checks=checks)


def overlapping_night() -> tuple[list[RunHistory], dict[str, float]]:
    """Run 1: a network delay (on the storage proxy) from step 15 to 25, and a pod delete at step 20 inside
    it (overlapping faults), training resumed from step 10. Run 2 (its pod's clock 500 s behind): a pod delete
    never healed, then the night ended. Returns the runs and the harness times of the marks."""
    at: dict[str, float] = {}
    r1 = RunBuilder("gd-r1", now=1000.0).start().train(1, 15).inject("network-delay", "r1-f1", target="s3-proxy")
    at["r1-f1"] = r1.now
    r1.train(16, 20).inject("pod-delete", "r1-f2")
    at["r1-f2"] = r1.now
    r1.exited(137).heal("pod-delete", "r1-f2")
    at["heal r1-f2"] = r1.now
    r1.start(restore=10).train(11, 25).heal("network-delay", "r1-f1")
    at["heal r1-f1"] = r1.now
    r1.train(26, 40)
    r2 = RunBuilder("gd-r2", now=r1.now + 5.0, skew=-500.0).start().train(1, 12).inject("pod-delete", "r2-f1")
    at["r2-f1"] = r2.now
    runs = [
        RunHistory(verdict=verdict(1, "completed", ()), events=tuple(r1.events)),
        RunHistory(verdict=verdict(2, "interrupted", ()), events=tuple(r2.events)),
    ]
    return runs, at


def figures(**changes: Any) -> NightFigures:
    base = NightFigures(
        runs_completed=1, runs_failed=1, faults={"pod-delete": 2, "node-drain": 1}, elapsed_seconds=200.0,
        productive_seconds=150.0, goodput=0.75,
        badput=Badput(startup=10.0, checkpoint_save=5.0, lost_progress=25.0, scheduling_wait=10.0),
        steps_lost=9, mttr_p50=None, mttr_p95=None, mttr_max=None, unrecovered=1,
    )
    return replace(base, **changes)


def summary(runs: tuple[RunVerdict, ...], **changes: Any) -> NightSummary:
    base = NightSummary(
        night="20261122-010000", status="failed", seed=1234, schedule_file="schedule.json",
        gameday_file="gamedays/nightly.yaml", commit="abc1234", cluster="embedded", pipeline="reference",
        started_at=1_795_000_000.0, ended_at=1_795_003_600.0, duration_seconds=3600.0, score=41.7,
        score_formula="100 * (1 + 0 + 0.25) / 3", min_score=80.0, figures=figures(), runs=runs,
    )
    return replace(base, **changes)


FAILED_NIGHT = (
    verdict(1, "completed", (
        ("resume-from-checkpoint", "pass", ("restored step 10 as saved",)),
        ("no-duplicates", "fail", ("two writers of <script>alert(1)</script>",)),
        ("steady-state", "unknown", ("no probe answered",)),
    ), score=33.3),
    verdict(2, "interrupted", (
        ("resume-from-checkpoint", "unknown", ("the time box ended the run",)),
        ("no-duplicates", "pass", ()),
    ), score=0.0),
    verdict(3, "failed", (("model-registered", "fail", ("no model version for gd-r3",)),), score=0.0),
)


# --- report.html -----------------------------------------------------------------------


def test_the_page_shows_status_score_and_every_failed_check_with_its_evidence(tmp_path: Path) -> None:
    runs, _ = overlapping_night()
    write_night_reports(summary(FAILED_NIGHT), runs, tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "FAILED" in page and "20261122-010000" in page
    assert "100 * (1 + 0 + 0.25) / 3" in page and "minimum 80" in page
    for line in ("no probe answered", "the time box ended the run", "no model version for gd-r3"):
        assert line in page
    assert "restored step 10 as saved" not in page  # passed checks are not listed as failed
    assert "two writers of &lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    for folder in ("r001-2026-11-21/", "r002-2026-11-22/", "r003-2026-11-23/"):
        assert f'href="{folder}"' in page
    assert 'href="schedule.json"' in page and "gamedays/nightly.yaml" in page and "abc1234" in page
    assert "2026-11-18T11:06:40" in page  # started_at in UTC
    assert "75.0%" in page  # goodput
    assert page.count("n/a") == 3  # MTTR p50, p95, max unknown


def test_the_page_embeds_valid_pngs_and_real_mttr_figures(tmp_path: Path) -> None:
    runs, _ = overlapping_night()
    night = summary(FAILED_NIGHT, status="passed",
                    figures=figures(mttr_p50=2.25, mttr_p95=3.5, mttr_max=4.0))
    write_night_reports(night, runs, tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "PASSED" in page and "FAILED" not in page
    assert "n/a" not in page and "2.2 s" in page and "4.0 s" in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3  # timeline, badput, MTTR (run 1 recovered once)
    assert all(base64.b64decode(i).startswith(PNG) for i in images)


def test_a_night_without_runs_still_has_a_page_saying_so(tmp_path: Path) -> None:
    night = summary((), status="interrupted", figures=figures(
        runs_completed=0, runs_failed=0, faults={}, elapsed_seconds=0.0, productive_seconds=0.0, goodput=0.0,
        badput=Badput(), steps_lost=0, unrecovered=0))
    write_night_reports(night, [], tmp_path / "night")
    page = (tmp_path / "night" / "report.html").read_text(encoding="utf-8")
    assert "INTERRUPTED" in page and "No recoveries" in page and "every check of every run passed" in page
    assert len(re.findall(r"data:image/png;base64,", page)) == 2  # timeline and badput; no MTTR plot


# --- figures and plots ---------------------------------------------------------------------


def test_recoveries_are_read_from_the_histories() -> None:
    runs, at = overlapping_night()
    # Run 1's pod delete: the new attempt's first step is 0.5 + 1 s after its pod started, and that pod
    # started 0.5 + 0.1 s after the delete; pipeline events land DELAY late on the harness's clock.
    assert night_recoveries(runs) == [pytest.approx(0.5 + 0.1 + 0.5 + 1.0 + DELAY)]
    assert at["heal r1-f2"] - at["r1-f2"] == pytest.approx(0.6)


def test_pngs_are_valid_for_an_empty_night_and_a_night_of_overlapping_faults() -> None:
    runs, _ = overlapping_night()
    empty = figures(elapsed_seconds=0.0, productive_seconds=0.0, goodput=0.0, badput=Badput())
    for png in (night_timeline_png([]), night_timeline_png(runs), badput_png(empty), badput_png(figures()),
                mttr_png([]), mttr_png([1.0]), mttr_png([0.5, 2.0, 2.5, 9.0])):
        assert png.startswith(PNG) and len(png) > 1000


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Figure]]:
    """The figures the plots would render, kept open for inspection."""
    figs: list[Figure] = []

    def keep(fig: Figure) -> bytes:
        figs.append(fig)
        return PNG

    monkeypatch.setattr(report, "_png", keep)
    yield figs
    for fig in figs:
        plt.close(fig)


def _gids(fig: Figure) -> dict[str, Any]:
    """The plot's lines and shaded spans by their ``gid``."""
    ax = fig.axes[0]
    return {gid: a for a in [*ax.lines, *ax.patches] if (gid := a.get_gid())}


def test_the_timeline_places_runs_attempts_faults_and_heals_on_the_harness_clock(drawn: list[Figure]) -> None:
    runs, at = overlapping_night()
    night_timeline_png(runs)
    arts = _gids(drawn[0])
    t0 = 1000.0  # run 1's first pod start; run 2's pod clock is 500 s behind but must not move the origin
    assert sorted(g for g in arts if g.startswith("train")) == [
        "train 1 gd-r1-train-0/0", "train 1 gd-r1-train-1/1", "train 2 gd-r2-train-0/0"]
    first = arts["train 1 gd-r1-train-0/0"]
    assert first.get_xdata()[0] == pytest.approx(0.5 + 1.0 + DELAY)
    assert list(first.get_ydata()) == list(range(1, 21))
    assert min(arts["train 2 gd-r2-train-0/0"].get_xdata()) > 0
    for fid in ("r1-f1", "r1-f2", "r2-f1"):
        assert arts[f"fault {fid}"].get_xdata()[0] == pytest.approx(at[fid] - t0)
    for fid in ("r1-f1", "r1-f2"):  # both overlapping faults are shaded from injected to healed
        assert arts[f"heal {fid}"].get_xdata()[0] == pytest.approx(at[f"heal {fid}"] - t0)
        span = arts[f"active {fid}"]
        assert span.get_x() == pytest.approx(at[fid] - t0)
        assert span.get_x() + span.get_width() == pytest.approx(at[f"heal {fid}"] - t0)
    assert "heal r2-f1" not in arts and "active r2-f1" not in arts
    assert {"run 1", "run 2"} <= set(arts)
    texts = {t.get_text().strip() for t in drawn[0].axes[0].texts}
    assert {"#1", "#2", "network-delay", "pod-delete", "pod-delete (not healed)"} <= texts


def test_badput_bars_show_seconds_and_shares(drawn: list[Figure]) -> None:
    badput_png(figures())
    ax = drawn[0].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "productive", "startup", "checkpoint save", "checkpoint restore", "lost progress", "scheduling wait", "other"]
    labels = [t.get_text() for t in ax.texts]
    assert labels[0] == "150.0 s (75.0%)" and labels[4] == "25.0 s (12.5%)" and labels[3] == "0.0 s (0.0%)"


# --- junit.xml -------------------------------------------------------------------------------


def test_junit_counts_failures_and_skips_and_never_passes_an_unknown(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_night_junit(summary(FAILED_NIGHT), path)
    root = ET.parse(path).getroot()
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].get("name") == "gameday 20261122-010000"
    suite = suites[0]
    # 3 run cases + 6 check cases; failures: run 3, its check, run 1's fail and its unknown (run completed);
    # skipped: run 2 (interrupted) and its unknown check.
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("9", "4", "2")
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("9", "4", "2")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert len(cases) == 9

    def outcome(folder: str, name: str) -> str:
        children = [child.tag for child in cases[(folder, name)] if child.tag in ("failure", "skipped")]
        return children[0] if children else "pass"

    assert outcome("r001-2026-11-21", "run") == "pass"
    assert outcome("r001-2026-11-21", "resume-from-checkpoint") == "pass"
    assert outcome("r001-2026-11-21", "no-duplicates") == "failure"
    assert outcome("r001-2026-11-21", "steady-state") == "failure"
    assert outcome("r002-2026-11-22", "run") == "skipped"
    assert outcome("r002-2026-11-22", "resume-from-checkpoint") == "skipped"
    assert outcome("r002-2026-11-22", "no-duplicates") == "pass"
    assert outcome("r003-2026-11-23", "run") == "failure"
    assert outcome("r003-2026-11-23", "model-registered") == "failure"
    failure = cases[("r001-2026-11-21", "no-duplicates")].find("failure")
    assert failure is not None and "<script>" in (failure.get("message") or "")
    assert failure.text == "two writers of <script>alert(1)</script>"  # the evidence, escaped by the XML writer
