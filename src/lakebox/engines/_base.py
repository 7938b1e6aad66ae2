"""The engine interface.

An engine receives table *snapshots* (a Delta table at one version) rather than data, so each
engine reads them its own way: ``local`` scans the pyarrow dataset with DuckDB, ``spark`` reads
the snapshot's files. Small inputs (entity rows) and results travel as Arrow tables.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pyarrow as pa

from lakebox.errors import InvalidInput, LakeboxError

__all__ = ["ENGINES", "Engine", "FeatureJoin", "TableSnapshot", "get_engine"]

# Engine name -> "module:Class", imported on first use.
ENGINES = {
    "local": "lakebox.engines.local:LocalEngine",
    "spark": "lakebox.engines.spark:SparkEngine",
}


@dataclass(frozen=True)
class TableSnapshot:
    """A Delta table at one version.

    Attributes:
        name: the catalog name (``catalog.schema.table``).
        location: the table's path or URI.
        version: the Delta version.
        dataset: the snapshot as a pyarrow dataset (what the local engine scans); engines that
            read files themselves use ``location`` and ``version``.
    """

    name: str
    location: str
    version: int
    dataset: Any = field(default=None, compare=False, repr=False)

    @property
    def schema(self) -> pa.Schema:
        """The snapshot's Arrow schema."""
        if self.dataset is None:
            from deltalake import DeltaTable

            return pa.schema(DeltaTable(self.location, version=self.version).schema().to_arrow())
        schema: pa.Schema = self.dataset.schema
        return schema


@dataclass(frozen=True)
class FeatureJoin:
    """One feature table joined onto entity rows.

    Attributes:
        source: the feature table snapshot.
        keys: pairs ``(entity column, feature table column)`` to match on.
        columns: feature table column -> output column name.
        entity_timestamp: entity column holding the lookup time; with ``feature_timestamp``
            the join is point-in-time (newest feature row at or before the lookup time).
        feature_timestamp: the feature table's timeseries column. Given without
            ``entity_timestamp``, the newest row per key is used.
        lookback: ignore feature rows older than the lookup time minus this.
        defaults: output column -> value used when the result is null.
    """

    source: TableSnapshot
    keys: Sequence[tuple[str, str]]
    columns: Mapping[str, str]
    entity_timestamp: str | None = None
    feature_timestamp: str | None = None
    lookback: timedelta | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)


class Engine(ABC):
    """What every engine implements. Results are the same whichever engine runs them.

    Besides the Arrow-in, Arrow-out operations, each engine has a *frame* type it computes on
    (``local``: a ``pyarrow.Table``; ``spark``: a Spark DataFrame that stays on the cluster).
    Code written against :meth:`frame`, :meth:`join_frame`, :meth:`map_batches` and
    :meth:`user_frame` (training sets, ``score_batch``) runs unchanged on every engine.
    """

    name: str = ""

    # ----------------------------------------------------------------- frames
    @abstractmethod
    def is_frame(self, data: Any) -> bool:
        """Whether ``data`` is already this engine's native frame type (e.g. a Spark
        DataFrame for ``spark``)."""

    @abstractmethod
    def frame(self, data: Any) -> Any:
        """``data`` (pandas, polars, Arrow, or the engine's own frame) as the engine's frame."""

    @abstractmethod
    def schema(self, frame: Any) -> pa.Schema:
        """The Arrow schema of a frame (without collecting its rows)."""

    def columns(self, frame: Any) -> list[str]:
        """The column names of a frame."""
        return list(self.schema(frame).names)

    @abstractmethod
    def select(self, frame: Any, columns: Sequence[str]) -> Any:
        """A frame with only ``columns``, in that order."""

    @abstractmethod
    def join_frame(self, frame: Any, joins: Sequence[FeatureJoin]) -> Any:
        """:meth:`join_features` on a frame: the same rows and values, as a frame (a Spark
        frame's row order is Spark's)."""

    @abstractmethod
    def map_batches(self, frame: Any, fn: Any, *, sample_rows: int = 64) -> Any:
        """Apply ``fn`` (``pyarrow.Table`` in, ``pyarrow.Table`` out, picklable) to every
        batch of ``frame``; every batch must come back with the same columns and types."""

    @abstractmethod
    def user_frame(self, frame: Any) -> Any:
        """What users get back: ``local`` returns pandas, ``spark`` the Spark DataFrame."""

    @abstractmethod
    def join_features(self, entities: pa.Table, joins: Sequence[FeatureJoin]) -> pa.Table:
        """Left-join feature tables onto entity rows, point-in-time where timestamps are given.

        Every entity row is kept, in input order; a row with no matching feature row (or only
        future ones, or only ones older than the lookback window) gets nulls, or the defaults.

        Returns:
            The entity columns followed by each join's output columns.
        """

    @abstractmethod
    def latest_rows(
        self,
        source: TableSnapshot,
        *,
        keys: Sequence[str],
        timestamp: str | None = None,
        columns: Sequence[str] | None = None,
        where: str | None = None,
    ) -> pa.Table:
        """The newest row per key (by ``timestamp``; any row when it is None), optionally only
        among rows matching the SQL predicate ``where``."""

    @abstractmethod
    def duplicate_keys(
        self, data: pa.Table, keys: Sequence[str], *, limit: int = 5
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many key values occur more than once in ``data``, with up to ``limit`` examples."""


_cache: dict[tuple[Any, ...], Engine] = {}


def get_engine(name: str = "local", *, threads: int = 0, **options: Any) -> Engine:
    """The engine called ``name`` (``"local"`` or ``"spark"``), built once per process.

    Args:
        name: the engine, as in ``[engine] name`` of ``lakebox.toml``.
        threads: threads for the local engine; 0 means all cores.
        options: engine-specific options (e.g. ``spark_master``).
    """
    if name not in ENGINES:
        raise InvalidInput(
            f"Unknown engine {name!r}; choose one of {sorted(ENGINES)} "
            "([engine] name in lakebox.toml)."
        )
    key = (name, threads, *sorted((k, repr(v)) for k, v in options.items()))
    if key not in _cache:
        module_name, class_name = ENGINES[name].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            raise LakeboxError(
                f"The {name!r} engine is not available in this lakebox version; "
                'use [engine] name = "local".'
            ) from None
        _cache[key] = getattr(module, class_name)(threads=threads, **options)
    return _cache[key]
