"""Worker-side output: write scored batches straight into the output table's folder as
Parquet data files and describe them as Delta ``add`` actions, so writing runs in parallel
in the workers and the parent only commits."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["FileWriter", "local_path"]

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


def local_path(location: str) -> Path | None:
    """The local folder of a table location, or None for object-store URIs."""
    if location.startswith("file://"):
        return Path(location[len("file://") :])
    return None if "://" in location else Path(location)


def _partition_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


class _Stats:
    """numRecords, nullCount and min/max of numeric and string columns, as Delta wants them."""

    def __init__(self) -> None:
        self.rows = 0
        self.nulls: dict[str, int] = {}
        self.min: dict[str, Any] = {}
        self.max: dict[str, Any] = {}

    def add(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        for name, column in zip(table.column_names, table.columns, strict=True):
            self.nulls[name] = self.nulls.get(name, 0) + column.null_count
            kind = column.type
            if not (
                pa.types.is_integer(kind)
                or pa.types.is_floating(kind)
                or pa.types.is_string(kind)
                or pa.types.is_large_string(kind)
            ):
                continue
            bounds = pc.min_max(column).as_py()
            low, high = bounds["min"], bounds["max"]
            if isinstance(low, float) and (low != low or high != high):  # NaN: no stats
                continue
            if low is not None:
                self.min[name] = low if name not in self.min else min(self.min[name], low)
                self.max[name] = high if name not in self.max else max(self.max[name], high)

    def to_json(self) -> str:
        return json.dumps(
            {
                "numRecords": self.rows,
                "minValues": self.min,
                "maxValues": self.max,
                "nullCount": self.nulls,
            }
        )


class FileWriter:
    """Writes batches into Parquet files under ``root`` (one per partition value)."""

    def __init__(
        self, root: Path, partition_by: Sequence[str] | None, schema: pa.Schema | None
    ) -> None:
        self.root = root
        self.partition_by = list(partition_by or [])
        self.schema = schema
        self._open: dict[tuple[Any, ...], tuple[pq.ParquetWriter, str, _Stats, dict]] = {}

    def write(self, table: pa.Table) -> None:
        if self.schema is None:
            self.schema = table.schema
        table = table.select(self.schema.names).cast(self.schema)
        if not self.partition_by:
            self._write_part((), {}, table)
            return
        keys = table.select(self.partition_by)
        uniques = keys.group_by(self.partition_by).aggregate([]).to_pylist()
        data = table.drop_columns(self.partition_by)
        for values in uniques:
            mask = None
            for column in self.partition_by:
                value = values[column]
                test = (
                    pc.is_null(table[column])
                    if value is None
                    else pc.equal(table[column], pa.scalar(value, table[column].type))
                )
                mask = test if mask is None else pc.and_(mask, test)
            texts = {c: _partition_text(values[c]) for c in self.partition_by}
            self._write_part(tuple(texts.values()), texts, data.filter(mask))

    def _write_part(
        self, key: tuple[Any, ...], values: dict[str, str | None], table: pa.Table
    ) -> None:
        if key not in self._open:
            folder = "/".join(
                f"{c}={quote(v, safe='') if v is not None else NULL_PARTITION}"
                for c, v in values.items()
            )
            name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
            relative = f"{folder}/{name}" if folder else name
            path = self.root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = pq.ParquetWriter(path, table.schema, compression="snappy")
            self._open[key] = (writer, relative, _Stats(), values)
        writer, _, stats, _ = self._open[key]
        writer.write_table(table)
        stats.add(table)

    def close(self) -> list[dict[str, Any]]:
        """Close every file; returns their ``add`` actions as dicts."""
        actions = []
        for writer, relative, stats, values in self._open.values():
            writer.close()
            actions.append(
                {
                    "path": relative,
                    "size": os.path.getsize(self.root / relative),
                    "partition_values": values,
                    "modification_time": int(time.time() * 1000),
                    "stats": stats.to_json(),
                    "rows": stats.rows,
                }
            )
        self._open.clear()
        return actions

    def abort(self) -> None:
        for writer, relative, _, _ in self._open.values():
            writer.close()
            (self.root / relative).unlink(missing_ok=True)
        self._open.clear()


def remove_files(root: Path, actions: Iterable[dict[str, Any]]) -> None:
    """Delete files written for a commit that did not happen."""
    for action in actions:
        (root / action["path"]).unlink(missing_ok=True)
