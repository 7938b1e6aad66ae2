"""The ``spark`` engine: the same operations as ``local``, run on a SparkSession.

Feature tables are read as Spark DataFrames straight from their Delta snapshot's files (see
:mod:`lakebox.engines._spark_delta`); entity rows go up as Arrow and results come back as Arrow,
so callers see exactly what the local engine returns.

A point-in-time join is a *sorted union*, not a range join: entity rows and feature rows are
unioned, hash-partitioned by the join keys and sorted by time within each key (feature rows
before entity rows at the same instant); each entity row takes the last non-null feature
struct before it (``last(..., ignorenulls=True)`` over an unbounded-preceding window). The work
is one shuffle by key and a sort per partition, so it grows across executors with the number
of keys, and no entity x feature cross product is ever built.

Example:
    >>> import lakebox
    >>> ws = lakebox.Workspace(engine="spark", spark_master="local[2]")  # doctest: +SKIP
    >>> ws.features.engine.name  # doctest: +SKIP
    'spark'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from lakebox.engines._base import Engine, FeatureJoin, TableSnapshot
from lakebox.engines._spark_delta import read_snapshot, write_dataframe
from lakebox.engines._spark_session import import_pyspark, spark_session
from lakebox.errors import InvalidInput

__all__ = ["SparkEngine", "is_spark_frame"]

_ROW = "__lakebox_row"
_TS = "__lakebox_ts"
_SIDE = "__lakebox_side"
_VAL = "__lakebox_val"
_FTS = "__lakebox_fts"
_ENT = "__lakebox_entity"


class SparkEngine(Engine):
    """Spark engine.

    Args:
        threads: unused (Spark's parallelism comes from the master, e.g. ``local[4]``).
        spark_master: ``local[N]``, ``local[*]``, ``spark://host:port`` or ``sc://host:port``.
        spark_conf: extra Spark settings for the session this engine starts.
        session: use this SparkSession instead of building one from ``spark_master``.
    """

    name = "spark"

    def __init__(
        self,
        *,
        threads: int = 0,
        spark_master: str = "local[2]",
        spark_conf: dict[str, str] | None = None,
        session: Any = None,
        **_: Any,
    ) -> None:
        import_pyspark()  # fail now, with the extra to install, rather than on first use
        self.threads = threads
        self.master = spark_master
        self.conf = dict(spark_conf or {})
        self._session = session
        self._shipped: dict[str, str] = {}

    @property
    def spark(self) -> Any:
        """The SparkSession (started on first use)."""
        if self._session is None:
            self._session = spark_session(self.master, conf=self.conf)
        return self._session

    # ----------------------------------------------------------------- Delta I/O
    def read(self, snapshot: TableSnapshot, columns: Sequence[str] | None = None) -> Any:
        """The snapshot as a Spark DataFrame.

        Example:
            >>> frame = engine.read(snapshot, ["customer_id", "spend"])  # doctest: +SKIP
        """
        return read_snapshot(self.spark, snapshot, columns)

    def write(
        self,
        frame: Any,
        location: str,
        *,
        mode: str = "append",
        partition_by: Sequence[str] | None = None,
        commit_properties: Any = None,
    ) -> int:
        """Commit a Spark DataFrame to the Delta table at ``location``; returns its new version.

        ``commit_properties`` (``deltalake.CommitProperties``) carries the commit's custom
        metadata and application transactions (exactly-once stream sinks).

        Example:
            >>> engine.write(frame, ws.tables.location("main.out.scores"))  # doctest: +SKIP
            3
        """
        return write_dataframe(
            self.spark,
            frame,
            location,
            mode=mode,
            partition_by=partition_by,
            commit_properties=commit_properties,
        )

    def to_spark(self, data: pa.Table) -> Any:
        """An Arrow table as a Spark DataFrame."""
        from lakebox.engines._spark_delta import _plain_schema

        return self.spark.createDataFrame(data.cast(_plain_schema(data.schema)))

    # ----------------------------------------------------------------- frames
    def is_frame(self, data: Any) -> bool:
        return is_spark_frame(data)

    def frame(self, data: Any) -> Any:
        """A Spark DataFrame as it is; anything else (pandas, polars, Arrow) uploaded."""
        if is_spark_frame(data):
            return data
        from lakebox.catalog._convert import to_arrow

        return self.to_spark(to_arrow(data))

    def user_frame(self, frame: Any) -> Any:
        return self.frame(frame)

    def schema(self, frame: Any) -> pa.Schema:
        from pyspark.sql.pandas.types import to_arrow_schema

        schema: pa.Schema = to_arrow_schema(self.frame(frame).schema, timezone="UTC")
        return schema

    def columns(self, frame: Any) -> list[str]:
        return list(self.frame(frame).columns)

    def select(self, frame: Any, columns: Sequence[str]) -> Any:
        return self.frame(frame).select(*columns)

    def ship(self, path: str) -> None:
        """Make a local folder (a model) readable by executors on other machines: it goes to
        every executor with ``SparkContext.addFile``, and :func:`shipped_path` finds the copy
        there. Done once per folder; nothing to do for Spark Connect or a missing folder.

        Example:
            >>> engine.ship("/tmp/lakebox-score-1a2b/model")  # doctest: +SKIP
        """
        import shutil
        import tempfile

        from lakebox.engines._spark_session import shipped_name

        if self.master.startswith("sc://") or path in self._shipped or not os.path.isdir(path):
            return
        # addFile names the copy after the folder: ship a copy with a name unique to `path`
        staging = tempfile.mkdtemp(prefix="lakebox-ship-")
        copy = os.path.join(staging, shipped_name(path))
        shutil.copytree(path, copy)
        self.spark.sparkContext.addFile(copy, recursive=True)
        self._shipped[path] = copy

    def map_batches(self, frame: Any, fn: Any, *, sample_rows: int = 64, sample: Any = None) -> Any:
        """Apply ``fn`` to every Arrow batch of ``frame`` on the executors (``mapInArrow``).

        ``fn`` takes and returns a ``pyarrow.Table`` and must be picklable. The output schema
        is taken from ``fn`` applied to the first ``sample_rows`` rows on the driver, or to
        ``sample`` (a small frame with the same columns, cheaper to compute than a limit over
        a frame that ends in a shuffle, e.g. the join of a few input rows). A ``fn``
        with a ``model_dir`` attribute (a model folder on the driver) has that folder shipped
        to the executors first (see :meth:`ship`).

        Example:
            >>> doubled = engine.map_batches(frame, lambda t: t.set_column(
            ...     0, "x", pc.multiply(t["x"], 2)))  # doctest: +SKIP
        """
        from lakebox.engines._spark_delta import _plain_schema, spark_schema

        model_dir = getattr(fn, "model_dir", None)
        if isinstance(model_dir, str):
            self.ship(model_dir)  # executors on other machines load the model from their copy
        rows = sample if sample is not None else frame.limit(sample_rows)
        schema = _plain_schema(fn(rows.toArrow()).schema)

        def apply(batches: Any) -> Any:
            for batch in batches:
                if batch.num_rows:
                    out = fn(pa.Table.from_batches([batch]))
                    yield from out.select(schema.names).cast(schema).to_batches()

        return frame.mapInArrow(apply, spark_schema(schema))

    # ----------------------------------------------------------------- scoring
    def score(self, frame: Any, predict: Any, *, sample_rows: int = 64, sample: Any = None) -> Any:
        """Score a Spark DataFrame with an Arrow-batch function, in parallel on the executors.

        ``predict`` takes and returns a ``pyarrow.Table`` and must be picklable, e.g. a
        :class:`lakebox.deploy.Predictor` (which loads its model once per Python worker).
        The output schema is taken from scoring the first ``sample_rows`` rows on the driver.

        Example:
            >>> from lakebox.deploy import predictor
            >>> scored = engine.score(frame, predictor("models:/churn/1"))  # doctest: +SKIP
            >>> engine.write(scored, ws.tables.location("main.out.scores"))  # doctest: +SKIP
        """
        import dataclasses
        from datetime import datetime, timezone

        if (
            dataclasses.is_dataclass(predict)
            and not isinstance(predict, type)
            and getattr(predict, "scored_at", 0) is None
        ):
            # one time stamp for the whole job, as the local path stamps one per call
            predict = dataclasses.replace(predict, scored_at=datetime.now(timezone.utc))
        return self.map_batches(frame, predict, sample_rows=sample_rows, sample=sample)

    # ----------------------------------------------------------------- joins
    def join_features(self, entities: pa.Table, joins: Sequence[FeatureJoin]) -> pa.Table:
        from pyspark.errors import PySparkException

        if _ROW in entities.column_names:
            raise InvalidInput(f"Column name {_ROW!r} is reserved; rename it.")
        if not joins:
            return entities
        needed: list[str] = []
        for join in joins:
            for column in [ec for ec, _ in join.keys] + [join.entity_timestamp]:
                if column is not None and column not in needed:
                    needed.append(column)
        missing = [c for c in needed if c not in entities.column_names]
        if missing:
            raise InvalidInput(
                f"Cannot join features: column(s) {missing} are not in the input rows; "
                f"its columns are {entities.column_names}."
            )
        numbered = entities.select(needed).append_column(
            _ROW, pa.array(np.arange(entities.num_rows, dtype=np.int64))
        )
        try:
            rows = self.to_spark(numbered)
            targets: dict[str, pa.DataType] = {}
            for i, join in enumerate(joins):
                rows, types = self._join(rows, join, i)
                targets.update(types)
            table = rows.orderBy(_ROW).select(*[_col(n) for n in targets]).toArrow()
        except PySparkException as exc:
            raise InvalidInput(
                f"Cannot join features: {' '.join(str(exc).split())[:800]}"
            ) from None
        out = entities
        for name in table.column_names:
            out = out.append_column(name, _cast(table.column(name), targets[name]))
        return out

    def join_frame(self, frame: Any, joins: Sequence[FeatureJoin]) -> Any:
        """:meth:`join_features` for a Spark DataFrame (other inputs are uploaded first): the
        same rows and values, but the entity rows never leave the cluster and the result is a
        Spark DataFrame (row order is Spark's; every input row is kept, once).

        Example:
            >>> training = engine.join_frame(spark.read.parquet("labels/"), joins)  # doctest: +SKIP
            >>> training.write.parquet("training/")  # doctest: +SKIP
        """

        frame = self.frame(frame)
        if _ROW in frame.columns:
            raise InvalidInput(f"Column name {_ROW!r} is reserved; rename it.")
        if not joins:
            return frame
        needed = {ec for j in joins for ec, _ in j.keys} | {
            j.entity_timestamp for j in joins if j.entity_timestamp is not None
        }
        missing = sorted(needed - set(frame.columns))
        if missing:
            raise InvalidInput(
                f"Cannot join features: column(s) {missing} are not in the input rows; "
                f"its columns are {frame.columns}."
            )
        # Each join carries the input rows through (no row ids, no self-join), so the result
        # is right whatever the input's partitioning or determinism.
        rows = frame
        for i, join in enumerate(joins):
            rows, _ = self._join(rows, join, i)
        return rows

    def _join(self, rows: Any, join: FeatureJoin, i: int) -> tuple[Any, dict[str, pa.DataType]]:
        """``rows`` with one join's output columns appended (every row kept, once), and the
        Arrow type of each output."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        source_schema = join.source.schema
        key_cols = [fc for _, fc in join.keys]
        value_cols = [c for c in join.columns if c not in key_cols]
        projected = key_cols + value_cols
        ts = join.feature_timestamp
        read_cols = projected + ([ts] if ts is not None and ts not in projected else [])
        unknown = [c for c in read_cols if c not in source_schema.names]
        if unknown:
            raise InvalidInput(
                f"Cannot join features: column(s) {unknown} are not in "
                f"{join.source.name!r}; its columns are {source_schema.names}."
            )
        feats = read_snapshot(self.spark, join.source, read_cols)
        keys = [f"__k{i}_{j}" for j in range(len(join.keys))]
        values = {c: f"__v{i}_{j}" for j, c in enumerate(join.columns)}
        feature_types = {f.name: f.dataType for f in feats.schema.fields}
        columns = list(rows.columns)
        entity_keys = [
            _col(ec).cast(feature_types[fc]).alias(k)
            for (ec, fc), k in zip(join.keys, keys, strict=True)
        ]
        feature_keys = [F.col(fc).alias(k) for (_, fc), k in zip(join.keys, keys, strict=True)]
        not_null_keys = F.lit(True)
        for fc in key_cols:
            not_null_keys = not_null_keys & F.col(fc).isNotNull()

        if ts is not None and join.entity_timestamp is not None:
            # the input rows ride through the sort as one struct column
            entity = F.struct(*[_col(c) for c in columns])
            entity_type = rows.select(entity.alias(_ENT)).schema.fields[0].dataType
            entity_side = rows.select(
                entity.alias(_ENT),
                *entity_keys,
                _col(join.entity_timestamp).cast("timestamp").alias(_TS),
                F.lit(1).alias(_SIDE),
                F.lit(None)
                .cast(
                    feats.select(
                        F.struct(
                            *[F.col(c).alias(v) for c, v in values.items()],
                            F.col(ts).cast("timestamp").alias(_FTS),
                        )
                    )
                    .schema.fields[0]
                    .dataType
                )
                .alias(_VAL),
            )
            feature_side = feats.where(not_null_keys & F.col(ts).isNotNull()).select(
                F.lit(None).cast(entity_type).alias(_ENT),
                *feature_keys,
                F.col(ts).cast("timestamp").alias(_TS),
                F.lit(0).alias(_SIDE),
                F.struct(
                    *[F.col(c).alias(v) for c, v in values.items()],
                    F.col(ts).cast("timestamp").alias(_FTS),
                ).alias(_VAL),
            )
            window = (
                Window.partitionBy(*keys)
                .orderBy(F.col(_TS).asc_nulls_first(), F.col(_SIDE))
                .rowsBetween(Window.unboundedPreceding, Window.currentRow)
            )
            matched = (
                entity_side.unionByName(feature_side)
                .withColumn(_VAL, F.last(_VAL, ignorenulls=True).over(window))
                .where(F.col(_SIDE) == 1)
            )
            fresh = F.lit(True)
            if join.lookback is not None:
                micros = int(join.lookback.total_seconds() * 1_000_000)
                fresh = F.unix_micros(F.col(f"{_VAL}.{_FTS}")) >= (
                    F.unix_micros(F.col(_TS)) - F.lit(micros)
                )
            outputs = [
                F.when(fresh, F.col(f"{_VAL}.{values[c]}")).alias(o)
                for c, o in join.columns.items()
            ]
            part = matched.select(*[F.col(_ENT)[c].alias(c) for c in columns], *outputs)
        else:
            picked = feats.where(not_null_keys).select(
                *feature_keys,
                *[F.col(c).alias(v) for c, v in values.items()],
                *([F.col(ts).alias(_TS)] if ts is not None else []),
            )
            if ts is not None:
                window = Window.partitionBy(*keys).orderBy(F.col(_TS).desc())
                picked = (
                    picked.where(F.col(_TS).isNotNull())
                    .withColumn("__rn", F.row_number().over(window))
                    .where(F.col("__rn") == 1)
                )
            else:
                picked = picked.dropDuplicates(keys)
            part = (
                rows.select(*[_col(c) for c in columns], *entity_keys)
                .join(picked, on=keys, how="left")
                .select(
                    *[_col(c) for c in columns],
                    *[F.col(values[c]).alias(o) for c, o in join.columns.items()],
                )
            )
        types = {o: _arrow_type(source_schema.field(c).type) for c, o in join.columns.items()}
        for column, output in join.columns.items():
            default = join.defaults.get(output)
            if default is not None:
                part = part.withColumn(
                    output,
                    F.coalesce(F.col(output), F.lit(default).cast(feature_types[column])),
                )
        return part, types

    # ----------------------------------------------------------------- latest rows
    def latest_rows(
        self,
        source: TableSnapshot,
        *,
        keys: Sequence[str],
        timestamp: str | None = None,
        columns: Sequence[str] | None = None,
        where: str | None = None,
    ) -> pa.Table:
        from pyspark.errors import PySparkException
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        schema = source.schema
        wanted = list(columns) if columns else schema.names
        try:
            frame = read_snapshot(self.spark, source)
            if where:
                frame = frame.where(where)
            if timestamp:
                window = Window.partitionBy(*keys).orderBy(F.col(timestamp).desc_nulls_last())
                frame = (
                    frame.withColumn("__rn", F.row_number().over(window))
                    .where(F.col("__rn") == 1)
                    .drop("__rn")
                )
            else:
                frame = frame.dropDuplicates(list(keys))
            table = frame.select(*wanted).toArrow()
        except PySparkException as exc:
            raise InvalidInput(
                f"Cannot select rows of {source.name!r}"
                + (f" where {where!r}" if where else "")
                + f": {' '.join(str(exc).split())[:800]}"
            ) from None
        return pa.table(
            {n: _cast(table.column(n), _arrow_type(schema.field(n).type)) for n in wanted}
        )

    # ----------------------------------------------------------------- checks
    def duplicate_keys(
        self, data: pa.Table, keys: Sequence[str], *, limit: int = 5
    ) -> tuple[int, list[dict[str, Any]]]:
        from pyspark.sql import functions as F

        frame = self.to_spark(data.select(list(keys)))
        dupes = frame.groupBy(*keys).count().where(F.col("count") > 1).drop("count").cache()
        try:
            count = dupes.count()
            examples = dupes.limit(limit).toArrow()
        finally:
            dupes.unpersist()
        return count, [
            {k: _cast(examples.column(k), data.schema.field(k).type)[i].as_py() for k in keys}
            for i in range(examples.num_rows)
        ]


def _col(name: str) -> Any:
    """A column by its exact name (dots and backticks in names taken literally)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def is_spark_frame(data: Any) -> bool:
    """Whether ``data`` is a Spark DataFrame (classic or Spark Connect)."""
    kind = type(data)
    return kind.__name__ == "DataFrame" and kind.__module__.startswith("pyspark.sql")


def _arrow_type(kind: pa.DataType) -> pa.DataType:
    """The type the local engine returns for a column stored as ``kind``."""
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        return pa.binary()
    return kind


def _cast(column: pa.ChunkedArray, kind: pa.DataType) -> pa.ChunkedArray:
    if column.type.equals(kind):
        return column
    try:
        return column.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return column
