"""Faults: each acts on the cluster, records exactly what it did, and heals idempotently."""
