"""Inference tables: requests and responses appended to a Delta table in the background.

The request path only puts a small tuple on a bounded queue (``put_nowait``; when the queue
is full the row is dropped and counted, never waited for). A writer thread drains the queue
every ``interval`` seconds (or sooner when ``batch_size`` rows are waiting) and appends one
Delta commit per table. :meth:`InferenceLogger.close` drains everything before returning,
so a graceful shutdown loses nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakebox.catalog import Tables

__all__ = ["INFERENCE_SCHEMA", "InferenceLogger"]

_log = logging.getLogger(__name__)


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("request_id", pa.string()),
            ("client_request_id", pa.string()),
            ("date", pa.date32()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("timestamp_ms", pa.int64()),
            ("endpoint_name", pa.string()),
            ("served_model_name", pa.string()),
            ("model_name", pa.string()),
            ("model_version", pa.string()),
            ("status_code", pa.int32()),
            ("execution_time_ms", pa.float64()),
            ("request", pa.string()),
            ("response", pa.string()),
        ]
    )


INFERENCE_SCHEMA = _schema


class InferenceLogger:
    """Batched, asynchronous appends of inference rows to Delta tables.

    Args:
        tables: the workspace's table catalog (``ws.tables``).
        max_queue: rows held in memory at most; further rows are dropped and counted.
        batch_size: rows that trigger a write before ``interval`` has passed.
        interval: seconds between writes.
        on_drop: called with the number of rows dropped (metrics).
    """

    def __init__(
        self,
        tables: Tables,
        *,
        max_queue: int = 100_000,
        batch_size: int = 5_000,
        interval: float = 1.0,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.tables = tables
        self.batch_size = batch_size
        self.interval = interval
        self.on_drop = on_drop
        self.queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue(max_queue)
        self.dropped = 0
        self.written = 0
        self.failures = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def offer(self, table: str, row: dict[str, Any]) -> None:
        """Queue one row without blocking; drop it (and count it) when the queue is full."""
        if self._closed:
            return
        if self._thread is None:
            self._start()
        try:
            self.queue.put_nowait((table, row))
        except queue.Full:
            self.dropped += 1
            if self.on_drop is not None:
                self.on_drop(1)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="lakebox-inference-log", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[tuple[str, dict[str, Any]]] = []
            try:
                item = self.queue.get(timeout=self.interval)
            except queue.Empty:
                continue
            if item is None:
                stop = True
            else:
                batch.append(item)
            deadline = self.interval
            while not stop and len(batch) < self.batch_size:
                try:
                    item = self.queue.get(timeout=deadline if not batch else 0.05)
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            if stop:  # drain whatever is left after the stop marker
                while True:
                    try:
                        item = self.queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        batch.append(item)
            self._write(batch)

    def _write(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        import pyarrow as pa

        by_table: dict[str, list[dict[str, Any]]] = {}
        for table, row in batch:
            by_table.setdefault(table, []).append(row)
        for table, rows in by_table.items():
            try:
                data = pa.Table.from_pylist(rows, schema=INFERENCE_SCHEMA())
                self.tables.write(table, data, mode="append")
                self.written += len(rows)
            except Exception:
                self.failures += 1
                _log.exception("writing %d inference row(s) to %s failed", len(rows), table)

    def flush(self, timeout: float = 30.0) -> None:
        """Write everything queued so far and stop the writer (it restarts on the next row)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self.queue.put(None)
        thread.join(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Flush and refuse further rows."""
        self.flush(timeout)
        self._closed = True


def inference_row(
    *,
    request_id: str,
    client_request_id: str | None,
    endpoint: str,
    served_model: str,
    model_name: str,
    model_version: str,
    status: int,
    seconds: float,
    request: str,
    response: str,
) -> dict[str, Any]:
    """One row of an inference table."""
    now = dt.datetime.now(dt.timezone.utc)
    return {
        "request_id": request_id,
        "client_request_id": client_request_id,
        "date": now.date(),
        "ts": now,
        "timestamp_ms": int(now.timestamp() * 1000),
        "endpoint_name": endpoint,
        "served_model_name": served_model,
        "model_name": model_name,
        "model_version": model_version,
        "status_code": status,
        "execution_time_ms": seconds * 1000.0,
        "request": request,
        "response": response,
    }
