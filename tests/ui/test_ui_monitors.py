"""Monitor pages: fast TestClient tests on a workspace with a drifting monitored table, and a
browser test on the demo server (open the dashboard, see the charts, refresh)."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from lakebox.monitoring import InferenceLog
from lakebox.server import create_app

LOG = "main.uimon.log"
BASE = "main.uimon.base"
DEMO_MONITOR = "main.monitoring.churn_inference_log"


def _text(page: str) -> str:
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", page).split()))


def _log(days: int, *, shift_from: int | None, seed: int) -> pd.DataFrame:
    """Scored rows per day; ``x`` shifts from day ``shift_from`` on."""
    rng = np.random.default_rng(seed)
    frames = []
    for day in range(days):
        x = rng.normal(2.0 if shift_from is not None and day >= shift_from else 0.0, 1.0, 200)
        proba = 1 / (1 + np.exp(-x))
        frames.append(
            pd.DataFrame(
                {
                    "ts": pd.Timestamp("2026-01-01", tz="UTC")
                    + pd.Timedelta(days=day)
                    + pd.to_timedelta(rng.integers(0, 86400, 200), unit="s"),
                    "x": x,
                    "model_version": "1",
                    "proba": proba,
                    "prediction": (proba > 0.5).astype(np.int64),
                    "churned": (rng.random(200) < proba).astype(np.int64),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def mws(ws):  # type: ignore[no-untyped-def]
    """A monitor on :data:`LOG` (drifting on its last day) against :data:`BASE`, with an
    alert on ``x`` and one refresh done."""
    ws.tables.write(LOG, _log(3, shift_from=2, seed=1))
    ws.tables.write(BASE, _log(1, shift_from=None, seed=2).drop(columns=["ts"]))
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
    )
    ws.monitors.add_alert(
        LOG, "js_distance > 0.2 AND drift_type = 'BASELINE' AND column_name = 'x'"
    )
    ws.monitors.refresh(LOG)
    return ws


@pytest.fixture
def client(mws) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_app(mws, token="", mount_mlflow=False))


def _csrf(client: TestClient) -> dict[str, str]:
    client.get("/ui/monitors")
    return {"X-CSRF-Token": client.cookies["lakebox_csrf"], "HX-Request": "true"}


def test_list_shows_type_last_refresh_and_open_alerts(client):
    page = client.get("/ui/monitors")
    assert page.status_code == 200
    row = page.text.split(f'data-testid="monitor-{LOG}"')[1].split("</tr>")[0]
    text = _text(row)
    assert "inference log" in text
    assert "SUCCESS" in text
    assert "1 firing" in text  # the drifted last day breaks the rule
    assert f'href="/ui/monitors/{LOG}"' in row


def test_an_alert_no_longer_holding_in_the_newest_window_is_not_open(mws, client):
    # a calm new day: the incremental refresh computes it, the rule no longer holds there
    mws.tables.write(LOG, _log(4, shift_from=None, seed=3).iloc[600:])
    mws.monitors.refresh(LOG)
    assert len(mws.monitors.alert_history(LOG)) == 1  # it did fire once
    row = client.get("/ui/monitors").text.split(f'data-testid="monitor-{LOG}"')[1]
    assert "none" in _text(row.split("</tr>")[0])


def test_dashboard_links_the_tables_and_draws_the_reports_charts(client):
    page = client.get(f"/ui/monitors/{LOG}")
    assert page.status_code == 200
    assert 'href="/ui/catalog/main/uimon/log"' in page.text
    assert 'href="/ui/catalog/main/uimon/base"' in page.text
    assert 'href="/ui/catalog/main/uimon/log_drift_metrics"' in page.text
    assert "/ui/static/plotly.min.js" in page.text
    assert 'data-testid="refresh-button"' in page.text
    charts = client.get(f"/ui/monitors/{LOG}/charts")
    assert charts.status_code == 200
    for div in ("drift-js_distance", "drift-p_value", "quality", "volume", "dist-0"):
        assert f'id="{div}"' in charts.text, div
    assert "Plotly.newPlot" in charts.text
    activity = client.get(f"/ui/monitors/{LOG}/activity")
    text = _text(activity.text)
    assert "firing" in text and "js_distance > 0.2" in text
    history = activity.text.split('data-testid="alert-history"')[1].split("</table>")[0]
    assert "1 row(s): x" in _text(history) or "row(s): x" in _text(history)
    assert "full refresh of main.uimon.log" in text


def test_refresh_button_runs_a_refresh_in_the_background_until_it_succeeds(client, mws):
    before = {r.refresh_id for r in mws.monitors.list_refreshes(LOG)}
    headers = _csrf(client)
    started = client.post(f"/ui/monitors/{LOG}/refresh", data={"mode": "full"}, headers=headers)
    assert started.status_code == 200
    after = re.search(r"refresh-status\?after=(\d+)", started.text)
    assert after is not None and int(after.group(1)) == max(before)
    state, answer = _wait_for_refresh(client, after.group(1))
    assert state == "SUCCESS", answer.text
    assert answer.headers["HX-Trigger"] == "monitor-refreshed"
    assert "hx-get" not in answer.text  # polling stops
    new = [r for r in mws.monitors.list_refreshes(LOG) if r.refresh_id not in before]
    assert len(new) == 1 and new[0].state == "SUCCESS" and new[0].mode == "full"
    summary = client.get(f"/ui/monitors/{LOG}/summary")
    assert "2 refreshes" in _text(summary.text)


def _wait_for_refresh(client: TestClient, after: str) -> Any:
    state, answer = "PENDING", None
    deadline = time.monotonic() + 120
    while state not in ("SUCCESS", "FAILED") and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = client.get(f"/ui/monitors/{LOG}/refresh-status?after={after}")
        found = re.search(r'data-state="(\w+)"', answer.text)
        assert found is not None
        state = found.group(1)
    return state, answer


def test_a_failing_refresh_shows_failed_with_the_reason(client, mws):
    # the monitored table loses its timestamp column: the refresh cannot run
    mws.tables.write(
        LOG,
        _log(1, shift_from=None, seed=3).drop(columns=["ts"]),
        mode="overwrite",
        overwrite_schema=True,
    )
    headers = _csrf(client)
    started = client.post(f"/ui/monitors/{LOG}/refresh", headers=headers)
    after = re.search(r"refresh-status\?after=(\d+)", started.text)
    assert after is not None
    state, answer = _wait_for_refresh(client, after.group(1))
    assert state == "FAILED"
    assert "timestamp_col 'ts' is not a column" in html.unescape(answer.text)
    assert mws.monitors.list_refreshes(LOG)[0].state == "FAILED"
    listed = client.get("/ui/monitors").text.split(f'data-testid="monitor-{LOG}"')[1]
    assert "FAILED" in _text(listed.split("</tr>")[0])


def test_a_monitor_never_refreshed_renders_without_charts(ws):
    ws.tables.write(LOG, _log(2, shift_from=None, seed=1))
    ws.monitors.create(
        LOG,
        InferenceLog("ts", ["1 day"], prediction_col="prediction", model_id_col="model_version"),
    )
    client = TestClient(create_app(ws, token="", mount_mlflow=False))
    row = client.get("/ui/monitors").text.split(f'data-testid="monitor-{LOG}"')[1]
    assert "never" in _text(row.split("</tr>")[0])
    assert client.get(f"/ui/monitors/{LOG}").status_code == 200
    charts = client.get(f"/ui/monitors/{LOG}/charts")
    assert charts.status_code == 200 and "No drift metrics yet" in charts.text
    assert "Never refreshed" in client.get(f"/ui/monitors/{LOG}/activity").text
    # with no refresh running, the status fragment is empty and stops polling
    status = client.get(f"/ui/monitors/{LOG}/refresh-status?after=0")
    assert 'data-state="NONE"' in status.text and "hx-get" not in status.text


def test_refresh_needs_the_csrf_token(client, mws):
    client.get("/ui/monitors")
    refused = client.post(f"/ui/monitors/{LOG}/refresh")
    assert refused.status_code == 403 and "CSRF token" in refused.text
    assert len(mws.monitors.list_refreshes(LOG)) == 1


def test_unknown_monitor_is_a_404_naming_it(client):
    page = client.get("/ui/monitors/main.uimon.nope")
    assert page.status_code == 404
    assert "main.uimon.nope" in html.unescape(page.text)
    headers = _csrf(client)
    refresh = client.post("/ui/monitors/main.uimon.nope/refresh", headers=headers)
    assert refresh.status_code == 404 and "main.uimon.nope" in html.unescape(refresh.text)
    assert client.get("/ui/monitors/main.uimon.nope/charts").status_code == 404


def test_empty_workspace_lists_no_monitors(ws):
    client = TestClient(create_app(ws, token="", mount_mlflow=False))
    page = client.get("/ui/monitors")
    assert page.status_code == 200 and "No monitors yet" in page.text


# ----------------------------------------------------------------------------- browser
def _refreshes(ui_server: Any) -> list[dict[str, Any]]:
    with ui_server.client() as api:
        answer = api.get(f"/api/2.1/unity-catalog/tables/{DEMO_MONITOR}/monitor/refreshes")
        answer.raise_for_status()
        return list(answer.json()["refreshes"])


@pytest.mark.server
def test_open_the_monitor_dashboard_and_refresh(page, ui_server, shot):
    before = {r["refresh_id"] for r in _refreshes(ui_server)}
    page.goto("/ui/monitors")
    row = page.locator(f'[data-testid="monitor-{DEMO_MONITOR}"]')
    assert "SUCCESS" in row.inner_text()
    shot(page, "monitors-list")
    row.locator("a").first.click()
    page.wait_for_url(f"**/ui/monitors/{DEMO_MONITOR}")
    # plotly draws each chart as SVG
    page.wait_for_selector('[data-testid="section-drift"] .main-svg')
    page.wait_for_selector('[data-testid="section-quality"] .main-svg')
    assert page.locator('[data-testid="section-drift"] .js-plotly-plot').count() == 2
    assert page.locator('[data-testid="alert-history"] tbody tr').count() >= 1
    assert page.locator('[data-testid="table-link"]').get_attribute("href") == (
        "/ui/catalog/main/monitoring/churn_inference_log"
    )
    shot(page, "monitor-dashboard")
    page.click('[data-testid="refresh-button"]')
    page.wait_for_selector('[data-testid="refresh-status"][data-state="SUCCESS"]', timeout=120_000)
    # a new refresh, finished, seen through the REST API
    new = [r for r in _refreshes(ui_server) if r["refresh_id"] not in before]
    assert len(new) == 1 and new[0]["state"] == "SUCCESS"
    # the history and charts reloaded: the new refresh is listed and the charts drawn again
    page.wait_for_selector(f'[data-testid="refresh-{new[0]["refresh_id"]}"]')
    page.wait_for_selector('[data-testid="section-drift"] .main-svg')
    assert page.locator('[data-testid="section-drift"] .js-plotly-plot').count() == 2
    shot(page, "monitor-refreshed")
