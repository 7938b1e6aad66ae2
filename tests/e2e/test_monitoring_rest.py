"""Monitors through `lakebox up`: databricks-sdk's w.quality_monitors, the CLI, and the report
rendered in headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import lakebox

pytestmark = pytest.mark.server

LOG = "main.serving.churn_log"
CHROMIUM = "/usr/bin/chromium"


def _data(home):
    ws = lakebox.Workspace(home)
    rng = np.random.default_rng(0)
    n = 600
    day = rng.integers(0, 3, n)
    x = rng.normal(np.where(day == 2, 2.0, 0.0), 1.0)
    ts = pd.Timestamp("2026-02-01", tz="UTC") + pd.to_timedelta(
        day * 86400 + rng.integers(0, 86400, n), unit="s"
    )
    proba = 1 / (1 + np.exp(-x))
    df = pd.DataFrame(
        {
            "ts": ts,
            "spend": x,
            "plan": np.where(x > 0.5, "pro", "basic"),
            "model_version": "1",
            "proba": proba,
            "prediction": (proba > 0.5).astype(np.int64),
            "churned": (rng.random(n) < proba).astype(np.int64),
        }
    )
    ws.tables.write(LOG, df)
    ws.tables.write("main.fs.training", df[day == 0].drop(columns=["ts"]))
    ws.close()


def test_sdk_quality_monitors_round_trip(lakebox_server, tmp_path):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.errors import InvalidParameterValue, NotFound
    from databricks.sdk.service import catalog

    home = tmp_path / "ws"
    _data(home)
    server = lakebox_server(home=home)
    w = WorkspaceClient(host=server.url, token="unused")
    info = w.quality_monitors.create(
        table_name=LOG,
        output_schema_name="main.serving",
        assets_dir="/unused",
        inference_log=catalog.MonitorInferenceLog(
            timestamp_col="ts",
            granularities=["1 day"],
            model_id_col="model_version",
            prediction_col="prediction",
            label_col="churned",
            prediction_proba_col="proba",
            problem_type=catalog.MonitorInferenceLogProblemType.PROBLEM_TYPE_CLASSIFICATION,
        ),
        baseline_table_name="main.fs.training",
        slicing_exprs=["plan"],
        custom_metrics=[
            catalog.MonitorMetric(
                name="share_high",
                definition="avg(CASE WHEN {{input_column}} > 1 THEN 1 ELSE 0 END)",
                input_columns=["spend"],
                output_data_type="double",
                type=catalog.MonitorMetricType.CUSTOM_METRIC_TYPE_AGGREGATE,
            )
        ],
    )
    assert info.table_name == LOG
    assert info.status == catalog.MonitorInfoStatus.MONITOR_STATUS_ACTIVE
    assert info.drift_metrics_table_name == f"{LOG}_drift_metrics"
    assert info.inference_log.problem_type.value == "PROBLEM_TYPE_CLASSIFICATION"
    got = w.quality_monitors.get(LOG)
    assert got.baseline_table_name == "main.fs.training"
    assert got.custom_metrics[0].name == "share_high"

    refresh = w.quality_monitors.run_refresh(LOG)
    assert refresh.state == catalog.MonitorRefreshInfoState.SUCCESS
    listed = w.quality_monitors.list_refreshes(LOG).refreshes
    assert [r.refresh_id for r in listed] == [refresh.refresh_id]
    one = w.quality_monitors.get_refresh(LOG, refresh.refresh_id)
    assert one.end_time_ms >= one.start_time_ms

    updated = w.quality_monitors.update(
        table_name=LOG,
        output_schema_name="main.serving",
        slicing_exprs=[],
        inference_log=got.inference_log,
        baseline_table_name="main.fs.training",
    )
    assert updated.monitor_version == 2 and not updated.slicing_exprs

    with server.client() as http:
        drift = http.post("/api/2.0/sql/statements", json={}).status_code  # not ours: 404
        assert drift in (404, 405)
        page = http.get(f"/monitoring/reports/{LOG}")
        assert page.status_code == 200 and "plotly-graph-div" in page.text

    with pytest.raises(InvalidParameterValue, match="Granularity 'every day'"):
        w.quality_monitors.create(
            table_name="main.fs.training",
            output_schema_name="main.fs",
            assets_dir="/x",
            time_series=catalog.MonitorTimeSeries(timestamp_col="ts", granularities=["every day"]),
        )
    w.quality_monitors.delete(LOG)
    with pytest.raises(NotFound, match="has no monitor"):
        w.quality_monitors.get(LOG)


def test_cli_and_report_in_chromium(tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian chromium is not installed")
    home = tmp_path / "ws"
    _data(home)
    env_home = ["--home", str(home)]

    def cli(*args):
        out = subprocess.run(
            [sys.executable, "-m", "lakebox", *env_home, "monitors", *args],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "COLUMNS": "300"},
        )
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    cli(
        "create",
        LOG,
        "--profile",
        "inference-log",
        "--timestamp-col",
        "ts",
        "--model-id-col",
        "model_version",
        "--prediction-col",
        "prediction",
        "--label-col",
        "churned",
        "--prediction-proba-col",
        "proba",
        "--baseline",
        "main.fs.training",
    )
    assert LOG in cli("list")
    cli("add-alert", LOG, "js_distance > 0.2 AND drift_type = 'BASELINE'")
    out = cli("refresh", LOG)
    assert "SUCCESS" in out and "ALERT" in out and "spend" in out
    report = cli("report", LOG)
    path = report.split("Report:", 1)[1].split()[0]
    assert "alert" in cli("alerts", LOG)
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=10000",
            "--dump-dom",
            f"file://{path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    html = dom.stdout
    # plotly drew its SVG charts into the page (only happens when the JS ran)
    assert html.count('class="main-svg"') >= 5, dom.stderr[-2000:]
    for div in ("drift-js_distance", "drift-p_value", "quality", "volume", "dist-0"):
        assert f'id="{div}"' in html
    assert "alert-history" in html
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=10000",
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            f"file://{path}",
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 20_000
    cli("delete", LOG)
