"""The scheduler and triggers: cron ticks, catch-up policy, no doubles with two schedulers,
table-update and file-arrival triggers (in-process services on a real metadata DB)."""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timezone

import pandas as pd
import pytest
from jobtasks import fn_task
from sqlalchemy import select

from lakebox.jobs import CATCH_UP_LIMIT, JobService, QuartzCron
from lakebox.jobs._service import set_last_tick
from lakebox.jobs._store import now_ms, runs

FAST = {"poll_interval": 0.05, "heartbeat_interval": 0.5, "trigger_interval": 0.1}


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _scheduled(ws, job_id):
    with ws.metadata.begin() as conn:
        return [
            r.scheduled_time
            for r in conn.execute(
                select(runs.c.scheduled_time)
                .where(runs.c.job_id == job_id)
                .where(runs.c.parent_run_id.is_(None))
                .order_by(runs.c.scheduled_time)
            )
        ]


@pytest.fixture
def job(ws):
    ws.jobs.create_cluster("warm", num_workers=1)

    def make(**settings):
        return ws.jobs.create(
            {
                "name": "sched",
                "max_concurrent_runs": 100,
                "tasks": [fn_task("t", "echo", existing_cluster_id="warm")],
                **settings,
            }
        )

    return make


def test_every_second_schedule_fires_each_tick_once(ws, job):
    job_id = job(schedule={"quartz_cron_expression": "* * * * * ?"})
    paused = job(schedule={"quartz_cron_expression": "* * * * * ?", "pause_status": "PAUSED"})
    services = [JobService(ws, **FAST).start(), JobService(ws, **FAST).start()]  # two!
    try:
        _wait_for(lambda: len(_scheduled(ws, job_id)) >= 4)
    finally:
        for s in services:
            s.stop()
    ticks = _scheduled(ws, job_id)
    assert len(ticks) == len(set(ticks))
    assert all(b - a == 1000 for a, b in itertools.pairwise(ticks))
    assert _scheduled(ws, paused) == []
    run = ws.jobs.list_runs(job_id, limit=1)[0]
    assert run.trigger == "PERIODIC"


def test_catch_up_runs_missed_ticks_up_to_the_limit(ws, job):
    minutely = QuartzCron("0 * * * * ?")
    job_id = job(schedule={"quartz_cron_expression": "0 * * * * ?"})
    many = job(schedule={"quartz_cron_expression": "0 * * * * ?"})
    last = now_ms() - 4 * 60_000 - 30_000  # 4.5 minutes of downtime
    set_last_tick(ws.metadata, job_id, last)
    set_last_tick(ws.metadata, many, now_ms() - 60 * 60_000)  # an hour
    service = JobService(ws, **FAST).start()
    try:
        _wait_for(lambda: _scheduled(ws, many))
        latest = ws.jobs.list_runs(job_id, limit=1)[0].run_id
        assert ws.jobs.wait(latest, timeout=60).result_state == "SUCCESS"
    finally:
        service.stop()
    expected = [
        int(t.timestamp() * 1000)
        for t in minutely.fires_between(
            datetime.fromtimestamp(last / 1000, timezone.utc), datetime.now(timezone.utc), limit=100
        )
    ]
    assert _scheduled(ws, job_id) == expected and len(expected) in (4, 5)
    hour = _scheduled(ws, many)
    assert len(hour) == CATCH_UP_LIMIT  # only the most recent missed ticks
    assert hour[-1] == expected[-1]


def test_update_and_unpause_do_not_back_fill(ws, job):
    job_id = job(schedule={"quartz_cron_expression": "* * * * * ?", "pause_status": "PAUSED"})
    set_last_tick(ws.metadata, job_id, now_ms() - 3_600_000)
    ws.jobs.update(
        job_id, {"schedule": {"quartz_cron_expression": "* * * * * ?", "pause_status": "UNPAUSED"}}
    )
    service = JobService(ws, **FAST).start()
    try:
        _wait_for(lambda: _scheduled(ws, job_id))
    finally:
        service.stop()
    assert len(_scheduled(ws, job_id)) <= 3  # ticks since the unpause only


def test_table_update_trigger(ws, job):
    ws.tables.write("main.raw.events", pd.DataFrame({"x": [1]}))
    job_id = job(trigger={"table_update": {"table_names": ["main.raw.events"]}})
    both = job(
        trigger={
            "table_update": {
                "table_names": ["main.raw.events", "raw.other"],
                "condition": "ALL_UPDATED",
            }
        }
    )
    service = JobService(ws, **FAST).start()
    try:
        time.sleep(0.5)  # the first look records versions and does not fire
        assert ws.jobs.list_runs(job_id) == []
        ws.tables.write("main.raw.events", pd.DataFrame({"x": [2]}))
        run = _wait_for(lambda: ws.jobs.list_runs(job_id))[0]
        assert run.trigger == "TABLE"
        assert run.trigger_info["table_update"]["updated_tables"] == ["main.raw.events"]
        time.sleep(0.5)
        assert ws.jobs.list_runs(both) == []  # only one of two tables changed
        ws.tables.write("main.raw.other", pd.DataFrame({"y": [1]}))
        _wait_for(lambda: ws.jobs.list_runs(both))
        assert len(ws.jobs.list_runs(job_id)) == 1  # no new commit on events
    finally:
        service.stop()


def test_file_arrival_trigger(ws, job, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "old.csv").write_text("a\n")
    job_id = job(trigger={"file_arrival": {"url": str(inbox)}})
    service = JobService(ws, **FAST).start()
    try:
        time.sleep(0.5)
        assert ws.jobs.list_runs(job_id) == []
        (inbox / "new.csv").write_text("b\n")
        run = _wait_for(lambda: ws.jobs.list_runs(job_id))[0]
        assert run.trigger == "FILE_ARRIVAL"
        assert run.trigger_info["file_arrival"]["new_files"] == ["new.csv"]
        time.sleep(0.5)
        assert len(ws.jobs.list_runs(job_id)) == 1
    finally:
        service.stop()
