"""Chaos and resilience testing harness for ML training pipelines."""
