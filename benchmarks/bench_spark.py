"""Spark engine benchmark: the ``spark`` engine on ``local[2]`` vs the ``local`` engine (DuckDB),
same Delta table, same process, same inputs.

* Training set: a point-in-time join of E entity rows onto a feature table of M rows
  (K customers, one row per customer per time step), with a lookback window and a default.
* Publish: the newest row per key of the same table (``latest_rows``, what ``publish_table``
  runs).

Both engines' results are compared value by value before any timing counts. Spark's session
start (JVM) is timed separately and excluded from the per-call numbers.

Usage::

    python benchmarks/bench_spark.py                       # 10M feature rows, 1M entity rows
    python benchmarks/bench_spark.py --rows 2000000 --entities 200000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

sys.path.insert(0, str(Path(__file__).parent))
from harness import Bench

from lakebox.engines import FeatureJoin, TableSnapshot
from lakebox.engines.local import LocalEngine

BASE_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
STEP_US = 3_600_000_000  # one feature row per customer per hour
SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("spend", pa.float64()),
        ("sessions", pa.int32()),
    ]
)


def feature_batches(rows: int, keys: int, batch: int = 1_000_000) -> Iterator[pa.RecordBatch]:
    rng = np.random.default_rng(7)
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        idx = np.arange(start, start + n)
        spend = rng.gamma(2.0, 10.0, n)
        spend[rng.random(n) < 0.01] = np.nan
        yield pa.record_batch(
            [
                pa.array(idx % keys, pa.int64()),
                pa.array(BASE_US + (idx // keys) * STEP_US, pa.int64()).cast(SCHEMA.field(1).type),
                pa.array(spend, from_pandas=True),
                pa.array(rng.integers(0, 50, n), pa.int32()),
            ],
            schema=SCHEMA,
        )


def entities(count: int, keys: int, steps: int) -> pa.Table:
    rng = np.random.default_rng(11)
    ts = BASE_US + rng.integers(-STEP_US, steps * STEP_US, count)
    return pa.table(
        {
            "customer_id": pa.array(rng.integers(0, int(keys * 1.05), count), pa.int64()),
            "event_ts": pa.array(ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000, help="feature table rows")
    parser.add_argument("--entities", type=int, default=1_000_000, help="entity rows")
    parser.add_argument("--keys", type=int, default=100_000, help="distinct customers")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="3g", help="local mode runs in the driver")
    args = parser.parse_args()

    bench = Bench("spark")
    bench.record(
        "setup", feature_rows=args.rows, entity_rows=args.entities, keys=args.keys,
        master=args.master,
    )  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    try:
        location = str(work / "daily")
        start = time.perf_counter()
        reader = pa.RecordBatchReader.from_batches(SCHEMA, feature_batches(args.rows, args.keys))
        write_deltalake(location, reader)
        bench.record(
            "write feature table (delta-rs)", seconds=round(time.perf_counter() - start, 1)
        )
        dt = DeltaTable(location)
        snap = TableSnapshot("main.fs.daily", location, dt.version(), dt.to_pyarrow_dataset())
        steps = max(1, args.rows // args.keys)
        rows = entities(args.entities, args.keys, steps)
        join = FeatureJoin(
            snap,
            [("customer_id", "customer_id")],
            {"spend": "spend", "sessions": "sessions"},
            entity_timestamp="event_ts",
            feature_timestamp="ts",
            lookback=timedelta(hours=12),
            defaults={"sessions": 0},
        )

        local = LocalEngine(threads=2)
        from lakebox.engines._spark_session import spark_session, stop_sessions
        from lakebox.engines.spark import SparkEngine

        start = time.perf_counter()
        conf = {"spark.driver.memory": args.driver_memory}
        spark = SparkEngine(session=spark_session(args.master, conf=conf))
        spark.spark.range(1).count()
        bench.record("spark session start", seconds=round(time.perf_counter() - start, 1))

        outputs: dict[str, pa.Table] = {}

        def run(name: str, engine: object) -> None:
            outputs[name] = engine.join_features(rows, [join])  # type: ignore[attr-defined]

        lt = bench.measure(
            "training set/local", lambda: run("local", local), repeat=args.repeat, warmup=0
        )
        st = bench.measure(
            f"training set/spark {args.master}",
            lambda: run("spark", spark),
            repeat=args.repeat,
            warmup=0,
        )
        expected, got = outputs["local"], outputs["spark"]
        if not got.equals(expected):
            mismatch = [c for c in expected.column_names if not got[c].equals(expected[c])]
            raise SystemExit(f"spark and local training sets differ in {mismatch}")
        nulls = expected.column("spend").null_count
        bench.record("training set check", rows=expected.num_rows, null_spend=nulls, equal=True)
        bench.ratio("training set (spark / local)", st, lt)

        def latest(name: str, engine: object) -> None:
            outputs[name] = engine.latest_rows(snap, keys=["customer_id"], timestamp="ts")  # type: ignore[attr-defined]

        ll = bench.measure(
            "latest rows/local", lambda: latest("local", local), repeat=args.repeat, warmup=0
        )
        sl = bench.measure(
            f"latest rows/spark {args.master}",
            lambda: latest("spark", spark),
            repeat=args.repeat,
            warmup=0,
        )
        if (
            not outputs["local"]
            .sort_by("customer_id")
            .equals(outputs["spark"].sort_by("customer_id"))
        ):
            raise SystemExit("spark and local latest rows differ")
        bench.ratio("latest rows (spark / local)", sl, ll)
        stop_sessions()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bench.save()


if __name__ == "__main__":
    main()
