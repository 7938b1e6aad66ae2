"""``score_table``: score a Delta table with an MLflow model into another Delta table.

The parent process plans tasks (files, or row groups of large files) of the input snapshot;
worker processes each load the model once, read their task in bounded batches, join features
and predict; the parent streams the results into one Delta commit. Memory stays bounded by
``workers * 2`` tasks in flight, whatever the table size.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from lakebox.deploy._files import FileWriter, local_path, remove_files
from lakebox.deploy._model import Predictor, resolve_model
from lakebox.errors import Conflict, InvalidInput, SchemaMismatch

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["SCORING_BACKENDS", "ScoreJob", "ScoreResult", "score_table", "score_locally"]

Progress = Callable[[int, int], None]
# One unit of work: (file path relative to the table, row-group ids or None for all,
# partition values).
Task = tuple[str, "list[int] | None", "dict[str, str | None]"]


@dataclass(frozen=True)
class ScoreResult:
    """What :func:`score_table` did."""

    output_table: str
    output_version: int | None
    rows: int
    input_table: str
    input_version: int
    model_uri: str
    model_name: str | None
    model_version: str | None
    scored_at: datetime
    seconds: float


@dataclass(frozen=True)
class ScoreJob:
    """One :func:`score_table` call, resolved and checked: what a scoring backend runs.

    Attributes:
        ws: the workspace.
        input_table: the input's full name.
        input: the input snapshot (a ``DeltaTable`` at the version being scored).
        output_table: the output's full name.
        predictor: the model, pinned feature versions and ``scored_at`` stamp.
        mode: ``"append"`` or ``"overwrite"``.
        partition_by: partition columns of a new (or overwritten) output.
        metadata: the commit's custom metadata (input and model versions).
        batch_rows: rows per batch handed to the model.
        workers: worker processes (local engine).
        progress: ``progress(rows_done, rows_total)``.
    """

    ws: Workspace
    input_table: str
    input: DeltaTable
    output_table: str
    predictor: Predictor
    mode: str
    partition_by: list[str] | None
    metadata: dict[str, str]
    batch_rows: int
    workers: int
    progress: Progress | None


# Engine name -> the backend that scores a ScoreJob into one Delta commit, returning
# (output version or None when nothing was written, rows written).
SCORING_BACKENDS = {
    "local": "lakebox.deploy._batch:score_locally",
    "spark": "lakebox.deploy._spark:score_on_spark",
}


def scoring_backend(engine: str) -> Callable[[ScoreJob], tuple[int | None, int]]:
    """The scoring backend of engine ``engine`` (``[engine] name``)."""
    import importlib

    if engine not in SCORING_BACKENDS:
        raise InvalidInput(
            f"No batch scoring for engine {engine!r}; engines with one: {sorted(SCORING_BACKENDS)}."
        )
    module, _, name = SCORING_BACKENDS[engine].partition(":")
    backend: Callable[[ScoreJob], tuple[int | None, int]] = getattr(
        importlib.import_module(module), name
    )
    return backend


# ----------------------------------------------------------------------------- workers
_WORKER: dict[str, Any] = {}


def _init_worker(
    predictor: Predictor,
    location: str,
    schema: bytes,
    partitions: list[str],
    out: dict[str, Any] | None,
    limit_threads: bool,
) -> None:
    if limit_threads:
        try:
            from threadpoolctl import threadpool_limits

            _WORKER["limits"] = threadpool_limits(1)
        except ImportError:  # pragma: no cover - sklearn brings threadpoolctl
            pass
    fs, root = _filesystem(location)
    _WORKER.update(
        predictor=predictor,
        fs=fs,
        root=root,
        out=out,
        partitions=partitions,
        schema=_schema_from_bytes(schema),
    )
    predictor.load()


def _filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    local = local_path(location)
    if local is not None:
        return pafs.LocalFileSystem(), str(local)
    return pafs.FileSystem.from_uri(location)


def _read_task(task: Task, batch_rows: int) -> Iterator[pa.Table]:
    """The task's rows in batches, with partition columns, in the table's schema."""
    path, row_groups, values = task
    schema: pa.Schema = _WORKER["schema"]
    partitions: list[str] = _WORKER["partitions"]
    with _WORKER["fs"].open_input_file(f"{_WORKER['root']}/{path}") as fh:
        reader = pq.ParquetFile(fh)
        for batch in reader.iter_batches(batch_size=batch_rows, row_groups=row_groups):
            if not batch.num_rows:
                continue
            columns = []
            for field in schema:
                if field.name in partitions:
                    raw = pa.array([values.get(field.name)] * batch.num_rows, pa.string())
                    columns.append(raw.cast(field.type))
                elif field.name in batch.schema.names:
                    columns.append(batch.column(field.name).cast(field.type))
                else:
                    columns.append(pa.nulls(batch.num_rows, field.type))
            yield pa.Table.from_arrays(columns, schema=schema)


def _score_task(task: Task, batch_rows: int) -> Any:
    """Score one task; with an output folder, write the files and return their actions."""
    predictor: Predictor = _WORKER["predictor"]
    batches = (predictor(table) for table in _read_task(task, batch_rows))
    out = _WORKER.get("out")
    if out is None:
        scored = list(batches)
        if not scored:
            return predictor(_WORKER["schema"].empty_table())
        return pa.concat_tables(scored, promote_options="permissive")
    schema = _schema_from_bytes(out["schema"]) if out["schema"] else None
    writer = FileWriter(Path(out["root"]), out["partition_by"], schema)
    try:
        for table in batches:
            if schema is not None:
                _check_schema(out["name"], table.schema, schema)
            writer.write(table)
    except BaseException:
        writer.abort()
        raise
    actions = writer.close()
    written = writer.schema.serialize().to_pybytes() if writer.schema is not None else None
    return {"actions": actions, "schema": written}


def _schema_from_bytes(data: bytes) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(data))


def _plan(dt: DeltaTable, location: str, batch_rows: int) -> tuple[list[Task], list[int]]:
    """Tasks of about ``batch_rows`` rows: whole files, or row groups of large files."""
    actions = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
    fs, root = _filesystem(location)
    tasks: list[Task] = []
    sizes: list[int] = []
    for action in actions:
        if action.get("deletionVector.storageType") or action.get("deletionVector"):
            raise InvalidInput(
                "The input table has deletion vectors, which score_table "
                "cannot read yet; run OPTIMIZE on it first."
            )
        path = unquote(action["path"])
        values = {
            k[len("partition.") :]: (None if v is None else str(v))
            for k, v in action.items()
            if k.startswith("partition.")
        }
        rows = action.get("num_records")
        if rows is not None and rows <= 2 * batch_rows:
            tasks.append((path, None, values))
            sizes.append(int(rows))
            continue
        with fs.open_input_file(f"{root}/{path}") as fh:
            meta = pq.ParquetFile(fh).metadata
        current: list[int] = []
        current_rows = 0
        for index in range(meta.num_row_groups):
            current.append(index)
            current_rows += meta.row_group(index).num_rows
            if current_rows >= batch_rows:
                tasks.append((path, current, values))
                sizes.append(current_rows)
                current, current_rows = [], 0
        if current:
            tasks.append((path, current, values))
            sizes.append(current_rows)
    return tasks, sizes


def _run_tasks(
    tasks: list[Task], *, workers: int, batch_rows: int, init_args: tuple[Any, ...]
) -> Iterator[pa.Table]:
    """Yield each task's result in order, at most ``2 * workers`` tasks in flight."""
    if workers <= 1 or len(tasks) <= 1:
        _init_worker(*init_args[:-1], False)  # type: ignore[call-arg]
        try:
            for task in tasks:
                yield _score_task(task, batch_rows)
        finally:
            _WORKER.clear()
        return
    # Workers read Parquet with pyarrow only (never delta-rs' runtime), so forking is safe and
    # saves each worker seconds of imports; spawn where fork does not exist.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    with cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=init_args
    ) as pool:
        pending: deque[cf.Future[pa.Table]] = deque()
        queue = iter(tasks)
        try:
            with _main_not_reimported():  # spawn starts every worker on the first submit
                for task in queue:
                    pending.append(pool.submit(_score_task, task, batch_rows))
                    if len(pending) >= 2 * workers:
                        break
            while pending:
                result = pending.popleft().result()
                nxt = next(queue, None)
                if nxt is not None:
                    pending.append(pool.submit(_score_task, nxt, batch_rows))
                yield result
        finally:
            for future in pending:
                future.cancel()


