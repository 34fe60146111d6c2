"""Errors the harness reports to its user as one line."""


class HarnessError(Exception):
    """A problem the user can fix: the message names what is wrong and how to fix it."""


class ExperimentError(HarnessError):
    """An experiment file is malformed or names something unknown."""


class ServiceError(HarnessError):
    """A dependency (Prometheus, S3, a cluster) is missing or unreachable."""
