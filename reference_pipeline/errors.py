"""Exceptions that map to the pipeline's exit codes (see ``__main__``)."""

from __future__ import annotations


class UserError(Exception):
    """A configuration or environment problem the user must fix: exit code 2.

    The message is printed as ONE line on stderr, so it must say what is wrong
    and how to fix it.
    """


class GateFailed(Exception):
    """A quality gate (data freshness, AUC) refused the run: exit code 3."""


class Terminated(Exception):
    """Training stopped gracefully after SIGTERM, state saved: exit code 143."""


class Fenced(Exception):
    """Another attempt of the same run holds the training lease (``lease.py``): this
    attempt could not get it in time, or lost it while training, and stopped
    without writing anything more: exit code 4. The message is one line."""


EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_GATE_FAILED = 3
EXIT_FENCED = 4
EXIT_TERMINATED = 143  # 128 + SIGTERM, what Kubernetes reports for a graceful stop
