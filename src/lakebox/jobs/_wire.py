"""Jobs, runs and run outputs as Databricks Jobs API 2.2 JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lakebox.jobs._spec import TASK_TYPES
from lakebox.jobs._store import Job, Run, TaskRun

__all__ = ["job_json", "run_json", "run_output_json"]

_LIFE_V2 = {
    "QUEUED": "QUEUED",
    "PENDING": "PENDING",
    "RUNNING": "RUNNING",
    "TERMINATING": "TERMINATING",
    "TERMINATED": "TERMINATED",
    "SKIPPED": "TERMINATED",
    "INTERNAL_ERROR": "TERMINATED",
    "BLOCKED": "BLOCKED",
    "WAITING_FOR_RETRY": "WAITING",
}
_CODES = {
    "SUCCESS": ("SUCCESS", "SUCCESS"),
    "SUCCESS_WITH_FAILURES": ("SUCCESS_WITH_FAILURES", "SUCCESS"),
    "FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "TIMEDOUT": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "CANCELED": ("CANCELED", "SUCCESS"),
    "UPSTREAM_FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "UPSTREAM_CANCELED": ("CANCELED", "SUCCESS"),
    "EXCLUDED": ("SKIPPED", "SUCCESS"),
    "MAXIMUM_CONCURRENT_RUNS_REACHED": ("MAX_CONCURRENT_RUNS_EXCEEDED", "CLIENT_ERROR"),
}
LOG_TAIL_BYTES = 64 * 1024


def job_json(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "creator_user_name": job.creator or "lakebox",
        "created_time": job.created_time,
        "settings": job.settings,
        "run_as_user_name": job.creator or "lakebox",
    }


def _state(life: str, result: str | None, message: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "life_cycle_state": life,
        "state_message": message or "",
        "user_cancelled_or_timedout": result in ("CANCELED", "TIMEDOUT"),
    }
    if result:
        state["result_state"] = result
    return state


def _status(life: str, result: str | None, message: str | None) -> dict[str, Any]:
    status: dict[str, Any] = {"state": _LIFE_V2.get(life, life)}
    if life == "INTERNAL_ERROR":
        status["termination_details"] = {
            "code": "INTERNAL_ERROR",
            "type": "INTERNAL_ERROR",
            "message": message or "",
        }
    elif result:
        code, kind = _CODES.get(result, ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"))
        status["termination_details"] = {"code": code, "type": kind, "message": message or ""}
    return status


def _durations(start: int | None, end: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"setup_duration": 0, "cleanup_duration": 0}
    if start:
        out["start_time"] = start
    if end:
        out["end_time"] = end
    if start and end:
        out["execution_duration"] = end - start
        out["run_duration"] = end - start
    return out


def task_run_json(task: TaskRun, run: Run) -> dict[str, Any]:
    spec = task.spec
    out: dict[str, Any] = {
        "run_id": task.run_id,
        "task_key": task.task_key,
        "attempt_number": task.attempt_number,
        "state": _state(task.life_cycle_state, task.result_state, task.state_message),
        "status": _status(task.life_cycle_state, task.result_state, task.state_message),
        "depends_on": spec.get("depends_on", []),
        "run_if": spec.get("run_if", "ALL_SUCCESS"),
        "cluster_instance": {"cluster_id": task.cluster or ""},
        **_durations(task.start_time, task.end_time),
    }
    for key in (
        *TASK_TYPES,
        "existing_cluster_id",
        "job_cluster_key",
        "new_cluster",
        "description",
        "timeout_seconds",
        "max_retries",
    ):
        if spec.get(key) is not None:
            out[key] = spec[key]
    if task.repair_id:
        out["run_page_url"] = ""
    return out


def run_json(run: Run, *, include_history: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run_id": run.run_id,
        "number_in_job": run.run_id,
        "original_attempt_run_id": run.run_id,
        "run_name": run.run_name or "",
        "creator_user_name": "lakebox",
        "run_type": "SUBMIT_RUN" if run.run_type == "SUBMIT_RUN" else "JOB_RUN",
        "trigger": run.trigger or "ONE_TIME",
        "state": _state(run.life_cycle_state, run.result_state, run.state_message),
        "status": _status(run.life_cycle_state, run.result_state, run.state_message),
        "tasks": [task_run_json(t, run) for t in run.tasks],
        "job_parameters": [
            {
                "name": k,
                "value": v,
                "default": next(
                    (
                        p.get("default")
                        for p in run.settings.get("parameters") or []
                        if p["name"] == k
                    ),
                    None,
                ),
            }
            for k, v in run.job_parameters.items()
        ],
        "job_clusters": run.settings.get("job_clusters") or [],
        "attempt_number": 0,
        "run_page_url": "",
        **_durations(run.start_time, run.end_time),
    }
    if run.job_id is not None:
        out["job_id"] = run.job_id
    if run.scheduled_time is not None:
        out["schedule"] = run.settings.get("schedule")
        out["scheduled_time"] = run.scheduled_time
    if run.trigger_info:
        out["trigger_info"] = run.trigger_info
    if run.repair_id:
        out["repair_history"] = [{"type": "ORIGINAL", "id": 0}] + [
            {
                "type": "REPAIR",
                "id": i,
                "task_run_ids": [t.run_id for t in run.attempts if t.repair_id == i],
            }
            for i in range(1, run.repair_id + 1)
        ]
    if include_history and len(run.attempts) != len(run.tasks):
        out["lakebox_attempts"] = [task_run_json(t, run) for t in run.attempts]
    return out


def run_output_json(run: Run, task_run_id: int) -> dict[str, Any]:
    task = next(t for t in run.attempts if t.run_id == task_run_id)
    output = task.output or {}
    out: dict[str, Any] = {
        "metadata": {**run_json(run, include_history=False), "tasks": [task_run_json(task, run)]}
    }
    if output.get("result") is not None:
        result = output["result"]
        if task.spec.get("sql_task"):
            out["sql_output"] = result
        else:
            text = result if isinstance(result, str) else json.dumps(result)
            out["notebook_output"] = {
                "result": text[: 5 * 1024 * 1024],
                "truncated": len(text) > 5 * 1024 * 1024,
            }
    if output.get("error"):
        out["error"] = output["error"]
    if output.get("error_trace"):
        out["error_trace"] = output["error_trace"]
    if output.get("values"):
        out["task_values"] = output["values"]
    if task.log_path and Path(task.log_path).exists():
        data = Path(task.log_path).read_bytes()
        out["logs"] = data[-LOG_TAIL_BYTES:].decode(errors="replace")
        out["logs_truncated"] = len(data) > LOG_TAIL_BYTES
    return out
