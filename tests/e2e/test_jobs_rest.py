"""The Jobs API through `lakebox up` with the real `databricks-sdk` (2.2) and plain HTTP (2.1)."""

from __future__ import annotations

import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.server

TASKS = textwrap.dedent("""
    import time
    from lakebox.jobs import task_values

    def produce(n: int = 1):
        print("producing", n)
        task_values.set("n", n * 2)
        return n * 2

    def fail_once(marker: str):
        import os
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("first attempt fails")
        return "ok"

    def slow(seconds: float = 30):
        time.sleep(seconds)
""")


@pytest.fixture
def server(lakebox_server, tmp_path: Path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "sdk_tasks.py").write_text(TASKS)
    return lakebox_server(extra_env={"PYTHONPATH": str(code)})


def _client(server):
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient(host=server.url, token=server.token or "unused")


def test_sdk_create_run_now_result_get_run_list_output(server, tmp_path):
    from databricks.sdk.service import jobs

    w = _client(server)
    created = w.jobs.create(
        name="sdk-job",
        parameters=[jobs.JobParameterDefinition(name="n", default="3")],
        tasks=[
            jobs.Task(
                task_key="sql",
                sql_task=jobs.SqlTask(
                    file=jobs.SqlTaskFile(path=str(_sql_file(tmp_path))), warehouse_id="local"
                ),
            ),
            jobs.Task(
                task_key="py",
                depends_on=[jobs.TaskDependency(task_key="sql")],
                spark_python_task=jobs.SparkPythonTask(
                    python_file=str(_script(tmp_path)), parameters=["{{job.parameters.n}}"]
                ),
            ),
        ],
    )
    assert created.job_id
    run = w.jobs.run_now(job_id=created.job_id, job_parameters={"n": "5"}).result(
        timeout=timedelta(seconds=120)
    )
    assert run.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert [t.task_key for t in run.tasks] == ["sql", "py"]
    got = w.jobs.get_run(run.run_id)
    assert got.job_id == created.job_id and got.trigger == jobs.TriggerType.ONE_TIME
    py_task = next(t for t in got.tasks if t.task_key == "py")
    output = w.jobs.get_run_output(py_task.run_id)
    assert "argv ['5']" in output.logs
    sql_task = next(t for t in got.tasks if t.task_key == "sql")
    with server.client() as http:  # lakebox's SQL rows are not in the SDK's SqlOutput type
        raw = http.get("/api/2.1/jobs/runs/get-output", params={"run_id": sql_task.run_id})
    assert raw.json()["sql_output"]["rows"] == [{"answer": 42}]
    assert [j.job_id for j in w.jobs.list()] == [created.job_id]
    assert any(r.run_id == run.run_id for r in w.jobs.list_runs(job_id=created.job_id))
    assert w.jobs.get(created.job_id).settings.name == "sdk-job"


def _sql_file(tmp_path: Path) -> Path:
    path = tmp_path / "q.sql"
    path.write_text("SELECT 42 AS answer")
    return path


def _script(tmp_path: Path) -> Path:
    path = tmp_path / "script.py"
    path.write_text("import sys\nprint('argv', sys.argv[1:])\n")
    return path


def test_sdk_cancel_repair_update_delete_and_errors(server, tmp_path):
    from databricks.sdk.errors import InvalidParameterValue, NotFound
    from databricks.sdk.service import jobs

    w = _client(server)
    marker = tmp_path / "marker"
    body = {
        "name": "repairable",
        "tasks": [
            {
                "task_key": "flaky",
                "python_function_task": {
                    "function": "sdk_tasks:fail_once",
                    "parameters": {"marker": str(marker)},
                },
            },
            {
                "task_key": "after",
                "depends_on": [{"task_key": "flaky"}],
                "python_function_task": {"function": "sdk_tasks:produce", "parameters": {"n": 2}},
            },
        ],
    }
    with server.client() as http:
        job_id = http.post("/api/2.1/jobs/create", json=body).json()["job_id"]
        run_id = http.post("/api/2.1/jobs/run-now", json={"job_id": job_id}).json()["run_id"]
    run = w.jobs.wait_get_run_job_terminated_or_skipped(run_id)
    assert run.state.result_state == jobs.RunResultState.FAILED
    states = {t.task_key: t.state.result_state for t in run.tasks}
    assert states == {
        "flaky": jobs.RunResultState.FAILED,
        "after": jobs.RunResultState.UPSTREAM_FAILED,
    }
    repaired = w.jobs.repair_run(run_id=run_id, rerun_all_failed_tasks=True).result()
    assert repaired.state.result_state == jobs.RunResultState.SUCCESS
    assert len(repaired.repair_history) == 2

    with server.client() as http:
        slow = http.post(
            "/api/2.2/jobs/create",
            json={
                "name": "slow",
                "tasks": [
                    {"task_key": "s", "python_function_task": {"function": "sdk_tasks:slow"}}
                ],
            },
        ).json()["job_id"]
    waiter = w.jobs.run_now(job_id=slow)
    deadline = time.monotonic() + 60
    while w.jobs.get_run(waiter.run_id).state.life_cycle_state != jobs.RunLifeCycleState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    canceled = w.jobs.cancel_run(run_id=waiter.run_id).result()
    assert canceled.state.result_state == jobs.RunResultState.CANCELED

    w.jobs.update(job_id=slow, new_settings=jobs.JobSettings(name="renamed", max_concurrent_runs=3))
    assert w.jobs.get(slow).settings.name == "renamed"
    assert w.jobs.get(slow).settings.max_concurrent_runs == 3
    w.jobs.delete(job_id=slow)
    with pytest.raises(NotFound):
        w.jobs.get(slow)
    with pytest.raises(InvalidParameterValue, match="cycle"):
        w.jobs.create(
            name="bad",
            tasks=[
                jobs.Task(
                    task_key="a",
                    depends_on=[jobs.TaskDependency(task_key="b")],
                    spark_python_task=jobs.SparkPythonTask(python_file=str(_script(tmp_path))),
                ),
                jobs.Task(
                    task_key="b",
                    depends_on=[jobs.TaskDependency(task_key="a")],
                    spark_python_task=jobs.SparkPythonTask(python_file=str(_script(tmp_path))),
                ),
            ],
        )
    assert [j.settings.name for j in w.jobs.list()] == ["repairable"]
