"""Where a refresh's data lives: the seam between the refresh logic and an engine.

A refresh needs four things from its data: load the monitored columns of a table version with
their window, model and slice keys (a *frame*); count its rows and models; union two frames;
and aggregate a frame per group into a :class:`~lakebox.monitoring._compute.GroupedData`.
:class:`LocalFrames` does this in DuckDB over Arrow in the process; ``SparkFrames``
(:mod:`lakebox.monitoring._spark`) does it with Spark aggregations and pulls only aggregates
and bounded per-group samples to the driver. Everything after grouping (profile rows, drift
statistics, quality metrics, metric-table writes) is shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from lakebox.monitoring._compute import (
    ColumnPlan,
    Comparison,
    GroupedData,
    group_data,
    load_frame,
    window_sql,
)
from lakebox.monitoring._profiles import CustomMetric

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["Frames", "LocalFrames", "WindowBy", "open_frames"]


@dataclass(frozen=True)
class WindowBy:
    """Rows go to the window of ``granularity`` their ``timestamp_col`` falls in; rows without a
    timestamp are dropped. ``only`` keeps just the rows of those window starts."""

    timestamp_col: str
    granularity: str
    only: Sequence[datetime] | None = None


# ``window`` of :meth:`Frames.load`: windows by timestamp, one window at a time (snapshots),
# or no window (baselines).
Window = WindowBy | datetime | None


class Frames(Protocol):
    """What a refresh does with its data (see the module docstring)."""

    def load(
        self,
        table: str,
        version: int | None,
        plan: ColumnPlan,
        columns: list[str],
        slicing_exprs: list[str],
        *,
        window: Window,
        model: bool,
    ) -> Any:
        """The monitored columns plus ``__w`` (window), ``__m`` (model) and ``__s:<expr>``
        (slice) keys of ``table`` at ``version`` (None: the latest)."""
        ...

    def num_rows(self, frame: Any) -> int: ...

    def model_count(self, frame: Any) -> int:
        """Distinct non-null ``__m`` values."""
        ...

    def union(self, first: Any, second: Any) -> Any | None:
        """Both frames' rows, or None when their schemas differ."""
        ...

    def group(
        self,
        frame: Any,
        plan: ColumnPlan,
        columns: list[str],
        slicing_exprs: list[str],
        custom: list[CustomMetric],
        *,
        by_window: bool,
        by_model: bool,
        sample_rows: int | None,
    ) -> GroupedData:
        """Aggregates per group; ``GroupedData.data`` holds the rows drift statistics use
        (every row locally; on Spark every row of groups up to ``sample_rows`` rows and a
        uniform sample of larger ones)."""
        ...

    def prepare_drift(
        self,
        current: GroupedData,
        base: GroupedData | None,
        comparisons: Sequence[Comparison],
        plan: ColumnPlan,
    ) -> None:
        """Fill ``current.binned`` for comparisons whose groups ``data`` holds only a sample
        of (nothing to do when it holds every row)."""
        ...

    def close(self) -> None: ...


class LocalFrames:
    """Frames as Arrow tables, loaded and aggregated by DuckDB in this process."""

    def __init__(self, ws: Workspace, con: duckdb.DuckDBPyConnection) -> None:
        self.ws = ws
        self.con = con

    def load(
        self,
        table: str,
        version: int | None,
        plan: ColumnPlan,
        columns: list[str],
        slicing_exprs: list[str],
        *,
        window: Window,
        model: bool,
    ) -> pa.Table:
        dataset, _ = self.ws.tables.dataset(table, version=version)
        where = None
        if isinstance(window, WindowBy):
            wsql = window_sql(window.timestamp_col, window.granularity)
            where = f'"{window.timestamp_col}" IS NOT NULL'
            if window.only is not None:
                literals = ", ".join(f"TIMESTAMP '{w.isoformat(sep=' ')}'" for w in window.only)
                where += f" AND {wsql} IN ({literals})"
        elif isinstance(window, datetime):
            wsql = f"TIMESTAMP '{window.isoformat(sep=' ')}'"
        else:
            wsql = None
        return load_frame(
            self.con,
            dataset,
            plan,
            columns,
            slicing_exprs,
            window_sql=wsql,
            model=model,
            where=where,
        )

    def num_rows(self, frame: pa.Table) -> int:
        return int(frame.num_rows)

    def model_count(self, frame: pa.Table) -> int:
        return int(pc.count_distinct(frame.column("__m")).as_py())

    def union(self, first: pa.Table, second: pa.Table) -> pa.Table | None:
        if not first.schema.equals(second.schema):
            return None
        return pa.concat_tables([first, second])

    def group(
        self,
        frame: pa.Table,
        plan: ColumnPlan,
        columns: list[str],
        slicing_exprs: list[str],
        custom: list[CustomMetric],
        *,
        by_window: bool,
        by_model: bool,
        sample_rows: int | None,
    ) -> GroupedData:
        del sample_rows  # every row is already here
        return group_data(
            self.con,
            frame,
            plan,
            columns,
            slicing_exprs,
            custom,
            by_window=by_window,
            by_model=by_model,
        )

    def prepare_drift(
        self,
        current: GroupedData,
        base: GroupedData | None,
        comparisons: Sequence[Comparison],
        plan: ColumnPlan,
    ) -> None:
        """Nothing to do: ``data`` holds every row."""

    def close(self) -> None:
        """Nothing to release: the DuckDB connection belongs to the refresh."""


def open_frames(ws: Workspace, con: duckdb.DuckDBPyConnection) -> Frames:
    """The frames of the workspace's engine (``[engine] name``)."""
    if ws.settings.engine.name == "spark":
        from lakebox.monitoring._spark import SparkFrames

        return SparkFrames(ws)
    return LocalFrames(ws, con)
