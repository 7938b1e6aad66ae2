"""Jobs with the metadata database on PostgreSQL: claims, task runs, task values and SQL tasks
(workers open the runner's workspace with the same settings)."""

from __future__ import annotations

import uuid

import pandas as pd
from jobtasks import fn_task

import lakebox


def test_jobs_on_postgresql(tmp_path, postgres_url):
    ws = lakebox.Workspace(tmp_path / "ws", settings={"metadata": {"url": postgres_url}})
    try:
        table = f"main.pg.t_{uuid.uuid4().hex[:8]}"
        ws.tables.write(table, pd.DataFrame({"x": [1, 2, 3]}))
        job_id = ws.jobs.create(
            {
                "name": f"pg-{uuid.uuid4().hex[:6]}",
                "tasks": [
                    fn_task("a", "add", parameters={"a": 1}),
                    fn_task(
                        "b",
                        "echo",
                        depends_on=["a"],
                        parameters={"value": "{{tasks.a.values.sum}}"},
                    ),
                    {
                        "task_key": "sql",
                        "depends_on": [{"task_key": "b"}],
                        "sql_task": {"query": f"SELECT sum(x) AS s FROM {table}"},
                    },
                ],
            }
        )
        run = ws.jobs.wait(ws.jobs.run_now(job_id), timeout=180)
        assert run.result_state == "SUCCESS", run.state_message
        assert run.task("b").output["result"] == 2
        assert run.task("sql").output["result"]["rows"] == [{"s": 6}]
        assert ws.jobs.list_runs(job_id)[0].run_id == run.run_id
    finally:
        ws.close()
