"""The runner: executes job runs as DAGs of tasks on job clusters or warm pools.

One :class:`RunExecutor` thread drives each claimed run: it starts every task whose
dependencies are done and whose ``run_if`` holds, records each attempt in the metadata
database, retries failures per ``max_retries`` / ``min_retry_interval_millis`` /
``retry_on_timeout``, enforces task and job timeouts, and finishes the run with the result
state Databricks would report. The database is the source of truth, so another runner can
take over a run whose runner died (see :mod:`lakebox.jobs._service`).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from lakebox.jobs import _store
from lakebox.jobs._clusters import ClusterManager, TaskInterrupted, run_isolated
from lakebox.jobs._store import now_ms, runs
from lakebox.jobs._tasks import build_request, evaluate_condition, reference_values

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["RunExecutor", "job_result", "run_if_decision"]

log = logging.getLogger("lakebox.jobs")

FAILED = ("FAILED", "TIMEDOUT", "UPSTREAM_FAILED", "INTERNAL_ERROR")
CANCELED = ("CANCELED", "UPSTREAM_CANCELED")


def _outcome(row: dict[str, Any], dep: dict[str, Any]) -> str:
    """``success``, ``failed``, ``canceled`` or ``excluded`` for one dependency edge."""
    result = row.get("result_state")
    if result == "SUCCESS":
        wanted = dep.get("outcome")
        if wanted is not None:
            got = str((row.get("output") or {}).get("result")).lower()
            return "success" if got == str(wanted).lower() else "excluded"
        return "success"
    if result in FAILED or row.get("life_cycle_state") == "INTERNAL_ERROR":
        return "failed"
    if result in CANCELED:
        return "canceled"
    return "excluded"


def run_if_decision(run_if: str, outcomes: list[str]) -> str | None:
    """None when the task should run, else the result state of skipping it."""
    if not outcomes:
        return None
    any_failed = "failed" in outcomes
    any_canceled = "canceled" in outcomes
    blocked = (
        "UPSTREAM_FAILED" if any_failed else ("UPSTREAM_CANCELED" if any_canceled else "EXCLUDED")
    )
    if run_if == "ALL_SUCCESS":
        return None if all(o == "success" for o in outcomes) else blocked
    if run_if == "AT_LEAST_ONE_SUCCESS":
        return None if "success" in outcomes else blocked
    if run_if == "NONE_FAILED":
        return None if not any_failed and not any_canceled and "success" in outcomes else blocked
    if run_if == "ALL_DONE":
        return None
    if run_if == "AT_LEAST_ONE_FAILED":
        return None if any_failed else "EXCLUDED"
    if run_if == "ALL_FAILED":
        return None if all(o == "failed" for o in outcomes) else "EXCLUDED"
    return blocked


def job_result(tasks: list[dict[str, Any]], latest: dict[str, dict[str, Any]]) -> str:
    """The run's result state from its tasks, judged by the leaf tasks as Databricks does."""
    depended = {d["task_key"] for t in tasks for d in t.get("depends_on", [])}
    leaves = [t["task_key"] for t in tasks if t["task_key"] not in depended]
    results = {key: (latest.get(key) or {}).get("result_state") for key in latest}
    leaf_results = [results.get(k) for k in leaves]
    if any(r in FAILED for r in leaf_results):
        return "FAILED"
    if any(r in CANCELED for r in leaf_results):
        return "CANCELED"
    if any(r in FAILED for r in results.values()):
        return "SUCCESS_WITH_FAILURES"
    return "SUCCESS"


