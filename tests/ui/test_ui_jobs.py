"""Jobs pages: the DAG layout, fast TestClient tests of the pages and their actions on a fresh
workspace, and a browser test on the demo server (Run now → the run page reaches SUCCESS)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import lakebox
from lakebox.server import create_app
from lakebox.ui._job_pages import NODE_HEIGHT, NODE_WIDTH, dag_layout, state_of

CLUSTER = "ui-warm"


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _csrf(client: TestClient) -> dict[str, str]:
    client.get("/ui/jobs")
    return {"X-CSRF-Token": client.cookies["lakebox_csrf"], "HX-Request": "true"}


# ----------------------------------------------------------------------------- layout
def test_dag_layout_puts_tasks_in_columns_by_dependency_depth():
    layout = dag_layout(
        [
            {"task_key": "ingest"},
            {"task_key": "clean", "depends_on": [{"task_key": "ingest"}]},
            {"task_key": "features", "depends_on": ["ingest"]},
            {"task_key": "train", "depends_on": [{"task_key": "features"}, {"task_key": "clean"}]},
            {"task_key": "report", "depends_on": [{"task_key": "ingest"}, {"task_key": "train"}]},
            {"task_key": "lonely"},
        ]
    )
    columns = {n.key: n.column for n in layout.nodes}
    # the longest chain decides: report waits for train, which waits for clean/features
    assert columns == {
        "ingest": 0,
        "lonely": 0,
        "clean": 1,
        "features": 1,
        "train": 2,
        "report": 3,
    }
    assert {(e.source, e.target) for e in layout.edges} == {
        ("ingest", "clean"),
        ("ingest", "features"),
        ("features", "train"),
        ("clean", "train"),
        ("ingest", "report"),
        ("train", "report"),
    }
    # no two nodes overlap, and everything fits in the drawing
    boxes = [(n.x, n.y) for n in layout.nodes]
    assert len(set(boxes)) == len(boxes)
    for n in layout.nodes:
        assert n.x >= 0 and n.x + NODE_WIDTH <= layout.width
        assert n.y >= 0 and n.y + NODE_HEIGHT <= layout.height
    # columns go left to right; an edge leaves its source's right side, ends at the target
    assert layout.node("clean").x > layout.node("ingest").x
    edge = next(e for e in layout.edges if (e.source, e.target) == ("ingest", "clean"))
    ingest, clean = layout.node("ingest"), layout.node("clean")
    start = edge.path.split()[0]
    assert start == f"M{ingest.x + NODE_WIDTH:g},{ingest.y + NODE_HEIGHT / 2:g}"
    assert edge.path.endswith(f"{clean.x - 4:g},{clean.y + NODE_HEIGHT / 2:g}")


def test_dag_layout_orders_rows_by_parents_and_centres_short_columns():
    layout = dag_layout(
        [
            {"task_key": "a"},
            {"task_key": "b"},
            {"task_key": "from_b", "depends_on": ["b"]},
            {"task_key": "from_a", "depends_on": ["a"]},
        ]
    )
    # children follow their parents' rows, whatever order the tasks were written in
    assert layout.node("from_a").row == 0 and layout.node("from_b").row == 1
    single = dag_layout(
        [{"task_key": "a"}, {"task_key": "b"}, {"task_key": "c", "depends_on": ["a", "b"]}]
    )
    a, b, c = (single.node(k) for k in "abc")
    assert c.y == pytest.approx((a.y + b.y) / 2)  # a one-task column sits in the middle


def test_dag_layout_of_a_chain_an_empty_job_and_bad_input():
    chain = dag_layout(
        [{"task_key": f"t{i}", "depends_on": [f"t{i - 1}"] if i else []} for i in range(4)]
    )
    assert [n.column for n in chain.nodes] == [0, 1, 2, 3]
    assert len({n.y for n in chain.nodes}) == 1
    empty = dag_layout([])
    assert empty.nodes == [] and empty.edges == []
    # unknown dependencies are not drawn; a cycle (refused by validation) still terminates
    odd = dag_layout(
        [
            {"task_key": "x", "depends_on": ["ghost", "y"]},
            {"task_key": "y", "depends_on": ["x"]},
        ]
    )
    assert {n.key for n in odd.nodes} == {"x", "y"}
    assert all("ghost" not in (e.source, e.target) for e in odd.edges)


def test_state_of_maps_run_states_to_badge_kinds():
    assert state_of("TERMINATED", "SUCCESS") == ("SUCCESS", "success")
    assert state_of("TERMINATED", "UPSTREAM_FAILED") == ("UPSTREAM_FAILED", "failed")
    assert state_of("TERMINATED", "CANCELED") == ("CANCELED", "canceled")
    assert state_of("TERMINATED", "EXCLUDED") == ("EXCLUDED", "skipped")
    assert state_of("RUNNING", None) == ("RUNNING", "running")
    assert state_of("PENDING", None) == ("PENDING", "pending")
    assert state_of("INTERNAL_ERROR", None) == ("INTERNAL_ERROR", "failed")


# ----------------------------------------------------------------------------- pages
@pytest.fixture(scope="module")
def jobs_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A workspace with a warm all-purpose cluster (tasks start in milliseconds)."""
    workspace = lakebox.Workspace(tmp_path_factory.mktemp("ui-jobs") / "ws")
    workspace.jobs.create_cluster(CLUSTER, num_workers=1)
    yield workspace
    workspace.close()


