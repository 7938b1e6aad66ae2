"""Metadata tables of jobs (component ``jobs``) and the dataclasses read from them.

Job runs and task runs share one table and one id sequence (as in Databricks, a task run has
its own ``run_id``); a task run points at its job run with ``parent_run_id``. Times are epoch
milliseconds, the unit of the Databricks API.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from lakebox.metadata import Migration

__all__ = [
    "Job",
    "Run",
    "TaskRun",
    "clusters",
    "jobs",
    "now_ms",
    "runs",
    "schedule_state",
    "services",
]

metadata = MetaData()

jobs = Table(
    "jobs_jobs",
    metadata,
    Column("job_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(512), nullable=False, index=True),
    Column("settings", Text, nullable=False),
    Column("creator", String(255), nullable=True),
    Column("created_time", BigInteger, nullable=False),
)

runs = Table(
    "jobs_runs",
    metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("parent_run_id", Integer, nullable=True, index=True),
    Column("job_id", Integer, nullable=True, index=True),
    Column("task_key", String(100), nullable=True),
    Column("run_name", String(512), nullable=True),
    Column("run_type", String(32), nullable=False),  # JOB_RUN, SUBMIT_RUN, TASK
    Column("trigger", String(32), nullable=True),
    Column("trigger_info", Text, nullable=True),
    Column("life_cycle_state", String(32), nullable=False, index=True),
    Column("result_state", String(32), nullable=True),
    Column("state_message", Text, nullable=True),
    Column("settings", Text, nullable=False),  # job settings snapshot / task spec
    Column("job_parameters", Text, nullable=True),
    Column("scheduled_time", BigInteger, nullable=True),
    Column("attempt_number", Integer, nullable=False, default=0),
    Column("repair_id", Integer, nullable=True),
    Column("owner", String(64), nullable=True, index=True),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("created_time", BigInteger, nullable=False),
    Column("start_time", BigInteger, nullable=True),
    Column("end_time", BigInteger, nullable=True),
    Column("not_before", BigInteger, nullable=True),
    Column("output", Text, nullable=True),
    Column("log_path", Text, nullable=True),
    Column("cluster", String(255), nullable=True),
    UniqueConstraint("job_id", "scheduled_time", name="uq_jobs_runs_schedule_tick"),
)

clusters = Table(
    "jobs_clusters",
    metadata,
    Column("cluster_id", String(100), primary_key=True),
    Column("num_workers", Integer, nullable=False),
    Column("spark_env_vars", Text, nullable=False),
    Column("created_time", BigInteger, nullable=False),
)

services = Table(
    "jobs_services",
    metadata,
    Column("service_id", String(64), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("wake_port", Integer, nullable=True),
    Column("scheduler", Boolean, nullable=False),
    Column("started_time", BigInteger, nullable=False),
    Column("heartbeat_time", BigInteger, nullable=False),
)

schedule_state = Table(
    "jobs_schedule_state",
    metadata,
    Column("job_id", Integer, primary_key=True),
    Column("last_tick", BigInteger, nullable=True),
    Column("trigger_state", Text, nullable=True),
    Column("last_triggered", BigInteger, nullable=True),
)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)


MIGRATIONS = [Migration("jobs", 1, "jobs, runs, clusters, services, schedule state", _v1)]

ACTIVE_STATES = ("QUEUED", "PENDING", "RUNNING", "TERMINATING", "WAITING_FOR_RETRY", "BLOCKED")
FINAL_STATES = ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")


def now_ms() -> int:
    return int(time.time() * 1000)


def loads(text: str | None, default: Any = None) -> Any:
    return json.loads(text) if text else default


@dataclass(frozen=True)
class Job:
    """A stored job: its id and its Databricks ``JobSettings``."""

    job_id: int
    settings: dict[str, Any]
    created_time: int
    creator: str | None = None

    @property
    def name(self) -> str:
        return str(self.settings.get("name", ""))

    @classmethod
    def from_row(cls, row: Any) -> Job:
        return cls(
            job_id=row.job_id,
            settings=json.loads(row.settings),
            created_time=row.created_time,
            creator=row.creator,
        )


@dataclass(frozen=True)
class TaskRun:
    """One attempt of one task inside a job run."""

    run_id: int
    task_key: str
    attempt_number: int
    life_cycle_state: str
    result_state: str | None
    state_message: str | None
    spec: dict[str, Any]
    start_time: int | None
    end_time: int | None
    log_path: str | None
    cluster: str | None
    output: dict[str, Any] = field(default_factory=dict)
    repair_id: int | None = None

    @property
    def done(self) -> bool:
        return self.life_cycle_state in FINAL_STATES

    @classmethod
    def from_row(cls, row: Any) -> TaskRun:
        return cls(
            run_id=row.run_id,
            task_key=row.task_key,
            attempt_number=row.attempt_number,
            life_cycle_state=row.life_cycle_state,
            result_state=row.result_state,
            state_message=row.state_message,
            spec=json.loads(row.settings),
            start_time=row.start_time,
            end_time=row.end_time,
            log_path=row.log_path,
            cluster=row.cluster,
            output=loads(row.output, {}),
            repair_id=row.repair_id,
        )


@dataclass(frozen=True)
class Run:
    """A job run (or a one-time submitted run) and its task runs.

    ``tasks`` holds the latest attempt of each task; ``attempts`` every attempt, oldest first.
    """

    run_id: int
    job_id: int | None
    run_name: str | None
    run_type: str
    trigger: str | None
    life_cycle_state: str
    result_state: str | None
    state_message: str | None
    settings: dict[str, Any]
    job_parameters: dict[str, Any]
    created_time: int
    start_time: int | None
    end_time: int | None
    scheduled_time: int | None
    repair_id: int | None
    trigger_info: dict[str, Any]
    tasks: list[TaskRun]
    attempts: list[TaskRun]

    @property
    def done(self) -> bool:
        return self.life_cycle_state in FINAL_STATES

    def task(self, task_key: str) -> TaskRun:
        """The latest attempt of ``task_key``."""
        from lakebox.errors import NotFound, close_matches

        for t in self.tasks:
            if t.task_key == task_key:
                return t
        keys = [t.task_key for t in self.tasks]
        raise NotFound(
            f"Run {self.run_id} has no task {task_key!r}.{close_matches(task_key, keys)}"
        )

    @classmethod
    def from_rows(cls, row: Any, task_rows: Sequence[Any]) -> Run:
        attempts = [TaskRun.from_row(r) for r in sorted(task_rows, key=lambda r: r.run_id)]
        latest: dict[str, TaskRun] = {}
        for attempt in attempts:
            latest[attempt.task_key] = attempt
        order = [t["task_key"] for t in loads(row.settings, {}).get("tasks", [])]
        tasks = sorted(
            latest.values(),
            key=lambda t: order.index(t.task_key) if t.task_key in order else len(order),
        )
        return cls(
            run_id=row.run_id,
            job_id=row.job_id,
            run_name=row.run_name,
            run_type=row.run_type,
            trigger=row.trigger,
            life_cycle_state=row.life_cycle_state,
            result_state=row.result_state,
            state_message=row.state_message,
            settings=loads(row.settings, {}),
            job_parameters=loads(row.job_parameters, {}),
            created_time=row.created_time,
            start_time=row.start_time,
            end_time=row.end_time,
            scheduled_time=row.scheduled_time,
            repair_id=row.repair_id,
            trigger_info=loads(row.trigger_info, {}),
            tasks=tasks,
            attempts=attempts,
        )
