"""The job service: scheduler, triggers, run claiming and recovery, in one loop.

It runs inside ``lakebox up`` (once, in the main process), inside ``lakebox worker``, or
embedded in a Python process that calls ``ws.jobs.run_now`` when no service is running.

**Durability.** Everything is in the metadata database. Each scheduled run is inserted in
the same transaction that advances the job's ``last_tick``, and runs carry their tick as
``scheduled_time`` under a unique ``(job_id, scheduled_time)`` constraint: a crash or SIGKILL
at any point neither loses nor doubles a tick, even with several services on one database.

**Catch-up policy.** After downtime the scheduler starts one run for every tick missed while
no scheduler was running, at most :data:`CATCH_UP_LIMIT` (the most recent ones) per job;
older missed ticks are dropped and logged. A newly created, updated or unpaused schedule
starts from "now" (no back-fill). Catch-up runs obey ``max_concurrent_runs``: with
``queue.enabled`` they wait, otherwise the ones over the limit end as SKIPPED.

**Orphaned runs.** Every service heartbeats in ``jobs_services``. When a service's process is
gone (same host, pid dead) or its heartbeat is older than ``orphan_timeout``, its running
runs are taken over: each task attempt that was running is marked ``INTERNAL_ERROR``/
``FAILED`` ("orphaned"), a new attempt is queued if the task's ``max_retries`` allows, and the
run goes back to PENDING for any live service to continue (finished tasks are not re-run).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from lakebox.jobs import _store
from lakebox.jobs._clusters import ClusterManager
from lakebox.jobs._cron import QuartzCron
from lakebox.jobs._runner import RunExecutor
from lakebox.jobs._store import clusters, jobs, now_ms, runs, schedule_state, services

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["CATCH_UP_LIMIT", "JobService", "run_scheduler"]

log = logging.getLogger("lakebox.jobs")

CATCH_UP_LIMIT = 10
RUNNING_STATES = ("RUNNING", "TERMINATING")
WAITING_STATES = ("PENDING", "QUEUED")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is dead for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def poke(ports: list[int]) -> None:
    """Wake services listening on these loopback UDP ports (best effort)."""
    if not ports:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for port in ports:
            with contextlib.suppress(OSError):
                sock.sendto(b"!", ("127.0.0.1", port))


class JobService:
    """Claims and executes runs; with ``scheduler=True`` also fires schedules and triggers.

    Args:
        ws: the workspace.
        scheduler: fire cron schedules and table/file triggers (the embedded runner does not).
        poll_interval: seconds between database polls when nothing wakes the loop.
        heartbeat_interval: seconds between heartbeats and orphan checks.
        orphan_timeout: a service silent this long is considered dead.
    """

    def __init__(
        self,
        ws: Workspace,
        *,
        scheduler: bool = True,
        poll_interval: float = 0.5,
        heartbeat_interval: float = 1.0,
        orphan_timeout: float = 15.0,
        trigger_interval: float = 1.0,
    ) -> None:
        self.ws = ws
        self.db = ws.metadata
        self.scheduler = scheduler
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.orphan_timeout = orphan_timeout
        self.trigger_interval = trigger_interval
        self.service_id = uuid.uuid4().hex[:16]
        self.hostname = socket.gethostname()
        self.clusters = ClusterManager(self._cluster_spec, ws.home / "logs")
        self.task_threads = ThreadPoolExecutor(max_workers=64, thread_name_prefix="lakebox-task")
        self.executors: dict[int, RunExecutor] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.wake_port = int(self._sock.getsockname()[1])
        self._thread: threading.Thread | None = None
        self._crons: dict[tuple[int, str], QuartzCron] = {}
        self._next_fire: float | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> JobService:
        """Run the loop in a daemon thread of this process."""
        self._register()
        self._thread = threading.Thread(target=self._loop, name="lakebox-jobs", daemon=True)
        self._thread.start()
        return self

    def run_forever(self, stop_event: threading.Event) -> None:
        """Run the loop in this thread until ``stop_event`` is set."""
        self._register()

        def watch() -> None:
            stop_event.wait()
            self._request_stop()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        self._loop()

    def _request_stop(self) -> None:
        self._stop.set()
        self.wake()

    def stop(self, timeout: float = 10) -> None:
        """Stop the loop, kill running tasks (their runs are handed to another runner)."""
        self._request_stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def wake(self) -> None:
        poke([self.wake_port])

    def _register(self) -> None:
        now = now_ms()
        with self.db.begin() as conn:
            conn.execute(
                services.insert().values(
                    service_id=self.service_id,
                    hostname=self.hostname,
                    pid=os.getpid(),
                    wake_port=self.wake_port,
                    scheduler=self.scheduler,
                    started_time=now,
                    heartbeat_time=now,
                )
            )
        with self.db.begin() as conn:
            ids = [r.cluster_id for r in conn.execute(select(clusters.c.cluster_id))]
        threading.Thread(target=self.clusters.warm_up, args=(ids,), daemon=True).start()

    def _loop(self) -> None:
        last_heartbeat = 0.0
        last_triggers = 0.0
        try:
            self._recover_orphans()
            while not self._stop.is_set():
                try:
                    now = time.monotonic()
                    if now - last_heartbeat >= self.heartbeat_interval:
                        self._heartbeat()
                        self._recover_orphans()
                        last_heartbeat = now
                    if self.scheduler:
                        self._tick_schedules()
                        if now - last_triggers >= self.trigger_interval:
                            self._check_triggers()
                            last_triggers = now
                    self._claim_runs()
                    self._propagate_cancels()
                except Exception:
                    log.exception("lakebox jobs service loop error (continuing)")
                self._sleep()
        finally:
            self._shutdown()

    def _sleep(self) -> None:
        wait = self.poll_interval
        if self._next_fire is not None:
            wait = max(0.005, min(wait, self._next_fire - time.time()))
        self._sock.settimeout(wait)
        try:
            self._sock.recv(64)
            self._sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                while True:
                    self._sock.recv(64)
        except (TimeoutError, OSError):
            pass

    def _shutdown(self) -> None:
        with self._lock:
            executors = list(self.executors.values())
        for ex in executors:
            ex.shutdown_event.set()
        for ex in executors:
            ex.join(5)
        self.clusters.close()
        self.task_threads.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):
            self._requeue_runs_of([self.service_id], reason="its runner was stopped")
            with self.db.begin() as conn:
                conn.execute(delete(services).where(services.c.service_id == self.service_id))
        self._sock.close()

    def _heartbeat(self) -> None:
        with self.db.begin() as conn:
            result = conn.execute(
                update(services)
                .where(services.c.service_id == self.service_id)
                .values(heartbeat_time=now_ms())
            )
            if result.rowcount == 0:  # removed as dead by another service after a long pause
                conn.execute(
                    services.insert().values(
                        service_id=self.service_id,
                        hostname=self.hostname,
                        pid=os.getpid(),
                        wake_port=self.wake_port,
                        scheduler=self.scheduler,
                        started_time=now_ms(),
                        heartbeat_time=now_ms(),
                    )
                )

    # ------------------------------------------------------------------ clusters
    def _cluster_spec(self, cluster_id: str) -> dict[str, Any] | None:
        with self.db.begin() as conn:
            row = conn.execute(
                select(clusters).where(clusters.c.cluster_id == cluster_id)
            ).one_or_none()
        if row is None:
            return None
        env = {**json.loads(row.spark_env_vars), "LAKEBOX_HOME": str(self.ws.home)}
        return {"num_workers": row.num_workers, "spark_env_vars": env}

    # ------------------------------------------------------------------ orphans
    def _recover_orphans(self) -> None:
        cutoff = now_ms() - int(self.orphan_timeout * 1000)
        with self.db.begin() as conn:
            rows = conn.execute(select(services)).all()
        dead = [
            r.service_id
            for r in rows
            if r.service_id != self.service_id
            and (
                r.heartbeat_time < cutoff or (r.hostname == self.hostname and not _pid_alive(r.pid))
            )
        ]
        with self.db.begin() as conn:
            owners = {
                r.owner
                for r in conn.execute(
                    select(runs.c.owner)
                    .where(runs.c.parent_run_id.is_(None))
                    .where(runs.c.life_cycle_state.in_(RUNNING_STATES))
                    .distinct()
                )
            }
        live = {r.service_id for r in rows}
        dead += [o for o in owners if o and o not in live and o != self.service_id]
        if not dead:
            return
        self._requeue_runs_of(dead, reason="its runner process died")
        with self.db.begin() as conn:
            conn.execute(delete(services).where(services.c.service_id.in_(dead)))

    def _requeue_runs_of(self, owners: list[str], *, reason: str) -> None:
        """Mark the running task attempts of these owners' runs and queue their retries."""
        with self.db.begin() as conn:
            orphaned = conn.execute(
                select(runs)
                .where(runs.c.owner.in_(owners))
                .where(runs.c.parent_run_id.is_(None))
                .where(runs.c.life_cycle_state.in_(RUNNING_STATES))
            ).all()
        for run in orphaned:
            with self.db.begin() as conn:
                claimed = conn.execute(
                    update(runs)
                    .where(runs.c.run_id == run.run_id)
                    .where(runs.c.owner == run.owner)
                    .where(runs.c.life_cycle_state.in_(RUNNING_STATES))
                    .values(owner=f"recovering:{self.service_id}")
                )
                if claimed.rowcount != 1:
                    continue  # another service is recovering it
                tasks = conn.execute(
                    select(runs)
                    .where(runs.c.parent_run_id == run.run_id)
                    .where(runs.c.life_cycle_state == "RUNNING")
                ).all()
                end = now_ms()
                for t in tasks:
                    conn.execute(
                        update(runs)
                        .where(runs.c.run_id == t.run_id)
                        .values(
                            life_cycle_state="INTERNAL_ERROR",
                            result_state="FAILED",
                            end_time=end,
                            state_message=f"Orphaned: {reason} while this task was running.",
                        )
                    )
                    spec = json.loads(t.settings)
                    retries = spec.get("max_retries", 0)
                    if retries == -1 or t.attempt_number < retries:
                        conn.execute(
                            runs.insert().values(
                                parent_run_id=run.run_id,
                                job_id=run.job_id,
                                task_key=t.task_key,
                                run_type="TASK",
                                settings=t.settings,
                                repair_id=t.repair_id,
                                attempt_number=t.attempt_number + 1,
                                life_cycle_state="PENDING",
                                cancel_requested=False,
                                created_time=end,
                                not_before=end + (spec.get("min_retry_interval_millis") or 0),
                                state_message=f"Retry after the runner died (attempt "
                                f"{t.attempt_number + 1})",
                            )
                        )
                conn.execute(
                    update(runs)
                    .where(runs.c.run_id == run.run_id)
                    .values(
                        owner=None,
                        life_cycle_state="PENDING",
                        state_message=f"Requeued: {reason}; {len(tasks)} running task(s) were "
                        "marked orphaned.",
                    )
                )
            log.warning("run %s requeued: %s", run.run_id, reason)

    # ------------------------------------------------------------------ claiming
    def _claim_runs(self) -> None:
        with self.db.begin() as conn:
            waiting = conn.execute(
                select(
                    runs.c.run_id,
                    runs.c.job_id,
                    runs.c.settings,
                    runs.c.cancel_requested,
                    runs.c.life_cycle_state,
                )
                .where(runs.c.parent_run_id.is_(None))
                .where(runs.c.owner.is_(None))
                .where(runs.c.life_cycle_state.in_(WAITING_STATES))
                .order_by(runs.c.run_id)
                .limit(100)
            ).all()
        for row in waiting:
            if self._stop.is_set():
                return
            settings = json.loads(row.settings)
            if row.cancel_requested:
                self._update_waiting(
                    row.run_id,
                    life_cycle_state="TERMINATED",
                    result_state="CANCELED",
                    end_time=now_ms(),
                    state_message="Run canceled before it started.",
                )
                continue
            limit = int(settings.get("max_concurrent_runs") or 1)
            other = runs.alias("other")
            active = (
                select(func.count())
                .select_from(other)
                .where(other.c.job_id == row.job_id)
                .where(other.c.parent_run_id.is_(None))
                .where(other.c.life_cycle_state.in_(RUNNING_STATES))
                .scalar_subquery()
            )
            stmt = (
                update(runs)
                .where(runs.c.run_id == row.run_id)
                .where(runs.c.owner.is_(None))
                .where(runs.c.life_cycle_state.in_(WAITING_STATES))
                .values(
                    owner=self.service_id,
                    life_cycle_state="RUNNING",
                    start_time=func.coalesce(runs.c.start_time, now_ms()),
                    state_message="",
                )
            )
            if row.job_id is not None:
                stmt = stmt.where(active < limit)
            with self.db.begin() as conn:
                claimed = conn.execute(stmt).rowcount == 1
            if claimed:
                self._start_executor(row.run_id)
            elif (settings.get("queue") or {}).get("enabled"):
                if row.life_cycle_state != "QUEUED":
                    self._update_waiting(
                        row.run_id,
                        life_cycle_state="QUEUED",
                        state_message=f"Queued: the job already has {limit} "
                        "active run(s) (max_concurrent_runs).",
                    )
            else:
                self._update_waiting(
                    row.run_id,
                    life_cycle_state="SKIPPED",
                    end_time=now_ms(),
                    result_state="MAXIMUM_CONCURRENT_RUNS_REACHED",
                    state_message=f"Skipping this run because the limit of {limit} maximum "
                    "concurrent runs has been reached (enable queue to wait).",
                )

    def _update_waiting(self, run_id: int, **values: Any) -> None:
        with self.db.begin() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id)
                .where(runs.c.owner.is_(None))
                .where(runs.c.life_cycle_state.in_(WAITING_STATES))
                .values(**values)
            )

    def _start_executor(self, run_id: int) -> None:
        executor = RunExecutor(
            self.ws,
            run_id,
            clusters=self.clusters,
            task_threads=self.task_threads,
            on_done=self._executor_done,
            notify=self._notify,
        )
        with self._lock:
            self.executors[run_id] = executor
        executor.start()

    def _executor_done(self, run_id: int) -> None:
        with self._lock:
            self.executors.pop(run_id, None)
        self.wake()  # a slot is free: queued runs may start

    def _propagate_cancels(self) -> None:
        with self._lock:
            mine = list(self.executors)
        if not mine:
            return
        with self.db.begin() as conn:
            ids = [
                r.run_id
                for r in conn.execute(
                    select(runs.c.run_id)
                    .where(runs.c.run_id.in_(mine))
                    .where(runs.c.cancel_requested.is_(True))
                )
            ]
        with self._lock:
            for run_id in ids:
                if run_id in self.executors:
                    self.executors[run_id].cancel_event.set()

    # ------------------------------------------------------------------ notifications
    def _notify(self, settings: dict[str, Any], event: str, summary: dict[str, Any]) -> None:
        targets = [
            t.get("url")
            for t in (settings.get("webhook_notifications") or {}).get(event, [])
            if t.get("url")
        ]
        if not targets:
            return
        payload = {"event_type": f"jobs.{event}", "timestamp": now_ms(), **summary}

        def send() -> None:
            import httpx

            for url in targets:
                for attempt in range(3):
                    try:
                        httpx.post(url, json=payload, timeout=10).raise_for_status()
                        break
                    except httpx.HTTPError as exc:
                        log.warning("job notification %s to %s failed: %s", event, url, exc)
                        time.sleep(0.5 * (attempt + 1))

        threading.Thread(target=send, daemon=True).start()

    # ------------------------------------------------------------------ schedules
    def _cron(self, job_id: int, schedule: dict[str, Any]) -> QuartzCron:
        key = (job_id, json.dumps(schedule, sort_keys=True))
        if key not in self._crons:
            self._crons[key] = QuartzCron(
                schedule["quartz_cron_expression"], schedule.get("timezone_id") or "UTC"
            )
        return self._crons[key]

    def _tick_schedules(self) -> None:
        with self.db.begin() as conn:
            rows = conn.execute(
                select(jobs.c.job_id, jobs.c.settings, schedule_state.c.last_tick).select_from(
                    jobs.outerjoin(schedule_state, jobs.c.job_id == schedule_state.c.job_id)
                )
            ).all()
        now = datetime.now(timezone.utc)
        next_fire: float | None = None
        for row in rows:
            settings = json.loads(row.settings)
            schedule = settings.get("schedule")
            if not schedule or schedule.get("pause_status") == "PAUSED":
                continue
            cron = self._cron(row.job_id, schedule)
            if row.last_tick is None:
                set_last_tick(self.db, row.job_id, now_ms())
                continue
            last = datetime.fromtimestamp(row.last_tick / 1000, timezone.utc)
            fires = cron.fires_between(last, now, limit=CATCH_UP_LIMIT + 1)
            if len(fires) > CATCH_UP_LIMIT:
                log.warning(
                    "job %s: more than %s schedule ticks were missed; running the last %s",
                    row.job_id,
                    CATCH_UP_LIMIT,
                    CATCH_UP_LIMIT,
                )
                fires = fires[-CATCH_UP_LIMIT:]
            if fires:
                self._fire(row.job_id, row.last_tick, settings, fires)
            upcoming = cron.next_after(fires[-1] if fires else max(last, now)).timestamp()
            next_fire = upcoming if next_fire is None else min(next_fire, upcoming)
        self._next_fire = next_fire

    def _fire(
        self, job_id: int, last_tick: int, settings: dict[str, Any], fires: list[datetime]
    ) -> None:
        newest = int(fires[-1].timestamp() * 1000)
        try:
            with self.db.begin() as conn:
                moved = conn.execute(
                    update(schedule_state)
                    .where(schedule_state.c.job_id == job_id)
                    .where(schedule_state.c.last_tick == last_tick)
                    .values(last_tick=newest)
                )
                if moved.rowcount != 1:
                    return  # another scheduler fired these ticks
                for fire in fires:
                    conn.execute(
                        runs.insert().values(
                            **new_run_values(
                                job_id,
                                settings,
                                trigger="PERIODIC",
                                scheduled_time=int(fire.timestamp() * 1000),
                            )
                        )
                    )
        except IntegrityError:
            return  # a concurrent scheduler inserted the same tick: it is not doubled

    # ------------------------------------------------------------------ triggers
    def _check_triggers(self) -> None:
        with self.db.begin() as conn:
            rows = conn.execute(
                select(
                    jobs.c.job_id,
                    jobs.c.settings,
                    schedule_state.c.trigger_state,
                    schedule_state.c.last_triggered,
                ).select_from(
                    jobs.outerjoin(schedule_state, jobs.c.job_id == schedule_state.c.job_id)
                )
            ).all()
        for row in rows:
            settings = json.loads(row.settings)
            trigger = settings.get("trigger")
            if not trigger or trigger.get("pause_status") == "PAUSED":
                continue
            try:
                if trigger.get("table_update"):
                    self._table_trigger(row, settings, trigger["table_update"])
                elif trigger.get("file_arrival"):
                    self._file_trigger(row, settings, trigger["file_arrival"])
            except Exception:
                log.exception("job %s: checking its trigger failed", row.job_id)

    def _table_versions(self, names: list[str]) -> dict[str, int]:
        out = {}
        for name in names:
            try:
                out[name] = int(self.ws.tables.delta_table(name).version())
            except Exception:
                out[name] = -1  # not created yet
        return out

    def _table_trigger(self, row: Any, settings: dict[str, Any], spec: dict[str, Any]) -> None:
        state = _store.loads(row.trigger_state, {})
        current = self._table_versions(spec["table_names"])
        seen = state.get("tables")
        if seen is None:  # first look: remember the versions, do not fire
            self._save_trigger_state(row, {"tables": current}, fire=None)
            return
        changed = [n for n in spec["table_names"] if current[n] > seen.get(n, -1)]
        fire = bool(changed) and (
            spec.get("condition") == "ANY_UPDATED" or len(changed) == len(spec["table_names"])
        )
        if not fire or not self._min_gap_ok(row, spec):
            return
        self._save_trigger_state(
            row,
            {"tables": current},
            fire=("TABLE", {"table_update": {"updated_tables": changed, "versions": current}}),
        )

    def _file_trigger(self, row: Any, settings: dict[str, Any], spec: dict[str, Any]) -> None:
        url = spec["url"]
        folder = Path(url[len("file://") :] if url.startswith("file://") else url)
        files: dict[str, str] = {}
        latest_change = 0.0
        if folder.is_dir():
            for path in folder.rglob("*"):
                if path.is_file() and not path.name.startswith("."):
                    st = path.stat()
                    files[str(path.relative_to(folder))] = f"{st.st_mtime_ns}:{st.st_size}"
                    latest_change = max(latest_change, st.st_mtime)
        state = _store.loads(row.trigger_state, {})
        seen = state.get("files")
        if seen is None:
            self._save_trigger_state(row, {"files": files}, fire=None)
            return
        new = sorted(name for name, sig in files.items() if seen.get(name) != sig)
        if not new:
            if files != seen:  # deletions only: remember them quietly
                self._save_trigger_state(row, {"files": files}, fire=None)
            return
        wait = spec.get("wait_after_last_change_seconds") or 0
        if time.time() - latest_change < wait or not self._min_gap_ok(row, spec):
            return
        self._save_trigger_state(
            row,
            {"files": files},
            fire=("FILE_ARRIVAL", {"file_arrival": {"location": url, "new_files": new[:100]}}),
        )

    def _min_gap_ok(self, row: Any, spec: dict[str, Any]) -> bool:
        gap = (spec.get("min_time_between_triggers_seconds") or 0) * 1000
        return not gap or not row.last_triggered or now_ms() - row.last_triggered >= gap

    def _save_trigger_state(
        self, row: Any, state: dict[str, Any], fire: tuple[str, dict[str, Any]] | None
    ) -> None:
        """Compare-and-set the trigger state; insert the run in the same transaction."""
        text = json.dumps(state, sort_keys=True)
        if row.trigger_state is None and row.last_triggered is None:
            ensure_state_row(self.db, row.job_id)
        with self.db.begin() as conn:
            cond = (
                schedule_state.c.trigger_state.is_(None)
                if row.trigger_state is None
                else schedule_state.c.trigger_state == row.trigger_state
            )
            values: dict[str, Any] = {"trigger_state": text}
            if fire:
                values["last_triggered"] = now_ms()
            moved = conn.execute(
                update(schedule_state)
                .where(schedule_state.c.job_id == row.job_id)
                .where(cond)
                .values(**values)
            )
            if moved.rowcount != 1 or fire is None:
                return
            settings_row = conn.execute(
                select(jobs.c.settings).where(jobs.c.job_id == row.job_id)
            ).scalar_one()
            conn.execute(
                runs.insert().values(
                    **new_run_values(
                        row.job_id, json.loads(settings_row), trigger=fire[0], trigger_info=fire[1]
                    )
                )
            )