@pytest.fixture(scope="module")
def client(jobs_ws: Any) -> TestClient:
    return TestClient(create_app(jobs_ws, token="", mount_mlflow=False))


def _task(key: str, *deps: str, **body: Any) -> dict[str, Any]:
    task: dict[str, Any] = {"task_key": key, "existing_cluster_id": CLUSTER}
    if deps:
        task["depends_on"] = [{"task_key": d} for d in deps]
    task.update(body or {"sql_task": {"query": f"SELECT '{key}' AS task"}})
    return task


def test_job_list_and_job_page_show_schedule_graph_settings_and_runs(jobs_ws, client):
    job_id = jobs_ws.jobs.create(
        {
            "name": "nightly features",
            "parameters": [{"name": "day", "default": "2026-01-01"}],
            "schedule": {"quartz_cron_expression": "0 0 6 * * ?", "pause_status": "PAUSED"},
            "tasks": [
                _task("ingest"),
                _task("clean", "ingest"),
                _task("train", "clean", run_if="ALL_DONE", sql_task={"query": "SELECT 1"}),
            ],
        }
    )
    listing = client.get("/ui/jobs")
    assert listing.status_code == 200
    row = _text(listing.text.split(f'data-testid="job-row-{job_id}"')[1].split("</tr>")[0])
    assert "nightly features" in row and "cron 0 0 6 * * ? UTC (paused)" in row
    assert "never run" in row

    page = client.get(f"/ui/jobs/{job_id}")
    assert page.status_code == 200
    html = page.text
    for key in ("ingest", "clean", "train"):
        assert f'data-testid="dag-node-{key}"' in html
    assert 'data-testid="dag-edge-ingest-clean"' in html
    assert 'data-testid="dag-edge-clean-train"' in html
    assert "sql · ALL_DONE" in html  # a non-default run_if shows on the node
    assert f"all-purpose cluster {CLUSTER}" in _text(html)
    assert 'name="param.day" value="2026-01-01"' in html
    assert "No runs yet" in html

    jobs_ws.webhooks.create(["MODEL_VERSION_TRANSITIONED_TO_STAGING"], job_spec={"job_id": job_id})
    started_by = _text(client.get(f"/ui/jobs/{job_id}").text.split('data-testid="job-schedule"')[1])
    assert "(paused); on registry events MODEL_VERSION_TRANSITIONED_TO_STAGING" in started_by


def test_unknown_jobs_and_runs_give_404_pages_naming_them(jobs_ws, client):
    missing = client.get("/ui/jobs/987654")
    assert missing.status_code == 404
    assert "Job 987654 does not exist" in missing.text and "<h1>" in missing.text
    word = client.get("/ui/jobs/nightly")
    assert word.status_code == 404 and "Job &#39;nightly&#39; does not exist" in word.text
    job_a = jobs_ws.jobs.create({"name": "a", "tasks": [_task("one")]})
    job_b = jobs_ws.jobs.create({"name": "b", "tasks": [_task("one")]})
    run_id = jobs_ws.jobs.run_now(job_a)
    jobs_ws.jobs.wait(run_id, timeout=120)
    wrong = client.get(f"/ui/jobs/{job_b}/runs/{run_id}")
    assert wrong.status_code == 404 and f"Run {run_id} is not a run of job {job_b}" in wrong.text
    assert client.get(f"/ui/jobs/{job_a}/runs/99999").status_code == 404


