"""Monitor refresh gives the same metric tables on the local engine and on Spark.

Each test writes the same Delta tables into a local-engine workspace and a spark-engine
workspace (``local[2]``, one SparkSession for the test session), creates the same monitor in
both, refreshes, and compares the profile and drift metric tables row by row. Values must be
equal (to float rounding) except ``distinct_count``, which both engines estimate with
HyperLogLog sketches of their own (compared within 20%), and drift statistics of groups larger
than ``drift_sample_rows``, which both engines estimate from samples (compared within
sampling error). Spark tests are marked ``spark``; in CI a missing pyspark or Java fails.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import lakebox
from lakebox.monitoring import CustomMetric, InferenceLog, Snapshot, TimeSeries

pytestmark = pytest.mark.spark

LOG = "main.mon.log"
BASE = "main.mon.base"
# metric columns both engines estimate differently (compared with a tolerance, or not at all)
ESTIMATED = {"distinct_count"}
KEYS = ["granularity", "window_start", "model_id", "slice_key", "slice_value", "column_name"]


@pytest.fixture(scope="session")
def spark_ready() -> Iterator[None]:
    if not os.environ.get("CI"):
        pytest.importorskip("pyspark", reason="pip install 'lakebox[spark]' to test the engine")
    from lakebox.engines._spark_session import spark_session, stop_sessions

    spark_session("local[2]", conf={"spark.sql.shuffle.partitions": "2"})
    yield
    stop_sessions()


@pytest.fixture
def pair(
    tmp_path: Path, spark_ready: None
) -> Iterator[tuple[lakebox.Workspace, lakebox.Workspace]]:
    local = lakebox.Workspace(tmp_path / "local", engine="local")
    spark = lakebox.Workspace(tmp_path / "spark", engine="spark", spark_master="local[2]")
    yield local, spark
    local.close()
    spark.close()


def make_log(days: int = 3, n_per_day: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for day in range(days):
        n = n_per_day
        drift = day == days - 1
        x = rng.normal(1.5 if drift else 0.0, 1.0, n).round(4)
        x[rng.random(n) < 0.05] = np.nan
        proba = 1 / (1 + np.exp(-np.nan_to_num(x)))
        frames.append(
            pd.DataFrame(
                {
                    "ts": pd.Timestamp("2026-01-05", tz="UTC")
                    + pd.Timedelta(days=day)
                    + pd.to_timedelta(rng.integers(0, 86400, n), unit="s"),
                    "x": x,
                    "visits": rng.integers(0, 6, n),
                    "plan": pd.array(
                        np.where(rng.random(n) < (0.8 if drift else 0.3), "pro", "basic"),
                        dtype=object,
                    ),
                    "active": rng.random(n) < 0.6,
                    "model_version": np.where(rng.random(n) < 0.5, "1", "2"),
                    "proba": proba,
                    "prediction": (proba > 0.5).astype(np.int64),
                    "churned": (rng.random(n) < proba).astype(np.int64),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out.loc[rng.random(len(out)) < 0.05, "plan"] = None
    return out


def write_both(pair: tuple[Any, Any], name: str, frame: pd.DataFrame) -> None:
    for ws in pair:
        ws.tables.write(name, frame)


def refresh_both(
    pair: tuple[Any, Any], create: Callable[[Any], Any], *, full: bool = False
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    out = []
    for ws in pair:
        if LOG not in [m.table_name for m in ws.monitors.list()]:
            create(ws)
        ws.monitors.refresh(LOG, full=full)
        info = ws.monitors.get(LOG)
        out.append(
            (
                ws.tables.read(info.profile_metrics_table_name),
                ws.tables.read(info.drift_metrics_table_name),
            )
        )
    return out


def _rows(frame: pd.DataFrame, snapshot: bool) -> dict[tuple[Any, ...], dict[str, Any]]:
    keys = [k for k in [*KEYS, "window_cmp_start", "log_type", "drift_type"] if k in frame.columns]
    # a snapshot's window is its refresh time, which differs between the two workspaces:
    # compare the refreshes by their order instead
    order = {t: i for i, t in enumerate(sorted(set(frame.window_start.dropna())))}
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for rec in frame.to_dict("records"):
        key = tuple(
            None
            if _missing(rec[k])
            else (order[rec[k]] if snapshot and k.startswith("window") else rec[k])
            for k in keys
        )
        assert key not in out, f"duplicate metric row {key}"
        out[key] = rec
    return out


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def assert_same(
    local: pd.DataFrame,
    spark: pd.DataFrame,
    *,
    snapshot: bool = False,
    approx: dict[str, float] | None = None,
) -> None:
    """Same rows; same values (``approx``: column -> absolute tolerance)."""
    approx = approx or {}
    left, right = _rows(local, snapshot), _rows(spark, snapshot)
    assert sorted(map(str, left)) == sorted(map(str, right))
    assert len(left) > 0
    skip = (
        {"window_start", "window_end", "window_cmp_start", "window_cmp_end"} if snapshot else set()
    )
    for key, lrow in left.items():
        rrow = right[key]
        for col in local.columns:
            if col in skip:
                continue
            a, b = lrow[col], rrow[col]
            where = f"{col} of {key}"
            if col in ESTIMATED:
                if not _missing(a):
                    assert abs(a - b) <= max(2, 0.2 * a), where
                continue
            if col == "frequent_items" and a is not None:
                assert [dict(i) for i in a] == [dict(i) for i in b], where
                continue
            if isinstance(a, (list, np.ndarray)) and col in approx:
                assert np.allclose(a, b, rtol=0, atol=approx[col]), where
                continue
            if isinstance(a, (list, np.ndarray)):
                assert np.allclose(np.asarray(a, float), np.asarray(b, float), equal_nan=True), (
                    where
                )
                continue
            if _missing(a) or _missing(b):
                assert _missing(a) and _missing(b), f"{where}: {a!r} vs {b!r}"
                continue
            if isinstance(a, float):
                tol = approx.get(col, 1e-9 * max(1.0, abs(a)))
                assert math.isclose(a, b, rel_tol=0, abs_tol=tol), f"{where}: {a} vs {b}"
            else:
                assert a == b, f"{where}: {a!r} vs {b!r}"


# --------------------------------------------------------------------------- tests
def test_time_series_with_baseline_slices_and_custom_metrics(pair: Any) -> None:
    log = make_log()
    write_both(pair, LOG, log)
    write_both(pair, BASE, make_log(days=1, seed=5).drop(columns=["ts"]))

    def create(ws: Any) -> None:
        ws.monitors.create(
            LOG,
            TimeSeries("ts", ["1 day", "2 days"]),
            baseline_table_name=BASE,
            slicing_exprs=["plan", "visits > 2"],
            columns=["x", "visits", "plan", "active"],
            custom_metrics=[
                CustomMetric("x_sq", "avg({{input_column}} * {{input_column}})", ["x"]),
                CustomMetric(
                    "rows_pro", "sum(CASE WHEN plan = 'pro' THEN 1 ELSE 0 END)", [":table"]
                ),
                CustomMetric("spread", "max - min", ["x"], type="derived"),
                CustomMetric(
                    "avg_shift", "{{current_df}}.avg - {{base_df}}.avg", ["x"], type="drift"
                ),
            ],
        )

    (lp, ld), (sp, sd) = refresh_both(pair, create)
    assert set(lp.log_type) == {"INPUT", "BASELINE"}
    assert {"CONSECUTIVE", "BASELINE"} <= set(ld.drift_type)
    assert set(lp.granularity.dropna()) == {"1 day", "2 days"}
    assert_same(lp, sp)
    assert_same(ld, sd)
    # the drifted last day shows up the same way on both
    day3 = sd[(sd.column_name == "x") & (sd.drift_type == "CONSECUTIVE") & sd.slice_key.isna()]
    assert (day3.ks_pvalue.min()) < 1e-6


def test_time_series_incremental_refresh(pair: Any) -> None:
    log = make_log(days=4)
    first = log[log.ts < pd.Timestamp("2026-01-07", tz="UTC")]
    write_both(pair, LOG, first)

    def create(ws: Any) -> None:
        ws.monitors.create(LOG, TimeSeries("ts", ["1 day"]), columns=["x", "plan"])

    refresh_both(pair, create)
    write_both(pair, LOG, log[log.ts >= pd.Timestamp("2026-01-07", tz="UTC")])
    (lp, ld), (sp, sd) = refresh_both(pair, create)
    assert len(set(lp.window_start)) == 4
    assert_same(lp, sp)
    assert_same(ld, sd)
    for ws in pair:
        assert ws.monitors.list_refreshes(LOG)[0].mode == "incremental"


def test_inference_log_with_models_and_quality(pair: Any) -> None:
    write_both(pair, LOG, make_log())
    write_both(pair, BASE, make_log(days=1, seed=7).drop(columns=["ts"]))

    def create(ws: Any) -> None:
        ws.monitors.create(
            LOG,
            InferenceLog(
                "ts",
                ["1 day"],
                model_id_col="model_version",
                prediction_col="prediction",
                label_col="churned",
                prediction_proba_col="proba",
            ),
            baseline_table_name=BASE,
            slicing_exprs=["active"],
        )

    (lp, ld), (sp, sd) = refresh_both(pair, create)
    assert set(lp.model_id.dropna()) == {"1", "2"}
    assert lp.accuracy_score.notna().any() and lp.roc_auc.notna().any()
    assert ld.concept_chi_squared_pvalue.notna().any()
    assert_same(lp, sp)
    assert_same(ld, sd)


def test_snapshot_with_baseline_and_consecutive(pair: Any) -> None:
    log = make_log(days=1).drop(columns=["ts"])
    write_both(pair, LOG, log)
    write_both(pair, BASE, make_log(days=1, seed=3).drop(columns=["ts"]))

    def create(ws: Any) -> None:
        ws.monitors.create(LOG, Snapshot(), baseline_table_name=BASE, slicing_exprs=["plan"])

    (lp, ld), (sp, sd) = refresh_both(pair, create)
    assert_same(lp, sp, snapshot=True)
    assert_same(ld, sd, snapshot=True)
    # a second refresh after a change compares against the previous snapshot
    write_both(pair, LOG, make_log(days=1, seed=9).drop(columns=["ts"]))
    (lp, ld), (sp, sd) = refresh_both(pair, create)
    assert "CONSECUTIVE" in set(sd.drift_type)
    assert_same(lp, sp, snapshot=True)
    assert_same(ld, sd, snapshot=True)


def test_large_groups_are_sampled_for_drift(pair: Any) -> None:
    """Groups past drift_sample_rows: aggregates stay exact; binned distances of continuous
    columns stay exact (Spark counts every row into the local engine's bins); KS and
    Wasserstein agree within sampling error (both engines sample, differently)."""
    write_both(pair, LOG, make_log(days=2, n_per_day=3000))
    write_both(pair, BASE, make_log(days=1, n_per_day=3000, seed=5).drop(columns=["ts"]))

    def create(ws: Any) -> None:
        ws.monitors.create(
            LOG,
            TimeSeries("ts", ["1 day"]),
            columns=["x", "visits", "plan"],
            baseline_table_name=BASE,
            slicing_exprs=["active"],
            drift_sample_rows=500,
        )

    (lp, ld), (sp, sd) = refresh_both(pair, create)
    # quantiles of groups past the cap: Spark's percentile_approx ranks differ by one row
    assert_same(lp, sp, approx={"quantiles": 0.05})
    sampled = {
        "ks_statistic": 0.12,
        "wasserstein_distance": 0.25,
        "ks_pvalue": 1.0,
        "concept_chi_squared_statistic": math.inf,
        "concept_chi_squared_pvalue": 1.0,
    }
    continuous = ld.column_name == "x", sd.column_name == "x"
    assert_same(ld[continuous[0]], sd[continuous[1]], approx=sampled)
    # few-valued columns (visits: 6 values) are counted from the sample on Spark
    from_sample = {
        **sampled,
        "js_distance": 0.1,
        "population_stability_index": 1.5,  # sensitive to near-empty bins
        "tv_distance": 0.1,
        "l_infinity_distance": 0.1,
        "chi_squared_statistic": math.inf,
        "chi_squared_pvalue": 1.0,
    }
    assert_same(ld[~continuous[0]], sd[~continuous[1]], approx=from_sample)
    x = sd[(sd.column_name == "x") & (sd.drift_type == "CONSECUTIVE") & sd.slice_key.isna()]
    assert x.ks_pvalue.iloc[0] < 1e-6  # the drift is found from the sample


@pytest.mark.parametrize(
    "granularity",
    ["30 minutes", "2 hours", "1 day", "3 days", "1 week", "1 month", "2 months", "1 year"],
)
def test_spark_windows_match_duckdb_time_bucket(spark_ready: None, granularity: str) -> None:
    import duckdb
    from pyspark.sql import functions as F

    from lakebox.engines._spark_session import spark_session
    from lakebox.monitoring._compute import window_sql
    from lakebox.monitoring._spark import spark_window

    rng = np.random.default_rng(1)
    start = datetime(1998, 6, 1)
    stamps = [start + timedelta(seconds=int(s)) for s in rng.integers(0, 40 * 365 * 86400, 200)]
    stamps += [datetime(2000, 1, 3), datetime(2000, 1, 2, 23, 59, 59), datetime(2024, 2, 29)]
    data = pa.table({"ts": pa.array(stamps, pa.timestamp("us", tz="UTC"))})
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.register("d", data)
    expected = con.sql(f"SELECT {window_sql('ts', granularity)} AS w FROM d").fetchall()
    spark = spark_session("local[2]")
    frame = spark.createDataFrame(data.to_pandas())
    got = frame.select(spark_window(F.col("ts"), granularity).alias("w")).toArrow()
    got_naive = [w.replace(tzinfo=None) for w in got.column("w").to_pylist()]
    assert got_naive == [w for (w,) in expected]
