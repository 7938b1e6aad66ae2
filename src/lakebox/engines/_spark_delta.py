"""Delta I/O for the ``spark`` engine.

With ``delta-spark`` configured on the session (``spark.sql.extensions`` names Delta's
extension) Spark reads and writes Delta itself. Without it (the usual case: its jars are not on
the cluster) lakebox uses delta-rs for the transaction log and Spark for the data:

* **read**: delta-rs lists the snapshot's data files (``DeltaTable.file_uris()``); Spark reads
  exactly those Parquet files with ``basePath`` set to the table root, so partition columns come
  back from the ``col=value`` directories, typed by the Delta schema.
* **write**: Spark writes Parquet files (``TIMESTAMP_MICROS``) into a fresh directory under the
  table root; lakebox checks every file exists and carries the table's schema, then commits them
  with one delta-rs write transaction of ``AddAction`` s. The table stays readable by every engine.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa

from lakebox.engines._base import TableSnapshot
from lakebox.errors import InvalidInput, SchemaMismatch

__all__ = ["delta_spark_enabled", "read_snapshot", "spark_schema", "write_dataframe"]

# Reader features Spark cannot honour by reading the listed Parquet files as they are.
_UNSUPPORTED_READER_FEATURES = {"deletionVectors", "columnMapping"}


def delta_spark_enabled(spark: Any) -> bool:
    """Whether the session has Delta's Spark extension configured (``delta-spark``)."""
    try:
        extensions = spark.conf.get("spark.sql.extensions", "") or ""
    except Exception:
        return False
    return "DeltaSparkSessionExtension" in extensions


def spark_schema(schema: pa.Schema) -> Any:
    """The Spark ``StructType`` for an Arrow schema (timestamps with a zone -> TIMESTAMP)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    normal = pa.schema([pa.field(f.name, _plain_type(f.type), nullable=f.nullable) for f in schema])
    return from_arrow_schema(normal)


def _plain_type(kind: pa.DataType) -> pa.DataType:
    """Map Arrow types Spark's converter does not know to ones it does."""
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        return pa.binary()
    if pa.types.is_timestamp(kind):
        return pa.timestamp("us", tz=kind.tz)
    if pa.types.is_large_list(kind) or pa.types.is_list_view(kind):
        return pa.list_(_plain_type(kind.value_type))
    if pa.types.is_list(kind):
        return pa.list_(_plain_type(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _plain_type(f.type), nullable=f.nullable) for f in kind])
    if pa.types.is_dictionary(kind):
        return _plain_type(kind.value_type)
    return kind


def _root(location: str) -> str:
    return location.rstrip("/")


def read_snapshot(spark: Any, snapshot: TableSnapshot, columns: Sequence[str] | None = None) -> Any:
    """A Spark DataFrame over one Delta snapshot (its files only, at its version).

    Args:
        spark: the SparkSession.
        snapshot: the table and version to read.
        columns: keep only these columns (pushed down to the Parquet scan).
    """
    if delta_spark_enabled(spark):
        frame = (
            spark.read.format("delta")
            .option("versionAsOf", snapshot.version)
            .load(snapshot.location)
        )
        return frame.select(*columns) if columns else frame

    from deltalake import DeltaTable

    dt = DeltaTable(snapshot.location, version=snapshot.version)
    arrow_schema = pa.schema(dt.schema().to_arrow())
    wanted = list(columns) if columns else arrow_schema.names
    missing = [c for c in wanted if c not in arrow_schema.names]
    if missing:
        raise InvalidInput(
            f"Column(s) {missing} are not in table {snapshot.name!r}; its columns are "
            f"{arrow_schema.names}."
        )
    features = set(dt.protocol().reader_features or [])
    if features & _UNSUPPORTED_READER_FEATURES:
        # Files alone do not give the right rows: let delta-rs resolve the snapshot.
        data = dt.to_pyarrow_dataset().to_table(columns=wanted)
        return spark.createDataFrame(data.cast(_plain_schema(data.schema)))

    files = dt.file_uris()
    schema = spark_schema(arrow_schema)
    if not files:
        return spark.createDataFrame([], schema).select(*wanted)
    frame = spark.read.schema(schema).option("basePath", _root(snapshot.location)).parquet(*files)
    # Spark appends partition columns last; put the Delta order back.
    return frame.select(*wanted)


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, _plain_type(f.type), nullable=f.nullable) for f in schema])


