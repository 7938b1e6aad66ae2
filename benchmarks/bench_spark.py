"""Spark engine benchmark: the ``spark`` engine on ``local[2]`` vs the ``local`` engine (DuckDB),
same Delta table, same process, same inputs.

* Training set: a point-in-time join of E entity rows onto a feature table of M rows
  (K customers, one row per customer per time step), with a lookback window and a default.
* Publish: the newest row per key of the same table (``latest_rows``, what ``publish_table``
  runs).
* Batch scoring: ``lakebox.deploy.score_table`` of a logistic regression over an N-row Delta
  table, into a Delta table, from a workspace on each engine (same home, same tables).
* Monitor refresh: a full refresh of a ``TimeSeries`` monitor (1-day windows, 3 numeric and
  1 categorical column, CONSECUTIVE drift) over an N-row table, on each engine.

Both engines' results are compared value by value before any timing counts. Spark's session
start (JVM) is timed separately and excluded from the per-call numbers.

Usage::

    python benchmarks/bench_spark.py                       # 10M feature rows, 1M entity rows
    python benchmarks/bench_spark.py --rows 2000000 --entities 200000
    python benchmarks/bench_spark.py --parts scoring,monitor   # only these
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

sys.path.insert(0, str(Path(__file__).parent))
from harness import Bench

from lakebox.engines import Engine, FeatureJoin, TableSnapshot
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
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of every table")
    parser.add_argument("--entities", type=int, default=1_000_000, help="entity rows")
    parser.add_argument("--keys", type=int, default=100_000, help="distinct customers")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="3g", help="local mode runs in the driver")
    parser.add_argument(
        "--parts", default="training,latest,scoring,monitor", help="comma-separated parts to run"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))

    bench = Bench("spark")
    bench.record(
        "setup", feature_rows=args.rows, entity_rows=args.entities, keys=args.keys,
        master=args.master, parts=sorted(parts), load_average=os.getloadavg()[0],
    )  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    try:
        from lakebox.engines._spark_session import spark_session, stop_sessions
        from lakebox.engines.spark import SparkEngine

        start = time.perf_counter()
        conf = {"spark.driver.memory": args.driver_memory}
        spark = SparkEngine(spark_master=args.master, session=spark_session(args.master, conf=conf))
        spark.spark.range(1).count()
        bench.record("spark session start", seconds=round(time.perf_counter() - start, 1))
        if parts & {"training", "latest"}:
            run_joins(bench, args, work, spark, parts)
        if parts & {"scoring", "monitor"}:
            workspaces = open_workspaces(work / "ws", args.master)
            if "scoring" in parts:
                run_scoring(bench, args, *workspaces)
            if "monitor" in parts:
                run_monitor(bench, args, *workspaces)
        bench.record("end", load_average=os.getloadavg()[0])
        stop_sessions()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bench.save()


def run_joins(
    bench: Bench, args: argparse.Namespace, work: Path, spark: Engine, parts: set[str]
) -> None:
    """Training set (point-in-time join) and newest rows per key, on both engines."""
    location = str(work / "daily")
    start = time.perf_counter()
    reader = pa.RecordBatchReader.from_batches(SCHEMA, feature_batches(args.rows, args.keys))
    write_deltalake(location, reader)
    bench.record("write feature table (delta-rs)", seconds=round(time.perf_counter() - start, 1))
    dt = DeltaTable(location)
    snap = TableSnapshot("main.fs.daily", location, dt.version(), dt.to_pyarrow_dataset())
    local = LocalEngine(threads=2)
    outputs: dict[str, pa.Table] = {}

    if "training" in parts:
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

        def run(name: str, engine: Engine) -> None:
            outputs[name] = engine.join_features(rows, [join])

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

    if "latest" in parts:

        def latest(name: str, engine: Engine) -> None:
            outputs[name] = engine.latest_rows(snap, keys=["customer_id"], timestamp="ts")

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


# ----------------------------------------------------------------------------- workspaces
FEATURES = ["f0", "f1", "f2", "f3"]
CHUNK = 1_000_000


def open_workspaces(home: Path, master: str) -> tuple[Any, Any]:
    """One workspace home opened twice: with the local engine and with the spark engine
    (same tables, same MLflow store, same monitors)."""
    import lakebox

    local = lakebox.Workspace(home, engine="local")
    spark = lakebox.Workspace(home, engine="spark", spark_master=master)
    return local, spark


def run_scoring(bench: Bench, args: argparse.Namespace, local: Any, spark: Any) -> None:
    """``deploy.score_table`` of a logistic regression over ``--rows`` rows, both engines."""
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from lakebox import deploy

    rng = np.random.default_rng(3)
    train = pd.DataFrame(rng.normal(size=(20_000, len(FEATURES))), columns=FEATURES)
    label = (train.f0 + train.f1 * train.f2 > 0).astype(int)
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            LogisticRegression().fit(train, label),
            name="model",
            registered_model_name="bench_linear",
            input_example=train.head(2),
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    start = time.perf_counter()
    for first in range(0, args.rows, CHUNK):
        n = min(CHUNK, args.rows - first)
        columns = {"id": pa.array(np.arange(first, first + n, dtype=np.int64))}
        columns.update({f: pa.array(rng.normal(size=n)) for f in FEATURES})
        local.tables.write("main.bench.input", pa.table(columns))
    bench.record("write scoring input (lakebox)", seconds=round(time.perf_counter() - start, 1))

    def score(ws: Any, output: str) -> None:
        deploy.score_table(
            "models:/bench_linear/1", "main.bench.input", output, ws=ws, mode="overwrite"
        )

    lt = bench.measure(
        "batch scoring/local",
        lambda: score(local, "main.bench.out_local"),
        repeat=args.repeat,
        warmup=0,
    )
    st = bench.measure(
        f"batch scoring/spark {args.master}",
        lambda: score(spark, "main.bench.out_spark"),
        repeat=args.repeat,
        warmup=0,
    )
    got = {}
    for name in ("main.bench.out_local", "main.bench.out_spark"):
        table = local.tables.read(name, columns=["id", "prediction"], output="arrow")
        got[name] = table.sort_by("id")
    a, b = got["main.bench.out_local"], got["main.bench.out_spark"]
    if a.num_rows != args.rows or not a.equals(b):
        raise SystemExit("spark and local predictions differ")
    bench.record("batch scoring check", rows=a.num_rows, equal=True)
    bench.ratio("batch scoring (spark / local)", st, lt)


def run_monitor(bench: Bench, args: argparse.Namespace, local: Any, spark: Any) -> None:
    """A full refresh of a TimeSeries monitor over ``--rows`` rows, both engines."""
    from lakebox.monitoring import TimeSeries

    rng = np.random.default_rng(5)
    days = 10
    start = time.perf_counter()
    for first in range(0, args.rows, CHUNK):
        n = min(CHUNK, args.rows - first)
        index = np.arange(first, first + n)
        day = index * days // args.rows
        shift = np.where(day == days - 1, 0.5, 0.0)
        ts = BASE_US + day * 86_400_000_000 + rng.integers(0, 86_400_000_000, n)
        local.tables.write(
            "main.bench.log",
            pa.table(
                {
                    "ts": pa.array(ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                    "x0": pa.array(rng.normal(shift, 1.0, n)),
                    "x1": pa.array(rng.gamma(2.0, 10.0, n)),
                    "x2": pa.array(rng.integers(0, 1000, n)),
                    "plan": pa.array(
                        np.where(rng.random(n) < 0.3 + shift / 2, "pro", "basic").astype(object)
                    ),
                }
            ),
        )
    bench.record("write monitored table (lakebox)", seconds=round(time.perf_counter() - start, 1))
    local.monitors.create("main.bench.log", TimeSeries("ts", ["1 day"]))
    tables: dict[str, Any] = {}

    def refresh(name: str, ws: Any) -> None:
        ws.monitors.refresh("main.bench.log", full=True)
        info = ws.monitors.get("main.bench.log")
        tables[name] = (
            ws.tables.read(info.profile_metrics_table_name, output="arrow"),
            ws.tables.read(info.drift_metrics_table_name, output="arrow"),
        )

    lt = bench.measure(
        "monitor refresh/local", lambda: refresh("local", local), repeat=args.repeat, warmup=0
    )
    st = bench.measure(
        f"monitor refresh/spark {args.master}",
        lambda: refresh("spark", spark),
        repeat=args.repeat,
        warmup=0,
    )
    check = compare_metrics(tables["local"], tables["spark"])
    bench.record("monitor refresh check", **check)
    bench.ratio("monitor refresh (spark / local)", st, lt)


def compare_metrics(
    local: tuple[pa.Table, pa.Table], spark: tuple[pa.Table, pa.Table]
) -> dict[str, Any]:
    """Exact aggregates must be equal; estimated ones are reported as their largest absolute
    gap, and the drift decisions (KS / chi-square p < 0.05) are compared window by window."""
    out: dict[str, Any] = {}
    for kind, a_table, b_table in (("profile", local[0], spark[0]), ("drift", local[1], spark[1])):
        keys = ["window_start", "column_name"]
        if kind == "drift":
            keys = ["window_start", "window_cmp_start", "column_name"]
        a = a_table.sort_by([(k, "ascending") for k in keys]).to_pandas()
        b = b_table.sort_by([(k, "ascending") for k in keys]).to_pandas()
        same_keys = (a[keys].astype(str).values == b[keys].astype(str).values).all()
        if len(a) != len(b) or not same_keys:
            raise SystemExit(f"{kind} metric rows differ between engines")
        out[f"{kind}_rows"] = len(a)
        exact = ["count", "num_nulls", "avg", "stddev", "min", "max"] if kind == "profile" else []
        for col in exact:
            if not np.allclose(a[col], b[col], rtol=1e-9, equal_nan=True):
                raise SystemExit(f"profile {col} differs between engines")
        if kind == "profile":
            gap = np.nanmax(np.abs(a.distinct_count - b.distinct_count) / a.distinct_count)
            out["distinct_count_max_relative_gap"] = round(float(gap), 3)
            continue
        for col in ("ks_statistic", "wasserstein_distance", "js_distance", "tv_distance"):
            gap = np.nanmax(np.abs(a[col].astype(float) - b[col].astype(float)))
            out[f"{col}_max_gap"] = round(float(gap), 4)
        p_a = a.ks_pvalue.fillna(a.chi_squared_pvalue).astype(float)
        p_b = b.ks_pvalue.fillna(b.chi_squared_pvalue).astype(float)
        tested = p_a.notna()
        out["drift_flags_local"] = int((p_a[tested] < 0.05).sum())
        out["drift_flags_spark"] = int((p_b[tested] < 0.05).sum())
        out["drift_flags_agree"] = int(((p_a[tested] < 0.05) == (p_b[tested] < 0.05)).sum())
        out["drift_tests"] = int(tested.sum())
    return out


if __name__ == "__main__":
    main()
