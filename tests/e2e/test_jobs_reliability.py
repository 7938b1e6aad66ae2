"""Kill test: SIGKILL `lakebox worker` (scheduler and runner) mid-run and between schedule ticks.

After each restart no schedule tick is lost or doubled (the catch-up policy covers the
downtime), the run that was interrupted is marked orphaned and retried per its max_retries,
and every run ends.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

import lakebox
from lakebox.jobs import CATCH_UP_LIMIT
from lakebox.jobs._store import runs, services

pytestmark = pytest.mark.slow

TASKS_DIR = str(Path(__file__).parents[1] / "unit" / "jobs")  # jobtasks.py
EVERY = 2  # seconds between ticks


def _start(home: Path, ws) -> subprocess.Popen[bytes]:
    """`lakebox worker` as a real process; returns once its jobs service has registered."""
    env = {**os.environ, "LAKEBOX_HOME": str(home), "PYTHONPATH": TASKS_DIR}
    env.pop("LAKEBOX_BACKGROUND_SERVICES", None)
    log = open(home.parent / "worker.log", "ab")  # noqa: SIM115 - lives with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "lakebox", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
    )

    def registered() -> bool:
        assert process.poll() is None, (home.parent / "worker.log").read_text()[-2000:]
        with ws.metadata.begin() as conn:
            return (
                conn.execute(select(services.c.pid).where(services.c.pid == process.pid)).first()
                is not None
            )

    _wait(registered, timeout=90, what="lakebox worker to start")
    return process


def _kill(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _wait(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _ticks(ws, job_id: int) -> list[int]:
    with ws.metadata.begin() as conn:
        return [
            r.scheduled_time
            for r in conn.execute(
                select(runs.c.scheduled_time)
                .where(runs.c.job_id == job_id)
                .where(runs.c.parent_run_id.is_(None))
                .order_by(runs.c.run_id)
            )
        ]


def test_sigkill_scheduler_mid_run_and_between_ticks(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEBOX_BACKGROUND_SERVICES", "1")  # never run jobs in this process
    monkeypatch.syspath_prepend(TASKS_DIR)
    home = tmp_path / "ws"
    ws = lakebox.Workspace(home)
    out = tmp_path / "out.txt"
    scheduled = ws.jobs.create(
        {
            "name": "every-2s",
            "max_concurrent_runs": 50,
            "schedule": {"quartz_cron_expression": f"*/{EVERY} * * * * ?"},
            "tasks": [
                {
                    "task_key": "t",
                    "max_retries": 2,
                    "python_function_task": {
                        "function": "jobtasks:append_line",
                        "parameters": {"path": str(out), "text": "{{job.run_id}}"},
                    },
                }
            ],
        }
    )
    long_job = ws.jobs.create(
        {
            "name": "long",
            "tasks": [
                {"task_key": "first", "python_function_task": {"function": "jobtasks:echo"}},
                {
                    "task_key": "slow",
                    "depends_on": [{"task_key": "first"}],
                    "max_retries": 1,
                    "python_function_task": {
                        "function": "jobtasks:sleep",
                        "parameters": {"seconds": 3},
                    },
                },
            ],
        }
    )
    worker = _start(home, ws)
    _wait(lambda: len(_ticks(ws, scheduled)) >= 2, what="two scheduled runs")
    run_id = ws.jobs.run_now(long_job)  # queued in the database, picked up by the worker

    def slow_running():
        run = ws.jobs.get_run(run_id)
        return any(t.task_key == "slow" and t.life_cycle_state == "RUNNING" for t in run.tasks)

    _wait(slow_running, what="the slow task to run")
    _kill(worker)  # 1: mid-run
    killed_at = time.time()

    worker = _start(home, ws)
    assert time.time() - killed_at < CATCH_UP_LIMIT * EVERY, (
        "restart slower than the catch-up window"
    )
    run = _wait(lambda: (r := ws.jobs.get_run(run_id)).done and r, what="the interrupted run")
    slow = [t for t in run.attempts if t.task_key == "slow"]
    assert [(t.attempt_number, t.life_cycle_state, t.result_state) for t in slow] == [
        (0, "INTERNAL_ERROR", "FAILED"),
        (1, "TERMINATED", "SUCCESS"),
    ]
    assert "Orphaned" in slow[0].state_message
    assert [t.task_key for t in run.attempts].count("first") == 1  # finished work not redone
    assert run.result_state == "SUCCESS"

    # 2: between ticks, just after a tick's run was created
    count = len(_ticks(ws, scheduled))
    _wait(lambda: len(_ticks(ws, scheduled)) > count, what="a new tick")
    time.sleep(0.3)
    _kill(worker)
    time.sleep(EVERY * 1.5)
    worker = _start(home, ws)
    count = len(_ticks(ws, scheduled))
    _wait(lambda: len(_ticks(ws, scheduled)) >= count + 2, what="ticks after the restart")
    ws.jobs.update(
        scheduled,
        {"schedule": {"quartz_cron_expression": f"*/{EVERY} * * * * ?", "pause_status": "PAUSED"}},
    )
    _wait(
        lambda: all(r.done for r in ws.jobs.list_runs(scheduled, limit=0)),
        what="every scheduled run to end",
    )

    ticks = _ticks(ws, scheduled)
    assert len(ticks) == len(set(ticks)), "a tick was doubled"
    assert ticks == sorted(ticks)
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert set(gaps) == {EVERY * 1000}, f"a tick was lost: gaps {gaps}"
    results = [r.result_state for r in ws.jobs.list_runs(scheduled, limit=0)]
    assert set(results) == {"SUCCESS"}, results
    worker.send_signal(signal.SIGTERM)
    worker.wait(30)
    ws.close()
