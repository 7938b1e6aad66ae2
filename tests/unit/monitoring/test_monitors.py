"""ws.monitors: metric tables, refresh modes, slices, custom metrics, bad input."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lakebox.errors import AlreadyExists, InvalidInput, NotFound, SchemaMismatch
from lakebox.monitoring import CustomMetric, InferenceLog, Snapshot, TimeSeries

LOG = "main.serving.log"
BASE = "main.fs.base"


def make_log(days: int = 3, n_per_day: int = 400, shift_day: int | None = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    frames = []
    for day in range(days):
        n = n_per_day
        drift = day == shift_day
        x = rng.normal(1.5 if drift else 0.0, 1.0, n)
        plan = np.where(rng.random(n) < (0.8 if drift else 0.3), "pro", "basic")
        proba = 1 / (1 + np.exp(-x))
        label = (rng.random(n) < proba).astype(np.int64)
        ts = (
            pd.Timestamp("2026-01-01", tz="UTC")
            + pd.Timedelta(days=day)
            + pd.to_timedelta(rng.integers(0, 86400, n), unit="s")
        )
        frames.append(
            pd.DataFrame(
                {
                    "ts": ts,
                    "x": x,
                    "plan": plan,
                    "model_version": np.where(rng.random(n) < 0.5, "1", "2"),
                    "proba": proba,
                    "prediction": (proba > 0.5).astype(np.int64),
                    "churned": label,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def inference_profile(**kw):
    return InferenceLog(
        "ts",
        ["1 day"],
        model_id_col="model_version",
        prediction_col="prediction",
        label_col="churned",
        prediction_proba_col="proba",
        **kw,
    )


@pytest.fixture
def log(ws):
    df = make_log()
    for day in sorted(set(df.ts.dt.day)):  # one data file per day
        ws.tables.write(LOG, df[df.ts.dt.day == day])
    ws.tables.write(BASE, make_log(days=1, shift_day=None, seed=5).drop(columns=["ts"]))
    return df


def _rows(table, **where):
    df = table.to_pandas()
    for key, value in where.items():
        df = df[df[key].isna()] if value is None else df[df[key] == value]
    return df


def test_create_get_list_update_delete(ws, log):
    info = ws.monitors.create(LOG, inference_profile(), baseline_table_name=BASE)
    assert info.profile_metrics_table_name == "main.serving.log_profile_metrics"
    assert info.drift_metrics_table_name == "main.serving.log_drift_metrics"
    assert ws.monitors.get(LOG).baseline_table_name == BASE
    assert [m.table_name for m in ws.monitors.list()] == [LOG]
    with pytest.raises(AlreadyExists):
        ws.monitors.create(LOG, Snapshot())
    updated = ws.monitors.update(LOG, slicing_exprs=["plan"])
    assert updated.slicing_exprs == ["plan"] and updated.monitor_version == 2
    ws.monitors.delete(LOG)
    with pytest.raises(NotFound, match="has no monitor"):
        ws.monitors.get(LOG)


def test_profile_metrics_match_the_data(ws, log):
    ws.monitors.create(LOG, inference_profile(), baseline_table_name=BASE)
    ws.monitors.refresh(LOG)
    profile = ws.monitors.profile_metrics(LOG)
    day0 = log[log.ts < pd.Timestamp("2026-01-02", tz="UTC")]
    row = _rows(
        profile,
        column_name="x",
        slice_key=None,
        model_id=None,
        log_type="INPUT",
        window_start=pd.Timestamp("2026-01-01", tz="UTC"),
    ).iloc[0]
    assert row["count"] == len(day0)
    assert row["avg"] == pytest.approx(day0.x.mean())
    assert row["stddev"] == pytest.approx(day0.x.std())
    assert row["min"] == pytest.approx(day0.x.min()) and row["max"] == pytest.approx(day0.x.max())
    assert row["window_end"] == pd.Timestamp("2026-01-02", tz="UTC")
    plan = _rows(
        profile,
        column_name="plan",
        slice_key=None,
        model_id=None,
        log_type="INPUT",
        window_start=pd.Timestamp("2026-01-01", tz="UTC"),
    ).iloc[0]
    top = {item["item"]: item["count"] for item in plan["frequent_items"]}
    assert top == day0.plan.value_counts().to_dict()
    # quality per model id, from scikit-learn
    from sklearn.metrics import f1_score

    m1 = day0[day0.model_version == "1"]
    quality = _rows(
        profile,
        column_name=":table",
        slice_key=None,
        model_id="1",
        log_type="INPUT",
        window_start=pd.Timestamp("2026-01-01", tz="UTC"),
    ).iloc[0]
    assert quality["f1_score"] == pytest.approx(f1_score(m1.churned, m1.prediction))
    assert quality["count"] == len(m1)
    assert len(_rows(profile, log_type="BASELINE", column_name="x")) == 1


def test_drift_metrics_consecutive_and_baseline_match_scipy(ws, log):
    ws.monitors.create(LOG, inference_profile(), baseline_table_name=BASE)
    ws.monitors.refresh(LOG)
    drift = ws.monitors.drift_metrics(LOG)

    def day(d):
        return log[
            (log.ts >= pd.Timestamp(f"2026-01-0{d}", tz="UTC"))
            & (log.ts < pd.Timestamp(f"2026-01-0{d + 1}", tz="UTC"))
        ]

    cons = _rows(
        drift,
        drift_type="CONSECUTIVE",
        column_name="x",
        slice_key=None,
        model_id=None,
        window_start=pd.Timestamp("2026-01-03", tz="UTC"),
    ).iloc[0]
    ks = stats.ks_2samp(day(2).x.to_numpy(), day(3).x.to_numpy())
    assert cons["ks_statistic"] == pytest.approx(ks.statistic)
    assert cons["ks_pvalue"] == pytest.approx(ks.pvalue)
    assert cons["window_cmp_start"] == pd.Timestamp("2026-01-02", tz="UTC")
    assert cons["js_distance"] > 0.2
    baseline = ws.tables.read(BASE)
    brow = _rows(
        drift,
        drift_type="BASELINE",
        column_name="plan",
        slice_key=None,
        model_id=None,
        window_start=pd.Timestamp("2026-01-03", tz="UTC"),
    ).iloc[0]
    keys = ["basic", "pro"]
    table = [
        [int((baseline.plan == k).sum()) for k in keys],
        [int((day(3).plan == k).sum()) for k in keys],
    ]
    chi = stats.chi2_contingency(table)
    assert brow["chi_squared_pvalue"] == pytest.approx(chi.pvalue)
    quiet = _rows(
        drift,
        drift_type="CONSECUTIVE",
        column_name="x",
        slice_key=None,
        model_id=None,
        window_start=pd.Timestamp("2026-01-02", tz="UTC"),
    ).iloc[0]
    assert quiet["js_distance"] < 0.2
    assert {"BASELINE", "CONSECUTIVE"} == set(drift.column("drift_type").to_pylist())
    table_row = _rows(
        drift,
        drift_type="BASELINE",
        column_name=":table",
        slice_key=None,
        model_id=None,
        window_start=pd.Timestamp("2026-01-03", tz="UTC"),
    ).iloc[0]
    assert table_row["f1_score_delta"] is not None


def test_incremental_refresh_recomputes_only_changed_windows(ws, log):
    ws.monitors.create(LOG, TimeSeries("ts", ["1 day"]))
    first = ws.monitors.refresh(LOG)
    assert first.mode == "full" and "3 window(s)" in first.message
    again = ws.monitors.refresh(LOG)
    assert again.mode == "incremental" and "0 window(s)" in again.message
    new_day = make_log(days=1, shift_day=None, seed=9)
    new_day["ts"] = new_day["ts"] + pd.Timedelta(days=3)
    ws.tables.write(LOG, new_day)
    inc = ws.monitors.refresh(LOG)
    assert inc.mode == "incremental" and "1 window(s)" in inc.message
    profile = ws.monitors.profile_metrics(LOG)
    windows = sorted(set(_rows(profile, column_name="x", slice_key=None).window_start))
    assert len(windows) == 4
    # no duplicated rows after the incremental refresh
    assert len(_rows(profile, column_name="x", slice_key=None)) == 4
    full = ws.monitors.refresh(LOG, full=True)
    assert full.mode == "full"
    after = ws.monitors.profile_metrics(LOG)
    cols = ["window_start", "column_name", "count", "avg"]
    a = _rows(profile, slice_key=None).sort_values(cols)[cols].reset_index(drop=True)
    b = _rows(after, slice_key=None).sort_values(cols)[cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    # a delete in the first window's file changes that window (and the next one's comparison)
    ws.tables.delete(LOG, "plan = 'pro' AND ts < '2026-01-02T00:00:00Z'")
    changed = ws.monitors.refresh(LOG)
    assert "2 window(s)" in changed.message
    row = _rows(
        ws.monitors.profile_metrics(LOG),
        column_name="plan",
        slice_key=None,
        window_start=pd.Timestamp("2026-01-01", tz="UTC"),
    ).iloc[0]
    assert {i["item"] for i in row["frequent_items"]} == {"basic"}


def test_slices_and_custom_metrics(ws, log):
    ws.monitors.create(
        LOG,
        TimeSeries("ts", ["1 day"]),
        slicing_exprs=["plan", "x > 0"],
        custom_metrics=[
            CustomMetric(
                "share_pos", "avg(CASE WHEN {{input_column}} > 0 THEN 1 ELSE 0 END)", ["x"]
            ),
            CustomMetric("rows_pro", "sum(CASE WHEN plan = 'pro' THEN 1 ELSE 0 END)", [":table"]),
            CustomMetric("spread", "max - min", ["x"], type="derived"),
            CustomMetric("avg_shift", "{{current_df}}.avg - {{base_df}}.avg", ["x"], type="drift"),
        ],
    )
    ws.monitors.refresh(LOG)
    profile = ws.monitors.profile_metrics(LOG)
    w0 = pd.Timestamp("2026-01-01", tz="UTC")
    day0 = log[log.ts < pd.Timestamp("2026-01-02", tz="UTC")]
    row = _rows(profile, column_name="x", slice_key=None, window_start=w0).iloc[0]
    assert row["share_pos"] == pytest.approx((day0.x > 0).mean())
    assert row["spread"] == pytest.approx(day0.x.max() - day0.x.min())
    t = _rows(profile, column_name=":table", slice_key=None, window_start=w0).iloc[0]
    assert t["rows_pro"] == (day0.plan == "pro").sum()
    pro = _rows(
        profile, column_name="x", slice_key="plan", slice_value="pro", window_start=w0
    ).iloc[0]
    assert pro["count"] == (day0.plan == "pro").sum()
    assert pro["avg"] == pytest.approx(day0[day0.plan == "pro"].x.mean())
    assert set(_rows(profile, slice_key="x > 0").slice_value) == {"true", "false"}
    drift = ws.monitors.drift_metrics(LOG)
    d = _rows(
        drift, column_name="x", slice_key=None, window_start=pd.Timestamp("2026-01-02", tz="UTC")
    ).iloc[0]
    assert d["avg_shift"] == pytest.approx(d["avg_delta"])


def test_snapshot_consecutive_uses_previous_version(ws, log):
    ws.monitors.create(LOG, Snapshot(), columns=["x", "plan"])
    ws.monitors.refresh(LOG)
    ws.tables.write(LOG, make_log(days=1, shift_day=0, seed=11))
    second = ws.monitors.refresh(LOG)
    assert second.mode == "incremental"
    drift = ws.monitors.drift_metrics(LOG)
    row = _rows(drift, column_name="x", drift_type="CONSECUTIVE", slice_key=None).iloc[0]
    old = log.x.to_numpy()
    new = ws.tables.read(LOG).x.to_numpy()
    assert row["ks_pvalue"] == pytest.approx(stats.ks_2samp(old, new).pvalue)
    assert len(set(ws.monitors.profile_metrics(LOG).column("window_start").to_pylist())) == 2


def test_refresh_history_and_failure(ws, log):
    ws.monitors.create(LOG, TimeSeries("ts", ["1 day"]))
    r = ws.monitors.refresh(LOG)
    got = ws.monitors.get_refresh(LOG, r.refresh_id)
    assert got.state == "SUCCESS" and got.end_time_ms >= got.start_time_ms
    ws.tables.delete(LOG)
    with pytest.raises(InvalidInput, match="empty windows"):
        ws.monitors.refresh(LOG, full=True)
    states = [x.state for x in ws.monitors.list_refreshes(LOG)]
    assert states == ["FAILED", "SUCCESS"]
    assert "empty windows" in ws.monitors.get(LOG).latest_failure
    with pytest.raises(NotFound, match="no refresh 999"):
        ws.monitors.get_refresh(LOG, 999)


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_name_the_problem(ws, log):
    with pytest.raises(InvalidInput, match="'tz'.*not a column"):
        ws.monitors.create(LOG, TimeSeries("tz", ["1 day"]))
    with pytest.raises(InvalidInput, match="timestamp_col 'plan' has type string"):
        ws.monitors.create(LOG, TimeSeries("plan", ["1 day"]))
    with pytest.raises(InvalidInput, match="Granularity '1 fortnight'"):
        TimeSeries("ts", ["1 fortnight"])
    with pytest.raises(InvalidInput, match="Granularity 'daily'"):
        ws.monitors.create(LOG, TimeSeries("ts", ["daily"]))
    with pytest.raises(InvalidInput, match="monitored column 'nope'"):
        ws.monitors.create(LOG, Snapshot(), columns=["nope"])
    ws.tables.write("main.serving.odd", pd.DataFrame({"x": [1.0, 2.0], "tags": [[1, 2], [3]]}))
    with pytest.raises(InvalidInput, match="column 'tags' has type list"):
        ws.monitors.create("main.serving.odd", Snapshot(), columns=["x", "tags"])
    info = ws.monitors.create("main.serving.odd", Snapshot())  # unsupported columns skipped
    assert "not profiled (unsupported type): tags" in ws.monitors.refresh(info.table_name).message
    ws.tables.write("main.fs.bad_base", pd.DataFrame({"x": ["a"], "plan": ["b"]}))
    with pytest.raises(SchemaMismatch, match="column 'x' has type string"):
        ws.monitors.create(
            LOG,
            TimeSeries("ts", ["1 day"]),
            baseline_table_name="main.fs.bad_base",
            columns=["x", "plan"],
        )
    ws.tables.write("main.fs.thin_base", pd.DataFrame({"x": [1.0]}))
    with pytest.raises(SchemaMismatch, match="lacks the monitored column.*'plan'"):
        ws.monitors.create(
            LOG,
            TimeSeries("ts", ["1 day"]),
            baseline_table_name="main.fs.thin_base",
            columns=["x", "plan"],
        )
    with pytest.raises(InvalidInput, match="Custom metric 'broken'"):
        ws.monitors.create(
            LOG,
            TimeSeries("ts", ["1 day"]),
            custom_metrics=[CustomMetric("broken", "avg({{input_column}} +* 1)", ["x"])],
        )
    with pytest.raises(InvalidInput, match="Derived custom metric 'd'"):
        ws.monitors.create(
            LOG,
            TimeSeries("ts", ["1 day"]),
            custom_metrics=[CustomMetric("d", "no_such_metric / count", ["x"], type="derived")],
        )
    with pytest.raises(InvalidInput, match="Slicing expression 'nope > 1'"):
        ws.monitors.create(LOG, TimeSeries("ts", ["1 day"]), slicing_exprs=["nope > 1"])
    with pytest.raises(InvalidInput, match="problem_type 'ranking'"):
        inference_profile(problem_type="ranking")
    with pytest.raises(NotFound):
        ws.monitors.create("main.serving.missing", Snapshot())
    ws.tables.write("main.serving.empty", log.iloc[:0])
    ws.monitors.create("main.serving.empty", Snapshot(), columns=["x"])
    with pytest.raises(InvalidInput, match="is empty"):
        ws.monitors.refresh("main.serving.empty")
    ws.monitors.create(LOG, TimeSeries("ts", ["1 day"]))
    with pytest.raises(InvalidInput, match="Alert rule 'js_distance >>> 1'"):
        ws.monitors.add_alert(LOG, "js_distance >>> 1")
    with pytest.raises(InvalidInput, match="Alert rule 'no_metric > 1'"):
        ws.monitors.add_alert(LOG, "no_metric > 1")
    assert datetime.now(timezone.utc)  # keep the import used
