"""``ws.jobs``: create jobs, run them, watch, cancel and repair runs, manage clusters."""

from __future__ import annotations

import atexit
import builtins
import json
import os
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from lakebox.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from lakebox.jobs import _store
from lakebox.jobs._service import JobService, new_run_values, poke, set_last_tick
from lakebox.jobs._spec import load_job_spec, validate_job_settings
from lakebox.jobs._store import Job, Run, clusters, jobs, now_ms, runs, schedule_state, services
from lakebox.jobs._tasks import task_types

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["TRIGGERS", "Jobs"]

# Databricks' trigger types, plus WEBHOOK for registry-event webhooks (job_spec).
TRIGGERS = (
    "ONE_TIME",
    "PERIODIC",
    "RETRY",
    "RUN_JOB_TASK",
    "FILE_ARRIVAL",
    "TABLE",
    "CONTINUOUS",
    "JOB_COMPLETION",
    "WEBHOOK",
    "MODEL",
)
FAILED_RESULTS = ("FAILED", "TIMEDOUT", "CANCELED", "UPSTREAM_FAILED", "UPSTREAM_CANCELED")
_BACKGROUND_ENV = "LAKEBOX_BACKGROUND_SERVICES"  # see lakebox.server._run
_embedded: list[JobService] = []  # runners started by Jobs objects of this process


def stop_embedded_runners() -> None:
    """Stop every runner this process started (their unfinished runs are handed over)."""
    while _embedded:
        _embedded.pop().stop()


atexit.register(stop_embedded_runners)


