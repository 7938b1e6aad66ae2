"""A tiny benchmark harness: repeat a callable, report median and range, save one JSON per run.

Usage inside a benchmark script::

    from harness import Bench
    bench = Bench("tables")                       # results/tables-<timestamp>.json
    lb = bench.measure("write/lakebox", lambda: ..., repeat=5)
    raw = bench.measure("write/deltalake", lambda: ..., repeat=5)
    bench.ratio("write", lb, raw)                 # prints lakebox/peer
    bench.save()
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


class Bench:
    """Collects timings of one benchmark run."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = datetime.now(timezone.utc)
        self.results: dict[str, dict[str, Any]] = {}
        self.ratios: dict[str, float] = {}

    def measure(
        self,
        label: str,
        fn: Callable[[], Any],
        *,
        repeat: int = 5,
        warmup: int = 1,
        setup: Callable[[], Any] | None = None,
    ) -> dict[str, Any]:
        """Time ``fn`` ``repeat`` times (after ``warmup`` untimed calls); ``setup`` runs
        untimed before each call."""
        for _ in range(warmup):
            if setup:
                setup()
            fn()
        times = []
        for _ in range(repeat):
            if setup:
                setup()
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        result = {
            "median_s": statistics.median(times),
            "min_s": min(times),
            "max_s": max(times),
            "repeat": repeat,
        }
        self.results[label] = result
        print(
            f"{label:<40} median {result['median_s'] * 1000:9.2f} ms  "
            f"range {result['min_s'] * 1000:.2f}–{result['max_s'] * 1000:.2f} ms"
        )
        return result

    def record(self, label: str, **values: Any) -> None:
        """Store values measured some other way (throughput, percentiles, memory)."""
        self.results[label] = values
        print(f"{label:<40} " + "  ".join(f"{k}={v}" for k, v in values.items()))

    def ratio(self, label: str, ours: dict[str, Any], peer: dict[str, Any]) -> float:
        """ours / peer on median time; < 1 means lakebox is faster."""
        value = ours["median_s"] / peer["median_s"]
        self.ratios[label] = round(value, 3)
        print(f"ratio {label:<34} {value:6.2f}x  (lakebox / peer)")
        return value

    def save(self) -> Path:
        RESULTS_DIR.mkdir(exist_ok=True)
        stamp = self.started.strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS_DIR / f"{self.name}-{stamp}.json"
        path.write_text(
            json.dumps(
                {
                    "benchmark": self.name,
                    "date": self.started.isoformat(),
                    "machine": machine(),
                    "results": self.results,
                    "ratios": self.ratios,
                },
                indent=2,
            )
        )
        print(f"saved {path}")
        return path
