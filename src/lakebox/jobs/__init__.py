"""Jobs: multi-task workflows on job clusters or warm all-purpose clusters, with schedules,
triggers, retries, repair, and the Databricks Jobs API.

Start from ``ws.jobs`` (:class:`Jobs`)::

    job_id = ws.jobs.create("job.yaml")          # or a dict / Databricks Jobs 2.1 JSON
    run_id = ws.jobs.run_now(job_id, job_parameters={"day": "2026-01-01"})
    run = ws.jobs.wait(run_id)
    run.result_state                              # 'SUCCESS'

Inside a task, :mod:`lakebox.jobs.task_values` passes small values to later tasks and
:func:`parameters` gives the run's job parameters.
"""

from __future__ import annotations

from typing import Any

from lakebox.jobs import _context, task_values
from lakebox.jobs._api import TRIGGERS, Jobs
from lakebox.jobs._cicd import create_model_validation_job
from lakebox.jobs._cron import QuartzCron
from lakebox.jobs._service import CATCH_UP_LIMIT, JobService, run_scheduler
from lakebox.jobs._spec import RUN_IF, TASK_TYPES, load_job_spec, validate_job_settings
from lakebox.jobs._store import Job, Run, TaskRun
from lakebox.jobs._tasks import TaskType, register_task_type, task_types

__all__ = [
    "CATCH_UP_LIMIT",
    "Job",
    "JobService",
    "Jobs",
    "QuartzCron",
    "RUN_IF",
    "Run",
    "TASK_TYPES",
    "TRIGGERS",
    "TaskRun",
    "TaskType",
    "context",
    "create_model_validation_job",
    "load_job_spec",
    "parameters",
    "register_task_type",
    "run_scheduler",
    "task_types",
    "task_values",
    "validate_job_settings",
]


def parameters() -> dict[str, Any]:
    """The job parameters of the running task's run (``{}`` outside a job run).

    Example:
        >>> from lakebox import jobs
        >>> jobs.parameters().get("day", "2026-01-01")
        '2026-01-01'
    """
    ctx = _context.current()
    return dict((ctx or {}).get("parameters") or {})


def context() -> dict[str, Any] | None:
    """The running task's context (``job_id``, ``run_id``, ``task_run_id``, ``task_key``,
    ``attempt_number``, ``trigger``, ``trigger_info``); None outside a job run."""
    ctx = _context.current()
    if ctx is None:
        return None
    return {k: v for k, v in ctx.items() if k not in ("values", "upstream_values")}