@contextlib.contextmanager
def _main_not_reimported() -> Iterator[None]:
    """Spawned workers re-run the caller's ``__main__`` unless it is guarded by
    ``if __name__ == "__main__"``; workers need only lakebox, so hide it while they start."""
    main = sys.modules.get("__main__")
    saved: dict[str, Any] = {
        k: main.__dict__[k]
        for k in ("__spec__", "__file__")
        if main is not None and k in main.__dict__
    }
    try:
        if main is not None:
            main.__dict__["__spec__"] = None
            main.__dict__.pop("__file__", None)
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)


# ----------------------------------------------------------------------------- output
def _output_plan(
    ws: Workspace, name: str, root: Path | None, *, mode: str, partition_by: Sequence[str] | None
) -> dict[str, Any] | None:
    """How workers write: into ``root`` with the table's schema and partitions (None when
    the output is on object storage: the parent then streams one write)."""
    if root is None:
        return None
    schema = None
    partitions = list(partition_by or [])
    if ws.tables.exists(name):
        dt = ws.tables.delta_table(name)
        if mode == "append":
            schema = pa.schema(dt.schema().to_arrow()).serialize().to_pybytes()
            partitions = list(dt.metadata().partition_columns)
        elif not partition_by:
            partitions = list(dt.metadata().partition_columns)
    return {"root": str(root), "name": name, "schema": schema, "partition_by": partitions}


