"""Streaming queries on the ``spark`` engine: Structured Streaming with ``foreachBatch``.

A query whose workspace engine is ``spark`` and whose stream Spark can run (a Delta source and
stateless ``map`` steps) runs as a Spark Structured Streaming query:

* the source is ``lakebox_delta`` (:mod:`lakebox.streaming._spark_source`): the same offsets and
  file planning as the local :class:`~lakebox.streaming.DeltaSource`, read by executors;
* every micro-batch goes to ``foreachBatch``, which applies the ``map`` steps on the cluster (a
  :class:`~lakebox.deploy.Predictor` gets its features joined in Spark first) and commits the
  result to the Delta sink with delta-rs. Each commit carries the application transaction
  ``(query id, batch id)``, and the sink reads ``transaction_version(query id)`` before
  writing, so a batch Spark replays after a crash (same batch id, same files, from Spark's
  offset log) is not written twice;
* the query keeps lakebox's checkpoint folder (``metadata.json`` with the query id, the lock,
  ``status.json``, the stop flag), with Spark's own offsets and commits in ``spark/`` inside
  it; ``ws.streams`` and ``lakebox streams`` list, stop and reset it as any other query.

Streams Spark cannot run this way (file sources, watermarks, de-duplication, windows, or a Spark
Connect ``sc://`` master, whose ``foreachBatch`` runs on the server) run on the local runner,
with the same results.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from deltalake import CommitProperties, Transaction
from deltalake.exceptions import CommitFailedError

from lakebox.errors import Conflict, LakeboxError, SchemaMismatch
from lakebox.streaming._checkpoint import status_record, write_json
from lakebox.streaming._ops import Context, Map
from lakebox.streaming._sinks import COMMIT_RETRIES, DeltaSink, ForeachBatchSink
from lakebox.streaming._sources import DeltaSource

if TYPE_CHECKING:
    from lakebox.streaming._query import StreamingQuery
    from lakebox.workspace import Workspace

__all__ = ["commit_frame", "runs_on_spark", "run_on_spark"]

SPARK_DIR = "spark"  # Spark's checkpoint (offsets, commits, sources) inside lakebox's
SOURCE_SCHEMA = "source_schema.json"  # the source schema the query started with


def runs_on_spark(query: StreamingQuery) -> bool:
    """Whether ``query`` runs on Spark: a ``spark`` workspace with a classic master (not
    Spark Connect), a Delta source, only ``map`` steps, and a Delta or ``foreach_batch`` sink.
    A checkpoint written by the other runner is refused rather than misread."""
    engine = query.ws.settings.engine
    if (
        engine.name != "spark"
        # Spark Connect runs foreachBatch functions on the server, away from this workspace
        or engine.spark_master.startswith("sc://")
        or not _streaming_sources_supported()
    ):
        spark = False
    else:
        spark = (
            isinstance(query.stream.source, DeltaSource)
            and all(isinstance(op, Map) for op in query.stream.ops)
            and isinstance(query.sink, (DeltaSink, ForeachBatchSink))
        )
    path = query.checkpoint.path
    if spark and (path / "offsets").exists():
        raise Conflict(
            f"Query {query.name!r} has a checkpoint written by the local runner ({path}); "
            "reset it (`lakebox streams reset`) to run it on the spark engine."
        )
    if not spark and (path / SPARK_DIR).exists():
        raise Conflict(
            f"Query {query.name!r} has a checkpoint written by Spark ({path / SPARK_DIR}); "
            "run it on the spark engine or reset it (`lakebox streams reset`)."
        )
    return spark


def _streaming_sources_supported() -> bool:
    """Python streaming data sources with read limits need PySpark 4.2 or later."""
    try:
        import pyspark
    except ImportError:
        return True  # let the engine raise MissingDependency naming the extra
    parts = [int(p) for p in pyspark.__version__.split(".")[:2] if p.isdigit()]
    return tuple(parts) >= (4, 2)


@dataclass
class _MapStep:
    """A stream's ``map`` step as an Arrow-batch function an engine runs on its workers."""

    op: Map

    def __call__(self, table: pa.Table) -> pa.Table:
        context = Context(watermark=None, new_watermark=None, time_column=None, time_type=None)
        out, _ = self.op.apply(table, context, None)
        return out


