"""Range and instant PromQL queries against a Prometheus, as plain frozen data.

Queries go through ``prometheus-api-client``'s :class:`PrometheusConnect`, one
client (one HTTP session) per Prometheus URL, kept for the life of the process.
Every failure is a :class:`~harness.errors.ServiceError` of one line: an
unreachable server names the URL and how to get one; a rejected query quotes
Prometheus's own error text (``1:5: parse error: ...``).
"""

from __future__ import annotations

import ast
import json
import math
import re
import threading
from datetime import UTC, datetime
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from harness.errors import ServiceError
from harness.evidence.prometheus import RangeResult, Series

__all__ = ["Series", "RangeResult", "query_range", "query_instant", "close_clients"]

REQUEST_TIMEOUT_SECONDS = 15.0
"""How long one HTTP request to Prometheus may take before the query fails."""

_CLIENTS: dict[str, PrometheusConnect] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(url: str) -> PrometheusConnect:
    """The one client for ``url`` (created on first use)."""
    key = url.rstrip("/")
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            # Few, fast retries: a refused connection should fail in well under a second,
            # not after the library's default 1 s exponential backoff.
            retry = Retry(total=2, connect=2, read=0, backoff_factor=0.1, status_forcelist=(502, 503, 504))
            client = PrometheusConnect(url=key, retry=retry, timeout=REQUEST_TIMEOUT_SECONDS)
            _CLIENTS[key] = client
        return client


def close_clients() -> None:
    """Close every cached client's HTTP session (they are recreated on next use)."""
    with _CLIENTS_LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client in clients:
        client.close()


def query_range(*, url: str, promql: str, start: float, end: float, step_seconds: float = 1.0) -> RangeResult:
    """Evaluate ``promql`` over ``[start, end]`` (unix seconds) every ``step_seconds``.

    The evaluation grid is anchored at ``end`` (points at ``end``, ``end - step``,
    ... down to no earlier than ``start``), so the last point of each series is the
    value at ``end`` when there is data there. Times keep their sub-second part
    (the library's own ``start_time``/``end_time`` round to whole seconds).
    Raises ServiceError when Prometheus is unreachable or rejects the query.
    """
    if not (math.isfinite(start) and math.isfinite(end)) or end < start:
        raise ValueError(f"query_range needs finite start <= end, got start={start!r} end={end!r}")
    if not (math.isfinite(step_seconds) and step_seconds > 0):
        raise ValueError(f"step_seconds must be a positive number, got {step_seconds!r}")
    steps = math.floor((end - start) / step_seconds + 1e-9)
    first = end - steps * step_seconds
    client = _client(url)
    # Passed through ``params``, which the library sends after (and so instead of)
    # its rounded start/end: datetimes only serve its signature here.
    params = {"start": _ts(first), "end": _ts(end), "step": f"{step_seconds:g}"}
    data = _call(
        url,
        promql,
        lambda: client.custom_query_range(
            promql,
            start_time=datetime.fromtimestamp(first, tz=UTC),
            end_time=datetime.fromtimestamp(end, tz=UTC),
            step=params["step"],
            params=params,
        ),
    )
    if not isinstance(data, list):
        raise ServiceError(f"Prometheus at {url} answered the range query {promql!r} with {type(data).__name__}, "
                           "not a list of series; check the URL points at Prometheus's API")
    series = tuple(_series(item.get("metric", {}), item.get("values", [])) for item in data if isinstance(item, dict))
    return RangeResult(promql=promql, start=start, end=end, series=series)


def query_instant(*, url: str, promql: str, at: float | None = None) -> tuple[Series, ...]:
    """Evaluate ``promql`` at one instant (``at``, unix seconds; now when None).

    Each returned series has exactly one point; a scalar result is one series
    without labels. Raises ServiceError like :func:`query_range`.
    """
    client = _client(url)
    params = {} if at is None else {"time": _ts(at)}
    data = _call(url, promql, lambda: client.custom_query(promql, params=params))
    if isinstance(data, list) and len(data) == 2 and not isinstance(data[0], dict):
        return (_series({}, [data]),)  # a scalar or string result: [time, "value"]
    if not isinstance(data, list):
        raise ServiceError(f"Prometheus at {url} answered the query {promql!r} with {type(data).__name__}; "
                           "check the URL points at Prometheus's API")
    return tuple(_series(item.get("metric", {}), [item["value"]])
                 for item in data if isinstance(item, dict) and "value" in item)


def _ts(t: float) -> str:
    return f"{t:.3f}"


def _series(metric: dict[str, Any], values: list[Any]) -> Series:
    labels = tuple(sorted((str(k), str(v)) for k, v in metric.items()))
    points = tuple((float(t), float(v)) for t, v in values)  # "NaN", "+Inf" parse as floats
    return Series(labels=labels, points=points)


def _call(url: str, promql: str, request: Any) -> Any:
    try:
        return request()
    except PrometheusApiClientException as exc:
        status, why = _api_error(str(exc))
        hint = "fix the PromQL" if status == 400 else "fix the query, or raise step_seconds for a long window"
        raise ServiceError(f"Prometheus at {url} rejected the query {_one_line(promql)!r} (HTTP {status}): "
                           f"{why}; {hint}") from None
    except requests.exceptions.JSONDecodeError:
        raise ServiceError(f"{url} answered the query with something other than JSON; "
                           "check the URL points at Prometheus (http://host:port, no path)") from None
    except requests.RequestException as exc:
        raise ServiceError(f"Prometheus at {url} is unreachable ({_reason(exc)}); "
                           "start it (the embedded cluster starts one) or fix the URL") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ServiceError(f"Prometheus at {url} gave an answer to {_one_line(promql)!r} that could not be read "
                           f"({type(exc).__name__}: {exc}); check the URL points at Prometheus's API") from None


_STATUS = re.compile(r"HTTP Status Code (\d+) \((.*)\)\s*$", re.DOTALL)


def _api_error(message: str) -> tuple[int, str]:
    """(HTTP status, Prometheus's ``error`` text) from the library's exception message."""
    match = _STATUS.match(message)
    if not match:
        return 0, _one_line(message)[:300]
    status = int(match.group(1))
    body: Any = match.group(2)
    try:
        raw = ast.literal_eval(body)
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        payload = json.loads(text)
        return status, _one_line(str(payload.get("error") or payload))[:500]
    except (ValueError, SyntaxError, AttributeError):
        return status, _one_line(str(body))[:300]


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, requests.Timeout):
        return f"no answer within {REQUEST_TIMEOUT_SECONDS:g} s"
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return f"{type(exc).__name__}: {_one_line(text)[:200]}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
