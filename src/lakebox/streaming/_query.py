"""Streams: a source, a pipeline of operators, a sink, run in micro-batches.

A query runs batch after batch: it plans a batch from the source and records that plan in the
checkpoint (``offsets/<n>``), reads and transforms it, commits it to the sink, then saves the
operator state and writes ``commits/<n>``. A query killed at any point replays its last
planned batch on restart, reading exactly the same files; the Delta sink recognises a batch it
already committed, so the output holds every row once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from lakebox.errors import InvalidInput, LakeboxError
from lakebox.streaming._checkpoint import Checkpoint, status_record
from lakebox.streaming._ops import (
    Context,
    Dedup,
    Map,
    Operator,
    Window,
    key_columns,
    parse_duration,
    time_ints,
    to_units,
)
from lakebox.streaming._sinks import DeltaSink, ForeachBatchSink, Sink
from lakebox.streaming._sources import Source

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["Stream", "StreamingQuery", "checkpoint_root"]

TRIGGERS = ("available_now", "once", "processing_time")


def checkpoint_root(ws: Workspace) -> Path:
    """``<home>/checkpoints``: one folder per query."""
    return Path(ws.home) / "checkpoints"


@dataclass(frozen=True)
class _Watermark(Operator):
    column: str
    delay: timedelta | float
    name = "watermark"


@dataclass(frozen=True)
class Stream:
    """A stream definition: a source and a pipeline. Every method returns a new stream.

    Example:
        >>> from lakebox import streaming
        >>> q = (streaming.read_delta(ws, "main.raw.events")              # doctest: +SKIP
        ...      .with_watermark("ts", "10 minutes")
        ...      .drop_duplicates(["event_id"])
        ...      .map(score)
        ...      .write_delta("main.preds.events", query_name="score_events"))
        >>> q.run(trigger="available_now")                                 # doctest: +SKIP
    """

    ws: Workspace
    source: Source
    ops: tuple[Operator, ...] = ()

    # ----------------------------------------------------------------- pipeline
    def with_watermark(self, column: str, delay: str | timedelta | float) -> Stream:
        """Track event time in ``column``: later stateful steps drop rows older than the
        newest event time seen minus ``delay``, and forget state older than that."""
        if any(isinstance(op, _Watermark) for op in self.ops):
            raise InvalidInput("A stream has one watermark; with_watermark was called twice.")
        return replace(self, ops=(*self.ops, _Watermark(column, parse_duration(delay))))

    def map(self, fn: Callable[[Any], Any], *, arrow: bool = False) -> Stream:
        """Transform every batch with ``fn`` (pandas DataFrame in, DataFrame or Arrow out;
        Arrow in with ``arrow=True``). The same ``fn`` runs in :meth:`to_table`."""
        if not callable(fn):
            raise InvalidInput(f"map needs a function, got {fn!r}.")
        return replace(self, ops=(*self.ops, Map(fn, arrow)))

    def drop_duplicates(self, keys: str | Sequence[str]) -> Stream:
        """Keep the first row per key (within the watermark when there is one)."""
        return replace(self, ops=(*self.ops, Dedup(key_columns(keys))))

    def window(
        self,
        time_column: str,
        size: str | timedelta | float,
        *,
        by: str | Sequence[str] = (),
        aggs: dict[str, tuple[str, str]],
    ) -> Stream:
        """Aggregate tumbling windows of ``size`` over ``time_column`` per ``by`` keys.

        A window is emitted once the watermark passes its end; rows later than the watermark
        are dropped. Output columns: ``window_start``, ``window_end``, the keys, the ``aggs``.

        Example:
            >>> stream.window("ts", "1 minute", by="customer_id",                # doctest: +SKIP
            ...               aggs={"events": ("event_id", "count"), "spend": ("amount", "sum")})
        """
        if not any(isinstance(op, _Watermark) for op in self.ops):
            raise InvalidInput(
                "window() needs a watermark first: call "
                f".with_watermark({time_column!r}, '10 minutes') before it."
            )
        return replace(
            self,
            ops=(*self.ops, Window(time_column, parse_duration(size), key_columns(by), dict(aggs))),
        )

    # ----------------------------------------------------------------- batch
    def to_table(self) -> pa.Table:
        """Run the same pipeline once over everything the source holds now (a batch job):
        no watermark drops rows and every window is emitted."""
        self.source.start(self.ws, [])
        table = self.source.read_all()
        out, _, _ = run_pipeline(self.ops, table, {}, watermark=None, max_event=None, final=True)
        return out

    # ----------------------------------------------------------------- sinks
    def write_delta(
        self,
        table: str,
        *,
        query_name: str,
        partition_by: Sequence[str] | None = None,
        checkpoint_location: str | None = None,
    ) -> StreamingQuery:
        """Append every batch to Delta table ``table`` exactly once."""
        return StreamingQuery(
            self,
            DeltaSink(table, partition_by=partition_by),
            name=query_name,
            checkpoint_location=checkpoint_location,
        )

    def foreach_batch(
        self,
        fn: Callable[[Any, int], Any],
        *,
        query_name: str,
        arrow: bool = False,
        checkpoint_location: str | None = None,
    ) -> StreamingQuery:
        """Call ``fn(batch_df, batch_id)`` for every batch (at least once)."""
        return StreamingQuery(
            self,
            ForeachBatchSink(fn, arrow=arrow),
            name=query_name,
            checkpoint_location=checkpoint_location,
        )


def run_pipeline(
    ops: Sequence[Operator],
    table: pa.Table,
    states: dict[str, pa.Table],
    *,
    watermark: float | None,
    max_event: float | None,
    final: bool,
) -> tuple[pa.Table, dict[str, pa.Table], float | None]:
    """Run ``ops`` over one batch; returns the output, the new state, the new max event time."""
    ctx = Context(watermark=watermark, new_watermark=watermark, time_column=None, time_type=None)
    new_states: dict[str, pa.Table] = {}
    for index, op in enumerate(ops):
        if isinstance(op, _Watermark):
            if op.column not in table.column_names:
                raise InvalidInput(
                    f"Watermark column {op.column!r} is not a column of the "
                    f"stream {table.column_names}."
                )
            column = table[op.column]
            ctx.time_column, ctx.time_type = op.column, column.type
            if table.num_rows:
                newest = pc.max(time_ints(column)).as_py()
                if newest is not None:
                    max_event = newest if max_event is None else max(max_event, newest)
            if max_event is not None:
                candidate = max_event - to_units(op.delay, column.type)
                ctx.new_watermark = candidate if watermark is None else max(watermark, candidate)
            continue
        key = f"op{index}"
        table, state = op.apply(table, ctx, states.get(key), final=final)
        if state is not None:
            new_states[key] = state
    return table, new_states, max_event


class StreamingQuery:
    """A stream bound to a sink and a checkpoint; :meth:`run` processes it.

    The checkpoint lives in ``<home>/checkpoints/<name>`` unless ``checkpoint_location`` is
    given. Run the same query again (same name) to resume where it stopped.
    """

    def __init__(
        self, stream: Stream, sink: Sink, *, name: str, checkpoint_location: str | None = None
    ) -> None:
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise InvalidInput(f"query_name must be a non-empty name without '/', got {name!r}.")
        self.stream = stream
        self.sink = sink
        self.name = name
        self.ws = stream.ws
        self.checkpoint = Checkpoint(checkpoint_location or checkpoint_root(self.ws) / name)
        self.id: str | None = None
        self.last_progress: dict[str, Any] = {}

    def stop(self) -> None:
        """Ask the running query (in any process) to stop after its current batch."""
        self.checkpoint.request_stop()

    def status(self) -> dict[str, Any]:
        """The latest progress the query recorded (see :meth:`Streams.status`)."""
        return self.checkpoint.status() or {"name": self.name, "state": "NEW"}

    # ----------------------------------------------------------------- running
    def run(
        self,
        trigger: str = "available_now",
        *,
        processing_time: str | timedelta | float | None = None,
        max_batches: int | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Process the stream in micro-batches; returns the final status.

        Args:
            trigger: ``"available_now"`` (everything available at start, in rate-limited
                batches, then return), ``"once"`` (one batch with everything available, then
                return) or ``"processing_time"`` (a batch every ``processing_time`` until
                stopped with :meth:`stop` / ``lakebox streams stop``).
            processing_time: the interval of ``"processing_time"`` (e.g. ``"5 seconds"``);
                passing it alone selects that trigger.
            max_batches: return after this many batches (any trigger).
            timeout: return after this many seconds (between batches).
        """
        if processing_time is not None and trigger == "available_now":
            trigger = "processing_time"
        if trigger not in TRIGGERS:
            raise InvalidInput(f"trigger must be one of {list(TRIGGERS)}, got {trigger!r}.")
        interval = 0.0
        if trigger == "processing_time":
            every = parse_duration(processing_time if processing_time is not None else 0.5)
            interval = every.total_seconds() if isinstance(every, timedelta) else float(every)
        from lakebox.streaming._spark import run_on_spark, runs_on_spark

        if runs_on_spark(self):  # a spark workspace: Structured Streaming with foreachBatch
            return run_on_spark(
                self, trigger=trigger, interval=interval, max_batches=max_batches, timeout=timeout
            )
        source, sink, ckpt = self.stream.source, self.sink, self.checkpoint
        ckpt.path.mkdir(parents=True, exist_ok=True)
        with ckpt.lock():
            sink.start(self.ws)
            history = [self._history_entry(b) for b in ckpt.offset_ids()]
            source.start(self.ws, history)
            self.id = ckpt.bind(name=self.name, source=source.describe(), sink=sink.describe())
            ckpt.clear_stop()
            runner = _Runner(self, trigger=trigger, interval=interval)
            try:
                runner.loop(max_batches=max_batches, timeout=timeout)
            except BaseException as exc:
                message = exc.message if isinstance(exc, LakeboxError) else repr(exc)
                runner.write_status("FAILED", message=message)
                raise
            runner.write_status("STOPPED")
        return self.status()

    def _history_entry(self, batch_id: int) -> dict[str, Any]:
        entry = self.checkpoint.offset(batch_id)
        with contextlib.suppress(FileNotFoundError):
            entry["schema"] = self.checkpoint.commit(batch_id).get("source_schema")
        return entry


