"""Stream operators: map, event-time watermark, de-duplication and windowed aggregation.

Stateful operators keep their state as Arrow tables that the query saves in the checkpoint
after every batch. Event times are handled as integers in the column's own unit (timestamps)
or as plain numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lakebox.errors import InvalidInput

__all__ = ["Dedup", "Map", "Operator", "Window", "parse_duration"]

_UNITS = {"us": 1, "ms": 1_000, "s": 1_000_000, "ns": 1}  # -> microseconds (ns: special)
_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(ms|millis\w*|s|sec\w*|m|min\w*|h|hour\w*|"
    r"d|day\w*|w|week\w*)\s*$",
    re.IGNORECASE,
)
_SECONDS = {
    "ms": 0.001,
    "mi": 0.001,
    "s": 1,
    "se": 1,
    "m": 60,
    "mi_": 60,
    "h": 3600,
    "ho": 3600,
    "d": 86400,
    "da": 86400,
    "w": 604800,
    "we": 604800,
}


def parse_duration(value: str | timedelta | float) -> timedelta | float:
    """``"10 seconds"``, ``"5 min"``, ``"1h"``, a timedelta, or a number (numeric times)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise InvalidInput(
            f"Duration {value!r} is not understood; use e.g. '10 seconds', "
            "'5 minutes', '1 hour', '2 days' or a timedelta."
        )
    number, unit = float(match[1]), match[2].lower()
    if unit.startswith("mil") or unit == "ms":
        seconds = number / 1000
    elif unit.startswith("mi") or unit == "m":
        seconds = number * 60
    elif unit.startswith("s"):
        seconds = number
    elif unit.startswith("h"):
        seconds = number * 3600
    elif unit.startswith("d"):
        seconds = number * 86400
    else:
        seconds = number * 604800
    return timedelta(seconds=seconds)


