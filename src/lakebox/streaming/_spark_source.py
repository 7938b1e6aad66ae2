"""A Structured Streaming source over a Delta table's commits, for Spark without delta-spark.

Spark cannot ``readStream.format("delta")`` without Delta's jars, so lakebox registers a Python
data source, ``lakebox_delta``, whose offsets are the same ``{"version", "index", "snapshot"}``
positions the local :class:`~lakebox.streaming.DeltaSource` uses, planned by the same code from
the Delta log (delta-rs lists the snapshot, the commit files name the added files):

* ``latestOffset(start, limit)`` plans from ``start`` within Spark's read limit
  (``max_files_per_trigger`` by default, everything for ``Trigger.Once``), up to the version
  recorded by ``prepareForTriggerAvailableNow`` for ``availableNow``;
* ``partitions(start, end)`` lists the files between two offsets, one Spark task per file. The
  Delta log is immutable, so a batch Spark replays from its offset log reads the same files;
* ``read(partition)`` reads one Parquet file with pyarrow on an executor, adds partition
  values and casts to the schema the stream started with.

Example:
    >>> register(spark)                                                   # doctest: +SKIP
    >>> frame = (spark.readStream.format("lakebox_delta")                 # doctest: +SKIP
    ...          .options(**source_options(source)).load())
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxFiles,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)

from lakebox.errors import NotFound
from lakebox.streaming._sources import DeltaSource, _filesystem

__all__ = ["FORMAT", "DeltaStreamSource", "register", "source_options"]

FORMAT = "lakebox_delta"


def _schema_bytes(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode()


def _schema_from(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def source_options(source: DeltaSource) -> dict[str, str]:
    """The ``readStream`` options describing a started :class:`DeltaSource`."""
    options = {
        "table": source.table,
        "location": source.location,
        "schema": _schema_bytes(source.schema),
        "schema_string": source._schema_string or "",
        "partitions": ",".join(source._partitions),
        "non_append": source.non_append,
        "max_files": str(source.max_files),
    }
    if source.starting_version is not None:
        options["starting_version"] = str(source.starting_version)
    if source.max_rows is not None:
        options["max_rows"] = str(source.max_rows)
    return options


class _PathSource(DeltaSource):
    """:class:`DeltaSource` planning from a table location alone (no workspace), as it runs
    in the Python processes Spark starts."""

    def __init__(self, options: dict[str, str]) -> None:
        super().__init__(
            options["table"],
            starting_version=(
                int(options["starting_version"]) if options.get("starting_version") else None
            ),
            non_append=options.get("non_append", "error"),  # type: ignore[arg-type]
            max_files_per_trigger=int(options.get("max_files", "1000")),
            max_rows_per_trigger=int(options["max_rows"]) if options.get("max_rows") else None,
        )
        self.location = options["location"]
        self._fs, self._root = _filesystem(self.location)
        self.schema = _schema_from(options["schema"])
        self._partitions = [p for p in options.get("partitions", "").split(",") if p]
        self._schema_string = options.get("schema_string") or None

    def _open(self, version: int | None = None) -> Any:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self.location, version=version)
        except TableNotFoundError:
            raise NotFound(
                f"Source table {self.table!r} can no longer be read at {self.location}; was "
                "it dropped? Recreate it and reset the stream (`lakebox streams reset`)."
            ) from None

    def _check_alive(self) -> None:
        self._open()

    def initial_offset(self) -> dict[str, Any]:
        if self.starting_version is not None:
            return {"version": int(self.starting_version), "index": 0, "snapshot": False}
        return {"version": int(self._open().version()), "index": 0, "snapshot": True}

    def bound(self) -> int:
        return int(self._open().version())

    def between(self, start: dict[str, Any], end: dict[str, Any]) -> list[dict[str, Any]]:
        """The files from offset ``start`` (included) to ``end`` (excluded)."""
        version, index = int(start["version"]), int(start["index"])
        end_version, end_index = int(end["version"]), int(end["index"])
        entries: list[dict[str, Any]] = []
        if start["snapshot"]:
            files = self._snapshot_files(version)
            stop = end_index if end["snapshot"] and end_version == version else len(files)
            entries.extend(files[index:stop])
            if end["snapshot"]:
                return entries
            version, index = version + 1, 0
        while version < end_version or (version == end_version and index < end_index):
            adds = self._commit_adds(version)
            stop = end_index if version == end_version else len(adds)
            entries.extend(adds[index:stop])
            version, index = version + 1, 0
        return entries


class _File(InputPartition):
    def __init__(self, entry: dict[str, Any]) -> None:
        super().__init__(entry)


class DeltaStreamSource(DataSource):
    """The ``lakebox_delta`` streaming source (options from :func:`source_options`)."""

    @classmethod
    def name(cls) -> str:
        return FORMAT

    def schema(self) -> Any:
        from lakebox.engines._spark_delta import spark_schema

        return spark_schema(_schema_from(self.options["schema"]))

    def streamReader(self, schema: Any) -> DataSourceStreamReader:
        return _Reader(dict(self.options))


class _Reader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    def __init__(self, options: dict[str, str]) -> None:
        self.options = options
        self._source: _PathSource | None = None
        self._bound: int | None = None

    @property
    def source(self) -> _PathSource:
        if self._source is None:
            self._source = _PathSource(self.options)
        return self._source

    def initialOffset(self) -> dict[str, Any]:
        return self.source.initial_offset()

    def prepareForTriggerAvailableNow(self) -> None:
        self._bound = self.source.bound()

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxFiles(self.source.max_files)

    def latestOffset(self, start: dict[str, Any], limit: ReadLimit) -> dict[str, Any]:
        source = self.source
        if isinstance(limit, ReadAllAvailable):
            return source.plan(start, limit=False, bound=self._bound).end
        source.max_files = (
            int(limit.max_files) if isinstance(limit, ReadMaxFiles) else source.max_files
        )
        if isinstance(limit, ReadMaxRows):
            source.max_rows = int(limit.max_rows)
        return source.plan(start, limit=True, bound=self._bound).end

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> list[InputPartition]:
        return [_File(entry) for entry in self.source.between(start, end)]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        from lakebox.engines._spark_delta import _plain_schema

        source = _PathSource(self.options)
        table = source._read_file(partition.value)
        yield from table.cast(_plain_schema(table.schema)).to_batches()

    def commit(self, end: dict[str, Any]) -> None:
        """Nothing to release: files are read, never consumed."""


def register(spark: Any) -> None:
    """Register the ``lakebox_delta`` source on ``spark`` (idempotent)."""
    spark.dataSource.register(DeltaStreamSource)
