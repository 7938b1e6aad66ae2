"""Monitor refresh on the ``spark`` engine.

:class:`SparkFrames` implements :class:`~lakebox.monitoring._frames.Frames` with Spark: the
table version is read from its Delta files (:mod:`lakebox.engines._spark_delta`), window,
model and slice keys are Spark expressions, and the profile aggregates of every group (window x
slice x model) are one Spark SQL aggregation with ``GROUPING SETS``; the categorical value
counts another. Only aggregates reach the driver, plus, for the drift statistics, a bounded
sample of each group's rows.

What is exact and what is estimated (the local engine makes the same kind of choices):

* **exact**: row counts, counts, nulls, mean, stddev, min, max, custom aggregate metrics, and
  the value counts of categorical columns (frequent items, categorical chi-square, JS, PSI,
  TV and L-infinity distances).
* **quantiles**: ``percentile_approx`` with accuracy :data:`QUANTILE_ACCURACY` (rank error at
  most ``n / QUANTILE_ACCURACY``; exact discrete quantiles on small groups, as DuckDB's
  ``reservoir_quantile`` is up to 16,384 rows).
* **distinct counts**: ``approx_count_distinct`` (HyperLogLog++, ~5% relative standard
  error), as the local engine's DuckDB ``approx_count_distinct`` (its own HyperLogLog); the two
  estimates differ by up to ~15% on the same data (measured in ``benchmarks/bench_spark.py``).
* **numeric drift, quality metrics, concept drift**: computed by the same scipy /
  scikit-learn code as locally, on the rows of each group pulled to the driver. A group of at
  most ``drift_sample_rows`` rows comes whole, so its statistics equal the local engine's. A
  larger group comes as a seeded Bernoulli sample of about ``1.25 * drift_sample_rows`` rows,
  from which the shared code takes ``drift_sample_rows`` as it does locally: KS and
  Wasserstein are then estimated as on the local engine (from a different sample). Binned
  distances of continuous numeric columns (JS, PSI, TV, L-infinity) stay exact: the bin edges
  come from the exact min, max and count (:func:`~lakebox.monitoring._stats.sturges_edges`,
  numpy's Sturges edges) and Spark counts every row into them (:meth:`SparkFrames.prepare_drift`).
  Still from the sample, where the local engine uses every row: the value counts of numeric
  columns with at most 20 distinct values (their chi-square and distances), quality metrics
  and concept drift. With ``drift_sample_rows=None`` a group comes whole up to
  :data:`MAX_GROUP_ROWS` rows, then sampled.

The work grows across executors: the Parquet scans and partial aggregates run per file split,
the final aggregates are one shuffle by group key (small: one row per group), and the sample
is a filter on each partition; the driver's share is bounded by the number of groups times
``drift_sample_rows``, not by the table's size.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from lakebox.engines._base import TableSnapshot
from lakebox.errors import InvalidInput
from lakebox.monitoring._compute import (
    MAX_SLICE_VALUES,
    QUANTILES,
    TABLE,
    ColumnPlan,
    Comparison,
    Group,
    GroupedData,
    custom_metric_probes,
    group_keys,
)
from lakebox.monitoring._frames import Window, WindowBy
from lakebox.monitoring._profiles import CustomMetric, parse_granularity
from lakebox.monitoring._stats import sturges_edges

if TYPE_CHECKING:
    from lakebox.engines.spark import SparkEngine
    from lakebox.workspace import Workspace

__all__ = ["MAX_GROUP_ROWS", "QUANTILE_ACCURACY", "SparkFrames", "spark_window"]

QUANTILE_ACCURACY = 10_000
MAX_GROUP_ROWS = 1_000_000
OVERSAMPLE = 1.25
SEED = 20240101

_EPOCH = datetime(1970, 1, 1)
# DuckDB's time_bucket origins: Monday 2000-01-03 for fixed intervals, 2000-01-01 for months
_ORIGIN_US = (datetime(2000, 1, 3) - _EPOCH) // timedelta(microseconds=1)
_UNIT_US = {
    "minute": 60_000_000,
    "hour": 3_600_000_000,
    "day": 86_400_000_000,
    "week": 7 * 86_400_000_000,
}
_NULL = "\u0000"
_SEP = "\u001f"


def _q(name: str) -> str:
    """A Spark SQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def _micros(value: datetime) -> int:
    naive = value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    return (naive - _EPOCH) // timedelta(microseconds=1)