class RunExecutor(threading.Thread):
    """Drives one job run to its end inside a runner process."""

    def __init__(
        self,
        ws: Workspace,
        run_id: int,
        *,
        clusters: ClusterManager,
        task_threads: ThreadPoolExecutor,
        on_done: Callable[[int], None],
        notify: Callable[[dict[str, Any], str, Any], None],
    ) -> None:
        super().__init__(name=f"lakebox-run-{run_id}", daemon=True)
        self.ws = ws
        self.run_id = run_id
        self.clusters = clusters
        self.task_threads = task_threads
        self.on_done = on_done
        self.notify = notify
        self.cancel_event = threading.Event()
        self.shutdown_event = threading.Event()
        self._completions: queue.Queue[tuple[str, int, dict[str, Any]]] = queue.Queue()

    # ------------------------------------------------------------------ db helpers
    def _update(self, run_id: int, conn: Any = None, **values: Any) -> None:
        if conn is None:
            with self.ws.metadata.begin() as own:
                self._update(run_id, own, **values)
            return
        conn.execute(update(runs).where(runs.c.run_id == run_id).values(**values))

    def _insert_task(self, conn: Any = None, **values: Any) -> int:
        if conn is None:
            with self.ws.metadata.begin() as own:
                return self._insert_task(own, **values)
        result = conn.execute(
            runs.insert().values(
                parent_run_id=self.run_id,
                job_id=self.job_id,
                run_type="TASK",
                created_time=now_ms(),
                cancel_requested=False,
                **values,
            )
        )
        return int(result.inserted_primary_key[0])

    # ------------------------------------------------------------------ main loop
    def run(self) -> None:
        try:
            self._execute()
        except Exception as exc:  # a bug or a lost database: never leave the run RUNNING
            log.exception("run %s failed inside the runner", self.run_id)
            try:
                self._update(
                    self.run_id,
                    life_cycle_state="INTERNAL_ERROR",
                    result_state="FAILED",
                    end_time=now_ms(),
                    state_message=f"lakebox runner error: {type(exc).__name__}: {exc}",
                )
            except Exception:
                log.exception("could not record the failure of run %s", self.run_id)
        finally:
            self.on_done(self.run_id)

    def _load(self) -> None:
        with self.ws.metadata.begin() as conn:
            row = conn.execute(select(runs).where(runs.c.run_id == self.run_id)).one()
            task_rows = conn.execute(
                select(runs).where(runs.c.parent_run_id == self.run_id).order_by(runs.c.run_id)
            ).all()
        self.job_id = row.job_id
        self.settings = json.loads(row.settings)
        self.parameters: dict[str, Any] = _store.loads(row.job_parameters, {})
        self.trigger = row.trigger
        self.trigger_info = _store.loads(row.trigger_info, {})
        self.start_time = row.start_time or now_ms()
        self.repair_id = row.repair_id
        self.tasks = {t["task_key"]: t for t in self.settings["tasks"]}
        self.latest: dict[str, dict[str, Any]] = {}
        for r in task_rows:
            self.latest[r.task_key] = {
                "run_id": r.run_id,
                "life_cycle_state": r.life_cycle_state,
                "result_state": r.result_state,
                "attempt_number": r.attempt_number,
                "not_before": r.not_before,
                "output": _store.loads(r.output, {}),
            }
        self.first_start = not task_rows

    def _execute(self) -> None:
        self._load()
        if self.first_start:
            self.notify(self.settings, "on_start", self._summary("RUNNING", None))
        timeout = self.settings.get("timeout_seconds") or 0
        deadline = self.start_time / 1000 + timeout if timeout else None
        running: set[str] = set()
        stop_reason: str | None = None
        while True:
            if stop_reason is None:
                if self.cancel_event.is_set():
                    stop_reason = "CANCELED"
                elif self.shutdown_event.is_set():
                    return  # leave the run to be taken over (see the service's recovery)
                elif deadline is not None and time.time() >= deadline:
                    stop_reason = "TIMEDOUT"
            wake_at = self._start_ready_tasks(running) if stop_reason is None else None
            if not running and (stop_reason is not None or self._all_done()):
                break
            wait = 0.2 if wake_at is None else max(0.0, min(0.2, wake_at - time.time()))
            try:
                done = [self._completions.get(timeout=wait)]
            except queue.Empty:
                continue
            while True:  # take whatever else finished meanwhile: one transaction for all
                try:
                    done.append(self._completions.get_nowait())
                except queue.Empty:
                    break
            for key, _, _ in done:
                running.discard(key)
            done = [d for d in done if d[2].get("state") != "SHUTDOWN"]
            if done:
                with self.ws.metadata.begin() as conn:
                    for key, task_run_id, outcome in done:
                        self._record(
                            conn, key, task_run_id, outcome, stopping=stop_reason is not None
                        )
        if self.shutdown_event.is_set() and stop_reason is None:
            return
        self._finish(stop_reason)

    def _all_done(self) -> bool:
        return all(
            key in self.latest and self.latest[key]["life_cycle_state"] in _store.FINAL_STATES
            for key in self.tasks
        )

    def _ancestors(self, key: str) -> set[str]:
        out: set[str] = set()
        stack = [d["task_key"] for d in self.tasks[key].get("depends_on", [])]
        while stack:
            k = stack.pop()
            if k not in out:
                out.add(k)
                stack.extend(d["task_key"] for d in self.tasks[k].get("depends_on", []))
        return out

    def _start_ready_tasks(self, running: set[str]) -> float | None:
        """Start or skip every task that can be decided now; returns the next retry time."""
        wake_at: float | None = None
        ready: list[tuple[str, dict[str, Any] | None]] = []
        progressed = True
        while progressed:
            progressed = False
            for key, task in self.tasks.items():
                row = self.latest.get(key)
                if key in running or (row and row["life_cycle_state"] != "PENDING"):
                    continue
                deps = task.get("depends_on", [])
                dep_rows = [self.latest.get(d["task_key"]) for d in deps]
                if any(
                    r is None or r["life_cycle_state"] not in _store.FINAL_STATES for r in dep_rows
                ):
                    continue
                outcomes = [_outcome(r, d) for r, d in zip(dep_rows, deps, strict=True)]  # type: ignore[arg-type]
                skip = run_if_decision(task.get("run_if", "ALL_SUCCESS"), outcomes)
                if skip is not None:
                    self._skip(key, row, skip)
                    progressed = True
                    continue
                if row and row.get("not_before") and row["not_before"] > now_ms():
                    at = row["not_before"] / 1000
                    wake_at = at if wake_at is None else min(wake_at, at)
                    continue
                ready.append((key, row))
                running.add(key)
        if ready:  # one transaction for every task started now
            with self.ws.metadata.begin() as conn:
                started = [self._start_row(conn, key, row) for key, row in ready]
            for key, task_run_id in started:
                self._dispatch(key, task_run_id)
        return wake_at

    def _skip(self, key: str, row: dict[str, Any] | None, result: str) -> None:
        message = {
            "UPSTREAM_FAILED": "An upstream task failed.",
            "UPSTREAM_CANCELED": "An upstream task was canceled.",
            "EXCLUDED": "The task's run_if condition was not met.",
        }.get(result, result)
        values = {
            "life_cycle_state": "SKIPPED",
            "result_state": result,
            "state_message": message,
            "end_time": now_ms(),
        }
        if row is None:
            run_id = self._insert_task(
                task_key=key,
                settings=json.dumps(self.tasks[key]),
                attempt_number=0,
                repair_id=self.repair_id,
                **values,
            )
        else:
            run_id = row["run_id"]
            self._update(run_id, **values)
        self.latest[key] = {
            "run_id": run_id,
            "attempt_number": (row or {}).get("attempt_number", 0),
            "output": {},
            "not_before": None,
            **values,
        }

    def _upstream_values(self, key: str) -> dict[str, dict[str, Any]]:
        return {
            k: (self.latest[k].get("output") or {}).get("values") or {}
            for k in self._ancestors(key)
            if k in self.latest
        }

    def _start_row(self, conn: Any, key: str, row: dict[str, Any] | None) -> tuple[str, int]:
        """Record the task attempt as RUNNING; returns ``(key, task_run_id)``."""
        task = self.tasks[key]
        attempt = (row or {}).get("attempt_number", 0)
        values = {
            "life_cycle_state": "RUNNING",
            "start_time": now_ms(),
            "cluster": self._cluster_label(task),
            "log_path": str(self._log_path(key, attempt)),
        }
        if row is None:
            task_run_id = self._insert_task(
                conn,
                task_key=key,
                settings=json.dumps(task),
                attempt_number=attempt,
                repair_id=self.repair_id,
                **values,
            )
        else:
            task_run_id = row["run_id"]
            self._update(task_run_id, conn, **values)
        self.latest[key] = {
            "run_id": task_run_id,
            "attempt_number": attempt,
            "output": {},
            "not_before": None,
            "result_state": None,
            **values,
        }
        return key, task_run_id

    def _dispatch(self, key: str, task_run_id: int) -> None:
        task = self.tasks[key]
        attempt = self.latest[key]["attempt_number"]
        log_path = self.latest[key]["log_path"]
        upstream = self._upstream_values(key)
        refs = reference_values(
            job_id=self.job_id,
            run_id=self.run_id,
            task_key=key,
            parameters=self.parameters,
            trigger=self.trigger,
            upstream_values=upstream,
            start_time=self.start_time,
        )
        if task.get("condition_task"):
            try:
                outcome = {
                    "state": "SUCCESS",
                    "response": {
                        "result": evaluate_condition(task["condition_task"], refs),
                        "values": {},
                    },
                }
            except Exception as exc:
                outcome = {"state": "FAILED", "message": f"{type(exc).__name__}: {exc}"}
            self._completions.put((key, task_run_id, outcome))
            return
        try:
            request = build_request(task, refs=refs, parameters=self.parameters)
        except Exception as exc:
            self._completions.put((key, task_run_id, {"state": "FAILED", "message": str(exc)}))
            return
        request.update(
            log_path=str(log_path),
            home=str(self.ws.home),
            settings=self.ws.settings.model_dump(mode="json"),
            context={
                "job_id": self.job_id,
                "run_id": self.run_id,
                "task_run_id": task_run_id,
                "task_key": key,
                "attempt_number": attempt,
                "parameters": self.parameters,
                "upstream_values": upstream,
                "trigger": self.trigger,
                "trigger_info": self.trigger_info,
            },
        )
        self.task_threads.submit(self._run_task, key, task_run_id, task, request)

    def _cluster_label(self, task: dict[str, Any]) -> str:
        if task.get("existing_cluster_id"):
            return str(task["existing_cluster_id"])
        if task.get("job_cluster_key"):
            return f"job-cluster:{task['job_cluster_key']}"
        return "job-cluster"

    def _log_path(self, key: str, attempt: int) -> Path:
        folder = self.ws.home / "logs" / "jobs" / str(self.job_id or "submitted") / str(self.run_id)
        if not getattr(self, "_log_folder_made", False):
            folder.mkdir(parents=True, exist_ok=True)
            self._log_folder_made = True
        repair = f"-repair{self.repair_id}" if self.repair_id else ""
        return folder / f"{key}-attempt{attempt}{repair}.log"

    def _job_cluster_env(self, task: dict[str, Any]) -> dict[str, str]:
        spec = task.get("new_cluster")
        if task.get("job_cluster_key"):
            for c in self.settings.get("job_clusters") or []:
                if c["job_cluster_key"] == task["job_cluster_key"]:
                    spec = c.get("new_cluster")
        env = dict((spec or {}).get("spark_env_vars") or {})
        env.setdefault("LAKEBOX_HOME", str(self.ws.home))
        return env

    def _run_task(
        self, key: str, task_run_id: int, task: dict[str, Any], request: dict[str, Any]
    ) -> None:
        timeout = task.get("timeout_seconds") or None

        def should_stop() -> str | None:
            if self.cancel_event.is_set():
                return "CANCELED"
            if self.shutdown_event.is_set():
                return "SHUTDOWN"
            job_timeout = self.settings.get("timeout_seconds") or 0
            if job_timeout and time.time() >= self.start_time / 1000 + job_timeout:
                return "TIMEDOUT"
            return None

        try:
            if task.get("existing_cluster_id"):
                pool = self.clusters.pool(task["existing_cluster_id"])
                response = pool.run(request, timeout=timeout, should_stop=should_stop)
            else:
                response = run_isolated(
                    request,
                    env=self._job_cluster_env(task),
                    timeout=timeout,
                    should_stop=should_stop,
                    stderr_path=request["log_path"],
                )
            outcome = {
                "state": "SUCCESS" if response.get("ok") else "FAILED",
                "response": response,
                "message": response.get("error"),
            }
        except TaskInterrupted as exc:
            outcome = {"state": exc.reason, "message": exc.message}
        except Exception as exc:
            outcome = {"state": "CRASHED", "message": f"{type(exc).__name__}: {exc}"}
        self._completions.put((key, task_run_id, outcome))

    def _record(
        self, conn: Any, key: str, task_run_id: int, outcome: dict[str, Any], *, stopping: bool
    ) -> None:
        task = self.tasks[key]
        state = outcome["state"]
        result = {
            "SUCCESS": "SUCCESS",
            "FAILED": "FAILED",
            "TIMEDOUT": "TIMEDOUT",
            "CANCELED": "CANCELED",
            "CRASHED": "FAILED",
        }.get(state, "FAILED")
        response = outcome.get("response") or {}
        output = {
            "result": response.get("result"),
            "values": response.get("values") or {},
            "error": response.get("error")
            or (outcome.get("message") if result != "SUCCESS" else None),
            "error_trace": response.get("error_trace"),
        }
        if response.get("started_at"):
            output["worker_started_at"] = response["started_at"]
        message = "" if result == "SUCCESS" else (outcome.get("message") or result)
        end = now_ms()
        values = {
            "life_cycle_state": "TERMINATED",
            "result_state": result,
            "state_message": message,
            "end_time": end,
            "output": json.dumps(output),
        }
        self._update(task_run_id, conn, **values)
        attempt = self.latest[key]["attempt_number"]
        self.latest[key].update(values, output=output)
        retries = task.get("max_retries", 0)
        retryable = result == "FAILED" or (result == "TIMEDOUT" and task.get("retry_on_timeout"))
        if retryable and not stopping and (retries == -1 or attempt < retries):
            not_before = end + (task.get("min_retry_interval_millis") or 0)
            new_id = self._insert_task(
                conn,
                task_key=key,
                settings=json.dumps(task),
                attempt_number=attempt + 1,
                repair_id=self.repair_id,
                life_cycle_state="PENDING",
                not_before=not_before,
                state_message=f"Retry {attempt + 1} of {'unlimited' if retries == -1 else retries}",
            )
            self.latest[key] = {
                "run_id": new_id,
                "life_cycle_state": "PENDING",
                "result_state": None,
                "attempt_number": attempt + 1,
                "not_before": not_before,
                "output": {},
            }

    def _finish(self, stop_reason: str | None) -> None:
        for key in self.tasks:  # tasks never started because the run stopped
            row = self.latest.get(key)
            if row is None or row["life_cycle_state"] not in _store.FINAL_STATES:
                self._skip(key, row, "CANCELED")
        if stop_reason == "CANCELED":
            result, message = "CANCELED", "Run canceled."
        elif stop_reason == "TIMEDOUT":
            result = "TIMEDOUT"
            message = (
                f"Run exceeded the job's timeout_seconds ({self.settings['timeout_seconds']})."
            )
        else:
            result = job_result(self.settings["tasks"], self.latest)
            failed = [k for k, r in self.latest.items() if r.get("result_state") in FAILED]
            message = (
                ""
                if result == "SUCCESS"
                else f"Task(s) {', '.join(failed)} failed."
                if failed
                else result
            )
        self._update(
            self.run_id,
            life_cycle_state="TERMINATED",
            result_state=result,
            state_message=message,
            end_time=now_ms(),
        )
        event = "on_success" if result in ("SUCCESS", "SUCCESS_WITH_FAILURES") else "on_failure"
        self.notify(self.settings, event, self._summary("TERMINATED", result))

    def _summary(self, life_cycle_state: str, result_state: str | None) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "run_id": self.run_id,
            "run_name": self.settings.get("name"),
            "state": {"life_cycle_state": life_cycle_state, "result_state": result_state},
        }
