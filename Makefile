# Every target does its own setup: a fresh clone needs only `make chaos` or `make test`.
VENV      := .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
MIN_SCORE ?= 90
BASELINE  ?=
MAX_DROP  ?= 5
PYTEST_ARGS ?=

CLUSTER   ?= embedded
# --cluster existing: CONTEXT names the kubeconfig context (KUBECONFIG as usual); it must also be allowed,
# with ALLOW_CONTEXT=<name> or HARNESS_ALLOWED_CONTEXTS=<name,...>. CHAOS_ARGS passes any other run option
# (--allow-node-faults, --node-selector=..., --s3-endpoint=..., see mlchaos run --help).
CONTEXT   ?=
ALLOW_CONTEXT ?=
CHAOS_ARGS ?=
# The pipeline under test: a pipeline.yaml (default: each experiment's own, else the reference pipeline).
PIPELINE  ?=

# Game days: DURATION (90s, 20m, 1h), SEED, GAMEDAY (a game-day file), REPLAY (a night's schedule.json),
# RESULTS (a folder or s3://bucket/prefix), PIPELINE_BROKEN (a planted bug of the reference pipeline).
DURATION  ?= 20m
SEED      ?= 1
GAMEDAY   ?=
REPLAY    ?=
RESULTS   ?= reports/gamedays
PIPELINE_BROKEN ?=
TREND_ARGS ?=

.PHONY: setup prometheus kubernetes chaos gameday trend cluster-up cluster-down lint test bench bench-gameday heal clean

setup: $(STAMP) prometheus kubernetes

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# Debian's Prometheus binary; the harness starts its own instance on a loopback port.
prometheus:
	@command -v prometheus >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else \
	    echo "make: the 'prometheus' binary is missing; install it with: sudo apt-get install -y --no-install-recommends prometheus" >&2; \
	    exit 1; \
	  fi; }

# etcd from Debian's etcd-server; kube-apiserver, kube-controller-manager and kube-scheduler built once from
# Debian's kubernetes source package into ~/.cache/ml-chaos-harness/kubernetes/<version>/bin (a no-op when cached).
kubernetes:
	@bash clusters/embedded/build-kubernetes.sh

# QUICK=1: a pod kill and every ML failure mode but the registry race (the slowest; concurrent-backfill and the
# moto tests cover registries), within 10 minutes on 2 cores (README, "What make chaos does").
QUICK     ?=
QUICK_EXPERIMENTS := pod-delete spot-preemption straggler late-data checkpoint-corruption environment-drift \
                     gpu-fragmentation oom-kill crash-point-sweep
EXPERIMENT_PATHS = $(if $(QUICK),$(foreach e,$(QUICK_EXPERIMENTS),experiments/$(e).yaml),experiments)

chaos: setup
	$(VENV)/bin/pytest $(EXPERIMENT_PATHS) --cluster=$(CLUSTER) --chaos-min-score=$(MIN_SCORE) \
	  $(if $(CONTEXT),--context=$(CONTEXT)) $(if $(ALLOW_CONTEXT),--allow-context=$(ALLOW_CONTEXT)) \
	  $(if $(PIPELINE),--pipeline=$(PIPELINE)) \
	  $(if $(BASELINE),--chaos-baseline=$(BASELINE) --chaos-max-drop=$(MAX_DROP)) $(CHAOS_ARGS) $(PYTEST_ARGS)

gameday: setup
	$(PY) -m harness.cli gameday --duration=$(DURATION) --seed=$(SEED) --results=$(RESULTS) --cluster=$(CLUSTER) \
	  $(if $(GAMEDAY),--file=$(GAMEDAY)) $(if $(REPLAY),--replay=$(REPLAY)) $(if $(PIPELINE),--pipeline=$(PIPELINE)) \
	  $(if $(PIPELINE_BROKEN),--set=broken=$(PIPELINE_BROKEN)) \
	  $(if $(CONTEXT),--context=$(CONTEXT)) $(if $(ALLOW_CONTEXT),--allow-context=$(ALLOW_CONTEXT)) $(CHAOS_ARGS)

# Plots every night kept in RESULTS and fails when the latest regressed against the median of the ones before.
trend: $(STAMP)
	$(PY) -m harness.cli trend --results=$(RESULTS) $(TREND_ARGS)

# The embedded cluster on its own, until Ctrl-C (or `make cluster-down` from another shell); its kubeconfig
# goes to CLUSTER_KUBECONFIG (default: the harness's state folder), never over an existing kubeconfig.
cluster-up: setup
	$(PY) -m harness.cli cluster up $(if $(CLUSTER_KUBECONFIG),--kubeconfig=$(CLUSTER_KUBECONFIG))

cluster-down:
	$(PY) -m harness.cli cluster down

# Style, strict typing (files and options in pyproject.toml), the layer contracts, and the examples' imports.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-logo
	$(PY) tools/check_example_imports.py examples

test: setup lint
	$(VENV)/bin/pytest tests --durations=25 $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/embedded_cluster.py
	$(PY) benchmarks/recovery.py

# A default game day of DURATION (20m) on the embedded cluster, with its figures and the harness's own CPU.
bench-gameday: setup
	$(PY) benchmarks/gameday.py --duration=$(DURATION) --seed=$(SEED)

heal:
	@if [ -x $(PY) ]; then $(PY) -m harness.cli heal $(if $(CONTEXT),--context=$(CONTEXT) $(if $(ALLOW_CONTEXT),--allow-context=$(ALLOW_CONTEXT))); else echo "heal: no .venv here, so no harness run left anything behind"; fi

clean: heal
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache .import_linter_cache reports/2*/ reports/latest
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
