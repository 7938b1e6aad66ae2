"""``lakebox jobs ...``: create jobs from YAML/JSON, run them, follow runs, logs, cancel,
repair, and manage all-purpose clusters."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from lakebox.cli._common import console, friendly_errors, workspace

app = typer.Typer(help="Jobs: multi-task workflows, runs, schedules.", no_args_is_help=True)
clusters_app = typer.Typer(help="All-purpose clusters (warm worker pools).", no_args_is_help=True)
app.add_typer(clusters_app, name="clusters")

_COLORS = {
    "SUCCESS": "green",
    "FAILED": "red",
    "TIMEDOUT": "red",
    "CANCELED": "yellow",
    "UPSTREAM_FAILED": "red",
    "SUCCESS_WITH_FAILURES": "yellow",
}


def _when(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S") if ms else ""


def _state(life: str, result: str | None) -> str:
    if result:
        return f"[{_COLORS.get(result, 'white')}]{result}[/]"
    return life


def _params(values: list[str]) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected NAME=VALUE, got {item!r}")
        out[name] = value
    return out


@app.command()
@friendly_errors
def create(
    file: Path = typer.Option(..., "-f", "--file", help="Job definition (YAML/JSON)."),
    job_id: int = typer.Option(
        None, "--reset", help="Replace this job's settings instead of creating a new job."
    ),
) -> None:
    """Create a job from a YAML or Databricks Jobs JSON file (validated first)."""
    ws = workspace()
    if job_id is not None:
        ws.jobs.reset(job_id, str(file))
        console.print(f"Job {job_id} updated from {file}.")
        return
    new_id = ws.jobs.create(str(file))
    console.print(f"Created job [bold]{new_id}[/] ({ws.jobs.get(new_id).name}).")


@app.command("list")
@friendly_errors
def list_jobs() -> None:
    """List jobs with their schedule, trigger and tasks."""
    jobs = workspace().jobs.list()
    out = Table("job_id", "name", "tasks", "schedule / trigger", title=f"{len(jobs)} job(s)")
    for job in jobs:
        s = job.settings
        when = ""
        if s.get("schedule"):
            sched = s["schedule"]
            when = f"cron {sched['quartz_cron_expression']} {sched.get('timezone_id', 'UTC')}"
            when += " (paused)" if sched.get("pause_status") == "PAUSED" else ""
        elif s.get("trigger"):
            when = ", ".join(k for k in ("table_update", "file_arrival") if s["trigger"].get(k))
        out.add_row(str(job.job_id), job.name, ", ".join(t["task_key"] for t in s["tasks"]), when)
    console.print(out)


@app.command()
@friendly_errors
def get(job_id: int) -> None:
    """Print a job's settings as Databricks JSON."""
    console.print_json(json.dumps(workspace().jobs.get(job_id).settings))


@app.command()
@friendly_errors
def run(
    job_id: int,
    param: list[str] = typer.Option([], "--param", "-p", help="Job parameter NAME=VALUE."),
    wait: bool = typer.Option(True, help="Wait for the run to end and show it."),
    timeout: float = typer.Option(None, help="Seconds to wait at most."),
) -> None:
    """Run a job now."""
    ws = workspace()
    background = ws.jobs.service_running()
    run_id = ws.jobs.run_now(job_id, job_parameters=_params(param) or None)
    console.print(f"Started run [bold]{run_id}[/] of job {job_id}.")
    if not wait and not background:
        console.print(
            "[yellow]No jobs service is running (lakebox up or lakebox worker): the "
            "run will start when one does.[/]"
        )
    if wait:
        with console.status(f"Run {run_id} running..."):
            finished = ws.jobs.wait(run_id, timeout=timeout)
        _show_run(finished)
        if finished.result_state not in ("SUCCESS", "SUCCESS_WITH_FAILURES"):
            raise typer.Exit(1)


def _show_run(run: object) -> None:
    from lakebox.jobs import Run

    assert isinstance(run, Run)
    console.print(
        f"Run {run.run_id} ({run.run_name}): {_state(run.life_cycle_state, run.result_state)}"
        + (f" — {run.state_message}" if run.state_message else "")
    )
    out = Table("task", "task run", "attempt", "state", "started", "seconds", "message")
    for t in run.attempts:
        secs = f"{(t.end_time - t.start_time) / 1000:.2f}" if t.end_time and t.start_time else ""
        out.add_row(
            t.task_key,
            str(t.run_id),
            str(t.attempt_number),
            _state(t.life_cycle_state, t.result_state),
            _when(t.start_time),
            secs,
            (t.state_message or "")[:80],
        )
    console.print(out)