def time_ints(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Event times as int64 (in the timestamp's unit) or float64 for numeric columns."""
    if pa.types.is_timestamp(column.type):
        return pc.cast(column, pa.int64())
    if pa.types.is_date(column.type):
        return pc.cast(pc.cast(column, pa.timestamp("s")), pa.int64())
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return pc.cast(column, pa.float64())
    raise InvalidInput(
        f"Event-time column has type {column.type}; use a timestamp, date or number column."
    )


def to_units(duration: timedelta | float, column_type: pa.DataType) -> float:
    """A duration in the event-time column's unit."""
    if pa.types.is_timestamp(column_type) or pa.types.is_date(column_type):
        if not isinstance(duration, timedelta):
            raise InvalidInput(
                "A timestamp event-time column needs a duration such as "
                f"'10 seconds', got {duration!r}."
            )
        unit = column_type.unit if pa.types.is_timestamp(column_type) else "s"
        micros = duration / timedelta(microseconds=1)
        return micros * 1000 if unit == "ns" else micros / _UNITS[unit]
    if isinstance(duration, timedelta):
        raise InvalidInput(f"A numeric event-time column needs a numeric delay, got {duration}.")
    return float(duration)


@dataclass
class Context:
    """What stateful operators see in a batch."""

    watermark: float | None  # rows older than this are late (None: no watermark yet)
    new_watermark: float | None  # the watermark after this batch
    time_column: str | None
    time_type: pa.DataType | None


class Operator:
    """One step of a stream's pipeline."""

    stateful = False
    name = "op"

    def apply(
        self, table: pa.Table, ctx: Context, state: pa.Table | None, *, final: bool = False
    ) -> tuple[pa.Table, pa.Table | None]:
        raise NotImplementedError


@dataclass
class Map(Operator):
    """Apply ``fn`` to every batch: pandas in, pandas or Arrow out (Arrow in with
    ``arrow=True``)."""

    fn: Callable[[Any], Any]
    arrow: bool = False
    name = "map"

    def apply(
        self, table: pa.Table, ctx: Context, state: pa.Table | None, *, final: bool = False
    ) -> tuple[pa.Table, pa.Table | None]:
        result = self.fn(table if self.arrow else table.to_pandas())
        if isinstance(result, pa.Table):
            return result, None
        if isinstance(result, pa.RecordBatch):
            return pa.Table.from_batches([result]), None
        import pandas as pd

        if isinstance(result, pd.DataFrame):
            return pa.Table.from_pandas(result, preserve_index=False), None
        raise InvalidInput(
            f"The stream's map function {getattr(self.fn, '__name__', self.fn)!r}"
            f" returned {type(result).__name__}; return a pandas DataFrame or a "
            "pyarrow Table."
        )


def _late_mask(table: pa.Table, ctx: Context) -> pa.Array | None:
    if ctx.watermark is None or ctx.time_column is None:
        return None
    return pc.greater_equal(time_ints(table[ctx.time_column]), pa.scalar(ctx.watermark))


@dataclass
class Dedup(Operator):
    """Keep the first row of each key; with a watermark, keys are forgotten once the
    watermark passes their event time and rows later than the watermark are dropped."""

    keys: list[str]
    stateful = True
    name = "dedup"

    def apply(
        self, table: pa.Table, ctx: Context, state: pa.Table | None, *, final: bool = False
    ) -> tuple[pa.Table, pa.Table | None]:
        missing = [k for k in self.keys if k not in table.column_names]
        if missing:
            raise InvalidInput(
                f"drop_duplicates key(s) {missing} are not columns of the "
                f"stream {table.column_names}."
            )
        keep = _late_mask(table, ctx)
        if keep is not None:
            table = table.filter(keep)
        index = pa.array(range(table.num_rows), pa.int64())
        work = table.select(self.keys).append_column("__row", index)
        first = work.group_by(self.keys, use_threads=False).aggregate([("__row", "min")])
        if state is not None and state.num_rows:
            seen = state.select(self.keys).append_column(
                "__seen", pa.array([True] * state.num_rows)
            )
            first = first.join(seen, self.keys, join_type="left outer", use_threads=False)
            first = first.filter(pc.is_null(first["__seen"]))
        rows = first["__row_min"]
        out = table.take(pc.take(rows, pc.sort_indices(rows)))
        new_keys = out.select(self.keys)
        times = (
            time_ints(out[ctx.time_column])
            if ctx.time_column
            else pa.array([0.0] * out.num_rows, pa.float64())
        )
        new_state = new_keys.append_column("__time", pc.cast(times, pa.float64()))
        if state is not None and state.num_rows:
            new_state = pa.concat_tables(
                [state.select(new_state.column_names).cast(new_state.schema), new_state]
            )
        if ctx.new_watermark is not None and ctx.time_column:
            new_state = new_state.filter(
                pc.greater_equal(new_state["__time"], pa.scalar(ctx.new_watermark))
            )
        return out, new_state


_AGGS = ("count", "sum", "min", "max", "mean")


@dataclass
class Window(Operator):
    """Tumbling event-time windows, aggregated per key; a window is emitted once, when the
    watermark passes its end (or at the end of a batch run). Late rows are dropped.

    ``aggs`` maps an output column to ``(input column, function)`` with function one of
    ``count``, ``sum``, ``min``, ``max``, ``mean``.
    """

    time_column: str
    size: timedelta | float
    by: list[str] = field(default_factory=list)
    aggs: dict[str, tuple[str, str]] = field(default_factory=dict)
    stateful = True
    name = "window"

    def __post_init__(self) -> None:
        for out, spec in self.aggs.items():
            if not (isinstance(spec, (tuple, list)) and len(spec) == 2 and spec[1] in _AGGS):
                raise InvalidInput(
                    f"Aggregation {out!r}: {spec!r} must be (column, function) "
                    f"with function one of {list(_AGGS)}."
                )

    def _partials(self, table: pa.Table, unit_size: float) -> pa.Table:
        times = time_ints(table[self.time_column])
        start = pc.multiply(pc.floor(pc.divide(pc.cast(times, pa.float64()), unit_size)), unit_size)
        work = table.select(self.by).append_column("__start", start)
        aggregations: list[tuple[str, str]] = []
        for out, (column, fn) in self.aggs.items():
            values = table[column]
            if fn in ("sum", "mean"):
                work = work.append_column(f"{out}__s", pc.cast(values, pa.float64()))
                aggregations.append((f"{out}__s", "sum"))
            if fn in ("count", "mean"):
                work = work.append_column(f"{out}__n", pc.cast(pc.is_valid(values), pa.int64()))
                aggregations.append((f"{out}__n", "sum"))
            if fn in ("min", "max"):
                work = work.append_column(f"{out}__{fn}", values)
                aggregations.append((f"{out}__{fn}", fn))
        grouped = work.group_by(["__start", *self.by], use_threads=False).aggregate(aggregations)
        return grouped.rename_columns(
            [
                c.rsplit("_", 1)[0] if c.endswith(("_sum", "_min", "_max")) and "__" in c else c
                for c in grouped.column_names
            ]
        )

    def apply(
        self, table: pa.Table, ctx: Context, state: pa.Table | None, *, final: bool = False
    ) -> tuple[pa.Table, pa.Table | None]:
        if self.time_column not in table.column_names:
            raise InvalidInput(
                f"Window time column {self.time_column!r} is not a column of "
                f"the stream {table.column_names}."
            )
        column_type = table.schema.field(self.time_column).type
        unit_size = to_units(self.size, column_type)
        keep = _late_mask(table, ctx)
        if keep is not None:
            table = table.filter(keep)
        partials = self._partials(table, unit_size)
        if state is not None and state.num_rows:
            partials = pa.concat_tables(
                [state.select(partials.column_names).cast(partials.schema), partials]
            )
            merged = []
            for name in partials.column_names:
                if name in ("__start", *self.by):
                    continue
                fn = "min" if name.endswith("__min") else "max" if name.endswith("__max") else "sum"
                merged.append((name, fn))
            partials = partials.group_by(["__start", *self.by], use_threads=False).aggregate(merged)
            partials = partials.rename_columns(
                [
                    c.rsplit("_", 1)[0] if c.endswith(("_sum", "_min", "_max")) and "__" in c else c
                    for c in partials.column_names
                ]
            )
        ends = pc.add(partials["__start"], unit_size)
        if final:
            done = pa.array([True] * partials.num_rows)
        elif ctx.new_watermark is None:
            done = pa.array([False] * partials.num_rows)
        else:
            done = pc.less_equal(ends, pa.scalar(ctx.new_watermark))
        emitted, kept = partials.filter(done), partials.filter(pc.invert(done))
        return self._output(emitted, column_type, unit_size), kept

    def _output(self, partials: pa.Table, column_type: pa.DataType, unit_size: float) -> pa.Table:
        order = pc.sort_indices(
            partials, sort_keys=[("__start", "ascending")] + [(k, "ascending") for k in self.by]
        )
        partials = partials.take(order)
        start = partials["__start"]
        end = pc.add(start, unit_size)
        if pa.types.is_timestamp(column_type) or pa.types.is_date(column_type):
            target = column_type if pa.types.is_timestamp(column_type) else pa.timestamp("s")
            start = pc.cast(pc.cast(start, pa.int64()), target)
            end = pc.cast(pc.cast(end, pa.int64()), target)
        columns: dict[str, Any] = {"window_start": start, "window_end": end}
        for key in self.by:
            columns[key] = partials[key]
        for out, (_, fn) in self.aggs.items():
            if fn == "count":
                columns[out] = partials[f"{out}__n"]
            elif fn == "sum":
                columns[out] = partials[f"{out}__s"]
            elif fn == "mean":
                columns[out] = pc.divide(
                    partials[f"{out}__s"], pc.cast(partials[f"{out}__n"], pa.float64())
                )
            else:
                columns[out] = partials[f"{out}__{fn}"]
        return pa.table(columns)


def key_columns(values: Sequence[str] | str) -> list[str]:
    return [values] if isinstance(values, str) else list(values)