class _Runner:
    """The batch loop of one run of a query."""

    def __init__(self, query: StreamingQuery, *, trigger: str, interval: float) -> None:
        self.q = query
        self.trigger = trigger
        self.interval = interval
        self.ckpt = query.checkpoint
        self.started_at = datetime.now(timezone.utc)
        self.last_start: float | None = None
        self.progress: dict[str, Any] = {}
        self.time_type: pa.DataType | None = None
        commits = self.ckpt.commit_ids()
        self.last_commit = commits[-1] if commits else None
        info = self.ckpt.commit(self.last_commit) if self.last_commit is not None else {}
        self.watermark: float | None = info.get("watermark")
        self.max_event: float | None = info.get("max_event_time")
        self.time_unit: str | None = info.get("time_unit")
        self.states = self.ckpt.load_state(self.last_commit)
        self.batches = 0

    def loop(self, *, max_batches: int | None, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        offsets = self.ckpt.offset_ids()
        if offsets and (self.last_commit is None or offsets[-1] > self.last_commit):
            self.run_batch(offsets[-1], self.ckpt.offset(offsets[-1]))  # replay
        source = self.q.stream.source
        bound = source.bound() if self.trigger == "available_now" else None
        self.write_status("RUNNING")
        while True:
            if self.ckpt.stop_requested or (
                max_batches is not None and self.batches >= max_batches
            ):
                return
            if deadline is not None and time.monotonic() >= deadline:
                return
            tick = time.monotonic()
            offsets = self.ckpt.offset_ids()
            batch_id = offsets[-1] + 1 if offsets else 0
            start = self.ckpt.offset(offsets[-1])["end"] if offsets else source.initial_offset()
            plan = source.plan(start, limit=self.trigger != "once", bound=bound)
            if plan.entries or plan.end != start:
                record = {
                    "batch_id": batch_id,
                    "start": start,
                    "end": plan.end,
                    "entries": plan.entries,
                    "watermark": self.watermark,
                    "planned_at": datetime.now(timezone.utc).isoformat(),
                }
                self.ckpt.write_offset(batch_id, record)
                self.run_batch(batch_id, record)
                if self.trigger == "once":
                    return
                if plan.entries:
                    continue
            if self.trigger in ("once", "available_now"):
                return
            self._sleep(self.interval - (time.monotonic() - tick), deadline)

    def _sleep(self, seconds: float, deadline: float | None) -> None:
        end = time.monotonic() + max(0.0, seconds)
        if deadline is not None:
            end = min(end, deadline)
        while time.monotonic() < end and not self.ckpt.stop_requested:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))

    def run_batch(self, batch_id: int, record: dict[str, Any]) -> None:
        began = time.monotonic()
        since_last = began - self.last_start if self.last_start is not None else None
        self.last_start = began
        source = self.q.stream.source
        table = source.read(record["entries"])
        input_rows = table.num_rows
        out, states, max_event = run_pipeline(
            self.q.stream.ops,
            table,
            self.states,
            watermark=record.get("watermark"),
            max_event=self.max_event,
            final=False,
        )
        watermark = self._watermark_after(table, max_event, record.get("watermark"))
        metadata = {
            "lakebox.query": self.q.name,
            "lakebox.query_id": str(self.q.id),
            "lakebox.batch_id": str(batch_id),
        }
        self.q.sink.commit(
            self.q.ws, query_id=str(self.q.id), batch_id=batch_id, table=out, metadata=metadata
        )
        if states or self.states:
            self.ckpt.save_state(batch_id, states)
        schema = getattr(source, "recorded_schema", lambda: None)()
        duration = time.monotonic() - began
        self.ckpt.write_commit(
            batch_id,
            {
                "batch_id": batch_id,
                "watermark": watermark,
                "max_event_time": max_event,
                "time_unit": self.time_unit,
                "source_schema": schema,
                "input_rows": input_rows,
                "output_rows": out.num_rows,
                "duration_s": duration,
                "committed_at": datetime.now(timezone.utc).isoformat(),
            },
        )
        self.states, self.max_event, self.watermark = states, max_event, watermark
        self.last_commit = batch_id
        self.batches += 1
        self.progress = {
            "last_batch_id": batch_id,
            "input_rows": input_rows,
            "output_rows": out.num_rows,
            "batch_duration_ms": round(duration * 1000, 1),
            "processed_rows_per_second": round(input_rows / duration, 1) if duration else None,
            "input_rows_per_second": (round(input_rows / since_last, 1) if since_last else None),
        }
        self.write_status("RUNNING")

    def _watermark_after(
        self, table: pa.Table, max_event: float | None, previous: float | None
    ) -> float | None:
        mark = next((op for op in self.q.stream.ops if isinstance(op, _Watermark)), None)
        if mark is None or max_event is None:
            return previous
        if mark.column in table.column_names:
            column_type = table.schema.field(mark.column).type
            if pa.types.is_timestamp(column_type):
                self.time_unit = column_type.unit
            elif pa.types.is_date(column_type):
                self.time_unit = "s"
            else:
                self.time_unit = "number"
            candidate = max_event - to_units(mark.delay, column_type)
            return candidate if previous is None else max(previous, candidate)
        return previous

    def write_status(self, state: str, *, message: str | None = None) -> None:
        status = status_record(
            self.q,
            state,
            trigger=self.trigger,
            started_at=self.started_at,
            last_batch_id=self.last_commit,
            watermark=_show_time(self.watermark, self.time_unit),
            bad_files=getattr(self.q.stream.source, "bad_files", 0),
            message=message,
            progress=self.progress,
        )
        self.ckpt.write_status(status)
        self.q.last_progress = status


def _show_time(value: float | None, unit: str | None) -> Any:
    if value is None or unit in (None, "number"):
        return value
    scale = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[unit]
    return datetime.fromtimestamp(value / scale, tz=timezone.utc).isoformat()