def _commit_files(
    ws: Workspace,
    name: str,
    results: Iterator[dict[str, Any]],
    sizes: list[int],
    total: int,
    *,
    mode: str,
    partition_by: Sequence[str] | None,
    metadata: dict[str, str],
    progress: Progress | None,
) -> tuple[int | None, int]:
    """Collect the files the workers wrote and commit them as one Delta transaction."""
    root = Path(str(local_path(ws.tables.location(name))))
    actions: list[dict[str, Any]] = []
    schema: pa.Schema | None = None
    done = 0
    try:
        for index, result in enumerate(results):
            actions.extend(result["actions"])
            if result["schema"] is not None:
                got = _schema_from_bytes(result["schema"])
                if schema is None:
                    schema = got
                elif not got.equals(schema):
                    raise SchemaMismatch(
                        f"Worker outputs for {name!r} disagree on the schema ({got} vs "
                        f"{schema}); the model returns different types for different rows."
                    )
            done += sizes[index] if index < len(sizes) else 0
            if progress is not None:
                progress(done, total)
        if schema is None or not actions:
            return None, 0
        from deltalake.transaction import AddAction, RemoveAction

        exists = ws.tables.exists(name)
        partitions = [k for k in (actions[0]["partition_values"] or {})]
        if not exists:
            ws.tables.create(name, schema=schema, partition_by=partitions or None)
        dt = ws.tables.delta_table(name)
        adds: list[AddAction | RemoveAction] = [
            AddAction(
                a["path"],
                a["size"],
                a["partition_values"],
                a["modification_time"],
                True,
                a["stats"],
            )
            for a in actions
        ]
        dt.create_write_transaction(
            adds,
            mode=mode,
            schema=schema,
            partition_by=partitions or None,
            commit_properties=CommitProperties(custom_metadata=metadata),
        )
    except CommitFailedError as exc:
        remove_files(root, actions)
        raise Conflict(
            f"A concurrent commit to {name!r} conflicted with the scoring commit "
            f"({exc}); nothing was written. Run the scoring again."
        ) from None
    except BaseException:
        remove_files(root, actions)
        raise
    dt.update_incremental()
    return dt.version(), sum(int(a["rows"]) for a in actions)


