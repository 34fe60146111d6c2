"""Experiments: Chaos Toolkit documents with the harness's ``extensions`` block."""
