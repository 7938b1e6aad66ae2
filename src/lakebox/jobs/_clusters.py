"""Clusters: where a task runs.

- A **job cluster** (``job_cluster_key``, ``new_cluster`` or no cluster at all) is a fresh
  worker process per task run, with its own environment variables (``spark_env_vars``), torn
  down when the task ends: isolated, but it pays process start-up and imports every time.
- An **all-purpose cluster** (``existing_cluster_id``) is a named pool of warm worker
  processes that stays up between runs inside the runner: imports, workspace objects and
  loaded models stay cached, so a task starts in milliseconds.

Cancelling or timing out a task kills its worker (and the worker's process group); a warm
pool replaces the killed worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["ClusterManager", "TaskInterrupted", "WarmPool", "WorkerProcess", "run_isolated"]

WORKER_SCRIPT = str(Path(__file__).resolve().with_name("_worker.py"))


class TaskInterrupted(Exception):
    """The task was stopped: ``reason`` is ``"CANCELED"``, ``"TIMEDOUT"`` or ``"CRASHED"``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class WorkerProcess:
    """One worker process speaking the JSON-lines protocol of :mod:`lakebox.jobs._worker`."""

    def __init__(
        self,
        *,
        env: dict[str, str] | None = None,
        stderr_path: str | None = None,
        python: str | None = None,
    ) -> None:
        full_env = {
            **os.environ,
            **(env or {}),
            "LAKEBOX_RUNNER_PID": str(os.getpid()),
            "PYTHONUNBUFFERED": "1",
        }
        stderr: Any = subprocess.DEVNULL
        if stderr_path:
            Path(stderr_path).parent.mkdir(parents=True, exist_ok=True)
            stderr = open(stderr_path, "ab")  # noqa: SIM115 - closed below after Popen dup'd it
        try:
            self.process = subprocess.Popen(
                [python or sys.executable, WORKER_SCRIPT],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=full_env,
                start_new_session=True,
            )
        finally:
            if stderr is not subprocess.DEVNULL:
                stderr.close()
        assert self.process.stdin is not None and self.process.stdout is not None
        self._in: IO[bytes] = self.process.stdin
        self._out: IO[bytes] = self.process.stdout
        self._ready = False
        self._buffer = b""
        self.tasks_run = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, request: dict[str, Any]) -> None:
        self._in.write((json.dumps(request) + "\n").encode())
        self._in.flush()

    def _read_line(self, deadline: float | None, should_stop: Callable[[], str | None]) -> bytes:
        fd = self._out.fileno()
        while True:
            if b"\n" in self._buffer:
                line, _, self._buffer = self._buffer.partition(b"\n")
                return line
            reason = should_stop()
            if reason:
                self.kill()
                raise TaskInterrupted(reason, "canceled" if reason == "CANCELED" else reason)
            wait = 0.1
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    raise TaskInterrupted("TIMEDOUT", "the task exceeded its timeout_seconds")
                wait = min(wait, left)
            ready, _, _ = select.select([fd], [], [], wait)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    code = self.process.wait()
                    raise TaskInterrupted(
                        "CRASHED",
                        f"the worker process (pid {self.pid}) "
                        f"exited with code {code} during the task",
                    )
                self._buffer += chunk

    def run(
        self,
        request: dict[str, Any],
        *,
        timeout: float | None = None,
        should_stop: Callable[[], str | None] = lambda: None,
    ) -> dict[str, Any]:
        """Run one request; raises :class:`TaskInterrupted` on cancel, timeout or crash."""
        deadline = time.monotonic() + timeout if timeout else None
        try:
            self.send(request)
        except (BrokenPipeError, OSError):
            code = self.process.wait()
            raise TaskInterrupted(
                "CRASHED",
                f"the worker process (pid {self.pid}) exited with "
                f"code {code} before the task started",
            ) from None
        if not self._ready:
            json.loads(self._read_line(deadline, should_stop))  # the "ready" line
            self._ready = True
        response: dict[str, Any] = json.loads(self._read_line(deadline, should_stop))
        self.tasks_run += 1
        return response

    def kill(self) -> None:
        """Kill the worker and everything it started."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.process.kill()
        self.process.wait()
        for stream in (self._in, self._out):
            with contextlib.suppress(OSError):
                stream.close()

    def stop(self) -> None:
        """Ask an idle worker to exit; kill it if it does not."""
        try:
            self.send({"op": "exit"})
            self.process.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


def run_isolated(
    request: dict[str, Any],
    *,
    env: dict[str, str],
    timeout: float | None,
    should_stop: Callable[[], str | None],
    stderr_path: str | None = None,
) -> dict[str, Any]:
    """Run a request in a fresh worker process (a job cluster) and tear it down."""
    worker = WorkerProcess(env=env, stderr_path=stderr_path)
    try:
        return worker.run({**request, "once": True}, timeout=timeout, should_stop=should_stop)
    finally:
        worker.kill()


class WarmPool:
    """A named pool of long-lived workers (an all-purpose cluster)."""

    def __init__(
        self,
        name: str,
        *,
        size: int = 1,
        env: dict[str, str] | None = None,
        stderr_path: str | None = None,
    ) -> None:
        self.name = name
        self.size = max(1, size)
        self.env = dict(env or {})
        self.stderr_path = stderr_path
        self._idle: list[WorkerProcess] = []
        self._busy: set[WorkerProcess] = set()
        self._cond = threading.Condition()
        self._closed = False

    def _spawn(self) -> WorkerProcess:
        return WorkerProcess(env=self.env, stderr_path=self.stderr_path)

    def warm_up(self) -> None:
        """Start every worker now (and let it finish starting)."""
        with self._cond:
            while len(self._idle) + len(self._busy) < self.size:
                self._idle.append(self._spawn())

    def _acquire(self) -> WorkerProcess:
        with self._cond:
            while True:
                if self._closed:
                    raise TaskInterrupted("CANCELED", f"cluster {self.name!r} was stopped")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        self._busy.add(worker)
                        return worker
                if len(self._busy) < self.size:
                    worker = self._spawn()
                    self._busy.add(worker)
                    return worker
                self._cond.wait(0.5)

    def _release(self, worker: WorkerProcess, *, healthy: bool) -> None:
        with self._cond:
            self._busy.discard(worker)
            if healthy and worker.alive() and not self._closed:
                self._idle.append(worker)
            elif not self._closed:
                self._idle.append(self._spawn())  # keep the pool warm
            self._cond.notify()
        if not healthy or self._closed:
            worker.kill()

    def run(
        self,
        request: dict[str, Any],
        *,
        timeout: float | None,
        should_stop: Callable[[], str | None],
    ) -> dict[str, Any]:
        worker = self._acquire()
        healthy = False
        try:
            response = worker.run(request, timeout=timeout, should_stop=should_stop)
            healthy = True
            return response
        finally:
            self._release(worker, healthy=healthy)

    @property
    def pids(self) -> list[int]:
        with self._cond:
            return [w.pid for w in (*self._idle, *self._busy)]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers = [*self._idle, *self._busy]
            self._idle.clear()
            self._cond.notify_all()
        for worker in workers:
            worker.kill()


class ClusterManager:
    """The warm pools of one runner, created on first use from the cluster definitions."""

    def __init__(self, lookup: Callable[[str], dict[str, Any] | None], logs: Path) -> None:
        self._lookup = lookup
        self._logs = logs
        self._pools: dict[str, tuple[str, WarmPool]] = {}
        self._lock = threading.Lock()

    def pool(self, cluster_id: str) -> WarmPool:
        spec = self._lookup(cluster_id)
        if spec is None:
            raise TaskInterrupted(
                "CRASHED",
                f"all-purpose cluster {cluster_id!r} does not "
                "exist (it was deleted after the job was created)",
            )
        fingerprint = json.dumps(spec, sort_keys=True)
        with self._lock:
            current = self._pools.get(cluster_id)
            if current and current[0] == fingerprint:
                return current[1]
            if current:  # the definition changed: restart the pool
                current[1].close()
            pool = WarmPool(
                cluster_id,
                size=spec["num_workers"],
                env=spec["spark_env_vars"],
                stderr_path=str(self._logs / "clusters" / f"{cluster_id}.log"),
            )
            self._pools[cluster_id] = (fingerprint, pool)
            return pool

    def warm_up(self, cluster_ids: list[str]) -> None:
        for cluster_id in cluster_ids:
            with contextlib.suppress(TaskInterrupted):
                self.pool(cluster_id).warm_up()

    def drop(self, cluster_id: str) -> None:
        with self._lock:
            current = self._pools.pop(cluster_id, None)
        if current:
            current[1].close()

    def close(self) -> None:
        with self._lock:
            pools = [p for _, p in self._pools.values()]
            self._pools.clear()
        for pool in pools:
            pool.close()