# ----------------------------------------------------------------------------- public
def score_table(
    model_uri: str,
    input_table: str,
    output_table: str,
    *,
    ws: Workspace | None = None,
    mode: Literal["append", "overwrite"] = "append",
    partition_by: Sequence[str] | None = None,
    zorder_by: Sequence[str] | None = None,
    optimize: bool = False,
    keep_columns: Sequence[str] | None = None,
    feature_columns: Sequence[str] | None = None,
    result_column: str = "prediction",
    input_version: int | None = None,
    batch_rows: int = 250_000,
    workers: int | None = None,
    progress: Progress | None = None,
) -> ScoreResult:
    """Score every row of a Delta table with an MLflow model into another Delta table.

    The input is read in bounded batches from one snapshot; features are joined when the
    model was logged with ``ws.features.log_model(training_set=...)``; worker processes
    predict in parallel, each loading the model once. The predictions, with ``model_name``,
    ``model_version`` and ``scored_at`` columns, land in ``output_table`` as one Delta commit
    whose commit info records ``lakebox.input_table``, ``lakebox.input_version``,
    ``lakebox.model_uri``, ``lakebox.model_name`` and ``lakebox.model_version``.

    Args:
        model_uri: ``models:/name/3``, ``models:/name@alias``, ``models:/name/Production``,
            ``models:/name/latest``, ``runs:/<run>/model`` or a local model folder.
        input_table: the table to score.
        output_table: where predictions go (created if missing).
        ws: the workspace (default: ``lakebox.Workspace()``).
        mode: ``"append"`` or ``"overwrite"`` the output table.
        partition_by: partition columns of a new (or overwritten) output table.
        zorder_by: Z-order the output by these columns after writing.
        optimize: compact the output's files after writing.
        keep_columns: input (and feature) columns to keep beside the prediction (all).
        feature_columns: columns fed to the model (default: its signature's inputs, else
            every column; models with a feature spec choose their own).
        result_column: name of the prediction column.
        input_version: score this version of the input (default: the latest).
        batch_rows: rows per batch handed to the model (bounds memory).
        workers: worker processes (default: the number of CPUs; 1 scores in this process).
        progress: called as ``progress(rows_done, rows_total)`` after each task.

    Returns:
        A :class:`ScoreResult` with the output version and row count.

    Example:
        >>> import lakebox
        >>> lakebox.deploy.score_table("models:/churn/Production", "main.raw.customers",
        ...                            "main.preds.churn_daily", zorder_by=["customer_id"],
        ...                            ws=ws)                             # doctest: +SKIP
        ScoreResult(output_table='main.preds.churn_daily', output_version=1, rows=1000, ...)
    """
    started = time.perf_counter()
    if ws is None:
        from lakebox.workspace import Workspace

        ws = Workspace()
    if mode not in ("append", "overwrite"):
        raise InvalidInput(f"mode must be 'append' or 'overwrite', got {mode!r}.")
    if not isinstance(batch_rows, int) or batch_rows < 1:
        raise InvalidInput(f"batch_rows must be a positive integer, got {batch_rows!r}.")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if not isinstance(workers, int) or workers < 1:
        raise InvalidInput(f"workers must be a positive integer, got {workers!r}.")
    in_name = ws.tables.resolve(input_table).full_name
    out_name = ws.tables.resolve(output_table).full_name
    if in_name == out_name:
        raise InvalidInput(
            f"Input and output are the same table {in_name!r}; write predictions to another table."
        )
    dt = ws.tables.delta_table(in_name, version=input_version)
    version = dt.version()
    ws.tables.dataset(in_name, version=version)  # lineage hooks see the read
    if keep_columns is not None:
        keep_columns = list(keep_columns)
    tmp = tempfile.mkdtemp(prefix="lakebox-score-")
    try:
        ref = resolve_model(model_uri, dst=tmp)
        scored_at = datetime.now(timezone.utc)
        base = Predictor(
            ref,
            home=str(ws.home),
            result_column=result_column,
            keep_columns=keep_columns,
            scored_at=scored_at,
            feature_columns=list(feature_columns) if feature_columns else None,
        )
        if base.has_feature_spec:
            from lakebox.features import FeatureSpec

            spec = FeatureSpec.load(ref.local_path)
            base = replace(
                base,
                feature_versions={
                    t: ws.tables.delta_table(t).version() for t in spec.feature_tables
                },
            )
        metadata = {
            "lakebox.operation": "score_table",
            "lakebox.input_table": in_name,
            "lakebox.input_version": str(version),
            "lakebox.model_uri": model_uri,
            "lakebox.model_name": ref.name or "",
            "lakebox.model_version": ref.version or "",
        }
        job = ScoreJob(
            ws=ws,
            input_table=in_name,
            input=dt,
            output_table=out_name,
            predictor=base,
            mode=mode,
            partition_by=list(partition_by) if partition_by else None,
            metadata=metadata,
            batch_rows=batch_rows,
            workers=workers,
            progress=progress,
        )
        out_version, rows = scoring_backend(ws.settings.engine.name)(job)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if out_version is not None and (zorder_by or optimize):
        ws.tables.optimize(out_name, zorder_by=list(zorder_by) if zorder_by else None)
        out_version = ws.tables.delta_table(out_name).version()
    return ScoreResult(
        out_name,
        out_version,
        rows,
        in_name,
        version,
        model_uri,
        ref.name,
        ref.version,
        scored_at,
        time.perf_counter() - started,
    )