def test_action_posts_need_the_csrf_token(jobs_ws, client):
    job_id = jobs_ws.jobs.create({"name": "guarded", "tasks": [_task("one")]})
    fresh = TestClient(client.app)
    fresh.get("/ui/jobs")  # has the cookie, but sends no token
    for path in ("run-now", "runs/1/cancel", "runs/1/repair"):
        answer = fresh.post(f"/ui/jobs/{job_id}/{path}")
        assert answer.status_code == 403, path
        assert "CSRF token" in answer.text
    forged = fresh.post(
        f"/ui/jobs/{job_id}/run-now",
        headers={"X-CSRF-Token": fresh.cookies["lakebox_csrf"], "Origin": "http://evil.example"},
    )
    assert forged.status_code == 403
    assert jobs_ws.jobs.list_runs(job_id) == []  # nothing ran


def test_run_now_then_the_run_page_polls_until_the_run_ends(jobs_ws, client):
    job_id = jobs_ws.jobs.create(
        {
            "name": "answer",
            "parameters": [{"name": "who", "default": "world"}],
            "tasks": [
                _task("answer", sql_task={"query": "SELECT 42 AS answer"}),
                _task(
                    "greet",
                    "answer",
                    python_function_task={
                        "function": "lakebox.jobs._builtin:preload",
                        "parameters": {"modules": ["json"]},
                    },
                ),
            ],
        }
    )
    started = client.post(
        f"/ui/jobs/{job_id}/run-now", data={"param.who": "lakebox"}, headers=_csrf(client)
    )
    assert started.status_code == 200
    run_id = int(re.search(r"Run (\d+) started", started.text).group(1))  # type: ignore[union-attr]
    assert 'hx-swap-oob="true"' in started.text  # the runs table is refreshed too
    assert jobs_ws.jobs.get_run(run_id).job_parameters == {"who": "lakebox"}

    state = client.get(f"/ui/jobs/{job_id}/runs/{run_id}/state")
    if 'data-done="false"' in state.text:  # still active: the fragment polls itself
        assert 'hx-trigger="every 1s"' in state.text
        assert 'data-testid="cancel-run"' in state.text
    jobs_ws.jobs.wait(run_id, timeout=120)
    final = client.get(f"/ui/jobs/{job_id}/runs/{run_id}/state")
    assert 'data-done="true"' in final.text and 'data-state="SUCCESS"' in final.text
    assert "hx-trigger" not in final.text  # polling stops at a terminal state
    assert 'id="run-outputs"' in final.text and 'hx-swap-oob="true"' in final.text

    page = client.get(f"/ui/jobs/{job_id}/runs/{run_id}")
    assert page.status_code == 200
    assert 'data-testid="dag-node-answer" data-state="SUCCESS"' in page.text
    assert 'class="dag-node success"' in page.text
    result = page.text.split('data-testid="result-answer"')[1].split("</pre>")[0]
    assert "42" in result
    assert "who=lakebox" in page.text
    assert 'data-testid="cancel-run"' not in page.text
    assert 'data-testid="repair-run"' not in page.text  # nothing failed