# ---------------------------------------------------------------------------- shared helpers
def ensure_state_row(db: Any, job_id: int) -> None:
    """Create the job's row in ``jobs_schedule_state`` if missing."""
    with db.begin() as conn:
        exists = conn.execute(
            select(schedule_state.c.job_id).where(schedule_state.c.job_id == job_id)
        ).one_or_none()
    if exists is None:
        try:
            with db.begin() as conn:
                conn.execute(schedule_state.insert().values(job_id=job_id))
        except IntegrityError:
            pass  # created concurrently


def set_last_tick(db: Any, job_id: int, tick: int | None) -> None:
    """Start (or restart) a job's schedule from ``tick`` (epoch ms)."""
    ensure_state_row(db, job_id)
    with db.begin() as conn:
        conn.execute(
            update(schedule_state).where(schedule_state.c.job_id == job_id).values(last_tick=tick)
        )


def new_run_values(
    job_id: int | None,
    settings: dict[str, Any],
    *,
    trigger: str,
    job_parameters: dict[str, Any] | None = None,
    scheduled_time: int | None = None,
    run_name: str | None = None,
    run_type: str = "JOB_RUN",
    trigger_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Column values of a new, unclaimed job run."""
    defaults = {p["name"]: p.get("default", "") for p in settings.get("parameters") or []}
    params = {**defaults, **(job_parameters or {})}
    return {
        "job_id": job_id,
        "run_name": run_name or settings.get("name"),
        "run_type": run_type,
        "trigger": trigger,
        "life_cycle_state": "PENDING",
        "settings": json.dumps(settings),
        "job_parameters": json.dumps(params),
        "scheduled_time": scheduled_time,
        "attempt_number": 0,
        "cancel_requested": False,
        "created_time": now_ms(),
        "trigger_info": json.dumps(trigger_info) if trigger_info else None,
    }


def run_scheduler(ws: Workspace, stop_event: threading.Event) -> None:
    """The jobs background service of ``lakebox up`` / ``lakebox worker``: schedules,
    triggers and runs until ``stop_event`` is set."""
    JobService(ws, scheduler=True).run_forever(stop_event)