def score_locally(job: ScoreJob) -> tuple[int | None, int]:
    """The ``local`` engine's scoring: worker processes over the input's files (see the
    module docstring); returns the output version (None when nothing was written) and rows."""
    ws, dt = job.ws, job.input
    in_location = ws.tables.location(job.input_table)
    tasks, sizes = _plan(dt, in_location, job.batch_rows)
    total = sum(sizes)
    workers = min(job.workers, max(1, len(tasks)))
    if total < 2 * job.batch_rows:
        workers = 1  # starting processes costs more than it saves
    out = _output_plan(
        ws,
        job.output_table,
        local_path(ws.tables.location(job.output_table)),
        mode=job.mode,
        partition_by=job.partition_by,
    )
    init_args = (
        job.predictor,
        in_location,
        pa.schema(dt.schema().to_arrow()).serialize().to_pybytes(),
        list(dt.metadata().partition_columns),
        out,
        True,
    )
    results = _run_tasks(tasks, workers=workers, batch_rows=job.batch_rows, init_args=init_args)
    write = _commit_files if out is not None else _write
    return write(
        ws,
        job.output_table,
        results,
        sizes,
        total,
        mode=job.mode,
        partition_by=job.partition_by,
        metadata=job.metadata,
        progress=job.progress,
    )


def _write(
    ws: Workspace,
    name: str,
    results: Iterator[pa.Table],
    sizes: list[int],
    total: int,
    *,
    mode: str,
    partition_by: Sequence[str] | None,
    metadata: dict[str, str],
    progress: Progress | None,
) -> tuple[int | None, int]:
    first = next(results, None)
    if first is None:
        return None, 0
    exists = ws.tables.exists(name)
    schema = first.schema
    if exists and mode == "append":
        target = pa.schema(ws.tables.delta_table(name).schema().to_arrow())
        _check_schema(name, schema, target)
        schema = target
    elif not exists:
        ws.tables.create(name, schema=schema, partition_by=partition_by)
    done = 0
    rows = 0

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal done, rows
        for index, table in enumerate(_chain(first, results)):
            table = table.select(schema.names).cast(schema)
            rows += table.num_rows
            yield from table.to_batches()
            done += sizes[index] if index < len(sizes) else 0
            if progress is not None:
                progress(done, total)

    dt = ws.tables.delta_table(name)
    reader = pa.RecordBatchReader.from_batches(schema, batches())
    try:
        write_deltalake(  # type: ignore[call-overload]
            dt,
            reader,
            mode=mode,
            partition_by=list(partition_by) if partition_by else None,
            schema_mode="overwrite" if mode == "overwrite" else None,
            commit_properties=CommitProperties(custom_metadata=metadata),
        )
    except CommitFailedError as exc:
        raise Conflict(
            f"A concurrent commit to {name!r} conflicted with the scoring commit "
            f"({exc}); nothing was written. Run the scoring again."
        ) from None
    dt.update_incremental()
    return dt.version(), rows


def _chain(first: pa.Table, rest: Iterator[pa.Table]) -> Iterator[pa.Table]:
    yield first
    yield from rest


def _check_schema(name: str, got: pa.Schema, target: pa.Schema) -> None:
    missing = [f.name for f in target if f.name not in got.names]
    extra = [f.name for f in got if f.name not in target.names]
    if missing or extra:
        raise SchemaMismatch(
            f"Predictions do not fit table {name!r}: missing column(s) {missing}, extra "
            f"column(s) {extra}. Use mode='overwrite' to replace it, keep_columns= to choose "
            "columns, or another output table."
        )
    for field in got:
        want = target.field(field.name).type
        if field.type != want and not _castable(field.type, want):
            raise SchemaMismatch(
                f"Column {field.name!r} of the predictions is {field.type}, but table "
                f"{name!r} has {want}. Use mode='overwrite' or another output table."
            )


def _castable(src: pa.DataType, dst: pa.DataType) -> bool:
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if any(f(src) for f in numeric) and any(f(dst) for f in numeric):
        return True
    return pa.types.is_timestamp(src) and pa.types.is_timestamp(dst)
