"""Built-in task types of the jobs package (see :func:`lakebox.jobs.register_task_type`)."""

from __future__ import annotations

import time
from typing import Any

__all__ = ["optimize_table", "preload", "run_job", "sleep", "vacuum_table"]


def optimize_table(ws: Any, name: str, zorder_by: list[str] | None = None) -> dict[str, Any]:
    """Compact small files of a Delta table (and Z-order by ``zorder_by``)."""
    metrics = ws.tables.optimize(name, zorder_by=zorder_by or None)
    print(
        f"optimized {name}: {metrics.get('numFilesRemoved', 0)} file(s) rewritten into "
        f"{metrics.get('numFilesAdded', 0)}"
    )
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}


def vacuum_table(ws: Any, name: str, retention_hours: int = 168) -> int:
    """Delete files that no retained version of a Delta table needs; returns how many."""
    files = ws.tables.vacuum(name, retention_hours, dry_run=False)
    print(f"vacuumed {name}: {len(files)} file(s) deleted")
    return len(files)


def sleep(ws: Any, seconds: float = 1.0) -> float:
    """Wait ``seconds`` (useful to test timeouts and cancellation)."""
    time.sleep(seconds)
    return seconds


def run_job(ws: Any, job_id: int, job_parameters: dict[str, str] | None = None) -> int:
    """Run another job, wait for it, fail if it did not succeed; returns its run id."""
    run_id = ws.jobs.run_now(job_id, job_parameters=job_parameters, trigger="RUN_JOB_TASK")
    run = ws.jobs.wait(run_id)
    print(f"job {job_id} run {run_id}: {run.result_state}")
    if run.result_state not in ("SUCCESS", "SUCCESS_WITH_FAILURES"):
        raise RuntimeError(
            f"job {job_id} run {run_id} ended {run.result_state}: {run.state_message}"
        )
    return run_id


def preload(modules: list[str]) -> list[str]:
    """Import modules in the worker (run on an all-purpose cluster to warm it up)."""
    import importlib

    for name in modules:
        importlib.import_module(name)
    return modules
