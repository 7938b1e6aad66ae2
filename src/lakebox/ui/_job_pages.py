"""Jobs pages: the job list, a job's task graph (drawn as an SVG DAG), settings and runs, and a
run page with per-task state, logs and output that refreshes itself while the run is active.

Write actions (run now, cancel, repair) are htmx POSTs protected by the CSRF check.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response

from lakebox.errors import LakeboxError, NotFound
from lakebox.ui._csrf import require_csrf
from lakebox.ui._render import page_router, render

if TYPE_CHECKING:
    from lakebox.jobs import Job, Run, TaskRun
    from lakebox.workspace import Workspace

__all__ = ["DagEdge", "DagLayout", "DagNode", "build_pages", "dag_layout", "state_of"]

# Geometry of the drawn task graph (SVG user units = CSS pixels).
NODE_WIDTH, NODE_HEIGHT = 180, 46
GAP_X, GAP_Y, PAD = 64, 18, 12
_FAILED = ("FAILED", "TIMEDOUT", "UPSTREAM_FAILED", "MAXIMUM_CONCURRENT_RUNS_REACHED")
_CANCELED = ("CANCELED", "UPSTREAM_CANCELED")


@dataclass(frozen=True)
class DagNode:
    """A task placed in the drawing: ``column`` is its dependency depth."""

    key: str
    column: int
    row: int
    x: float
    y: float


@dataclass(frozen=True)
class DagEdge:
    """A dependency ``source -> target`` drawn as an SVG path (``d``)."""

    source: str
    target: str
    path: str


@dataclass(frozen=True)
class DagLayout:
    """Nodes, edges and the size of the drawing."""

    nodes: list[DagNode]
    edges: list[DagEdge]
    width: float
    height: float

    def node(self, key: str) -> DagNode:
        """The node of ``key``."""
        return next(n for n in self.nodes if n.key == key)


def _dependencies(task: Mapping[str, Any]) -> list[str]:
    return [
        d["task_key"] if isinstance(d, Mapping) else str(d) for d in task.get("depends_on") or []
    ]


def dag_layout(tasks: Sequence[Mapping[str, Any]]) -> DagLayout:
    """Lay tasks out left to right: a task's column is the length of the longest dependency
    chain before it; within a column tasks are ordered by the mean row of their parents (one
    sweep, which untangles most crossings) and the columns are centred vertically.

    Example:
        >>> layout = dag_layout([{"task_key": "a"}, {"task_key": "b", "depends_on": ["a"]}])
        >>> [(n.key, n.column, n.row) for n in layout.nodes]
        [('a', 0, 0), ('b', 1, 0)]
    """
    keys = [str(t["task_key"]) for t in tasks]
    parents = {str(t["task_key"]): [d for d in _dependencies(t) if d in keys] for t in tasks}
    depth: dict[str, int] = {}

    def visit(key: str, path: frozenset[str]) -> int:
        if key not in depth:
            ups = [p for p in parents[key] if p not in path]  # a cycle never loops forever
            depth[key] = 1 + max((visit(p, path | {key}) for p in ups), default=-1)
        return depth[key]

    for key in keys:
        visit(key, frozenset())
    columns: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for key in keys:
        columns[depth[key]].append(key)
    row: dict[str, int] = {}
    for column in columns:
        if row:  # every column after the first: sort by the parents' mean row (stable)
            column.sort(
                key=lambda k: (
                    sum(row[p] for p in parents[k]) / len(parents[k]) if parents[k] else 0.0
                )
            )
        row.update({key: index for index, key in enumerate(column)})
    tallest = max((len(c) for c in columns), default=0)
    step_y = NODE_HEIGHT + GAP_Y
    nodes = []
    for index, column in enumerate(columns):
        offset = (tallest - len(column)) * step_y / 2
        for key in column:
            nodes.append(
                DagNode(
                    key=key,
                    column=index,
                    row=row[key],
                    x=PAD + index * (NODE_WIDTH + GAP_X),
                    y=PAD + offset + row[key] * step_y,
                )
            )
    at = {n.key: n for n in nodes}
    edges = []
    for key in keys:
        for parent in parents[key]:
            a, b = at[parent], at[key]
            x1, y1 = a.x + NODE_WIDTH, a.y + NODE_HEIGHT / 2
            x2, y2 = b.x - 4, b.y + NODE_HEIGHT / 2
            bend = (x2 - x1) / 2
            path = f"M{x1:g},{y1:g} C{x1 + bend:g},{y1:g} {x2 - bend:g},{y2:g} {x2:g},{y2:g}"
            edges.append(DagEdge(parent, key, path))
    width = PAD * 2 + len(columns) * NODE_WIDTH + max(len(columns) - 1, 0) * GAP_X
    height = PAD * 2 + tallest * NODE_HEIGHT + max(tallest - 1, 0) * GAP_Y
    return DagLayout(nodes=nodes, edges=edges, width=width, height=height)


def state_of(life_cycle_state: str | None, result_state: str | None) -> tuple[str, str]:
    """A run's or task run's state as ``(label, css kind)``, e.g. ``("SUCCESS", "success")``."""
    life = life_cycle_state or "PENDING"
    if result_state:
        if result_state.startswith("SUCCESS"):
            return result_state, "success"
        if result_state in _FAILED:
            return result_state, "failed"
        if result_state in _CANCELED:
            return result_state, "canceled"
        return result_state, "skipped"
    if life == "INTERNAL_ERROR":
        return life, "failed"
    if life in ("RUNNING", "TERMINATING"):
        return life, "running"
    if life in ("SKIPPED", "TERMINATED"):
        return life, "skipped"
    return life, "pending"


def _task_type(task: Mapping[str, Any]) -> str:
    from lakebox.jobs import TASK_TYPES

    for kind in TASK_TYPES:
        if task.get(kind) is not None:
            if kind == "lakebox_task":
                return f"lakebox: {task[kind].get('type', '?')}"
            return kind.removesuffix("_task")
    return "?"


def _cluster_kind(task: Mapping[str, Any]) -> str:
    if task.get("existing_cluster_id"):
        return f"all-purpose cluster {task['existing_cluster_id']}"
    if task.get("job_cluster_key"):
        return f"job cluster {task['job_cluster_key']}"
    return "job cluster (fresh process)"


def _schedule_text(settings: Mapping[str, Any]) -> str:
    schedule, trigger = settings.get("schedule"), settings.get("trigger")
    if schedule:
        paused = " (paused)" if schedule.get("pause_status") == "PAUSED" else ""
        zone = schedule.get("timezone_id", "UTC")
        return f"cron {schedule['quartz_cron_expression']} {zone}{paused}"
    if trigger:
        paused = " (paused)" if trigger.get("pause_status") == "PAUSED" else ""
        if trigger.get("file_arrival"):
            return f"on file arrival in {trigger['file_arrival'].get('url')}{paused}"
        if trigger.get("table_update"):
            names = ", ".join(trigger["table_update"].get("table_names") or [])
            return f"on update of {names}{paused}"
    return "manual"


def _duration_ms(start: int | None, end: int | None) -> int | None:
    from lakebox.jobs._store import now_ms

    if not start:
        return None
    return (end or now_ms()) - start


def _task_view(task: TaskRun) -> dict[str, Any]:
    label, kind = state_of(task.life_cycle_state, task.result_state)
    return {
        "run_id": task.run_id,
        "key": task.task_key,
        "state": label,
        "kind": kind,
        "attempt": task.attempt_number,
        "run_if": task.spec.get("run_if", "ALL_SUCCESS"),
        "depends_on": _dependencies(task.spec),
        "type": _task_type(task.spec),
        "cluster": task.cluster or _cluster_kind(task.spec),
        "start": task.start_time,
        "duration": _duration_ms(task.start_time, task.end_time),
        "message": task.state_message or "",
        "repair_id": task.repair_id,
        "done": task.done,
    }


def _run_view(run: Run) -> dict[str, Any]:
    label, kind = state_of(run.life_cycle_state, run.result_state)
    tasks = [_task_view(t) for t in run.tasks]
    repairable = run.done and (
        any(t["kind"] in ("failed", "canceled") for t in tasks)
        or len(run.tasks) < len(run.settings.get("tasks") or [])
    )
    return {
        "run_id": run.run_id,
        "job_id": run.job_id,
        "name": run.run_name or "",
        "state": label,
        "kind": kind,
        "message": run.state_message or "",
        "trigger": run.trigger or "ONE_TIME",
        "start": run.start_time or run.created_time,
        "duration": _duration_ms(run.start_time, run.end_time),
        "parameters": run.job_parameters,
        "repair_id": run.repair_id,
        "done": run.done,
        "repairable": repairable,
        "tasks": tasks,
        "attempts": [_task_view(t) for t in run.attempts],
    }


def _dag_view(tasks: Sequence[Mapping[str, Any]], states: Mapping[str, Any]) -> dict[str, Any]:
    """What ``jobs/_dag.html`` draws: the layout plus each node's label, type and state."""
    layout = dag_layout(tasks)
    by_key = {str(t["task_key"]): t for t in tasks}
    nodes = []
    for node in layout.nodes:
        task = by_key[node.key]
        state = states.get(node.key)
        run_if = task.get("run_if", "ALL_SUCCESS")
        nodes.append(
            {
                "key": node.key,
                "x": node.x,
                "y": node.y,
                "label": node.key if len(node.key) <= 22 else node.key[:21] + "…",
                "sub": _task_type(task) + ("" if run_if == "ALL_SUCCESS" else f" · {run_if}"),
                "kind": state["kind"] if state else "idle",
                "state": state["state"] if state else "",
            }
        )
    return {
        "nodes": nodes,
        "edges": layout.edges,
        "width": layout.width,
        "height": layout.height,
        "node_width": NODE_WIDTH,
        "node_height": NODE_HEIGHT,
    }


