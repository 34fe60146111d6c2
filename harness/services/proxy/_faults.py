"""The fault settings a :class:`~harness.services.proxy.FaultProxy` applies, and its counters."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["Direction", "ProxyFaults", "ProxyStats"]

Direction = Literal["both", "upstream", "downstream"]
_DIRECTIONS = ("both", "upstream", "downstream")


def _check_non_negative(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _check_probability(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability between 0 and 1, got {value!r}")


@dataclass(frozen=True)
class ProxyFaults:
    """What the proxy does to traffic; the default (``ProxyFaults()``) forwards unchanged.

    - ``latency_ms``/``jitter_ms``: every chunk the proxy reads is held for a delay
      drawn uniformly from ``[max(0, latency - jitter), latency + jitter]`` ms, then
      released, never before an earlier chunk of the same direction (so bytes are never
      reordered and each chunk's delay stays inside those bounds). A delay line: data is
      held, not slept on, so throughput is not divided by the latency.
    - ``bandwidth_bytes_per_s``: a token bucket per direction shared by *all*
      connections (a throttled storage link, not a per-socket limit), with a burst of
      50 ms worth of bytes. None means unlimited.
    - ``direction``: which way latency, jitter and bandwidth apply: ``"upstream"``
      (client to dependency: requests), ``"downstream"`` (responses) or ``"both"``.
    - ``reset_probability``: the share of *new* connections closed at once with a TCP
      RST (SO_LINGER 0), before anything is forwarded.
    - ``timeout``: a black hole: connections are accepted but nothing is forwarded
      either way (data is held, not dropped, and flows again once cleared).
    - ``slowdown_probability``: the share of HTTP requests (client to dependency)
      answered by the proxy with S3's ``503 SlowDown`` and ``Connection: close``
      instead of being forwarded.
    - ``seed``: seeds the proxy's random draws when these faults are set (None keeps
      the current random streams). Reset and slowdown decisions come from one stream,
      jitter from another, so the n-th connection's and n-th request's fate is
      reproducible whatever the chunking.

    Raises ValueError on a negative or non-finite duration, a probability outside
    [0, 1], a non-positive bandwidth or an unknown direction.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    bandwidth_bytes_per_s: float | None = None
    reset_probability: float = 0.0
    timeout: bool = False
    slowdown_probability: float = 0.0
    direction: Direction = "both"
    seed: int | None = None

    def __post_init__(self) -> None:
        _check_non_negative("latency_ms", self.latency_ms)
        _check_non_negative("jitter_ms", self.jitter_ms)
        bandwidth = self.bandwidth_bytes_per_s
        if bandwidth is not None and (
            isinstance(bandwidth, bool)
            or not isinstance(bandwidth, (int, float))
            or not math.isfinite(bandwidth)
            or bandwidth <= 0
        ):
            raise ValueError(f"bandwidth_bytes_per_s must be a finite number > 0 or None, got {bandwidth!r}")
        _check_probability("reset_probability", self.reset_probability)
        _check_probability("slowdown_probability", self.slowdown_probability)
        if not isinstance(self.timeout, bool):
            raise ValueError(f"timeout must be True or False, got {self.timeout!r}")
        if self.direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(_DIRECTIONS)}, got {self.direction!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed must be an int or None, got {self.seed!r}")

    def applies_to(self, direction: Literal["upstream", "downstream"]) -> bool:
        """Whether latency, jitter and bandwidth apply to ``direction``."""
        return self.direction == "both" or self.direction == direction


@dataclass(frozen=True)
class ProxyStats:
    """Counters since the proxy was created (a snapshot; they only grow).

    ``bytes_upstream``/``bytes_downstream`` count forwarded bytes written to the
    dependency and to the client; the proxy's own 503 answers are not included.
    ``requests`` counts HTTP request heads parsed on the client side, ``slowdowns``
    those answered with 503, ``resets`` connections closed with RST by the reset
    fault. ``active`` is the number of connections open now.
    """

    connections: int
    active: int
    bytes_upstream: int
    bytes_downstream: int
    resets: int
    slowdowns: int
    requests: int