def _naive(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def spark_window(column: Any, granularity: str) -> Any:
    """The Spark expression of DuckDB's ``time_bucket(<granularity>, column::TIMESTAMP)``:
    the start of the (UTC) window ``column`` falls in.

    Example:
        >>> from pyspark.sql import functions as F  # doctest: +SKIP
        >>> frame.select(spark_window(F.col("ts"), "1 day"))  # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    count, unit = parse_granularity(granularity)
    ts = column.cast("timestamp")
    if unit in _UNIT_US:
        width = count * _UNIT_US[unit]
        micros = F.unix_micros(ts)
        start = micros - F.pmod(micros - F.lit(_ORIGIN_US), F.lit(width))
        return F.timestamp_micros(start)
    months = count * (12 if unit == "year" else 1)
    index = (F.year(ts) - 2000) * 12 + F.month(ts) - 1
    bucket = index - F.pmod(index, F.lit(months))
    return F.add_months(F.lit("2000-01-01").cast("date"), bucket.cast("int")).cast("timestamp")


class SparkFrames:
    """Frames as Spark DataFrames (see the module docstring)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        # the workspace's engine (``[engine]`` settings), shared with training sets and scoring
        self.engine: SparkEngine = ws.features.engine  # type: ignore[assignment]
        self.spark = self.engine.spark
        self._persisted: list[Any] = []
        self._views: list[str] = []
        # id(GroupedData) -> (its Spark frame, its sample cap, the slicing expressions)
        self._grouped: dict[int, tuple[Any, int, list[str]]] = {}
        # Spark column name -> the local engine's name (slice keys are "__s:<expr>")
        self._names: dict[str, str] = {}

    # ----------------------------------------------------------------- load
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
        from pyspark.errors import PySparkException
        from pyspark.sql import functions as F

        _, version = self.ws.tables.dataset(table, version=version)  # resolves; lineage hooks
        snapshot = TableSnapshot(table, self.ws.tables.location(table), int(version))
        source = self.engine.read(snapshot)
        extra = [
            c
            for c in (plan.label_col, plan.prediction_col, plan.proba_col)
            if c and c not in columns
        ]
        select = [F.col(_q(c)) for c in [*columns, *extra]]
        if isinstance(window, WindowBy):
            ts = F.col(_q(window.timestamp_col))
            source = source.where(ts.isNotNull())
            start = spark_window(ts, window.granularity)
            if window.only is not None:
                wanted = [F.timestamp_micros(F.lit(_micros(w))) for w in window.only]
                source = source.where(start.isin(*wanted))
            select.append(start.alias("__w"))
        elif isinstance(window, datetime):
            select.append(F.timestamp_micros(F.lit(_micros(window))).alias("__w"))
        else:
            select.append(F.lit(None).cast("timestamp").alias("__w"))
        if model:
            select.append(F.col(_q(plan.model_id_col or "")).cast("string").alias("__m"))
        else:
            select.append(F.lit(None).cast("string").alias("__m"))
        for i, expr in enumerate(slicing_exprs):
            self._names[f"__s{i}"] = f"__s:{expr}"
            try:
                select.append(F.expr(expr).cast("string").alias(f"__s{i}"))
                source.select(select[-1]).schema  # noqa: B018 - analyse now
            except PySparkException as exc:
                raise InvalidInput(
                    f"Slicing expression {expr!r} is not valid Spark SQL for this table: "
                    f"{_first_line(exc)}"
                ) from None
        frame = source.select(*select)
        if slicing_exprs:
            frame = _cap_slices(frame, [f"__s{i}" for i in range(len(slicing_exprs))])
        from pyspark import StorageLevel

        frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
        self._persisted.append(frame)
        return frame

    def num_rows(self, frame: Any) -> int:
        return int(frame.count())

    def model_count(self, frame: Any) -> int:
        from pyspark.sql import functions as F

        return int(frame.select(F.countDistinct("__m")).first()[0])

    def union(self, first: Any, second: Any) -> Any | None:
        if first.schema != second.schema:
            return None
        return first.unionByName(second)

    def prepare_drift(
        self,
        current: GroupedData,
        base: GroupedData | None,
        comparisons: Sequence[Comparison],
        plan: ColumnPlan,
    ) -> None:
        """Exact binned counts of numeric columns for comparisons with a sampled side: the
        bin edges come from the exact min, max and count of both sides (``sturges_edges``,
        as the local engine bins every row), the counts from one Spark pass per frame
        (:func:`_bin_counts`)."""

        base_data = base or current
        sources = {id(current): self._grouped.get(id(current))}
        sources[id(base_data)] = self._grouped.get(id(base_data))
        # frame id -> [(request, group, column, edges)]
        requests: dict[int, list[tuple[int, Group, str, np.ndarray]]] = defaultdict(list)
        wanted: dict[tuple[Group, Group, str], tuple[int, int, int]] = {}
        serial = 0
        for cmp in comparisons:
            cur_src, base_src = sources[id(current)], sources[id(base_data)]
            if cur_src is None or base_src is None:
                return
            if cmp.current not in current.profiles or cmp.base not in base_data.profiles:
                continue
            sampled = (
                current.rows.get(cmp.current, 0) > cur_src[1]
                or base_data.rows.get(cmp.base, 0) > base_src[1]
            )
            if not sampled:
                continue  # ``data`` holds both groups whole: the shared code bins every row
            for col, kind in plan.columns.items():
                cur_p = current.profiles[cmp.current].get(col)
                base_p = base_data.profiles[cmp.base].get(col)
                if kind != "numeric" or not cur_p or not base_p:
                    continue
                if not cur_p.get("count") or not base_p.get("count"):
                    continue
                edges = sturges_edges(
                    min(cur_p["min"], base_p["min"]),
                    max(cur_p["max"], base_p["max"]),
                    int(cur_p["count"]) + int(base_p["count"]),
                )
                requests[id(base_data)].append((serial, cmp.base, col, edges))
                requests[id(current)].append((serial + 1, cmp.current, col, edges))
                wanted[(cmp.current, cmp.base, col)] = (serial, serial + 1, len(edges) - 1)
                serial += 2
        if not wanted:
            return
        counts: dict[int, dict[int, int]] = defaultdict(dict)
        for source_id, reqs in requests.items():
            frame, _, slices = sources[source_id]  # type: ignore[misc]
            for row in _bin_counts(self.spark, frame, reqs, slices, plan):
                counts[row[0]][row[1]] = row[2]
        for key, (base_req, cur_req, bins) in wanted.items():
            current.binned[key] = (
                np.array([counts[base_req].get(b, 0) for b in range(bins)], dtype=float),
                np.array([counts[cur_req].get(b, 0) for b in range(bins)], dtype=float),
            )

    def close(self) -> None:
        for frame in self._persisted:
            frame.unpersist()
        for view in self._views:
            self.spark.catalog.dropTempView(view)
        self._persisted.clear()
        self._views.clear()

    # ----------------------------------------------------------------- group
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
        from pyspark.errors import PySparkException

        view = f"__lakebox_monitor_{uuid.uuid4().hex}"
        frame.createOrReplaceTempView(view)
        self._views.append(view)
        profiles: dict[Group, dict[str, dict[str, Any]]] = defaultdict(dict)
        counts: dict[Group, dict[str, dict[Any, int]]] = defaultdict(dict)
        rows: dict[Group, int] = {}
        table_custom = [m for m in custom if m.type == "aggregate" and TABLE in m.input_columns]
        aggs = ["count(*) AS __rows"]
        for i, col in enumerate(columns):
            aggs += _agg_sql(col, plan.columns[col], i, custom)
        for metric in table_custom:
            name = _q(f"{TABLE}|{metric.name}")
            aggs.append(f"CAST(({metric.definition}) AS DOUBLE) AS {name}")
        # One aggregation for every slice key and model: GROUPING SETS, so Spark shuffles
        # once; grouping(col) = 0 tells which set a result row belongs to. Categorical value
        # counts likewise, over the (column, value) pairs of each row.
        slices = [f"__s{k}" for k in range(len(slicing_exprs))]
        sets: list[list[str]] = []
        for scol in [None, *slices]:
            keys = (["__w"] if by_window else []) + ([scol] if scol else [])
            sets.append(keys)
            if by_model:
                sets.append([*keys, "__m"])
        keys_out = [
            "__w" if by_window else "CAST(NULL AS TIMESTAMP) AS __w",
            *slices,
            "__m" if by_model else "CAST(NULL AS STRING) AS __m",
            *[f"grouping({c}) AS __g{c}" for c in slices],
        ]

        def grouping_sets(extra: list[str]) -> str:
            listed = ", ".join("(" + ", ".join([*keys, *extra]) + ")" for keys in sets)
            return f"GROUP BY GROUPING SETS ({listed})"

        def group_of(rec: dict[str, Any]) -> Group | None:
            chosen = [k for k, c in enumerate(slices) if rec.pop(f"__g{c}") == 0]
            values = [rec.pop(c) for c in slices]
            window, model = _naive(rec.pop("__w")), rec.pop("__m")
            if not chosen:
                return (window, None, None, model)
            value = values[chosen[0]]
            if value is None:  # rows without a value of the slicing expression
                return None
            return (window, slicing_exprs[chosen[0]], value, model)

        sql = f"SELECT {', '.join(keys_out + aggs)} FROM {view} {grouping_sets([])}"
        try:
            result = self.spark.sql(sql).toArrow().to_pylist()
        except PySparkException as exc:
            raise _custom_metric_error(self.spark, view, exc, custom, plan) from None
        for rec in result:
            group = group_of(rec)
            if group is None:
                continue
            rows[group] = int(rec.pop("__rows"))
            per_col: dict[str, dict[str, Any]] = defaultdict(dict)
            for key, value in rec.items():
                idx, metric = key.split("|", 1)
                name = TABLE if idx == TABLE else columns[int(idx)]
                per_col[name][metric] = (
                    [float(v) for v in value] if isinstance(value, list) else value
                )
            profiles[group].update(per_col)
        categorical = [i for i, c in enumerate(columns) if plan.columns[c] == "categorical"]
        if categorical:
            pairs = ", ".join(
                f"named_struct('c', {i}, 'v', CAST({_q(columns[i])} AS STRING))"
                for i in categorical
            )
            inner = [*(["__w"] if by_window else []), *slices, *(["__m"] if by_model else [])]
            sql = (
                f"SELECT {', '.join(keys_out)}, __c, __v, count(*) AS __n FROM ("
                f"SELECT {', '.join([*inner, '__cv.c AS __c', '__cv.v AS __v'])} FROM {view} "
                f"LATERAL VIEW explode(array({pairs})) __t AS __cv) WHERE __v IS NOT NULL "
                f"{grouping_sets(['__c', '__v'])}"
            )
            for rec in self.spark.sql(sql).toArrow().to_pylist():
                group = group_of(rec)
                if group is None:
                    continue
                counts[group].setdefault(columns[rec["__c"]], {})[rec["__v"]] = rec["__n"]
        cap = sample_rows if sample_rows is not None else MAX_GROUP_ROWS
        data = self._sample(frame, rows, slicing_exprs, cap, by_model=by_model)
        keys_np = group_keys(data, slicing_exprs, by_window=by_window, by_model=by_model)
        grouped = GroupedData(data, dict(profiles), dict(counts), rows, keys_np)
        _exact_quantiles(grouped, plan, columns, cap)
        self._grouped[id(grouped)] = (frame, cap, slicing_exprs)
        return grouped

    # ----------------------------------------------------------------- sample
    def _sample(
        self,
        frame: Any,
        rows: dict[Group, int],
        slicing_exprs: list[str],
        cap: int,
        *,
        by_model: bool,
    ) -> pa.Table:
        """Every row of groups up to ``cap`` rows, a seeded Bernoulli sample of larger ones."""
        from pyspark.sql import functions as F

        fractions = {
            group: 1.0 if n <= cap else min(1.0, OVERSAMPLE * cap / n) for group, n in rows.items()
        }
        if all(f >= 1.0 for f in fractions.values()):
            picked = frame
        else:
            index = {expr: i for i, expr in enumerate(slicing_exprs)}
            lookup = F.create_map(
                *[
                    x
                    for group, f in fractions.items()
                    for x in (F.lit(_group_key(group, index)), F.lit(float(f)))
                ]
            )
            candidates = []
            models = [None, "__m"] if by_model else [None]
            for slice_index in [None, *range(len(slicing_exprs))]:
                for model in models:
                    key = F.concat_ws(
                        _SEP,
                        F.coalesce(F.unix_micros("__w").cast("string"), F.lit(_NULL)),
                        F.lit("-" if slice_index is None else str(slice_index)),
                        F.lit(_NULL)
                        if slice_index is None
                        else F.coalesce(F.col(f"__s{slice_index}"), F.lit(_NULL)),
                        F.lit(_NULL) if model is None else F.coalesce(F.col(model), F.lit(_NULL)),
                    )
                    candidates.append(F.coalesce(F.element_at(lookup, key), F.lit(0.0)))
            fraction = F.greatest(*candidates) if len(candidates) > 1 else candidates[0]
            picked = frame.where(F.rand(SEED) < fraction)
        table = picked.toArrow()
        renamed = [self._names.get(n, n) for n in table.column_names]
        table = table.rename_columns(renamed)
        at = table.schema.get_field_index("__w")
        table = table.set_column(at, "__w", table.column("__w").cast(pa.timestamp("us")))
        return table


def _exact_quantiles(grouped: GroupedData, plan: ColumnPlan, columns: list[str], cap: int) -> None:
    """Exact quantiles of the groups the driver holds whole, with DuckDB's definition
    (``sorted[floor((n - 1) * q)]``, what ``reservoir_quantile`` gives up to 16,384 rows)."""
    import pyarrow.compute as pc

    numeric = [c for c in columns if plan.columns[c] == "numeric"]
    if not numeric:
        return
    for group, n in grouped.rows.items():
        if n > cap:
            continue
        idx = grouped.indices(group)
        for col in numeric:
            metrics = grouped.profiles[group].get(col)
            if metrics is None:
                continue
            values = grouped.data.column(col)
            if isinstance(idx, np.ndarray):
                values = values.take(pa.array(idx))
            present = pc.cast(pc.drop_null(values), pa.float64()).to_numpy(zero_copy_only=False)
            if len(present) == 0:
                continue
            present = np.sort(present)
            at = [int(np.floor((len(present) - 1) * q)) for q in QUANTILES]
            metrics["quantiles"] = [float(present[i]) for i in at]


def _bin_counts(
    spark: Any,
    frame: Any,
    requests: list[tuple[int, Group, str, np.ndarray]],
    slicing_exprs: list[str],
    plan: ColumnPlan,
) -> list[Any]:
    """``(request, bin, rows)`` for each request ``(id, group, column, edges)``: the rows of
    ``group`` counted into ``numpy.histogram``'s bins (``edges[i] <= x < edges[i + 1]``, the
    last bin closed). The requests are a small table broadcast to every task and joined on
    the window, so the generated code stays small whatever their number."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import (
        ArrayType,
        DoubleType,
        IntegerType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    numeric = [c for c in plan.columns if plan.columns[c] == "numeric" and c in frame.columns]
    schema = StructType(
        [
            StructField("r", IntegerType()),
            StructField("w", LongType()),
            StructField("s", IntegerType()),
            StructField("v", StringType()),
            StructField("m", StringType()),
            StructField("c", IntegerType()),
            StructField("e", ArrayType(DoubleType())),
        ]
    )
    table = spark.createDataFrame(
        [
            (
                r,
                -1 if group[0] is None else _micros(group[0]),
                -1 if group[1] is None else slicing_exprs.index(group[1]),
                group[2],
                group[3],
                numeric.index(col),
                [float(e) for e in edges],
            )
            for r, group, col, edges in requests
        ],
        schema,
    )
    rows = frame.select(
        F.coalesce(F.unix_micros("__w"), F.lit(-1)).alias("__wk"),
        F.array(
            *[F.col(f"__s{k}") for k in range(len(slicing_exprs))],
            F.lit(None).cast("string"),
        ).alias("__sk"),
        F.col("__m").alias("__mk"),
        F.array(*[F.col(_q(c)).cast("double") for c in numeric]).alias("__x"),
    )
    req = F.broadcast(table)
    in_slice = F.when(req.s < 0, F.lit(True)).otherwise(F.element_at(rows.__sk, req.s + 1) == req.v)
    in_model = F.when(req.m.isNull(), F.lit(True)).otherwise(rows.__mk == req.m)
    joined = rows.join(req, (rows.__wk == req.w) & in_slice & in_model)
    x = F.element_at(F.col("__x"), F.col("c") + 1)
    bins = F.size("e") - 1
    lo, hi = F.element_at("e", 1), F.element_at("e", -1)
    guess = F.floor((x - lo) / (hi - lo) * bins).cast("int")
    guess = F.least(F.greatest(guess, F.lit(0)), bins - 1)
    lower, upper = F.element_at("e", guess + 1), F.element_at("e", guess + 2)
    position = (
        F.when(x < lower, guess - 1)
        .when((x >= upper) & (guess < bins - 1), guess + 1)
        .otherwise(guess)
    )
    present = joined.where(x.isNotNull() & ~F.isnan(x))
    return list(present.groupBy("r", position.alias("b")).count().collect())


def _group_key(group: Group, index: dict[str, int]) -> str:
    window, slice_key, slice_value, model = group
    return _SEP.join(
        [
            _NULL if window is None else str(_micros(window)),
            "-" if slice_key is None else str(index[slice_key]),
            _NULL if slice_value is None else str(slice_value),
            _NULL if model is None else str(model),
        ]
    )


def _cap_slices(frame: Any, columns: list[str]) -> Any:
    """Keep the :data:`MAX_SLICE_VALUES` most frequent values of each slice key (others:
    null). One pass estimates the distinct values of every key; only keys that may have too
    many are counted exactly."""
    from pyspark.sql import functions as F

    estimates = frame.agg(*[F.approx_count_distinct(c, rsd=0.05).alias(c) for c in columns]).first()
    for column in columns:
        if estimates[column] < 0.8 * MAX_SLICE_VALUES:
            continue
        top = (
            frame.groupBy(column)
            .count()
            .orderBy(F.col("count").desc())
            .limit(MAX_SLICE_VALUES + 1)
            .collect()
        )
        if len(top) <= MAX_SLICE_VALUES:
            continue
        keep = [r[0] for r in top[:MAX_SLICE_VALUES] if r[0] is not None]
        frame = frame.withColumn(column, F.when(F.col(column).isin(*keep), F.col(column)))
    return frame


def _agg_sql(col: str, kind: str, i: int, custom: list[CustomMetric]) -> list[str]:
    q = _q(col)
    parts = [
        f"count({q}) AS {_q(f'{i}|count')}",
        f"count(*) - count({q}) AS {_q(f'{i}|num_nulls')}",
        f"approx_count_distinct({q}) AS {_q(f'{i}|distinct_count')}",
    ]
    if kind == "numeric":
        qs = ", ".join(str(float(x)) for x in QUANTILES)
        parts += [
            f"CAST(avg({q}) AS DOUBLE) AS {_q(f'{i}|avg')}",
            f"CAST(stddev_samp({q}) AS DOUBLE) AS {_q(f'{i}|stddev')}",
            f"CAST(min({q}) AS DOUBLE) AS {_q(f'{i}|min')}",
            f"CAST(max({q}) AS DOUBLE) AS {_q(f'{i}|max')}",
            f"percentile_approx(CAST({q} AS DOUBLE), array({qs}), {QUANTILE_ACCURACY}) "
            f"AS {_q(f'{i}|quantiles')}",
        ]
    for metric in custom:
        if metric.type == "aggregate" and col in metric.input_columns:
            expr = metric.definition.replace("{{input_column}}", q)
            parts.append(f"CAST(({expr}) AS DOUBLE) AS {_q(f'{i}|{metric.name}')}")
    return parts


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


def _custom_metric_error(
    spark: Any, view: str, exc: Exception, custom: list[CustomMetric], plan: ColumnPlan
) -> InvalidInput:
    """Find which custom metric broke the aggregate query, and say so."""
    from pyspark.errors import PySparkException

    for metric, col, expr in custom_metric_probes(custom, plan, _q):
        try:
            spark.sql(f"SELECT CAST(({expr}) AS DOUBLE) FROM {view} LIMIT 0").schema  # noqa: B018
        except PySparkException as bad:
            where = f" on column {col!r}" if col else ""
            return InvalidInput(
                f"Custom metric {metric.name!r} ({metric.definition!r}) is not valid Spark "
                f"SQL{where}: {_first_line(bad)}"
            )
    return InvalidInput(f"The profile query failed on Spark: {_first_line(exc)}")
