"""One experiment run from start to verdict: begin, (Chaos Toolkit runs), finish.

Split in two so that both the harness runner and the harness control under a
stock ``chaos run`` drive the same code.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from harness import lifecycle, runtime
from harness.checks.checkpoint_integrity import NAME as CHECKPOINT_INTEGRITY
from harness.checks.interruptions import fault_outcomes
from harness.checks.registry import evaluate
from harness.checks.resume import NAME as RESUME
from harness.checks.slo import evaluate_slo
from harness.errors import HarnessError, ServiceError
from harness.evidence.reference import ReferenceRun
from harness.evidence.run import RunEvidence
from harness.experiment.model import ExperimentSpec
from harness.experiment.observe import SloObservation, observe_slos, save_observations
from harness.experiment.result import ExperimentResult
from harness.history.events import ExperimentEnded, ExperimentStarted
from harness.history.store import History
from harness.score import experiment_score
from harness.services.inventory import Inventory, prepare_bucket, take_inventory
from harness.workload.reference_run import BUCKET as REFERENCE_BUCKET
from harness.workload.reference_run import reference_run


def run_id_for(name: str, tag: str) -> str:
    """A run id that is also a valid S3 bucket name and Job name prefix."""
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:30] or "experiment"
    return f"{slug}-{tag}"


@dataclass(frozen=True, kw_only=True)
class Observed:
    """What :meth:`ExperimentSession.observe` collected: the run's evidence, the SLO queries' answers
    and how Chaos Toolkit ended it."""

    evidence: RunEvidence
    slos: tuple[SloObservation, ...]
    status: str
    deviated: bool
    interrupted: str  # why the run was stopped early ('' when it was not)


class ExperimentSession:
    """Three phases: ``begin`` prepares (the uninterrupted run, the bucket, the history) and activates
    the experiment; ``observe`` records its end, heals, stops what is left and collects the evidence
    once; ``judge`` turns the evidence into verdicts and a score. ``finish`` is observe, then judge."""

    def __init__(self, *, spec: ExperimentSpec, env: runtime.Environment, out_dir: Path, tag: str,
                 chaos_seed: int | None = None) -> None:
        self.spec = spec
        self.chaos_seed = chaos_seed  # faults' draws; default: the pipeline's seed
        self.env = env
        self.out_dir = out_dir
        self.run_id = run_id_for(spec.name, tag)
        self._stack = ExitStack()
        self._active: runtime.ActiveExperiment | None = None
        self._reference: ReferenceRun | None = None
        self._reference_error = ""
        self._started = 0.0
        self._window_start = 0.0

    def begin(self) -> runtime.ActiveExperiment:
        self._started = time.time()
        if any(c.name in (RESUME, CHECKPOINT_INTEGRITY) for c in self.spec.checks):  # they compare with it
            try:
                if self.env.s3_direct_url:
                    # The workload contract: a run's bucket exists (and is versioned) before its steps start.
                    prepare_bucket(endpoint_url=self.env.s3_direct_url, bucket=REFERENCE_BUCKET)
                self._reference = reference_run(
                    cluster=self.env.cluster,
                    workload=self.spec.workload,
                    settings=self.spec.pipeline,
                    s3_env=dict(self.env.s3_env),
                    cache_dir=self.env.cache_dir,
                )
            except HarnessError as exc:
                self._reference_error = str(exc)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.env.s3_direct_url:
            # Versioning makes every overwrite visible to the duplicate check.
            prepare_bucket(endpoint_url=self.env.s3_direct_url, bucket=self.run_id[:63])
        history = self._stack.enter_context(History(self.out_dir / "history.jsonl"))
        active = runtime.ActiveExperiment(
            env=self.env,
            name=self.spec.name,
            run_id=self.run_id,
            workload=self.spec.workload,
            settings=self.spec.pipeline,
            history=history,
            bucket=self.run_id[:63],
            chaos_seed=self.chaos_seed,
        )
        self._stack.enter_context(runtime.activate(active))
        self._window_start = time.time()  # after the reference run: SLO windows cover the experiment only
        history.append(ExperimentStarted(ts=self._window_start, experiment=self.spec.name, run_id=self.run_id))
        self._active = active
        return active

    def finish(self, journal: Mapping[str, Any] | None, *, error: str = "") -> ExperimentResult:
        """Close the run whatever happened (``journal`` is ``None`` when Chaos Toolkit never returned):
        observe what it left, then judge it."""
        observed = self.observe(journal)
        return self.judge(observed, error=error)

    def observe(self, journal: Mapping[str, Any] | None) -> Observed:
        """Record the end, heal and stop everything, and collect the evidence once: the history, the
        store's inventory and the SLO queries (kept beside the history as JSON)."""
        active = self._active
        if active is None:
            raise HarnessError("observe() called before begin()")
        status = str(journal.get("status", "unknown")) if journal else "not run"
        deviated = bool(journal.get("deviated", False)) if journal else False
        interrupted = active.interrupted or (
            "the run was interrupted" if status == "interrupted" or lifecycle.interruption.is_set() else "")
        if interrupted:
            status = "interrupted"
            active.interrupt(interrupted)
        try:
            active.heal()  # nothing a fault did outlives the experiment
            active.cancel_runs()
            active.history.append(
                ExperimentEnded(ts=time.time(), experiment=self.spec.name, status=status, deviated=deviated)
            )
            events = active.history.events()
            inventory, inventory_error = self._inventory()
            observations = observe_slos(
                self.spec.slos,
                prometheus_url=self.env.prometheus_url,
                events=events,
                run_id=self.run_id,
                kind="daily",
                started=self._window_start,
                ended=time.time(),
            )
        finally:
            self._stack.close()
            self._active = None
        self._keep_pod_logs()
        save_observations(observations, self.out_dir / "prometheus.json")
        _save_inventory(inventory, inventory_error, self.out_dir / "inventory.json")
        evidence = RunEvidence(
            events=tuple(events), run_id=self.run_id, facts=self.spec.workload.facts(),
            reference=self._reference, reference_error=self._reference_error,
            inventory=inventory, inventory_error=inventory_error,
            pod_limit=self.env.pod_limit, scoped_quotas=self.env.scoped_quotas,
        )
        return Observed(evidence=evidence, slos=tuple(observations), status=status, deviated=deviated,
                        interrupted=interrupted)

    def judge(self, observed: Observed, *, error: str = "") -> ExperimentResult:
        """The verdicts and score of what :meth:`observe` collected (pure: touches nothing live)."""
        evidence = observed.evidence
        checks = evaluate(self.spec.checks, evidence)
        checks += [evaluate_slo(o.spec, o.result, error=o.error, weight=o.spec.weight) for o in observed.slos]
        if observed.interrupted:
            # An interrupted run is never judged a pass: what it showed so far stays as evidence.
            checks = [replace(c, verdict="unknown", evidence=(f"{observed.interrupted}; not judged", *c.evidence))
                      for c in checks]
        return ExperimentResult(
            name=self.spec.name,
            title=self.spec.title,
            path=self.spec.path,
            run_id=self.run_id,
            weight=self.spec.weight,
            status=observed.status,
            deviated=observed.deviated,
            checks=tuple(checks),
            faults=tuple(fault_outcomes(evidence.events)),
            score=experiment_score(checks),
            started_at=self._started,
            ended_at=time.time(),
            history_path=self.out_dir / "history.jsonl",
            reference_sha256=evidence.reference.params_sha256 if evidence.reference else None,
            error=error or evidence.reference_error or observed.interrupted,
        )

    def _inventory(self) -> tuple[Inventory | None, str]:
        """Every object version in the experiment's bucket, or None and why not."""
        if not self.env.s3_direct_url:
            return None, "this environment gives the harness no direct S3 access"
        try:
            return take_inventory(endpoint_url=self.env.s3_direct_url, bucket=self.run_id[:63],
                                  read_bodies=self.spec.workload.facts().layout.body_pattern()), ""
        except ServiceError as exc:
            return None, str(exc)

    def _keep_pod_logs(self) -> None:
        """Copy the logs of this run's pods (every container attempt) next to its history."""
        logs = self.env.logs_dir
        if logs is None or not logs.is_dir():
            return
        for pod_dir in logs.iterdir():
            # Folders are <namespace>_<pod>_<uid>, and the pods of a run are named after it.
            parts = pod_dir.name.split("_")
            if len(parts) == 3 and parts[1].startswith(self.run_id):
                shutil.copytree(pod_dir, self.out_dir / "pods" / parts[1], dirs_exist_ok=True)


def _save_inventory(inventory: Inventory | None, error: str, path: Path) -> None:
    """Keep the store's listing (every key and version) with the run, or why there is none."""
    doc: dict[str, Any] = {"error": error}
    if inventory is not None:
        doc = {"bucket": inventory.bucket, "versioned": inventory.versioned, "taken_at": inventory.taken_at,
               "versions": [asdict(v) for v in inventory.versions]}
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