@app.command()
@friendly_errors
def runs(
    job_id: int = typer.Argument(None, help="Only this job's runs."),
    limit: int = typer.Option(20, help="Newest runs to show."),
    active: bool = typer.Option(False, help="Only active runs."),
) -> None:
    """List runs, newest first."""
    found = workspace().jobs.list_runs(job_id, active_only=active, limit=limit)
    out = Table(
        "run_id",
        "job_id",
        "name",
        "trigger",
        "state",
        "started",
        "seconds",
        title=f"{len(found)} run(s)",
    )
    for r in found:
        secs = f"{(r.end_time - r.start_time) / 1000:.2f}" if r.end_time and r.start_time else ""
        out.add_row(
            str(r.run_id),
            str(r.job_id or ""),
            r.run_name or "",
            r.trigger or "",
            _state(r.life_cycle_state, r.result_state),
            _when(r.start_time),
            secs,
        )
    console.print(out)


@app.command()
@friendly_errors
def show(run_id: int) -> None:
    """Show a run and every task attempt."""
    _show_run(workspace().jobs.get_run(run_id))


@app.command()
@friendly_errors
def logs(
    run_id: int, task: str = typer.Option(None, "--task", "-t", help="Only this task.")
) -> None:
    """Print the captured output of a run's tasks (or of one task run id)."""
    text = workspace().jobs.logs(run_id, task)
    console.print(text, highlight=False, markup=False, end="")


@app.command()
@friendly_errors
def cancel(run_id: int) -> None:
    """Cancel a run."""
    workspace().jobs.cancel_run(run_id)
    console.print(f"Cancel requested for run {run_id}.")


@app.command()
@friendly_errors
def repair(
    run_id: int,
    task: list[str] = typer.Option(
        [], "--task", "-t", help="Task key to re-run (default: all failed)."
    ),
    dependents: bool = typer.Option(True, help="Also re-run tasks downstream of --task."),
    wait: bool = typer.Option(True, help="Wait for the repaired run to end."),
) -> None:
    """Re-run the failed tasks of a run (and their dependents), in the same run."""
    ws = workspace()
    repair_id = ws.jobs.repair_run(
        run_id, rerun_tasks=task or None, rerun_dependent_tasks=dependents
    )
    console.print(f"Repair {repair_id} of run {run_id} started.")
    if wait:
        finished = ws.jobs.wait(run_id)
        _show_run(finished)
        if finished.result_state not in ("SUCCESS", "SUCCESS_WITH_FAILURES"):
            raise typer.Exit(1)


@app.command()
@friendly_errors
def delete(job_id: int) -> None:
    """Delete a job (its run history stays)."""
    workspace().jobs.delete(job_id)
    console.print(f"Deleted job {job_id}.")


@app.command("task-types")
@friendly_errors
def task_types() -> None:
    """List built-in task types usable as lakebox_task: {type: ...}."""
    from lakebox.jobs import task_types as registered

    out = Table("type", "function", "description")
    for t in sorted(registered().values(), key=lambda t: t.name):
        out.add_row(t.name, t.target, t.description)
    console.print(out)


@clusters_app.command("create")
@friendly_errors
def create_cluster(
    cluster_id: str,
    workers: int = typer.Option(1, help="Warm worker processes."),
    env: list[str] = typer.Option([], "--env", "-e", help="NAME=VALUE."),
) -> None:
    """Define an all-purpose cluster (tasks use it with existing_cluster_id)."""
    workspace().jobs.create_cluster(cluster_id, num_workers=workers, env=_params(env))
    console.print(f"Cluster {cluster_id!r} with {workers} warm worker(s) defined.")


@clusters_app.command("list")
@friendly_errors
def list_clusters() -> None:
    """List all-purpose clusters."""
    out = Table("cluster_id", "workers", "env")
    for c in workspace().jobs.list_clusters():
        out.add_row(
            c["cluster_id"],
            str(c["num_workers"]),
            ", ".join(f"{k}={v}" for k, v in c["spark_env_vars"].items()),
        )
    console.print(out)


@clusters_app.command("delete")
@friendly_errors
def delete_cluster(cluster_id: str) -> None:
    """Delete an all-purpose cluster definition."""
    workspace().jobs.delete_cluster(cluster_id)
    console.print(f"Deleted cluster {cluster_id!r}.")