def write_dataframe(
    spark: Any,
    frame: Any,
    location: str,
    *,
    mode: str = "append",
    partition_by: Sequence[str] | None = None,
    commit_properties: Any = None,
) -> int:
    """Write a Spark DataFrame as a Delta commit; returns the new table version.

    Args:
        spark: the SparkSession.
        frame: the rows to write.
        location: the Delta table's root (created when absent).
        mode: ``"append"`` or ``"overwrite"`` (which replaces the rows and the schema).
        partition_by: partition columns for a new or overwritten table (an appended table
            keeps its own).
        commit_properties: ``deltalake.CommitProperties`` of the commit (custom metadata,
            application transactions); honoured on the delta-rs path only.

    Raises:
        SchemaMismatch: the frame's columns or types differ from the table's (append).
    """
    if mode not in ("append", "overwrite"):
        raise InvalidInput(f"mode must be 'append' or 'overwrite', got {mode!r}.")
    if delta_spark_enabled(spark):
        writer = frame.write.format("delta").mode(mode)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(location)
        from deltalake import DeltaTable

        return int(DeltaTable(location).version())

    from deltalake import DeltaTable, Schema
    from deltalake.exceptions import TableNotFoundError
    from pyspark.sql.pandas.types import to_arrow_schema

    frame_schema = to_arrow_schema(frame.schema, timezone="UTC")
    try:
        dt: DeltaTable | None = DeltaTable(location)
    except TableNotFoundError:
        dt = None
    if dt is not None and mode == "append":
        target = pa.schema(dt.schema().to_arrow())
        parts = list(dt.metadata().partition_columns)
        _check_schema(location, frame_schema, target)
        frame = frame.select(*target.names)
    elif dt is not None:  # overwrite: the frame's schema replaces the table's
        target = frame_schema
        parts = list(partition_by) if partition_by else list(dt.metadata().partition_columns)
        parts = [p for p in parts if p in target.names]
    else:
        target = frame_schema
        parts = list(partition_by or [])
        unknown = [p for p in parts if p not in target.names]
        if unknown:
            raise InvalidInput(
                f"Partition column(s) {unknown} are not in the data; columns are {target.names}."
            )

    root = _root(location)
    directory = f"spark-{uuid.uuid4().hex}"
    writer = frame.write.mode("errorifexists").option("compression", "snappy")
    if parts:
        writer = writer.partitionBy(*parts)
    writer.parquet(f"{root}/{directory}")
    staging = f"{root}/{directory}"
    try:
        written = spark.read.parquet(staging).inputFiles()
    except Exception:  # an empty frame writes no data file, and Spark cannot read none
        written = []
    actions = _add_actions(root, _publish(root, staging, written), parts, target)
    delta_schema = Schema.from_arrow(target)
    if dt is None:
        from deltalake.transaction import create_table_with_add_actions

        create_table_with_add_actions(
            location,
            delta_schema,
            actions,
            mode="error",
            partition_by=parts or None,
            commit_properties=commit_properties,
        )
        return 0
    dt.create_write_transaction(
        actions,
        mode,
        delta_schema,
        partition_by=parts or None,
        commit_properties=commit_properties,
    )
    return int(DeltaTable(location).version())


def _publish(root: str, staging: str, files: Sequence[str]) -> list[str]:
    """Move Spark's files from ``staging`` into the table root (``col=value/`` directories as
    Delta lays them out), so every reader sees one directory tree; remove ``staging``."""
    import pyarrow.fs as pafs

    filesystem, staging_path = pafs.FileSystem.from_uri(_as_uri(staging))
    _, root_path = pafs.FileSystem.from_uri(_as_uri(root))
    moved = []
    for uri in files:
        _, path = pafs.FileSystem.from_uri(_as_uri(uri))
        relative = path[len(staging_path) :].lstrip("/")
        target = f"{root_path}/{relative}"
        filesystem.create_dir(target.rsplit("/", 1)[0], recursive=True)
        filesystem.move(path, target)
        moved.append(target)
    filesystem.delete_dir(staging_path)
    return moved


def _check_schema(location: str, got: pa.Schema, target: pa.Schema) -> None:
    from deltalake import Schema

    got_fields = {f.name: f for f in Schema.from_arrow(_plain_schema(got)).fields}
    target_fields = {f.name: f for f in Schema.from_arrow(_plain_schema(target)).fields}
    missing = [n for n in target_fields if n not in got_fields]
    extra = [n for n in got_fields if n not in target_fields]
    changed = [
        f"{n}: {got_fields[n].type} (table has {target_fields[n].type})"
        for n in target_fields
        if n in got_fields and str(got_fields[n].type) != str(target_fields[n].type)
    ]
    if missing or extra or changed:
        raise SchemaMismatch(
            f"Cannot write to Delta table {location!r}: the DataFrame's schema differs "
            f"(missing {missing}, extra {extra}, different types {changed}). Select and cast "
            "the columns to the table's schema. Nothing was written."
        )


def _add_actions(
    root: str, files: Sequence[str], parts: Sequence[str], target: pa.Schema
) -> list[Any]:
    """One ``AddAction`` per written file, after checking it exists and carries ``target``."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
    from deltalake.transaction import AddAction

    filesystem, root_path = pafs.FileSystem.from_uri(_as_uri(root))
    data_columns = [n for n in target.names if n not in parts]
    actions = []
    now = int(time.time() * 1000)
    for path in files:
        info = filesystem.get_file_info(path)
        if info.type != pafs.FileType.File:
            raise InvalidInput(
                f"Spark reported file {path!r} but it does not exist. Nothing was committed."
            )
        with filesystem.open_input_file(path) as handle:
            meta = pq.ParquetFile(handle).metadata
        # Delta's schema check on what is actually in the file, not on what Spark meant.
        _check_schema(
            path, meta.schema.to_arrow_schema(), pa.schema(target.field(n) for n in data_columns)
        )
        relative = path[len(root_path) :].lstrip("/")
        values: dict[str, str | None] = {}
        for segment in relative.split("/")[:-1]:
            if "=" in segment:
                key, _, value = segment.partition("=")
                key = unquote(key)
                if key in parts:
                    value = unquote(value)
                    values[key] = None if value == "__HIVE_DEFAULT_PARTITION__" else value
        stats = json.dumps({"numRecords": meta.num_rows})
        actions.append(
            AddAction(
                relative,
                info.size,
                values,
                int(info.mtime_ns // 1_000_000) if info.mtime_ns else now,
                True,
                stats,
            )
        )
    return actions


def _as_uri(path: str) -> str:
    if urlparse(path).scheme in ("", "file"):
        return "file://" + unquote(urlparse(path).path) if path.startswith("file:") else path
    return path
