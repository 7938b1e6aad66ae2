"""The refresh_monitor job task type and scheduled refreshes through ws.jobs."""

from __future__ import annotations

import pandas as pd

from lakebox.monitoring import TimeSeries

LOG = "main.serving.events"


def _table(ws):
    ws.tables.write(
        LOG,
        pd.DataFrame(
            {
                "ts": pd.date_range("2026-01-01", periods=48, freq="h", tz="UTC"),
                "x": [float(i % 7) for i in range(48)],
            }
        ),
    )


def test_refresh_monitor_task_runs_in_a_job(ws):
    from lakebox.jobs import task_types

    assert task_types()["refresh_monitor"].target == "lakebox.monitoring._tasks:refresh_monitor"
    _table(ws)
    ws.monitors.create(LOG, TimeSeries("ts", ["1 day"]))
    job_id = ws.jobs.create(
        {
            "name": "refresh",
            "tasks": [
                {
                    "task_key": "r",
                    "lakebox_task": {"type": "refresh_monitor", "parameters": {"table_name": LOG}},
                }
            ],
        }
    )
    run = ws.jobs.wait(ws.jobs.run_now(job_id), timeout=300)
    assert run.result_state == "SUCCESS", run.state_message
    refreshes = ws.monitors.list_refreshes(LOG)
    assert [(r.state, r.trigger, r.mode) for r in refreshes] == [("SUCCESS", "SCHEDULE", "full")]
    assert ws.monitors.profile_metrics(LOG).num_rows > 0


def test_schedule_creates_and_removes_a_refresh_job(ws):
    _table(ws)
    info = ws.monitors.create(
        LOG,
        TimeSeries("ts", ["1 day"]),
        schedule={"quartz_cron_expression": "0 0 6 * * ?", "timezone_id": "UTC"},
    )
    assert info.refresh_job_id is not None
    job = ws.jobs.get(info.refresh_job_id)
    assert job.settings["schedule"]["quartz_cron_expression"] == "0 0 6 * * ?"
    task = job.settings["tasks"][0]["lakebox_task"]
    assert task == {
        "type": "refresh_monitor",
        "parameters": {"table_name": LOG, "trigger": "SCHEDULE"},
    }
    assert ws.monitors.get(LOG).refresh_job_id == info.refresh_job_id
    ws.monitors.delete(LOG)
    assert all(j.job_id != info.refresh_job_id for j in ws.jobs.list())
