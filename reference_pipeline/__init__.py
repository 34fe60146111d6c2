"""The reference pipeline: a real, deterministic PyTorch training pipeline.

Each step (ingest, validate, features, train, evaluate, register) runs as its own
process, ``python -m reference_pipeline <step>``, configured by environment
variables (see ``config.py``). It is a standalone workload written to the
workload contract of the harness (DESIGN section 5): it never imports ``harness``.
"""
