"""Prometheus metrics of the serving endpoints, in the text exposition format.

Hand-formatted rather than via ``prometheus_client``: three metric families do not justify a
dependency, and updates here are plain dict operations on the event-loop thread. Each server
worker process keeps its own counts (scrape each worker, or run one worker per port).
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

__all__ = ["BUCKETS", "Metrics"]

# Latency buckets in seconds (sub-millisecond resolution: serving overhead is that small).
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _labels(pairs: dict[str, str]) -> str:
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in pairs.items()
    )
    return "{" + inner + "}"


class Metrics:
    """Request counts, errors and a latency histogram per endpoint and served model.

    Example:
        >>> m = Metrics()
        >>> m.observe("churn", "churn-1", 200, 0.0008)
        >>> print(m.render().splitlines()[2])
        lakebox_serving_requests_total{endpoint="churn",served_model="churn-1",code="200"} 1
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.errors: dict[tuple[str, str], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.counters: dict[str, int] = defaultdict(int)

    def observe(self, endpoint: str, served_model: str, status: int, seconds: float) -> None:
        """Count one request."""
        key = (endpoint, served_model)
        with self._lock:
            self.requests[(endpoint, served_model, status)] += 1
            if status >= 400:
                self.errors[key] += 1
            counts = self.buckets.get(key)
            if counts is None:
                counts = self.buckets[key] = [0] * (len(BUCKETS) + 1)
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.sums[key] += seconds

    def incr(self, name: str, amount: int = 1) -> None:
        """Bump a plain counter (e.g. ``inference_log_dropped``)."""
        with self._lock:
            self.counters[name] += amount

    def summary(self, endpoint: str) -> dict[str, dict[str, float]]:
        """What this process counted for ``endpoint``, per served model: ``requests``,
        ``errors``, ``mean_ms`` and ``p50_ms``/``p99_ms`` (the upper bound of the histogram
        bucket holding that quantile; the last finite bound when it lies beyond).

        Example:
            >>> m = Metrics()
            >>> m.observe("churn", "churn-1", 200, 0.0008)
            >>> m.summary("churn")["churn-1"]["p50_ms"]
            1.0
        """
        out: dict[str, dict[str, float]] = {}
        with self._lock:
            for (ep, sm), counts in self.buckets.items():
                if ep != endpoint:
                    continue
                total = sum(counts)
                if not total:
                    continue

                def quantile(q: float, counts: list[int] = counts, total: int = total) -> float:
                    running = 0
                    for bound, n in zip(BUCKETS, counts, strict=False):
                        running += n
                        if running >= q * total:
                            return bound * 1000.0
                    return BUCKETS[-1] * 1000.0

                out[sm] = {
                    "requests": float(total),
                    "errors": float(self.errors.get((ep, sm), 0)),
                    "mean_ms": self.sums[(ep, sm)] / total * 1000.0,
                    "p50_ms": quantile(0.5),
                    "p99_ms": quantile(0.99),
                }
        return out

    def render(self, *, loaded: dict[tuple[str, str], str] | None = None) -> str:
        """The exposition text; ``loaded`` maps (endpoint, served model) to model version."""
        lines = [
            "# HELP lakebox_serving_requests_total Invocations by endpoint, served model and "
            "HTTP status.",
            "# TYPE lakebox_serving_requests_total counter",
        ]
        with self._lock:
            for (ep, sm, code), n in sorted(self.requests.items()):
                lines.append(
                    "lakebox_serving_requests_total"
                    + _labels({"endpoint": ep, "served_model": sm, "code": str(code)})
                    + f" {n}"
                )
            lines += [
                "# HELP lakebox_serving_errors_total Invocations answered with a 4xx or 5xx.",
                "# TYPE lakebox_serving_errors_total counter",
            ]
            for (ep, sm), n in sorted(self.errors.items()):
                lines.append(
                    "lakebox_serving_errors_total"
                    + _labels({"endpoint": ep, "served_model": sm})
                    + f" {n}"
                )
            lines += [
                "# HELP lakebox_serving_request_duration_seconds Time from request to response.",
                "# TYPE lakebox_serving_request_duration_seconds histogram",
            ]
            for (ep, sm), counts in sorted(self.buckets.items()):
                base = {"endpoint": ep, "served_model": sm}
                running = 0
                for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                    running += n
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(
                        "lakebox_serving_request_duration_seconds_bucket"
                        + _labels({**base, "le": le})
                        + f" {running}"
                    )
                lines.append(
                    "lakebox_serving_request_duration_seconds_sum"
                    + _labels(base)
                    + f" {self.sums[(ep, sm)]:.6f}"
                )
                lines.append(
                    "lakebox_serving_request_duration_seconds_count" + _labels(base) + f" {running}"
                )
            for name, n in sorted(self.counters.items()):
                lines += [
                    f"# TYPE lakebox_serving_{name}_total counter",
                    f"lakebox_serving_{name}_total {n}",
                ]
        if loaded:
            lines += [
                "# HELP lakebox_serving_model_info The model version each served model runs.",
                "# TYPE lakebox_serving_model_info gauge",
            ]
            for (ep, sm), version in sorted(loaded.items()):
                lines.append(
                    "lakebox_serving_model_info"
                    + _labels({"endpoint": ep, "served_model": sm, "version": version})
                    + " 1"
                )
        return "\n".join(lines) + "\n"