def _outputs(ws: Workspace, run: Run) -> list[dict[str, Any]]:
    """Each task's (latest attempt's) result, error and log tail."""
    out = []
    for task in run.tasks:
        try:
            output = ws.jobs.get_run_output(task.run_id)
        except LakeboxError:
            output = {}
        result = output.get("sql_output")
        if result is None:
            result = (output.get("notebook_output") or {}).get("result")
        if result is not None and not isinstance(result, str):
            result = json.dumps(result, indent=2, default=str)
        label, kind = state_of(task.life_cycle_state, task.result_state)
        out.append(
            {
                "key": task.task_key,
                "run_id": task.run_id,
                "state": label,
                "kind": kind,
                "done": task.done,
                "result": result,
                "error": output.get("error"),
                "error_trace": output.get("error_trace"),
                "task_values": output.get("task_values"),
                "logs": output.get("logs") or "",
                "logs_truncated": output.get("logs_truncated", False),
            }
        )
    return out


def build_pages(ws: Workspace) -> APIRouter:
    """The ``/ui/jobs`` pages."""
    pages = page_router()

    def job_or_404(job_id: str) -> Job:
        if not job_id.strip().isdigit():
            raise NotFound(f"Job {job_id!r} does not exist; job ids are numbers (see /ui/jobs).")
        return ws.jobs.get(int(job_id))

    def run_of(job: Job, run_id: str) -> Run:
        if not run_id.strip().isdigit():
            raise NotFound(f"Run {run_id!r} of job {job.job_id} does not exist.")
        run = ws.jobs.get_run(int(run_id))
        if run.job_id != job.job_id:
            raise NotFound(
                f"Run {run_id} is not a run of job {job.job_id} ({job.name!r}); "
                f"see /ui/jobs/{job.job_id} for its runs."
            )
        return run

    def runs_context(job: Job, notice: str | None = None) -> dict[str, Any]:
        runs = [_run_view(r) for r in ws.jobs.list_runs(job.job_id, limit=25)]
        return {
            "job": job,
            "runs": runs,
            "active": any(not r["done"] for r in runs),
            "notice": notice,
        }

    def run_context(job: Job, run: Run, notice: str | None = None) -> dict[str, Any]:
        view = _run_view(run)
        states = {t["key"]: t for t in view["tasks"]}
        return {
            "job": job,
            "run": view,
            "dag": _dag_view(run.settings.get("tasks") or [], states),
            "notice": notice,
        }

    def webhook_events() -> dict[str, list[str]]:
        """Registry events that start each job through a ``job_spec`` webhook."""
        events: dict[str, list[str]] = {}
        for hook in ws.webhooks.list():
            if hook.job_id is not None and hook.status == "ACTIVE":
                events.setdefault(hook.job_id, []).extend(hook.events)
        return events

    def starts(job: Job, hooks: dict[str, list[str]]) -> str:
        text = _schedule_text(job.settings)
        events = hooks.get(str(job.job_id))
        if events:
            by_event = "on registry events " + ", ".join(sorted(set(events)))
            text = by_event if text == "manual" else f"{text}; {by_event}"
        return text

    @pages.get("/jobs")
    def job_list(request: Request) -> Response:
        rows = []
        hooks = webhook_events()
        for job in ws.jobs.list():
            last = ws.jobs.list_runs(job.job_id, limit=1)
            rows.append(
                {
                    "job": job,
                    "tasks": len(job.settings.get("tasks") or []),
                    "schedule": starts(job, hooks),
                    "last": _run_view(last[0]) if last else None,
                }
            )
        return render(request, "jobs/list.html", {"rows": rows})

    @pages.get("/jobs/{job_id}")
    def job_page(request: Request, job_id: str) -> Response:
        job = job_or_404(job_id)
        tasks = job.settings.get("tasks") or []
        context = runs_context(job)
        context.update(
            schedule=starts(job, webhook_events()),
            dag=_dag_view(tasks, {}),
            tasks=[
                {
                    "key": t["task_key"],
                    "type": _task_type(t),
                    "depends_on": _dependencies(t),
                    "run_if": t.get("run_if", "ALL_SUCCESS"),
                    "retries": t.get("max_retries", 0),
                    "timeout": t.get("timeout_seconds", 0),
                    "cluster": _cluster_kind(t),
                }
                for t in tasks
            ],
            parameters=job.settings.get("parameters") or [],
            settings_json=json.dumps(job.settings, indent=2),
        )
        return render(request, "jobs/job.html", context)

    @pages.get("/jobs/{job_id}/runs")
    def runs_fragment(request: Request, job_id: str) -> Response:
        return render(request, "jobs/_runs.html", runs_context(job_or_404(job_id)))

    @pages.post("/jobs/{job_id}/run-now", dependencies=[Depends(require_csrf)])
    async def run_now(request: Request, job_id: str) -> Response:
        job = job_or_404(job_id)
        form = await request.form()
        names = [p["name"] for p in job.settings.get("parameters") or []]
        params = {n: str(form[f"param.{n}"]) for n in names if f"param.{n}" in form}
        run_id = ws.jobs.run_now(job.job_id, job_parameters=params or None)
        return render(request, "jobs/_run_started.html", runs_context(job, notice=str(run_id)))

    @pages.get("/jobs/{job_id}/runs/{run_id}")
    def run_page(request: Request, job_id: str, run_id: str) -> Response:
        job = job_or_404(job_id)
        run = run_of(job, run_id)
        context = run_context(job, run)
        context["outputs"] = _outputs(ws, run)
        return render(request, "jobs/run.html", context)

    @pages.get("/jobs/{job_id}/runs/{run_id}/state")
    def run_state(request: Request, job_id: str, run_id: str) -> Response:
        job = job_or_404(job_id)
        run = run_of(job, run_id)
        context = run_context(job, run)
        if run.done:  # the last poll: the final logs and outputs replace the section
            context.update(outputs=_outputs(ws, run), oob=True)
        return render(request, "jobs/_run_state.html", context)

    @pages.get("/jobs/{job_id}/runs/{run_id}/tasks/{task_run_id}/log")
    def task_log(job_id: str, run_id: str, task_run_id: str) -> Response:
        run = run_of(job_or_404(job_id), run_id)
        attempt = next((t for t in run.attempts if str(t.run_id) == task_run_id.strip()), None)
        if attempt is None:
            raise NotFound(f"Run {run.run_id} has no task run {task_run_id!r}.")
        return PlainTextResponse(ws.jobs.logs(attempt.run_id))

    @pages.post("/jobs/{job_id}/runs/{run_id}/cancel", dependencies=[Depends(require_csrf)])
    def cancel(request: Request, job_id: str, run_id: str) -> Response:
        job = job_or_404(job_id)
        run = run_of(job, run_id)
        ws.jobs.cancel_run(run.run_id)
        context = run_context(job, ws.jobs.get_run(run.run_id), notice="Cancel requested.")
        return render(request, "jobs/_run_state.html", context)

    @pages.post("/jobs/{job_id}/runs/{run_id}/repair", dependencies=[Depends(require_csrf)])
    def repair(request: Request, job_id: str, run_id: str) -> Response:
        job = job_or_404(job_id)
        run = run_of(job, run_id)
        repair_id = ws.jobs.repair_run(run.run_id, rerun_all_failed_tasks=True)
        context = run_context(
            job,
            ws.jobs.get_run(run.run_id),
            notice=f"Repair {repair_id} started: re-running the failed tasks.",
        )
        return render(request, "jobs/_run_state.html", context)

    return pages
