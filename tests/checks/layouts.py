"""A declared artifact layout for the check tests: the reference pipeline's rules, written out here so the
checks are tested against a fixed declaration, not against whatever reference_pipeline/pipeline.yaml says."""

from __future__ import annotations

from harness.evidence.layout import MANIFEST, STATE, ArtifactLayout, compile_rule
from harness.evidence.workload_facts import WorkloadFacts

_RUN = r"^runs/(?P<pipeline>[^/]+)/(?P<date>[^/]+)/(?P<run>[^/]+)"
_CHECKPOINT = _RUN + r"/checkpoints/step-(?P<step>\d+)"

LAYOUT = ArtifactLayout(rules=(
    compile_rule(name="raw part", pattern=r"^raw/(?P<pipeline>[^/]+)/date=(?P<date>[^/]+)/hour=(?P<hour>\d+)/[^/]+$",
                 logical="raw/{date}/{hour:02d}"),
    compile_rule(name="feature partition",
                 pattern=r"^features/(?P<pipeline>[^/]+)/date=(?P<date>[^/]+)/entity_shard=(?P<shard>\d+)"
                         r"(?:\.npz|/[^/]+)$",
                 logical="features/{date}/{shard:02d}"),
    compile_rule(name="checkpoint state", pattern=_CHECKPOINT + r"/state\.pt$", logical="checkpoint/{run}/{step}",
                 part=STATE),
    compile_rule(name="checkpoint manifest", pattern=_CHECKPOINT + r"/MANIFEST\.json$",
                 logical="checkpoint/{run}/{step}", part=MANIFEST, references="state_key"),
    compile_rule(name="model", pattern=_RUN + r"/model/model\.pt$", logical="model/{run}"),
    compile_rule(name="evaluation", pattern=_RUN + r"/evaluation\.json$", logical="evaluation/{run}"),
    compile_rule(name="validation", pattern=_RUN + r"/validate\.json$", logical="validation/{run}"),
    compile_rule(name="registry version", pattern=r"^registry/(?P<pipeline>[^/]+)/versions/(?P<version>\d+)\.json$",
                 logical="model_version/?v{version}", part="version", logical_from="run_id"),
    compile_rule(name="registry run record", pattern=r"^registry/(?P<pipeline>[^/]+)/runs/(?P<run>[^/]+)\.json$",
                 logical="model_version/{run}", part="run-record"),
    compile_rule(name="registry alias", pattern=r"^registry/(?P<pipeline>[^/]+)/aliases/[^/]+$", mutable=True),
    compile_rule(name="training lease", pattern=_RUN + r"/train\.lease$", mutable=True),
))

FACTS = WorkloadFacts(name="reference", train_step="train", layout=LAYOUT)
