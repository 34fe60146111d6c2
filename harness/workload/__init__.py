"""Workloads: the pipeline under test, launched through the cluster."""
