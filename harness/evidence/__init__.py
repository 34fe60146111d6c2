"""What the checks read: typed records of a run's evidence and of the workload's declared facts.

Checks import this package and ``harness.history``, never the cluster or the services.
"""
