"""A small pool of trial worker processes (see :mod:`lakebox.tuning._worker`)."""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
from typing import Any

from lakebox.tuning import _worker
from lakebox.tuning._worker import receive, send

__all__ = ["ObjectiveNotLoadable", "WorkerDied", "WorkerPool"]

# Environment the workers need to find the same MLflow stores as the parent.
_PASSED_ENV = (
    "_MLFLOW_SERVER_ARTIFACT_ROOT",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_DISABLE_TELEMETRY",
)


class WorkerDied(Exception):
    """A worker process ended while running a trial."""

    def __init__(self, message: str, run_id: str | None) -> None:
        super().__init__(message)
        self.run_id = run_id


class ObjectiveNotLoadable(Exception):
    """The pickled objective cannot be unpickled in a worker process."""


class _Worker:
    def __init__(self, init: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, _worker.__file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self._ready = False
        # Sent from a thread: a large objective (data in its closure) fills the pipe until the
        # worker reads it, and the other workers should start meanwhile.
        self._init_error: BaseException | None = None
        self._init_sender = threading.Thread(target=self._send_init, args=(init,), daemon=True)
        self._init_sender.start()

    def _send_init(self, init: dict[str, Any]) -> None:
        try:
            assert self.process.stdin is not None
            send(self.process.stdin, init)
        except OSError as exc:
            self._init_error = exc

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        self._init_sender.join()
        if self._init_error is not None:
            raise self._init_error
        assert self.process.stdout is not None
        reply = receive(self.process.stdout)
        if reply["event"] == "init_failed":
            raise ObjectiveNotLoadable(reply["error"])
        self._ready = True

    def run(self, task: dict[str, Any]) -> dict[str, Any]:
        run_id = None
        try:
            self._ensure_ready()
            assert self.process.stdin is not None and self.process.stdout is not None
            send(self.process.stdin, task)
            started = receive(self.process.stdout)
            run_id = started["run_id"]
            return dict(receive(self.process.stdout))
        except (EOFError, BrokenPipeError, OSError) as exc:
            code = self.process.wait()
            raise WorkerDied(
                f"the worker process running the trial died (exit code {code}): {exc}", run_id
            ) from None

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                send(self.process.stdin, None)
                self.process.stdin.close()
                self.process.wait(timeout)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None and not stream.closed:
                with contextlib.suppress(OSError):  # unflushed bytes to a dead worker
                    stream.close()


class WorkerPool:
    """``size`` worker processes, each running one trial at a time.

    :meth:`run` blocks until the trial is done; call it from ``size`` threads to run trials in
    parallel. A worker that dies is replaced by a fresh one for the next trial.
    """

    def __init__(
        self,
        size: int,
        *,
        fn_bytes: bytes,
        tracking_uri: str,
        registry_uri: str,
        experiment_id: str,
    ) -> None:
        self._init = {
            "event": "init",
            "sys_path": [p for p in sys.path if p],
            "tracking_uri": tracking_uri,
            "registry_uri": registry_uri,
            "fn": fn_bytes,
            "experiment_id": experiment_id,
            "env": {k: os.environ[k] for k in _PASSED_ENV if k in os.environ},
        }
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        for _ in range(size):  # started now so that their imports overlap
            self._idle.put(self._spawn())

    def _spawn(self) -> _Worker:
        worker = _Worker(self._init)
        with self._lock:
            self._all.append(worker)
        return worker

    def run(self, task: dict[str, Any]) -> dict[str, Any]:
        worker = self._idle.get()
        try:
            return worker.run(task)
        finally:
            self._idle.put(worker if worker.alive() else self._spawn())

    def kill(self) -> None:
        """Stop every worker now (on an error or Ctrl-C): running trials end as failed."""
        with self._lock:
            workers = list(self._all)
        for worker in workers:
            if worker.alive():
                worker.process.kill()

    def close(self) -> None:
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            worker.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