def transform(ws: Workspace, frame: Any, ops: tuple[Any, ...]) -> Any:
    """Apply a stream's ``map`` steps to a (static) Spark DataFrame, on the cluster."""
    from lakebox.deploy import Predictor

    engine: Any = ws.features.engine
    for op in ops:
        fn = op.fn
        if isinstance(fn, Predictor):
            predict = fn
            if predict.has_feature_spec:
                from lakebox.features import FeatureSpec

                spec = FeatureSpec.load(predict.model.local_path)
                joins = spec.offline_joins(
                    ws, frame.columns, versions=predict.feature_versions, override=True
                )
                sample = None
                if joins:
                    sample = engine.join_frame(frame.limit(64), joins)  # see deploy._spark
                    frame = engine.join_frame(frame, joins)
                predict = replace(predict, features_joined=True)
                frame = engine.score(frame, predict, sample=sample)
            else:
                frame = engine.score(frame, predict)
        else:
            frame = engine.map_batches(frame, _MapStep(op))
    return frame


def commit_frame(
    ws: Workspace,
    table: str,
    frame: Any,
    *,
    query_id: str,
    batch_id: int,
    metadata: dict[str, str],
    partition_by: list[str] | None = None,
) -> bool:
    """Append a Spark DataFrame to Delta table ``table`` as batch ``batch_id`` of query
    ``query_id``, exactly once: False (and nothing written) when the table already holds it.

    Example:
        >>> commit_frame(ws, "main.preds.events", frame, query_id=qid, batch_id=3,
        ...              metadata={})                                      # doctest: +SKIP
        True
    """
    from pyspark.sql import functions as F

    from lakebox.engines._spark_delta import spark_schema

    engine: Any = ws.features.engine

    def done() -> bool:
        if not ws.tables.exists(table):
            return False
        version = ws.tables.delta_table(table).transaction_version(query_id)
        return version is not None and version >= batch_id

    if done():
        return False
    if not ws.tables.exists(table):
        ws.tables.create(table, schema=engine.schema(frame), partition_by=partition_by)
    target = pa.schema(ws.tables.delta_table(table).schema().to_arrow())
    extra = [c for c in frame.columns if c not in target.names]
    missing = [f.name for f in target if f.name not in frame.columns and not f.nullable]
    if extra or missing:
        raise SchemaMismatch(
            f"The stream's output does not fit table {table!r}: extra column(s) {extra}, "
            f"missing column(s) {missing} (the table has {target.names}). Write to a new "
            "table or change the transform."
        )
    frame = frame.select(
        *[
            (F.col(f.name) if f.name in frame.columns else F.lit(None))
            .cast(f.dataType)
            .alias(f.name)
            for f in spark_schema(target).fields
        ]
    )
    props = CommitProperties(
        custom_metadata=metadata, app_transactions=[Transaction(query_id, batch_id)]
    )
    for _ in range(COMMIT_RETRIES):
        try:
            engine.write(frame, ws.tables.location(table), commit_properties=props)
            return True
        except CommitFailedError:
            if done():
                return False
    raise Conflict(
        f"Batch {batch_id} could not be committed to {table!r}: {COMMIT_RETRIES} concurrent "
        "commits in a row conflicted with it. Restart the stream; the batch is retried."
    )