def test_repair_reruns_the_failed_task_and_cancel_stops_a_running_run(jobs_ws, client):
    job_id = jobs_ws.jobs.create(
        {
            "name": "flaky",
            "tasks": [
                _task("load"),
                _task("check", "load", sql_task={"query": "SELECT * FROM main.nope.missing"}),
            ],
        }
    )
    run_id = jobs_ws.jobs.run_now(job_id)
    jobs_ws.jobs.wait(run_id, timeout=120)
    page = client.get(f"/ui/jobs/{job_id}/runs/{run_id}")
    assert 'data-state="FAILED"' in page.text
    assert 'data-testid="repair-run"' in page.text
    check = page.text.split('data-testid="output-check"')[1].split("</details>")[0]
    assert "main.nope.missing" in check  # the error and the log of the failed task

    repaired = client.post(f"/ui/jobs/{job_id}/runs/{run_id}/repair", headers=_csrf(client))
    assert repaired.status_code == 200 and "Repair 1 started" in repaired.text
    run = jobs_ws.jobs.wait(run_id, timeout=120)
    assert run.repair_id == 1
    assert [t.task_key for t in run.attempts if t.repair_id == 1] == ["check"]
    again = client.get(f"/ui/jobs/{job_id}/runs/{run_id}")
    assert 'data-testid="task-row-check-0-r1"' in again.text  # the repair attempt is listed
    first_check = next(t for t in run.attempts if t.task_key == "check" and not t.repair_id)
    log = client.get(f"/ui/jobs/{job_id}/runs/{run_id}/tasks/{first_check.run_id}/log")
    assert log.status_code == 200 and log.headers["content-type"].startswith("text/plain")
    assert "main.nope.missing" in log.text  # the first attempt's full log, kept after repair
    assert client.get(f"/ui/jobs/{job_id}/runs/{run_id}/tasks/1/log").status_code == 404

    slow = jobs_ws.jobs.create(
        {
            "name": "slow",
            "tasks": [_task("nap", lakebox_task={"type": "sleep", "parameters": {"seconds": 60}})],
        }
    )
    slow_run = jobs_ws.jobs.run_now(slow)
    deadline = time.monotonic() + 60
    while jobs_ws.jobs.get_run(slow_run).life_cycle_state != "RUNNING":
        assert time.monotonic() < deadline, "the sleep task never started"
        time.sleep(0.05)
    running = client.get(f"/ui/jobs/{slow}/runs/{slow_run}")
    assert 'data-testid="cancel-run"' in running.text and 'hx-trigger="every 1s"' in running.text
    canceled = client.post(f"/ui/jobs/{slow}/runs/{slow_run}/cancel", headers=_csrf(client))
    assert canceled.status_code == 200 and "Cancel requested" in canceled.text
    assert jobs_ws.jobs.wait(slow_run, timeout=60).result_state == "CANCELED"


# ----------------------------------------------------------------------------- browser
@pytest.mark.server
def test_run_now_in_a_browser_reaches_success(page, ui_server, shot):
    api = ui_server.client()
    name = f"ui quick {uuid.uuid4().hex[:6]}"
    created = api.post(
        "/api/2.2/jobs/create",
        json={
            "name": name,
            "tasks": [
                {"task_key": "answer", "sql_task": {"query": "SELECT 42 AS answer"}},
                {
                    "task_key": "after",
                    "depends_on": [{"task_key": "answer"}],
                    "lakebox_task": {"type": "sleep", "parameters": {"seconds": 0.1}},
                },
            ],
        },
    )
    assert created.status_code == 200, created.text
    job_id = created.json()["job_id"]

    page.goto("/ui/jobs")
    page.click(f'[data-testid="job-row-{job_id}"] a')
    page.wait_for_url(f"**/ui/jobs/{job_id}")
    assert page.locator('[data-testid="dag-edge-answer-after"]').count() == 1
    shot(page, "jobs-job")
    page.click('[data-testid="run-now"]')
    page.click('[data-testid="run-started-link"]')
    page.wait_for_url(re.compile(rf".*/ui/jobs/{job_id}/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    # the state fragment polls every second until the run is terminal
    page.wait_for_selector('[data-testid="run-state"][data-done="true"]', timeout=180_000)
    assert page.get_attribute('[data-testid="run-state"]', "data-state") == "SUCCESS"
    assert page.get_attribute('[data-testid="dag-node-after"]', "data-state") == "SUCCESS"
    assert "42" in (page.locator('[data-testid="result-answer"]').text_content() or "")
    shot(page, "jobs-run")

    run = api.get("/api/2.2/jobs/runs/get", params={"run_id": run_id}).json()
    assert run["job_id"] == job_id
    assert run["state"]["life_cycle_state"] == "TERMINATED"
    assert run["state"]["result_state"] == "SUCCESS"
    assert {t["task_key"] for t in run["tasks"]} == {"answer", "after"}

    page.goto("/ui/jobs")
    row = page.locator(f'[data-testid="job-row-{job_id}"]')
    assert "SUCCESS" in row.inner_text()
    shot(page, "jobs-list")
