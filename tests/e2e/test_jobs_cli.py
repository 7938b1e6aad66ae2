"""Jobs through the `lakebox jobs` command line: create -f job.yaml, list, run, runs, logs,
cancel, repair, clusters."""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import lakebox
from lakebox.cli import app

TASKS_DIR = str(Path(__file__).parents[1] / "unit" / "jobs")  # jobtasks.py


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(TASKS_DIR)
    monkeypatch.setenv("PYTHONPATH", TASKS_DIR)
    home = tmp_path / "ws"
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, ["--home", str(home), *args])
        assert result.exit_code == code, result.output
        return result

    run.home = home
    yield run
    from lakebox.jobs._api import stop_embedded_runners

    stop_embedded_runners()


def test_jobs_cli_lifecycle(cli, tmp_path):
    marker = tmp_path / "marker"
    (tmp_path / "script.py").write_text("import sys\nprint('script args', sys.argv[1:])\n")
    (tmp_path / "job.yaml").write_text(
        textwrap.dedent(f"""
        name: cli-job
        parameters:
          - {{name: day, default: "2026-01-01"}}
        tasks:
          - task_key: script
            existing_cluster_id: warm
            spark_python_task:
              python_file: script.py
              parameters: ["--day", "{{{{job.parameters.day}}}}"]
          - task_key: flaky
            depends_on: [{{task_key: script}}]
            existing_cluster_id: warm
            python_function_task:
              function: jobtasks:fail_until
              parameters: {{marker: "{marker}", times: 1}}
    """)
    )
    cli("jobs", "clusters", "create", "warm", "--workers", "1")
    assert "warm" in cli("jobs", "clusters", "list").output
    out = cli("jobs", "create", "-f", str(tmp_path / "job.yaml")).output
    job_id = re.search(r"Created job (\d+)", out).group(1)
    assert "cli-job" in cli("jobs", "list").output
    failed = cli("jobs", "run", job_id, "-p", "day=2026-02-02", code=1).output
    run_id = re.search(r"Started run (\d+)", failed).group(1)
    assert "FAILED" in failed and "UPSTREAM" not in failed
    runs = cli("jobs", "runs", job_id).output
    assert run_id in runs and "FAILED" in runs
    logs = cli("jobs", "logs", run_id, "--task", "script").output
    assert "script args ['--day', '2026-02-02']" in logs
    assert "RuntimeError: failure 1" in cli("jobs", "logs", run_id).output
    repaired = cli("jobs", "repair", run_id).output
    assert "Repair 1" in repaired and "SUCCESS" in repaired
    # bad input: a clear one-line error, nothing stored
    (tmp_path / "bad.yaml").write_text(
        "name: bad\ntasks:\n  - task_key: a\n    depends_on: [b]\n    sql_task: {query: SELECT 1}\n"
    )
    bad = cli("jobs", "create", "-f", str(tmp_path / "bad.yaml"), code=1)
    assert "unknown task_key 'b'" in bad.output and "Traceback" not in bad.output
    assert cli("jobs", "list").output.count("bad") == 0


def test_jobs_cli_cancel(cli, tmp_path):
    (tmp_path / "slow.json").write_text(
        '{"name": "slow", "tasks": [{"task_key": "s", "lakebox_task": '
        '{"type": "sleep", "parameters": {"seconds": 60}}}]}'
    )
    job_id = re.search(
        r"Created job (\d+)", cli("jobs", "create", "-f", str(tmp_path / "slow.json")).output
    ).group(1)
    out = cli("jobs", "run", job_id, "--no-wait").output
    run_id = int(re.search(r"Started run (\d+)", out).group(1))
    ws = lakebox.Workspace(cli.home)
    deadline = time.monotonic() + 60
    while not any(t.life_cycle_state == "RUNNING" for t in ws.jobs.get_run(run_id).tasks):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "Cancel requested" in cli("jobs", "cancel", str(run_id)).output
    from lakebox.cli._common import state

    assert state["ws"].jobs.wait(run_id, timeout=30).result_state == "CANCELED"
    ws.close()
    assert "CANCELED" in cli("jobs", "show", str(run_id)).output
