"""Running jobs through ws.jobs: DAGs, run_if, retries, timeouts, cancel, repair, clusters,
task values, task types, logs and outputs (real worker processes, real metadata DB)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from jobtasks import fn_task

from lakebox.errors import Conflict, InvalidInput, NotFound

WARM = {"existing_cluster_id": "warm"}


@pytest.fixture
def jobs(ws):
    ws.jobs.create_cluster("warm", num_workers=2)
    return ws.jobs


def _run(jobs, settings: dict, **kwargs):
    job_id = jobs.create(settings)
    return jobs.wait(jobs.run_now(job_id, **kwargs), timeout=120)


def _states(run) -> dict[str, str | None]:
    return {t.task_key: t.result_state for t in run.tasks}


def test_dag_task_values_references_and_outputs(jobs):
    run = _run(
        jobs,
        {
            "name": "dag",
            "parameters": [{"name": "n", "default": "4"}],
            "tasks": [
                fn_task("a", "add", parameters={"a": 2}, **WARM),
                fn_task("b", "read_sum", depends_on=[{"task_key": "a"}], **WARM),
                fn_task(
                    "c",
                    "echo",
                    depends_on=[{"task_key": "a"}],
                    **WARM,
                    parameters={"value": "{{tasks.a.values.sum}} and {{job.parameters.n}}"},
                ),
                fn_task(
                    "d",
                    "echo",
                    depends_on=["b", "c"],
                    **WARM,
                    parameters={"value": "{{tasks.a.values.sum}}"},
                ),
            ],
        },
        job_parameters={"n": "9"},
    )
    assert (run.life_cycle_state, run.result_state) == ("TERMINATED", "SUCCESS")
    assert run.trigger == "ONE_TIME" and run.job_parameters == {"n": "9"}
    assert run.task("b").output["result"] == 3
    assert run.task("c").output["result"] == "3 and 9"
    assert run.task("d").output["result"] == 3  # a whole reference keeps its type
    assert run.task("a").output["values"] == {"sum": 3}
    assert "adding 2 + 1" in jobs.logs(run.run_id, "a")
    out = jobs.get_run_output(run.task("d").run_id)
    assert json.loads(out["notebook_output"]["result"]) == 3
    assert out["metadata"]["tasks"][0]["task_key"] == "d"
    with pytest.raises(InvalidInput, match="has 4 tasks"):
        jobs.get_run_output(run.run_id)


RUN_IF_EXPECTED = {
    "ALL_SUCCESS": "UPSTREAM_FAILED",
    "AT_LEAST_ONE_SUCCESS": "SUCCESS",
    "NONE_FAILED": "UPSTREAM_FAILED",
    "ALL_DONE": "SUCCESS",
    "AT_LEAST_ONE_FAILED": "SUCCESS",
    "ALL_FAILED": "EXCLUDED",
}


def test_run_if_and_leaf_based_result(jobs):
    tasks = [fn_task("ok", "echo", **WARM), fn_task("bad", "fail", **WARM)]
    tasks += [
        fn_task(run_if.lower(), "echo", depends_on=["ok", "bad"], run_if=run_if, **WARM)
        for run_if in RUN_IF_EXPECTED
    ]
    run = _run(jobs, {"name": "run_if", "tasks": tasks})
    assert _states(run) == {
        "ok": "SUCCESS",
        "bad": "FAILED",
        **{k.lower(): v for k, v in RUN_IF_EXPECTED.items()},
    }
    assert run.task("all_failed").life_cycle_state == "SKIPPED"
    assert run.task("all_done").life_cycle_state == "TERMINATED"
    # judged by the leaves: two leaves are UPSTREAM_FAILED
    assert run.result_state == "FAILED"
    handled = _run(
        jobs,
        {
            "name": "handled",
            "tasks": [
                fn_task("bad", "fail", **WARM),
                fn_task("cleanup", "echo", depends_on=["bad"], run_if="ALL_DONE", **WARM),
            ],
        },
    )
    assert handled.result_state == "SUCCESS_WITH_FAILURES"


def test_condition_task_branches(jobs):
    run = _run(
        jobs,
        {
            "name": "cond",
            "parameters": [{"name": "mode", "default": "full"}],
            "tasks": [
                {
                    "task_key": "check",
                    "condition_task": {
                        "op": "EQUAL_TO",
                        "left": "{{job.parameters.mode}}",
                        "right": "full",
                    },
                },
                fn_task(
                    "full", "echo", depends_on=[{"task_key": "check", "outcome": "true"}], **WARM
                ),
                fn_task(
                    "quick", "echo", depends_on=[{"task_key": "check", "outcome": "false"}], **WARM
                ),
            ],
        },
    )
    assert _states(run) == {"check": "SUCCESS", "full": "SUCCESS", "quick": "EXCLUDED"}
    assert run.result_state == "SUCCESS"


def test_retries_then_success(jobs, tmp_path):
    marker = tmp_path / "count"
    run = _run(
        jobs,
        {
            "name": "retry",
            "tasks": [
                fn_task(
                    "flaky",
                    "fail_until",
                    parameters={"marker": str(marker), "times": 2},
                    max_retries=3,
                    min_retry_interval_millis=200,
                    **WARM,
                )
            ],
        },
    )
    attempts = [(t.attempt_number, t.result_state) for t in run.attempts]
    assert attempts == [(0, "FAILED"), (1, "FAILED"), (2, "SUCCESS")]
    assert run.result_state == "SUCCESS"
    gap = run.attempts[1].start_time - run.attempts[0].end_time
    assert gap >= 200


def test_task_timeout_with_and_without_retry(jobs):
    run = _run(
        jobs,
        {
            "name": "slow",
            "tasks": [
                fn_task(
                    "slow",
                    "sleep",
                    parameters={"seconds": 30},
                    timeout_seconds=1,
                    max_retries=1,
                    retry_on_timeout=False,
                )
            ],
        },
    )
    assert [t.result_state for t in run.attempts] == ["TIMEDOUT"]
    assert run.result_state == "FAILED"
    run = _run(
        jobs,
        {
            "name": "slow2",
            "tasks": [
                fn_task(
                    "slow",
                    "sleep",
                    parameters={"seconds": 30},
                    timeout_seconds=1,
                    max_retries=1,
                    retry_on_timeout=True,
                    **WARM,
                )
            ],
        },
    )
    assert [t.result_state for t in run.attempts] == ["TIMEDOUT", "TIMEDOUT"]


def test_job_timeout(jobs):
    run = _run(
        jobs,
        {
            "name": "jt",
            "timeout_seconds": 1,
            "tasks": [
                fn_task("slow", "sleep", parameters={"seconds": 30}, **WARM),
                fn_task("next", "echo", depends_on=["slow"], **WARM),
            ],
        },
    )
    assert run.result_state == "TIMEDOUT"
    assert _states(run) == {"slow": "TIMEDOUT", "next": "CANCELED"}


def test_cancel_running_run(jobs):
    job_id = jobs.create(
        {
            "name": "c",
            "tasks": [
                fn_task("slow", "sleep", parameters={"seconds": 60}, **WARM),
                fn_task("after", "echo", depends_on=["slow"], **WARM),
            ],
        }
    )
    run_id = jobs.run_now(job_id)
    deadline = time.monotonic() + 60
    while jobs.get_run(run_id).life_cycle_state != "RUNNING" or not jobs.get_run(run_id).tasks:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    jobs.cancel_run(run_id)
    run = jobs.wait(run_id, timeout=30)
    assert run.result_state == "CANCELED"
    assert _states(run) == {"slow": "CANCELED", "after": "CANCELED"}
    # the warm pool replaced the killed worker and still runs tasks
    assert (
        _run(jobs, {"name": "again", "tasks": [fn_task("x", "echo", **WARM)]}).result_state
        == "SUCCESS"
    )


def test_repair_reruns_failed_and_dependents_only(jobs, tmp_path):
    marker = tmp_path / "count"
    job_id = jobs.create(
        {
            "name": "r",
            "tasks": [
                fn_task("ok", "add", parameters={"a": 1}, **WARM),
                fn_task(
                    "flaky",
                    "fail_until",
                    parameters={"marker": str(marker), "times": 1},
                    depends_on=["ok"],
                    **WARM,
                ),
                fn_task(
                    "after", "read_sum", parameters={"task_key": "ok"}, depends_on=["flaky"], **WARM
                ),
            ],
        }
    )
    run = jobs.wait(jobs.run_now(job_id), timeout=60)
    assert _states(run) == {"ok": "SUCCESS", "flaky": "FAILED", "after": "UPSTREAM_FAILED"}
    ok_run_id = run.task("ok").run_id
    with pytest.raises(Conflict, match="stale"):
        jobs.repair_run(run.run_id, latest_repair_id=5)
    repair_id = jobs.repair_run(run.run_id)
    assert repair_id == 1
    run = jobs.wait(run.run_id, timeout=60)
    assert run.result_state == "SUCCESS" and run.repair_id == 1
    assert run.task("ok").run_id == ok_run_id  # not re-run
    assert run.task("after").output["result"] == 2  # task values of the original attempt
    assert len(run.attempts) == 5
    with pytest.raises(InvalidInput, match="nothing to repair"):
        jobs.repair_run(run.run_id)
    jobs.repair_run(run.run_id, rerun_tasks=["after"])
    assert jobs.wait(run.run_id, timeout=60).repair_id == 2


def test_job_cluster_is_isolated_and_warm_pool_is_reused(jobs):
    settings = {
        "name": "iso",
        "job_clusters": [
            {
                "job_cluster_key": "jc",
                "new_cluster": {"spark_env_vars": {"JOB_ENV": "from-cluster"}},
            }
        ],
        "tasks": [
            fn_task(
                "set", "set_env", parameters={"name": "LEAK", "value": "1"}, job_cluster_key="jc"
            ),
            fn_task("fresh", "pid_and_env", depends_on=["set"], job_cluster_key="jc"),
        ],
    }
    first = _run(jobs, settings)
    second = _run(jobs, settings)
    pids = {
        first.task("fresh").output["result"]["pid"],
        second.task("fresh").output["result"]["pid"],
    }
    assert len(pids) == 2  # a fresh process per task run
    assert first.task("fresh").output["result"]["env"] == "from-cluster"
    warm = {
        "name": "warm",
        "tasks": [
            fn_task("p", "pid_and_env", parameters={"name": "LEAK"}, existing_cluster_id="solo")
        ],
    }
    jobs.create_cluster("solo", num_workers=1)
    leak = {
        "name": "leak",
        "tasks": [
            fn_task(
                "s",
                "set_env",
                parameters={"name": "LEAK", "value": "yes"},
                existing_cluster_id="solo",
            )
        ],
    }
    _run(jobs, leak)
    a, b = _run(jobs, warm), _run(jobs, warm)
    assert a.task("p").output["result"]["pid"] == b.task("p").output["result"]["pid"]
    assert a.task("p").output["result"]["env"] == "yes"  # state persists in a warm worker
    assert a.task("p").cluster == "solo"


def test_other_task_types(ws, jobs, tmp_path):
    import pandas as pd

    ws.tables.write("main.raw.nums", pd.DataFrame({"x": [1, 2, 3]}))
    script = tmp_path / "script.py"
    script.write_text("import sys\nprint('args', sys.argv[1:])\n")
    notebook = tmp_path / "nb.py"
    notebook.write_text("from lakebox import jobs\nprint('params', params, jobs.parameters())\n")
    failing = tmp_path / "exit.py"
    failing.write_text("import sys\nsys.exit(3)\n")
    run = _run(
        jobs,
        {
            "name": "types",
            "parameters": [{"name": "limit", "default": "2"}],
            "tasks": [
                {
                    "task_key": "sql",
                    "sql_task": {
                        "query": "SELECT sum(x) AS s FROM main.raw.nums "
                        "WHERE x <= {{job.parameters.limit}}"
                    },
                    **WARM,
                },
                {
                    "task_key": "file",
                    "spark_python_task": {
                        "python_file": str(script),
                        "parameters": ["--limit", "{{job.parameters.limit}}"],
                    },
                    **WARM,
                },
                {
                    "task_key": "nb",
                    "notebook_task": {
                        "notebook_path": str(notebook),
                        "base_parameters": {"extra": "e"},
                    },
                    **WARM,
                },
                {"task_key": "exit", "spark_python_task": {"python_file": str(failing)}, **WARM},
                {
                    "task_key": "builtin",
                    "lakebox_task": {
                        "type": "optimize-table",
                        "parameters": {"name": "main.raw.nums"},
                    },
                    **WARM,
                },
            ],
        },
    )
    assert run.task("sql").output["result"]["rows"] == [{"s": 3}]
    assert "args ['--limit', '2']" in jobs.logs(run.task("file").run_id)
    nb_log = jobs.logs(run.run_id, "nb")
    assert "'extra': 'e'" in nb_log and "'limit': '2'" in nb_log
    assert run.task("exit").result_state == "FAILED"
    assert "SystemExit: 3" in run.task("exit").state_message
    assert run.task("builtin").result_state == "SUCCESS"


def test_failure_output_has_trace(jobs):
    run = _run(
        jobs, {"name": "f", "tasks": [fn_task("bad", "fail", parameters={"message": "no data"})]}
    )
    out = jobs.get_run_output(run.run_id)  # a one-task job run gives its task's output
    assert out["error"] == "ValueError: no data"
    assert "Traceback" in out["error_trace"] and "about to fail" in out["logs"]
    assert run.task("bad").log_path.startswith(str(jobs.ws.home / "logs"))


def test_max_concurrent_runs_skip_and_queue(jobs):
    slow = fn_task("s", "sleep", parameters={"seconds": 1.5}, **WARM)
    job_id = jobs.create({"name": "one", "tasks": [slow]})
    first, second = jobs.run_now(job_id), jobs.run_now(job_id)
    assert jobs.wait(second, timeout=30).life_cycle_state == "SKIPPED"
    assert jobs.get_run(second).result_state == "MAXIMUM_CONCURRENT_RUNS_REACHED"
    assert jobs.wait(first, timeout=30).result_state == "SUCCESS"
    queued = jobs.create({"name": "q", "queue": {"enabled": True}, "tasks": [slow]})
    a, b = jobs.run_now(queued), jobs.run_now(queued)
    ra, rb = jobs.wait(a, timeout=30), jobs.wait(b, timeout=30)
    assert ra.result_state == rb.result_state == "SUCCESS"
    assert rb.start_time >= ra.end_time  # waited for the first


def test_notifications_are_posted(jobs):
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        _run(
            jobs,
            {
                "name": "n",
                "webhook_notifications": {
                    "on_start": [{"url": url}],
                    "on_success": [{"url": url}],
                    "on_failure": [{"url": url}],
                },
                "tasks": [fn_task("a", "echo", **WARM)],
            },
        )
        deadline = time.monotonic() + 10
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.shutdown()
    assert sorted(r["event_type"] for r in received) == ["jobs.on_start", "jobs.on_success"]


def test_crud_submit_and_errors(jobs):
    job_id = jobs.create(name="crud", tasks=[fn_task("a", "echo")])
    assert jobs.get(job_id).name == "crud"
    jobs.update(job_id, {"tasks": [fn_task("b", "echo")]})
    assert [t["task_key"] for t in jobs.get(job_id).settings["tasks"]] == ["a", "b"]
    jobs.update(job_id, fields_to_remove=["tasks/a"])
    assert [t["task_key"] for t in jobs.get(job_id).settings["tasks"]] == ["b"]
    jobs.reset(job_id, {"name": "reset", "tasks": [fn_task("c", "echo")]})
    assert jobs.get(job_id).name == "reset"
    with pytest.raises(InvalidInput, match="cycle"):
        jobs.update(
            job_id,
            {
                "tasks": [
                    fn_task("c", "echo", depends_on=["c2"]),
                    fn_task("c2", "echo", depends_on=["c"]),
                ]
            },
        )
    assert jobs.get(job_id).name == "reset"  # nothing stored
    run_id = jobs.submit({"name": "once", "tasks": [fn_task("x", "echo", parameters={"value": 5})]})
    run = jobs.wait(run_id, timeout=60)
    assert run.job_id is None and run.run_type == "SUBMIT_RUN" and run.result_state == "SUCCESS"
    assert jobs.list_runs(limit=5)[0].run_id == run_id
    jobs.delete(job_id)
    with pytest.raises(NotFound, match="Job"):
        jobs.get(job_id)
    with pytest.raises(NotFound):
        jobs.run_now(job_id, trigger="WEBHOOK")
    with pytest.raises(NotFound):
        jobs.get_run(99999)
    before = len(jobs.list())
    with pytest.raises(InvalidInput):
        jobs.create({"name": "bad", "tasks": [fn_task("a", "add", parameters={"a": "x"})]})
    assert len(jobs.list()) == before


def test_webhook_trigger_signature(jobs):
    """The registry-webhook dispatcher calls exactly this."""
    job_id = jobs.create({"name": "hook", "tasks": [fn_task("ctx", "context", **WARM)]})
    event = json.dumps({"event": "MODEL_VERSION_TRANSITIONED_STAGE", "model_name": "churn"})
    run_id = jobs.run_now(job_id, job_parameters={"event": event}, trigger="WEBHOOK")
    run = jobs.wait(run_id, timeout=60)
    assert run.trigger == "WEBHOOK"
    assert run.task("ctx").output["result"]["parameters"] == {"event": event}


def test_ipynb_notebook_with_parameters_and_task_values(jobs, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("day = 'default'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "from lakebox.jobs import task_values\n"
            "print('day is', day)\n"
            "task_values.set('rows', len(day))"
        ),
    ]
    path = tmp_path / "report.ipynb"
    nbformat.write(nb, str(path))
    run = _run(
        jobs,
        {
            "name": "nb",
            "tasks": [
                {
                    "task_key": "nb",
                    "notebook_task": {
                        "notebook_path": str(path),
                        "base_parameters": {"day": "2026-01-31"},
                    },
                },
                fn_task(
                    "after",
                    "echo",
                    depends_on=["nb"],
                    parameters={"value": "{{tasks.nb.values.rows}}"},
                    **WARM,
                ),
            ],
        },
    )
    assert run.result_state == "SUCCESS", run.state_message
    assert "day is 2026-01-31" in jobs.logs(run.run_id, "nb")
    assert run.task("after").output["result"] == 10
    executed = list(Path(run.task("nb").log_path).parent.glob("nb-*.ipynb"))
    assert executed  # the executed notebook is kept next to the log


@pytest.mark.parametrize("cluster", [{}, WARM], ids=["job_cluster", "warm_pool"])
def test_killed_worker_process_is_marked_and_retried(jobs, tmp_path, cluster):
    marker = tmp_path / "marker"
    run = _run(
        jobs,
        {
            "name": "oom",
            "tasks": [
                fn_task(
                    "t", "die_once", parameters={"marker": str(marker)}, max_retries=1, **cluster
                )
            ],
        },
    )
    first, second = run.attempts
    assert first.result_state == "FAILED" and "exited with code -9" in first.state_message
    assert second.result_state == "SUCCESS" and second.output["result"] == "survived"
    assert run.result_state == "SUCCESS"
