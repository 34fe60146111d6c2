"""Checks: pure functions of the history (and inventories, snapshots) to verdicts.

No check touches the live cluster.
"""
