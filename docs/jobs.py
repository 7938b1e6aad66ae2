"""Jobs in five minutes: a multi-task job with parameters, task values, run_if and a repair.

Run it: ``python docs/jobs.py`` (uses ``$LAKEBOX_HOME`` or ``./.lakebox``). See docs/jobs.md.
"""

import pandas as pd

import lakebox

ws = lakebox.Workspace()
ws.tables.write(
    "main.raw.orders",
    pd.DataFrame({"day": ["d1", "d1", "d2"], "amount": [3, 4, 5]}),
    mode="overwrite",
)
if "docs-warm" not in [c["cluster_id"] for c in ws.jobs.list_clusters()]:
    ws.jobs.create_cluster("docs-warm", num_workers=1)  # an all-purpose cluster: a warm pool

job_id = ws.jobs.create(
    {
        "name": "orders report",
        "parameters": [{"name": "day", "default": "d1"}],
        "tasks": [
            # SQL over the catalog's Delta tables; {{job.parameters.day}} is filled in per run
            {
                "task_key": "total",
                "existing_cluster_id": "docs-warm",
                "sql_task": {
                    "query": "SELECT sum(amount) AS total FROM main.raw.orders "
                    "WHERE day = '{{job.parameters.day}}'"
                },
            },
            # any importable function: "module:function" with parameters
            {
                "task_key": "mean",
                "existing_cluster_id": "docs-warm",
                "python_function_task": {
                    "function": "statistics:mean",
                    "parameters": {"data": [1, 2, 3, 4]},
                },
            },
            # branch on a value: dependents choose the outcome they need
            {
                "task_key": "big_day",
                "depends_on": [{"task_key": "total"}],
                "condition_task": {
                    "op": "GREATER_THAN",
                    "left": "{{job.parameters.day}}",
                    "right": "d1",
                },
            },
            {
                "task_key": "compact",
                "depends_on": [{"task_key": "big_day", "outcome": "true"}],
                "existing_cluster_id": "docs-warm",
                "lakebox_task": {
                    "type": "optimize-table",
                    "parameters": {"name": "main.raw.orders"},
                },
            },
            # runs whatever happened upstream
            {
                "task_key": "always",
                "depends_on": [{"task_key": "mean"}, {"task_key": "compact"}],
                "run_if": "ALL_DONE",
                "existing_cluster_id": "docs-warm",
                "python_function_task": {
                    "function": "statistics:median",
                    "parameters": {"data": [5, 1, 3]},
                },
            },
        ],
    }
)

run = ws.jobs.wait(ws.jobs.run_now(job_id, job_parameters={"day": "d2"}), timeout=300)
print(f"run {run.run_id}: {run.result_state}")
for task in run.tasks:
    print(f"  {task.task_key:8} {task.result_state:9} {task.output.get('result')}")
assert run.result_state == "SUCCESS"
assert run.task("total").output["result"]["rows"] == [{"total": 5}]
assert run.task("compact").result_state == "SUCCESS"  # "d2" > "d1": the true branch ran

run = ws.jobs.wait(ws.jobs.run_now(job_id), timeout=300)  # day d1: the false branch
assert run.task("compact").result_state == "EXCLUDED"
assert run.task("always").result_state == "SUCCESS"

# Repair re-runs chosen (or all failed) tasks inside the same run
ws.jobs.repair_run(run.run_id, rerun_tasks=["mean"])
ws.jobs.wait(run.run_id, timeout=300)
print(
    "attempts after repair:",
    [(t.task_key, t.repair_id) for t in ws.jobs.get_run(run.run_id).attempts],
)
print(ws.jobs.logs(run.run_id, "total"))
ws.jobs.delete(job_id)
ws.close()