class Jobs:
    """Jobs and runs of a workspace (``ws.jobs``), shaped like Databricks' Jobs API.

    Runs are executed by the jobs service of ``lakebox up`` / ``lakebox worker``; when none is
    running, the first ``run_now``/``submit``/``repair_run`` starts an embedded runner in this
    process (it does not fire schedules or triggers).

    Example:
        >>> job_id = ws.jobs.create({"name": "nightly", "tasks": [                 # doctest: +SKIP
        ...     {"task_key": "count", "sql_task": {"query": "SELECT count(*) FROM main.raw.t"}}]})
        >>> run = ws.jobs.wait(ws.jobs.run_now(job_id))                             # doctest: +SKIP
        >>> run.result_state                                                        # doctest: +SKIP
        'SUCCESS'
    """

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.db = ws.metadata
        self._service: JobService | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ jobs
    def _validate(self, settings: Any) -> dict[str, Any]:
        spec = load_job_spec(settings)
        return validate_job_settings(
            spec, cluster_exists=self._cluster_exists, task_types=task_types()
        )

    def create(
        self, settings: Mapping[str, Any] | str | os.PathLike[str] | None = None, /, **fields: Any
    ) -> int:
        """Create a job; returns its ``job_id``.

        Args:
            settings: Databricks ``JobSettings`` as a dict, a YAML/JSON file path or text.
            **fields: settings given as keywords (``name=..., tasks=[...]``), as the
                databricks-sdk's ``w.jobs.create`` takes them.

        Raises:
            InvalidInput: the definition is invalid (nothing is stored).
        """
        source: Any = settings if settings is not None else {}
        if fields:
            source = {**(load_job_spec(source) if settings is not None else {}), **fields}
        job = self._validate(source)
        with self.db.begin() as conn:
            result = conn.execute(
                jobs.insert().values(
                    name=job["name"],
                    settings=json.dumps(job),
                    creator=_user(),
                    created_time=now_ms(),
                )
            )
            job_id = _new_id(result)
        if job.get("schedule"):
            set_last_tick(self.db, job_id, now_ms())
        return job_id

    def get(self, job_id: int) -> Job:
        """A job by id. Raises :class:`~lakebox.errors.NotFound`."""
        job_id = _int_id(job_id, "job_id")
        with self.db.begin() as conn:
            row = conn.execute(select(jobs).where(jobs.c.job_id == job_id)).one_or_none()
        if row is None:
            raise NotFound(
                f"Job {job_id} does not exist. List jobs with ws.jobs.list() or "
                "`lakebox jobs list`."
            )
        return Job.from_row(row)

    def list(
        self, *, name: str | None = None, limit: int | None = None, offset: int = 0
    ) -> builtins.list[Job]:
        """Jobs, oldest first; ``name`` filters by exact name (case-insensitive)."""
        query = select(jobs).order_by(jobs.c.job_id)
        with self.db.begin() as conn:
            rows = conn.execute(query).all()
        out = [Job.from_row(r) for r in rows]
        if name is not None:
            out = [j for j in out if j.name.lower() == name.lower()]
        return out[offset : offset + limit if limit else None]

    def _store_settings(self, job_id: int, new: dict[str, Any], old: dict[str, Any]) -> None:
        with self.db.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id)
                .values(name=new["name"], settings=json.dumps(new))
            )
        old_schedule, new_schedule = old.get("schedule"), new.get("schedule")
        if new_schedule and (
            old_schedule is None
            or old_schedule.get("pause_status") == "PAUSED"
            or old_schedule.get("quartz_cron_expression")
            != new_schedule.get("quartz_cron_expression")
        ):
            set_last_tick(self.db, job_id, now_ms())  # no back-fill of ticks before now
        if old.get("trigger") != new.get("trigger"):
            with self.db.begin() as conn:
                conn.execute(
                    update(schedule_state)
                    .where(schedule_state.c.job_id == job_id)
                    .values(trigger_state=None)
                )

    def update(
        self,
        job_id: int,
        new_settings: Mapping[str, Any] | None = None,
        *,
        fields_to_remove: builtins.list[str] | None = None,
    ) -> None:
        """Change some top-level settings (``tasks`` and ``job_clusters`` merge by key)."""
        current = self.get(job_id)
        merged = json.loads(json.dumps(current.settings))
        for key, value in (new_settings or {}).items():
            if key in ("tasks", "job_clusters") and isinstance(value, list):
                ident = "task_key" if key == "tasks" else "job_cluster_key"
                by_key = {item[ident]: item for item in merged.get(key, [])}
                for item in value:
                    by_key[item.get(ident)] = item
                merged[key] = list(by_key.values())
            else:
                merged[key] = value
        removed: builtins.list[str] = fields_to_remove or []
        for field in removed:
            if field.startswith("tasks/"):
                merged["tasks"] = [
                    t for t in merged.get("tasks", []) if t["task_key"] != field.split("/", 1)[1]
                ]
            elif field.startswith("job_clusters/"):
                merged["job_clusters"] = [
                    c
                    for c in merged.get("job_clusters", [])
                    if c["job_cluster_key"] != field.split("/", 1)[1]
                ]
            else:
                merged.pop(field, None)
        self._store_settings(current.job_id, self._validate(merged), current.settings)

    def reset(self, job_id: int, new_settings: Mapping[str, Any] | str) -> None:
        """Replace all settings of a job."""
        current = self.get(job_id)
        self._store_settings(current.job_id, self._validate(new_settings), current.settings)

    def delete(self, job_id: int) -> None:
        """Delete a job and cancel its active runs (run history is kept)."""
        job = self.get(job_id)
        self.cancel_all_runs(job.job_id)
        with self.db.begin() as conn:
            conn.execute(delete(jobs).where(jobs.c.job_id == job.job_id))
            conn.execute(delete(schedule_state).where(schedule_state.c.job_id == job.job_id))

    # ------------------------------------------------------------------ runs
    def run_now(
        self,
        job_id: int,
        *,
        job_parameters: dict[str, Any] | None = None,
        trigger: str | None = None,
    ) -> int:
        """Start a run of a job now; returns its ``run_id``.

        Args:
            job_id: the job.
            job_parameters: values overriding the job's parameter defaults (strings; other
                JSON values are encoded as JSON).
            trigger: why the run starts (default ``"ONE_TIME"``; registry webhooks pass
                ``"WEBHOOK"``).

        Raises:
            NotFound: no job ``job_id``.
        """
        job = self.get(job_id)
        trigger = (trigger or "ONE_TIME").upper()
        if trigger not in TRIGGERS:
            raise InvalidInput(f"Unknown trigger {trigger!r}; use one of {', '.join(TRIGGERS)}.")
        params = _string_params(job_parameters)
        with self.db.begin() as conn:
            result = conn.execute(
                runs.insert().values(
                    **new_run_values(
                        job.job_id, job.settings, trigger=trigger, job_parameters=params
                    )
                )
            )
            run_id = _new_id(result)
        self._kick()
        return run_id

    def submit(self, settings: Mapping[str, Any] | str, *, run_name: str | None = None) -> int:
        """Run a one-time job definition without creating a job; returns the ``run_id``."""
        spec = self._validate(settings)
        if spec.get("schedule") or spec.get("trigger"):
            raise InvalidInput(
                "A submitted one-time run cannot have a schedule or trigger; "
                "create a job with ws.jobs.create instead."
            )
        with self.db.begin() as conn:
            result = conn.execute(
                runs.insert().values(
                    **new_run_values(
                        None,
                        spec,
                        trigger="ONE_TIME",
                        run_name=run_name or spec["name"],
                        run_type="SUBMIT_RUN",
                    )
                )
            )
            run_id = _new_id(result)
        self._kick()
        return run_id

    def _row(self, run_id: int) -> Any:
        run_id = _int_id(run_id, "run_id")
        with self.db.begin() as conn:
            row = conn.execute(select(runs).where(runs.c.run_id == run_id)).one_or_none()
        if row is None:
            raise NotFound(
                f"Run {run_id} does not exist. List runs with ws.jobs.list_runs() or "
                "`lakebox jobs runs`."
            )
        return row

    def get_run(self, run_id: int) -> Run:
        """A job run with its task runs (given a task run's id, that task's job run)."""
        row = self._row(run_id)
        if row.parent_run_id is not None:
            row = self._row(row.parent_run_id)
        with self.db.begin() as conn:
            task_rows = conn.execute(select(runs).where(runs.c.parent_run_id == row.run_id)).all()
        return Run.from_rows(row, task_rows)

    def list_runs(
        self,
        job_id: int | None = None,
        *,
        active_only: bool = False,
        completed_only: bool = False,
        limit: int = 25,
        offset: int = 0,
    ) -> builtins.list[Run]:
        """Runs, newest first."""
        if active_only and completed_only:
            raise InvalidInput("Give at most one of active_only and completed_only.")
        query = select(runs).where(runs.c.parent_run_id.is_(None))
        if job_id is not None:
            query = query.where(runs.c.job_id == _int_id(job_id, "job_id"))
        if active_only:
            query = query.where(runs.c.life_cycle_state.in_(_store.ACTIVE_STATES))
        if completed_only:
            query = query.where(runs.c.life_cycle_state.in_(_store.FINAL_STATES))
        query = query.order_by(runs.c.run_id.desc()).offset(offset)
        if limit:
            query = query.limit(limit)
        with self.db.begin() as conn:
            rows = conn.execute(query).all()
            ids = [r.run_id for r in rows]
            task_rows = (
                conn.execute(select(runs).where(runs.c.parent_run_id.in_(ids))).all() if ids else []
            )
        by_parent: dict[int, list[Any]] = {}
        for t in task_rows:
            by_parent.setdefault(t.parent_run_id, []).append(t)
        return [Run.from_rows(r, by_parent.get(r.run_id, [])) for r in rows]

    def cancel_run(self, run_id: int) -> None:
        """Ask a run to stop: running tasks are killed, the run ends CANCELED."""
        row = self._row(run_id)
        if row.parent_run_id is not None:
            row = self._row(row.parent_run_id)
        with self.db.begin() as conn:
            conn.execute(
                update(runs).where(runs.c.run_id == row.run_id).values(cancel_requested=True)
            )
            conn.execute(
                update(runs)
                .where(runs.c.run_id == row.run_id)
                .where(runs.c.owner.is_(None))
                .where(runs.c.life_cycle_state.in_(("PENDING", "QUEUED")))
                .values(
                    life_cycle_state="TERMINATED",
                    result_state="CANCELED",
                    end_time=now_ms(),
                    state_message="Run canceled before it started.",
                )
            )
        self._poke_services()

    def delete_run(self, run_id: int) -> None:
        """Delete a finished run, its task runs and their log files."""
        run = self.get_run(run_id)
        if not run.done:
            raise Conflict(
                f"Run {run.run_id} is {run.life_cycle_state}; cancel it before deleting it."
            )
        with self.db.begin() as conn:
            conn.execute(delete(runs).where(runs.c.parent_run_id == run.run_id))
            conn.execute(delete(runs).where(runs.c.run_id == run.run_id))
        for t in run.attempts:
            if t.log_path:
                Path(t.log_path).unlink(missing_ok=True)

    def cancel_all_runs(self, job_id: int) -> None:
        """Cancel every active run of a job."""
        for run in self.list_runs(job_id, active_only=True, limit=0):
            self.cancel_run(run.run_id)

    def repair_run(
        self,
        run_id: int,
        *,
        rerun_tasks: builtins.list[str] | None = None,
        rerun_all_failed_tasks: bool = False,
        rerun_dependent_tasks: bool = False,
        job_parameters: dict[str, Any] | None = None,
        latest_repair_id: int | None = None,
    ) -> int:
        """Re-run some tasks of a finished run, in the same run; returns the ``repair_id``.

        Args:
            run_id: the job run.
            rerun_tasks: task keys to re-run.
            rerun_all_failed_tasks: re-run every task that failed, timed out, was canceled or
                was skipped because an upstream task failed (default when no
                ``rerun_tasks``).
            rerun_dependent_tasks: also re-run every task downstream of ``rerun_tasks``.
            job_parameters: new parameter values for the repaired tasks.
            latest_repair_id: the newest repair the caller knows of (refused if stale).
        """
        run = self.get_run(run_id)
        if not run.done:
            raise Conflict(
                f"Run {run.run_id} is {run.life_cycle_state}; only finished runs "
                "can be repaired. Cancel it first or wait for it to end."
            )
        if latest_repair_id is not None and latest_repair_id != (run.repair_id or 0):
            raise Conflict(
                f"latest_repair_id {latest_repair_id} is stale; run {run.run_id}'s "
                f"latest repair is {run.repair_id or 0}."
            )
        tasks = {t["task_key"]: t for t in run.settings["tasks"]}
        latest = {t.task_key: t for t in run.tasks}
        if rerun_tasks:
            unknown = [k for k in rerun_tasks if k not in tasks]
            if unknown:
                raise InvalidInput(
                    f"Run {run.run_id} has no task(s) {unknown}; tasks: {sorted(tasks)}."
                )
            chosen = set(rerun_tasks)
        else:
            chosen = {
                k
                for k in tasks
                if k not in latest
                or latest[k].result_state in FAILED_RESULTS
                or latest[k].life_cycle_state == "INTERNAL_ERROR"
            }
            rerun_dependent_tasks = True
        if rerun_dependent_tasks:
            changed = True
            while changed:
                changed = False
                for key, task in tasks.items():
                    if key not in chosen and any(
                        d["task_key"] in chosen for d in task.get("depends_on", [])
                    ):
                        chosen.add(key)
                        changed = True
        if not chosen:
            raise InvalidInput(
                f"Run {run.run_id} has nothing to repair: every task succeeded. "
                "Name tasks with rerun_tasks to run them again."
            )
        repair_id = (run.repair_id or 0) + 1
        params = {**run.job_parameters, **_string_params(job_parameters)}
        with self.db.begin() as conn:
            for key in chosen:
                conn.execute(
                    runs.insert().values(
                        parent_run_id=run.run_id,
                        job_id=run.job_id,
                        task_key=key,
                        run_type="TASK",
                        settings=json.dumps(tasks[key]),
                        attempt_number=0,
                        repair_id=repair_id,
                        life_cycle_state="PENDING",
                        cancel_requested=False,
                        created_time=now_ms(),
                        state_message=f"Repair {repair_id}",
                    )
                )
            conn.execute(
                update(runs)
                .where(runs.c.run_id == run.run_id)
                .values(
                    life_cycle_state="PENDING",
                    result_state=None,
                    owner=None,
                    end_time=None,
                    cancel_requested=False,
                    repair_id=repair_id,
                    job_parameters=json.dumps(params),
                    state_message=f"Repair {repair_id}: re-running {', '.join(sorted(chosen))}",
                )
            )
        self._kick()
        return repair_id

    def get_run_output(self, run_id: int) -> dict[str, Any]:
        """The output of a task run (Databricks ``RunOutput`` JSON); a job run with one task
        gives that task's output."""
        from lakebox.jobs._wire import run_output_json

        row = self._row(run_id)
        if row.parent_run_id is None:
            run = self.get_run(row.run_id)
            if len(run.tasks) != 1:
                raise InvalidInput(
                    f"Run {row.run_id} has {len(run.tasks)} tasks; get the output of one task "
                    f"run instead: {', '.join(f'{t.task_key}={t.run_id}' for t in run.tasks)}."
                )
            row = self._row(run.tasks[0].run_id)
        return run_output_json(self.get_run(row.run_id), row.run_id)

    def logs(self, run_id: int, task_key: str | None = None) -> str:
        """The captured output (stdout and stderr) of a task run, or of every task of a run."""
        run = self.get_run(run_id)
        chosen = [t for t in run.attempts if (task_key is None or t.task_key == task_key)]
        if task_key is None and _int_id(run_id, "run_id") != run.run_id:
            chosen = [t for t in run.attempts if t.run_id == int(run_id)]
        if task_key is not None and not chosen:
            run.task(task_key)  # raises NotFound with suggestions
        parts = []
        for t in chosen:
            text = (
                Path(t.log_path).read_text(errors="replace")
                if t.log_path and Path(t.log_path).exists()
                else ""
            )
            parts.append(
                f"===== {t.task_key} (task run {t.run_id}, attempt "
                f"{t.attempt_number}): {t.result_state or t.life_cycle_state}\n{text}"
            )
        return "\n".join(parts)

    def wait(self, run_id: int, *, timeout: float | None = None, poll: float = 0.02) -> Run:
        """Block until a run ends; returns it.

        Raises:
            TimeoutError: it did not end within ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = poll
        next_kick = time.monotonic()
        while True:
            run = self.get_run(run_id)
            if run.done:
                return run
            if run.life_cycle_state in ("PENDING", "QUEUED") and time.monotonic() >= next_kick:
                self._kick()  # nobody may be left to run it (e.g. its runner was stopped)
                next_kick = time.monotonic() + 2
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"Run {run_id} is still {run.life_cycle_state} after {timeout} s."
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    # ------------------------------------------------------------------ clusters
    def _cluster_exists(self, cluster_id: str) -> bool:
        with self.db.begin() as conn:
            return (
                conn.execute(
                    select(clusters.c.cluster_id).where(clusters.c.cluster_id == cluster_id)
                ).one_or_none()
                is not None
            )

    def create_cluster(
        self, cluster_id: str, *, num_workers: int = 1, env: dict[str, str] | None = None
    ) -> str:
        """Define an all-purpose cluster: a warm pool of ``num_workers`` worker processes that
        runners keep up between runs. Tasks use it with ``existing_cluster_id``."""
        if not isinstance(cluster_id, str) or not cluster_id.strip() or len(cluster_id) > 100:
            raise InvalidInput(f"Cluster id must be a non-empty name, got {cluster_id!r}.")
        if (
            not isinstance(num_workers, int)
            or isinstance(num_workers, bool)
            or not (1 <= num_workers <= 64)
        ):
            raise InvalidInput(f"num_workers must be an integer from 1 to 64, got {num_workers!r}.")
        if any(not isinstance(v, str) for v in (env or {}).values()):
            raise InvalidInput("Cluster env values must be strings.")
        if self._cluster_exists(cluster_id):
            raise AlreadyExists(
                f"Cluster {cluster_id!r} already exists; delete it first or choose another id."
            )
        with self.db.begin() as conn:
            conn.execute(
                clusters.insert().values(
                    cluster_id=cluster_id,
                    num_workers=num_workers,
                    spark_env_vars=json.dumps(env or {}),
                    created_time=now_ms(),
                )
            )
        return cluster_id

    def list_clusters(self) -> builtins.list[dict[str, Any]]:
        """All-purpose clusters: ``cluster_id``, ``num_workers``, ``spark_env_vars``."""
        with self.db.begin() as conn:
            rows = conn.execute(select(clusters).order_by(clusters.c.cluster_id)).all()
        return [
            {
                "cluster_id": r.cluster_id,
                "cluster_name": r.cluster_id,
                "num_workers": r.num_workers,
                "spark_env_vars": json.loads(r.spark_env_vars),
                "state": "RUNNING",
                "start_time": r.created_time,
            }
            for r in rows
        ]

    def delete_cluster(self, cluster_id: str) -> None:
        """Remove an all-purpose cluster definition (runners stop its pool)."""
        if not self._cluster_exists(cluster_id):
            raise NotFound(f"Cluster {cluster_id!r} does not exist.")
        with self.db.begin() as conn:
            conn.execute(delete(clusters).where(clusters.c.cluster_id == cluster_id))
        if self._service is not None:
            self._service.clusters.drop(cluster_id)

    # ------------------------------------------------------------------ runner
    def start_runner(self, *, scheduler: bool = False, **options: Any) -> JobService:
        """Start a jobs service in this process (``scheduler=True`` also fires schedules and
        triggers); ``lakebox up`` and ``lakebox worker`` do this for you."""
        with self._lock:
            if self._service is None or not self._service.alive():
                self._service = JobService(self.ws, scheduler=scheduler, **options).start()
                _embedded.append(self._service)
            return self._service

    def service_running(self) -> bool:
        """Whether a jobs service (``lakebox up``, ``lakebox worker`` or one started in this
        process) is alive to execute runs."""
        if self._service is not None and self._service.alive():
            return True
        return self._live_ports() is not None

    def _live_ports(self) -> builtins.list[int] | None:
        """Wake ports of live services on this host; None when no service is alive."""
        cutoff = now_ms() - 15_000
        with self.db.begin() as conn:
            rows = conn.execute(select(services).where(services.c.heartbeat_time >= cutoff)).all()
        if not rows:
            return None
        host = socket.gethostname()
        return [r.wake_port for r in rows if r.hostname == host and r.wake_port]

    def _poke_services(self) -> None:
        if self._service is not None and self._service.alive():
            self._service.wake()
        poke(self._live_ports() or [])

    def _kick(self) -> None:
        """Make sure some service will pick up a new pending run, promptly."""
        if self._service is not None and self._service.alive():
            self._service.wake()
            return
        ports = self._live_ports()
        if ports is not None:
            poke(ports)
            return
        if os.environ.get(_BACKGROUND_ENV):
            return  # lakebox up / worker: the main process's service picks the run up
        self.start_runner(scheduler=False)

    def close(self) -> None:
        """Stop the embedded runner, if this process started one."""
        with self._lock:
            service, self._service = self._service, None
        if service is not None:
            service.stop()
            if service in _embedded:
                _embedded.remove(service)


def _new_id(result: Any) -> int:
    """The primary key of the row an INSERT created."""
    return int(result.inserted_primary_key[0])


def _int_id(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be an integer, got {value!r}.") from None


def _string_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise InvalidInput(
            f"job_parameters must be a mapping of name to value, got {type(params).__name__}."
        )
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "lakebox"