class _Handler:
    """The ``foreachBatch`` function: transform, commit, record progress."""

    def __init__(self, query: StreamingQuery, *, trigger: str) -> None:
        self.q = query
        self.trigger = trigger
        self.started_at = datetime.now(timezone.utc)
        self.lock = threading.Lock()
        self.batches = 0
        self.last_batch: int | None = None
        self.progress: dict[str, Any] = {}
        self.error: BaseException | None = None

    def __call__(self, batch: Any, batch_id: int) -> None:
        try:
            self._run(batch, int(batch_id))
        except BaseException as exc:
            self.error = exc
            raise

    def _run(self, batch: Any, batch_id: int) -> None:
        began = time.monotonic()
        q = self.q
        batch = batch.persist()
        try:
            rows = batch.count()
            out = transform(q.ws, batch, q.stream.ops) if rows else batch
            metadata = {
                "lakebox.query": q.name,
                "lakebox.query_id": str(q.id),
                "lakebox.batch_id": str(batch_id),
            }
            if isinstance(q.sink, ForeachBatchSink):
                q.sink.fn(out, batch_id)
            elif rows:
                assert isinstance(q.sink, DeltaSink)
                commit_frame(
                    q.ws,
                    q.sink.table,
                    out,
                    query_id=str(q.id),
                    batch_id=batch_id,
                    metadata=metadata,
                    partition_by=q.sink.partition_by,
                )
        finally:
            batch.unpersist()
        duration = time.monotonic() - began
        with self.lock:
            self.batches += 1
            self.last_batch = batch_id
            self.progress = {
                "last_batch_id": batch_id,
                "input_rows": rows,
                "output_rows": rows,
                "batch_duration_ms": round(duration * 1000, 1),
                "processed_rows_per_second": round(rows / duration, 1) if duration else None,
                "input_rows_per_second": None,
            }
        self.write_status("RUNNING")

    def write_status(self, state: str, *, message: str | None = None) -> None:
        q = self.q
        status = status_record(
            q,
            state,
            engine="spark",
            trigger=self.trigger,
            started_at=self.started_at,
            last_batch_id=self.last_batch,
            watermark=None,
            bad_files=0,
            message=message,
            progress=self.progress,
        )
        q.checkpoint.write_status(status)
        q.last_progress = status


def run_on_spark(
    query: StreamingQuery,
    *,
    trigger: str,
    interval: float,
    max_batches: int | None,
    timeout: float | None,
) -> dict[str, Any]:
    """Run ``query`` as a Spark Structured Streaming query (see the module docstring);
    returns its final status. Same triggers and stop conditions as the local runner."""
    from lakebox.streaming._spark_source import FORMAT, register, source_options

    ws, ckpt, source, sink = query.ws, query.checkpoint, query.stream.source, query.sink
    engine: Any = ws.features.engine
    spark = engine.spark
    ckpt.path.mkdir(parents=True, exist_ok=True)
    with ckpt.lock():
        sink.start(ws)
        # the schema the query started with, not today's (as the local runner keeps it)
        recorded = ckpt.path / SOURCE_SCHEMA
        history = [{"schema": json.loads(recorded.read_text())}] if recorded.exists() else []
        source.start(ws, history)
        if not recorded.exists() and isinstance(source, DeltaSource):
            write_json(recorded, source.recorded_schema())
        query.id = ckpt.bind(name=query.name, source=source.describe(), sink=sink.describe())
        ckpt.clear_stop()
        assert isinstance(source, DeltaSource)
        register(spark)
        frame = spark.readStream.format(FORMAT).options(**source_options(source)).load()
        handler = _Handler(query, trigger=trigger)
        writer = frame.writeStream.foreachBatch(handler).option(
            "checkpointLocation", str(ckpt.path / SPARK_DIR)
        )
        if trigger == "available_now":
            writer = writer.trigger(availableNow=True)
        elif trigger == "once":
            writer = writer.trigger(once=True)
        else:
            writer = writer.trigger(processingTime=f"{max(int(interval * 1000), 100)} milliseconds")
        handler.write_status("RUNNING")
        deadline = None if timeout is None else time.monotonic() + timeout
        running = writer.start()
        try:
            while running.isActive:
                running.awaitTermination(0.2)
                if (
                    ckpt.stop_requested
                    or (max_batches is not None and handler.batches >= max_batches)
                    or (deadline is not None and time.monotonic() >= deadline)
                ):
                    running.stop()
            failure = running.exception()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                running.stop()
            failure = exc
        if failure is not None:
            error = handler.error or failure
            message = error.message if isinstance(error, LakeboxError) else str(error)[:800]
            handler.write_status("FAILED", message=message)
            if isinstance(error, LakeboxError):
                raise error
            raise LakeboxError(f"Streaming query {query.name!r} failed on Spark: {message}")
        handler.write_status("STOPPED")
    return query.status()
