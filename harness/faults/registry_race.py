"""The registry race: several runs reach ``register`` at the same moment and race to move ``latest``.

One racing run per date in ``dates`` (run ids ``backfill-<date>``, beside the experiment's main run, in
the same store): each runs the pipeline's steps up to ``barrier_before`` (short training), and once every
racer has, the ``register`` Jobs of all racers that passed evaluate are submitted back to back, so their
step processes claim versions and move the alias concurrently, through the pipeline's own code against
the real store. Nothing is simulated: the race is as tight as the cluster starts processes.

Heal waits (up to ``wait_seconds``) for the race to finish, then stops whatever is left; twice is harmless.
On a Kubernetes backend the racers' Jobs get a ``k8s-jobs`` undo record (label selector on their run
ids) before any is created, so ``mlchaos heal`` deletes them after a killed harness. One race per name
(group ``backfill:<name>``: it is a backfill with a barrier).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.cluster.kube.backend import KubernetesCluster
from harness.cluster.kube.undo_kinds import add_jobs_record
from harness.errors import HarnessError
from harness.faults.role import FaultContext, Heal, Target
from harness.undo import UndoLog, UndoRecord
from harness.workload.backfill import BackfillOptions

__all__ = ["NAME", "REGISTRY_RACE", "RegistryRace", "RegistryRaceParams", "racer_selector"]

NAME = "registry-race"


@dataclass(frozen=True, kw_only=True)
class RegistryRaceParams:
    """One racer per date (distinct dates), ``train_steps`` each, released together at ``barrier_before``."""

    dates: tuple[str, ...]
    name: str = "registry-race"
    train_steps: int = 10
    barrier_before: str = "register"
    wait_seconds: float = 900.0

    def __post_init__(self) -> None:
        if not self.dates or len(set(self.dates)) != len(self.dates):
            raise ValueError(f"a registry race needs at least one date and no date twice, got {list(self.dates)}")
        if self.train_steps < 1 or self.wait_seconds < 0 or not self.barrier_before:
            raise ValueError("train_steps must be >= 1, wait_seconds >= 0 and barrier_before a step name")


def racer_selector(dates: tuple[str, ...]) -> str:
    """The label selector of the racers' Jobs and pods."""
    return f"kind=backfill,run in ({','.join(f'backfill-{d}' for d in dates)})"


class RegistryRace:
    name = NAME

    def plan(self, ctx: FaultContext, params: RegistryRaceParams) -> Target:
        if ctx.launch_backfill is None:
            raise HarnessError(f"{NAME}: this experiment cannot launch runs (its fault context has no launcher)")
        selector = racer_selector(params.dates)
        cluster = ctx.cluster
        undo = None
        if isinstance(cluster, KubernetesCluster):
            kube = cluster

            def undo(log: UndoLog) -> UndoRecord:
                return add_jobs_record(log, kubeconfig=kube.kubeconfig, context=kube.context,
                                       namespace=kube.namespace, selector=selector,
                                       description=f"{NAME} racing jobs {selector}",
                                       ephemeral=kube.kind == "embedded")

        return Target(name=params.name, excludes=(f"backfill:{params.name}",), undo=undo,
                      detail=f"{len(params.dates)} racing run(s) ({', '.join(params.dates)}), "
                             f"{params.train_steps} training steps each, all released at "
                             f"{params.barrier_before} together")

    def inject(self, ctx: FaultContext, params: RegistryRaceParams, target: Target) -> Heal:
        assert ctx.launch_backfill is not None  # plan checked it
        race = ctx.launch_backfill(name=params.name, dates=params.dates, concurrency=len(params.dates),
                                   train_steps=params.train_steps)
        race.configure(BackfillOptions(publish_share=1.0, barrier_before=params.barrier_before))
        race.start()
        summary: list[str] = []

        def heal() -> str:
            if not summary:  # the first heal waits for the race; a second only repeats what it found
                finished = race.wait(timeout=params.wait_seconds)
                race.cancel(publish_wait=0.0)
                released = race.released_outcomes()
                done = sum(o.succeeded for o in released)
                summary.append(f"race {'over' if finished else 'stopped unfinished'}: {len(released)} of "
                               f"{len(params.dates)} racer(s) released at {params.barrier_before}, {done} finished")
            race.cancel(publish_wait=0.0)  # idempotent
            return summary[0]

        return heal


REGISTRY_RACE = RegistryRace()
