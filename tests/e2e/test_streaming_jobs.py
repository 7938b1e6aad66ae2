"""A stream as a long-running job task (``lakebox_task: {type: stream}``), run by a real
job worker process and stopped with ``ws.streams.stop``."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

BUILDER = textwrap.dedent("""
    from lakebox import streaming


    def doubled(ws):
        return (streaming.read_delta(ws, "main.raw.nums")
                .map(lambda df: df.assign(y=df["x"] * 2))
                .write_delta("main.out.nums", query_name="job_stream"))
""")


@pytest.fixture
def builder_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "streamjobs.py").write_text(BUILDER)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", str(folder))


def test_stream_task_runs_until_stopped(ws, builder_on_path) -> None:
    ws.tables.write("main.raw.nums", pd.DataFrame({"x": [1, 2, 3]}))
    job_id = ws.jobs.create(
        {
            "name": "live",
            "tasks": [
                {
                    "task_key": "stream",
                    "lakebox_task": {
                        "type": "stream",
                        "parameters": {
                            "query": "streamjobs:doubled",
                            "processing_time": "0.1 seconds",
                        },
                    },
                }
            ],
        }
    )
    run_id = ws.jobs.run_now(job_id)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if ws.tables.exists("main.out.nums") and len(ws.tables.read("main.out.nums")) == 3:
            break
        time.sleep(0.2)
    ws.tables.write("main.raw.nums", pd.DataFrame({"x": [4]}))  # picked up while running
    while time.monotonic() < deadline and len(ws.tables.read("main.out.nums")) < 4:
        time.sleep(0.2)
    assert ws.streams.status("job_stream")["state"] == "RUNNING"
    ws.streams.stop("job_stream")
    run = ws.jobs.wait(run_id, timeout=120)
    assert run.result_state == "SUCCESS", ws.jobs.logs(run_id, "stream")
    assert sorted(ws.tables.read("main.out.nums")["y"]) == [2, 4, 6, 8]
    assert ws.streams.status("job_stream")["state"] == "STOPPED"


def test_stream_task_with_a_bad_builder_fails_clearly(ws, builder_on_path) -> None:
    job_id = ws.jobs.create(
        {
            "name": "bad",
            "tasks": [
                {
                    "task_key": "stream",
                    "lakebox_task": {"type": "stream", "parameters": {"query": "streamjobs:nope"}},
                }
            ],
        }
    )
    run = ws.jobs.wait(ws.jobs.run_now(job_id), timeout=120)
    assert run.result_state == "FAILED"
    assert "streamjobs:nope" in (run.task("stream").state_message or "") + ws.jobs.logs(
        run.run_id, "stream"
    )
