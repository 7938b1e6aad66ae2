"""Compute profile and drift metric rows for a monitor.

Aggregates (counts, nulls, distinct counts, mean, stddev, min, max, quantiles, frequent items,
custom aggregate metrics) run in DuckDB over the table's Arrow data, one grouped query per
slice; drift statistics and quality metrics come from :mod:`lakebox.monitoring._stats`.

A *group* is ``(window_start, slice_key, slice_value, model_id)``; ``model_id`` None means
every model. Baseline groups have ``window_start`` None.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakebox.errors import InvalidInput, SchemaMismatch
from lakebox.monitoring._profiles import (
    CustomMetric,
    InferenceLog,
    Snapshot,
    TimeSeries,
    granularity_interval,
)
from lakebox.monitoring._stats import (
    DRIFT_METRICS,
    categorical_drift,
    concept_drift,
    numeric_drift,
    quality_metrics,
)

if TYPE_CHECKING:
    from lakebox.monitoring._monitor import MonitorInfo

__all__ = ["ColumnPlan", "QUALITY_METRICS", "compute_metrics", "plan_columns"]

QUANTILES = [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0]
# quantiles are exact up to this many rows per window, then estimated from a reservoir sample
QUANTILE_SAMPLE = 16_384
TOP_ITEMS = 10
MAX_SLICE_VALUES = 100
QUALITY_METRICS = (
    "accuracy_score",
    "precision",
    "recall",
    "f1_score",
    "roc_auc",
    "log_loss",
    "mse",
    "rmse",
    "mae",
    "r2",
)
TABLE = ":table"
Group = tuple[Any, str | None, str | None, str | None]


def column_kind(dtype: pa.DataType) -> str | None:
    """``"numeric"``, ``"categorical"`` or None (not profiled) for an Arrow type."""
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_boolean(dtype):
        return "categorical"
    if pa.types.is_string_view(dtype):
        return "categorical"
    return None


@dataclass
class ColumnPlan:
    """Which columns a monitor profiles, and the roles of the special ones."""

    columns: dict[str, str]  # name -> numeric | categorical
    timestamp_col: str | None = None
    model_id_col: str | None = None
    label_col: str | None = None
    prediction_col: str | None = None
    proba_col: str | None = None
    skipped: list[str] = field(default_factory=list)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def plan_columns(info: MonitorInfo, schema: pa.Schema) -> ColumnPlan:
    """Check a monitor's columns against the table schema and choose what to profile."""
    table = info.table_name
    names = schema.names
    profile = info.profile

    def need(col: str | None, role: str) -> None:
        if col is not None and col not in names:
            from lakebox.errors import close_matches

            raise InvalidInput(
                f"Monitor on {table!r}: {role} {col!r} is not a column of the "
                f"table.{close_matches(col, names)} Columns: {', '.join(names)}."
            )

    plan = ColumnPlan(columns={})
    if isinstance(profile, (TimeSeries, InferenceLog)):
        need(profile.timestamp_col, "timestamp_col")
        ts_type = schema.field(profile.timestamp_col).type
        if not (pa.types.is_timestamp(ts_type) or pa.types.is_date(ts_type)):
            raise InvalidInput(
                f"Monitor on {table!r}: timestamp_col {profile.timestamp_col!r} "
                f"has type {ts_type}; it must be a timestamp or a date."
            )
        plan.timestamp_col = profile.timestamp_col
    if isinstance(profile, InferenceLog):
        need(profile.model_id_col, "model_id_col")
        need(profile.prediction_col, "prediction_col")
        need(profile.label_col, "label_col")
        need(profile.prediction_proba_col, "prediction_proba_col")
        plan.model_id_col = profile.model_id_col
        plan.prediction_col = profile.prediction_col
        plan.label_col = profile.label_col
        plan.proba_col = profile.prediction_proba_col
    special = {plan.timestamp_col, plan.model_id_col}
    wanted = info.columns or [n for n in names if n not in special]
    for col in wanted:
        need(col, "monitored column")
        kind = column_kind(schema.field(col).type)
        if kind is None:
            if info.columns:
                raise InvalidInput(
                    f"Monitor on {table!r}: column {col!r} has type {schema.field(col).type}, "
                    "which cannot be profiled; monitored columns must be numeric, string or "
                    "boolean. Remove it from columns=."
                )
            plan.skipped.append(col)
            continue
        plan.columns[col] = kind
    if not plan.columns:
        raise InvalidInput(
            f"Monitor on {table!r}: no column of the table can be profiled "
            "(numeric, string or boolean)."
        )
    return plan


def check_baseline(info: MonitorInfo, plan: ColumnPlan, schema: pa.Schema) -> list[str]:
    """Check the baseline table has the monitored columns with compatible types; returns the
    profiled columns it holds."""
    missing = [
        c
        for c in plan.columns
        if c not in schema.names and c not in (plan.label_col, plan.prediction_col, plan.proba_col)
    ]
    if missing:
        raise SchemaMismatch(
            f"Baseline table {info.baseline_table_name!r} lacks the monitored column(s) "
            f"{', '.join(repr(c) for c in missing)} of {info.table_name!r}; the baseline must "
            "have the same schema as the monitored table (or pass columns= to monitor fewer)."
        )
    present = [c for c in plan.columns if c in schema.names]
    for col in present:
        kind = column_kind(schema.field(col).type)
        if kind != plan.columns[col]:
            raise SchemaMismatch(
                f"Baseline table {info.baseline_table_name!r}: column {col!r} has type "
                f"{schema.field(col).type}, but it is {plan.columns[col]} in "
                f"{info.table_name!r}; make the types match."
            )
    return present


# --------------------------------------------------------------------------- group data
@dataclass
class GroupedData:
    """Arrow rows with their window, slice and model keys, and the aggregates per group."""

    data: pa.Table
    profiles: dict[Group, dict[str, dict[str, Any]]]
    counts: dict[Group, dict[str, dict[Any, int]]]
    rows: dict[Group, int]
    keys: dict[str, np.ndarray]
    # (current group, base group, column) -> exact binned counts (base, current) over
    # sturges_edges of both sides, for engines whose ``data`` is a sample (see _spark.py)
    binned: dict[tuple[Group, Group, str], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )

    def indices(self, group: Group) -> np.ndarray | slice:
        cache = self.__dict__.setdefault("_indices", {})
        if group not in cache:
            cache[group] = self._indices_of(group)
        return cache[group]

    def _indices_of(self, group: Group) -> np.ndarray | slice:
        window, slice_key, slice_value, model = group
        mask = np.ones(self.data.num_rows, dtype=bool)
        if window is not None:  # windows compared as int64 microseconds: fast on 1M rows
            micros = pa.scalar(window, pa.timestamp("us")).cast(pa.int64()).as_py()
            mask &= self.keys["__w"] == micros
        if slice_key is not None:
            mask &= self.keys[f"__s:{slice_key}"] == slice_value
        if model is not None:
            mask &= self.keys["__m"] == model
        if mask.all():
            return slice(None)
        return np.flatnonzero(mask)

    def values(
        self, group: Group, column: str, idx: np.ndarray | slice | None = None
    ) -> np.ndarray:
        idx = self.indices(group) if idx is None else idx
        col = self.data.column(column)
        if isinstance(idx, np.ndarray):
            col = col.take(pa.array(idx))
        return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)

    def raw(self, group: Group, column: str, idx: np.ndarray | slice) -> np.ndarray:
        col = self.data.column(column)
        if isinstance(idx, np.ndarray):
            col = col.take(pa.array(idx))
        return col.to_numpy(zero_copy_only=False)


def _agg_sql(col: str, kind: str, i: int, custom: list[CustomMetric]) -> list[str]:
    q = _quote(col)
    parts = [
        f'count({q}) AS "{i}|count"',
        f'count(*) - count({q}) AS "{i}|num_nulls"',
        f'approx_count_distinct({q}) AS "{i}|distinct_count"',
    ]
    if kind == "numeric":
        qs = ", ".join(str(x) for x in QUANTILES)
        parts += [
            f'avg({q})::DOUBLE AS "{i}|avg"',
            f'stddev_samp({q})::DOUBLE AS "{i}|stddev"',
            f'min({q})::DOUBLE AS "{i}|min"',
            f'max({q})::DOUBLE AS "{i}|max"',
            f'reservoir_quantile({q}::DOUBLE, [{qs}], {QUANTILE_SAMPLE}) AS "{i}|quantiles"',
        ]
    for metric in custom:
        if metric.type == "aggregate" and col in metric.input_columns:
            expr = metric.definition.replace("{{input_column}}", q)
            parts.append(f'({expr})::DOUBLE AS "{i}|{metric.name}"')
    return parts


def group_data(
    con: duckdb.DuckDBPyConnection,
    data: pa.Table,
    plan: ColumnPlan,
    columns: list[str],
    slicing_exprs: list[str],
    custom: list[CustomMetric],
    *,
    by_window: bool,
    by_model: bool,
) -> GroupedData:
    """Aggregate ``data`` (with ``__w``, ``__m`` and ``__s:<expr>`` key columns) per group."""
    con.register("__d", data)
    slice_keys: list[str | None] = [None, *slicing_exprs]
    profiles: dict[Group, dict[str, dict[str, Any]]] = defaultdict(dict)
    counts: dict[Group, dict[str, dict[Any, int]]] = defaultdict(dict)
    rows: dict[Group, int] = {}
    table_custom = [m for m in custom if m.type == "aggregate" and TABLE in m.input_columns]
    for slice_key in slice_keys:
        keys = (["__w"] if by_window else []) + ([_quote(f"__s:{slice_key}")] if slice_key else [])
        group_by = _group_by(keys, by_model)
        select_keys = [
            "__w" if by_window else "NULL AS __w",
            f"{_quote(f'__s:{slice_key}')} AS __sv" if slice_key else "NULL AS __sv",
            "__m" if by_model else "NULL AS __m",
        ]
        aggs = ["count(*) AS __rows"]
        for i, col in enumerate(columns):
            aggs += _agg_sql(col, plan.columns[col], i, custom)
        for metric in table_custom:
            aggs.append(f'({metric.definition})::DOUBLE AS "{TABLE}|{metric.name}"')
        where = f"WHERE {_quote(f'__s:{slice_key}')} IS NOT NULL" if slice_key else ""
        sql = f"SELECT {', '.join(select_keys + aggs)} FROM __d {where} {group_by}"
        try:
            result = con.sql(sql).to_arrow_table().to_pylist()
        except duckdb.Error as exc:
            raise _custom_metric_error(con, exc, custom, plan) from None
        for rec in result:
            group: Group = (rec.pop("__w"), slice_key, rec.pop("__sv"), rec.pop("__m"))
            if slice_key is not None and group[2] is None:
                continue
            rows[group] = rec.pop("__rows")
            per_col: dict[str, dict[str, Any]] = defaultdict(dict)
            for key, value in rec.items():
                idx, metric = key.split("|", 1)
                name = TABLE if idx == TABLE else columns[int(idx)]
                per_col[name][metric] = value
            profiles[group].update(per_col)
        # value counts of categorical columns (frequent items and categorical drift), all
        # columns in one UNION ALL query
        parts = []
        for i, col in enumerate(columns):
            if plan.columns[col] != "categorical":
                continue
            q = _quote(col)
            cond = f"{q} IS NOT NULL" + (f" AND {where[6:]}" if where else "")
            parts.append(
                f"SELECT {', '.join(select_keys)}, {i} AS __c, __v, count(*) AS __n FROM "
                f"(SELECT *, {q}::VARCHAR AS __v FROM __d WHERE {cond}) "
                f"{_group_by([*keys, '__v'], by_model)}"
            )
        if parts:
            for rec in con.sql(" UNION ALL ".join(parts)).to_arrow_table().to_pylist():
                group = (rec["__w"], slice_key, rec["__sv"], rec["__m"])
                if slice_key is not None and group[2] is None:
                    continue
                counts[group].setdefault(columns[rec["__c"]], {})[rec["__v"]] = rec["__n"]
    con.unregister("__d")
    keys_np = group_keys(data, slicing_exprs, by_window=by_window, by_model=by_model)
    return GroupedData(data, dict(profiles), dict(counts), rows, keys_np)


def group_keys(
    data: pa.Table, slicing_exprs: list[str], *, by_window: bool, by_model: bool
) -> dict[str, np.ndarray]:
    """The key columns of ``data`` as numpy arrays, for :meth:`GroupedData.indices`."""
    keys_np: dict[str, np.ndarray] = {}
    if by_window:
        window_col = data.column("__w").cast(pa.timestamp("us")).cast(pa.int64())
        keys_np["__w"] = window_col.fill_null(-(2**62)).to_numpy()
    if by_model:
        keys_np["__m"] = data.column("__m").to_numpy(zero_copy_only=False)
    for expr in slicing_exprs:
        keys_np[f"__s:{expr}"] = data.column(f"__s:{expr}").to_numpy(zero_copy_only=False)
    return keys_np


def _group_by(keys: list[str], by_model: bool) -> str:
    sets = [keys] + ([[*keys, "__m"]] if by_model else [])
    if len(sets) == 1:
        return f"GROUP BY {', '.join(keys)}" if keys else ""
    return "GROUP BY GROUPING SETS (" + ", ".join(f"({', '.join(s)})" for s in sets) + ")"


def custom_metric_probes(
    custom: list[CustomMetric], plan: ColumnPlan, quote: Callable[[str], str]
) -> Iterator[tuple[CustomMetric, str | None, str]]:
    """Each aggregate custom metric's expression, once per input column it applies to (once
    without a column when it has none): what an engine runs alone, after the profile query
    failed, to name the metric that broke it. ``quote`` is the engine's identifier quoting."""
    for metric in custom:
        if metric.type != "aggregate":
            continue
        cols: list[str | None] = [c for c in metric.input_columns if c in plan.columns] or [None]
        for col in cols:
            expr = metric.definition
            if col is not None:
                expr = expr.replace("{{input_column}}", quote(col))
            yield metric, col, expr


def _custom_metric_error(
    con: duckdb.DuckDBPyConnection, exc: Exception, custom: list[CustomMetric], plan: ColumnPlan
) -> InvalidInput:
    """Find which custom metric broke the aggregate query, and say so."""
    text = str(exc).splitlines()[0]
    for metric, col, expr in custom_metric_probes(custom, plan, _quote):
        try:
            con.sql(f"SELECT ({expr})::DOUBLE FROM __d LIMIT 0").to_arrow_table()
        except duckdb.Error as bad:
            where = f" on column {col!r}" if col else ""
            return InvalidInput(
                f"Custom metric {metric.name!r} ({metric.definition!r}) is not valid SQL"
                f"{where}: {str(bad).splitlines()[0]}"
            )
    return InvalidInput(f"The profile query failed: {text}")


# --------------------------------------------------------------------------- loading
def load_frame(
    con: duckdb.DuckDBPyConnection,
    source: Any,
    plan: ColumnPlan,
    columns: list[str],
    slicing_exprs: list[str],
    *,
    window_sql: str | None,
    model: bool,
    where: str | None = None,
) -> pa.Table:
    """Select the monitored columns plus the key columns from an Arrow source via DuckDB."""
    con.register("__src", source)
    extra = [
        c for c in (plan.label_col, plan.prediction_col, plan.proba_col) if c and c not in columns
    ]
    select = [_quote(c) for c in [*columns, *extra]]
    select.append(f"{window_sql} AS __w" if window_sql else "NULL::TIMESTAMP AS __w")
    if model:
        select.append(f"{_quote(plan.model_id_col or '')}::VARCHAR AS __m")
    else:
        select.append("NULL::VARCHAR AS __m")
    for expr in slicing_exprs:
        select.append(f"({expr})::VARCHAR AS {_quote(f'__s:{expr}')}")
    sql = f"SELECT {', '.join(select)} FROM __src"
    if where:
        sql += f" WHERE {where}"
    try:
        table = con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        text = str(exc).splitlines()[0]
        for expr in slicing_exprs:
            try:
                con.sql(f"SELECT ({expr}) FROM __src LIMIT 0")
            except duckdb.Error:
                raise InvalidInput(
                    f"Slicing expression {expr!r} is not valid SQL for this table: {text}"
                ) from None
        raise InvalidInput(f"Cannot read the monitored data: {text}") from None
    finally:
        con.unregister("__src")
    for expr in slicing_exprs:  # keep the most frequent values of each slicing expression
        name = f"__s:{expr}"
        counts = pc.value_counts(table.column(name).combine_chunks())
        if len(counts) > MAX_SLICE_VALUES:
            order = np.argsort(-counts.field("counts").to_numpy())[:MAX_SLICE_VALUES]
            keep = counts.field("values").take(pa.array(order))
            col = table.column(name)
            capped = pc.if_else(pc.is_in(col, value_set=keep), col, pa.scalar(None, pa.string()))
            table = table.set_column(table.schema.get_field_index(name), name, capped)
    return table


# --------------------------------------------------------------------------- rows
def _profile_row(
    group: Group,
    granularity: str | None,
    window_end: Any,
    col: str,
    kind: str,
    metrics: dict[str, Any],
    counts: dict[Any, int] | None,
    log_type: str,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "window_start": group[0],
        "window_end": window_end,
        "granularity": granularity,
        "model_id": group[3],
        "slice_key": group[1],
        "slice_value": group[2],
        "column_name": col,
        "data_type": kind,
        "log_type": log_type,
    }
    row.update(metrics)
    if counts is not None:
        top = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:TOP_ITEMS]
        row["frequent_items"] = [{"item": str(k), "count": int(v)} for k, v in top]
    return row


@dataclass
class Comparison:
    """One drift comparison: a current group against a base group."""

    current: Group
    base: Group
    drift_type: str  # CONSECUTIVE | BASELINE
    granularity: str | None
    window_end: Any
    base_window_end: Any


def compute_metrics(
    info: MonitorInfo,
    plan: ColumnPlan,
    current: GroupedData,
    base: GroupedData | None,
    comparisons: Iterable[Comparison],
    window_ends: dict[Any, Any],
    granularity: str | None,
    targets: set[Any] | None,
    *,
    log_type: str = "INPUT",
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Profile rows for the ``targets`` windows of ``current`` (all when None) and drift rows
    for ``comparisons``."""
    columns = [c for c in plan.columns if c in current.data.column_names]
    custom = list(info.custom_metrics)
    profile_rows: list[dict[str, Any]] = []
    profiled: dict[tuple[Group, str], dict[str, Any]] = {}
    for group, per_col in current.profiles.items():
        if targets is not None and group[0] not in targets:
            continue
        end = window_ends.get(group[0])
        for col in columns:
            row = _profile_row(
                group,
                granularity,
                end,
                col,
                plan.columns[col],
                per_col[col],
                current.counts.get(group, {}).get(col, {})
                if plan.columns[col] == "categorical"
                else None,
                log_type,
            )
            profile_rows.append(row)
            profiled[(group, col)] = row
        table_row = _profile_row(
            group, granularity, end, TABLE, "table", dict(per_col.get(TABLE, {})), None, log_type
        )
        table_row["count"] = current.rows[group]
        table_row.update(_quality(plan, current, group, info))
        profile_rows.append(table_row)
        profiled[(group, TABLE)] = table_row
    _derived(profile_rows, custom)

    base_data = base or current
    drift_rows: list[dict[str, Any]] = []
    for cmp in comparisons:
        if cmp.base not in base_data.profiles or cmp.current not in current.profiles:
            continue
        cur_idx = current.indices(cmp.current)
        base_idx = base_data.indices(cmp.base)
        base_cols = base_data.profiles[cmp.base]
        for col in columns:
            if col not in base_cols:
                continue
            kind = plan.columns[col]
            if kind == "numeric":
                stats = numeric_drift(
                    base_data.values(cmp.base, col, base_idx),
                    current.values(cmp.current, col, cur_idx),
                    sample_rows=info.drift_sample_rows,
                    binned=current.binned.get((cmp.current, cmp.base, col)),
                )
            else:
                stats = categorical_drift(
                    base_data.counts.get(cmp.base, {}).get(col, {}),
                    current.counts.get(cmp.current, {}).get(col, {}),
                )
            cur_p, base_p = current.profiles[cmp.current][col], base_cols[col]
            stats["count_delta"] = _delta(cur_p.get("count"), base_p.get("count"))
            stats["avg_delta"] = _delta(cur_p.get("avg"), base_p.get("avg"))
            if plan.label_col and col not in (plan.label_col, plan.prediction_col, plan.proba_col):
                stats.update(
                    _concept(
                        plan,
                        kind,
                        current,
                        cmp.current,
                        cur_idx,
                        base_data,
                        cmp.base,
                        base_idx,
                        col,
                    )
                )
            drift_rows.append(_drift_row(cmp, col, kind, stats))
        # table-level row: row counts and quality deltas
        cur_t = current.profiles[cmp.current].get(TABLE, {})
        base_t = base_data.profiles[cmp.base].get(TABLE, {})
        cur_q = _quality(plan, current, cmp.current, info)
        base_q = _quality(plan, base_data, cmp.base, info)
        table_stats: dict[str, Any] = {
            "count_delta": _delta(current.rows[cmp.current], base_data.rows[cmp.base]),
        }
        for metric in QUALITY_METRICS:
            table_stats[f"{metric}_delta"] = _delta(cur_q.get(metric), base_q.get(metric))
        del cur_t, base_t
        drift_rows.append(_drift_row(cmp, TABLE, "table", table_stats))
    _drift_custom(drift_rows, custom, current, base_data)
    return profile_rows, drift_rows


def _drift_row(cmp: Comparison, col: str, kind: str, stats: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "window_start": cmp.current[0],
        "window_end": cmp.window_end,
        "window_cmp_start": cmp.base[0] if cmp.drift_type == "CONSECUTIVE" else None,
        "window_cmp_end": cmp.base_window_end if cmp.drift_type == "CONSECUTIVE" else None,
        "drift_type": cmp.drift_type,
        "granularity": cmp.granularity,
        "model_id": cmp.current[3],
        "slice_key": cmp.current[1],
        "slice_value": cmp.current[2],
        "column_name": col,
        "data_type": kind,
    }
    row.update(stats)
    row["__cmp"] = cmp
    return row


def _delta(cur: Any, base: Any) -> float | None:
    if cur is None or base is None:
        return None
    return float(cur) - float(base)


_quality_cache: dict[tuple[int, Group], dict[str, Any]] = {}


def _quality(
    plan: ColumnPlan, data: GroupedData, group: Group, info: MonitorInfo
) -> dict[str, Any]:
    if not (plan.label_col and plan.prediction_col):
        return {}
    if (
        plan.label_col not in data.data.column_names
        or plan.prediction_col not in data.data.column_names
    ):
        return {}
    key = (id(data), group)
    if key in _quality_cache:
        return _quality_cache[key]
    idx = data.indices(group)
    label = data.raw(group, plan.label_col, idx)
    pred = data.raw(group, plan.prediction_col, idx)
    has_label = np.array([v is not None and v == v for v in label], dtype=bool)
    proba = None
    if plan.proba_col and plan.proba_col in data.data.column_names:
        proba = data.values(group, plan.proba_col, idx)[has_label]
    problem = info.profile.problem_type if isinstance(info.profile, InferenceLog) else ""
    y_true, y_pred = label[has_label], pred[has_label]
    if problem == "classification":
        y_true, y_pred = y_true.astype(str), y_pred.astype(str)
    result = dict.fromkeys(QUALITY_METRICS)
    result.update(quality_metrics(y_true, y_pred, problem_type=problem, y_proba=proba))
    if len(_quality_cache) > 10000:
        _quality_cache.clear()
    _quality_cache[key] = result
    return result


def _concept(
    plan: ColumnPlan,
    kind: str,
    current: GroupedData,
    cur_group: Group,
    cur_idx: Any,
    base: GroupedData,
    base_group: Group,
    base_idx: Any,
    col: str,
) -> dict[str, Any]:
    assert_label = plan.label_col or ""
    if assert_label not in base.data.column_names:
        return {}

    def arrays(data: GroupedData, group: Group, idx: Any) -> tuple[np.ndarray, np.ndarray]:
        label = data.raw(group, assert_label, idx)
        feature = data.values(group, col, idx) if kind == "numeric" else data.raw(group, col, idx)
        keep = np.array([v is not None and v == v for v in label], dtype=bool)
        if kind == "numeric":
            keep &= ~np.isnan(feature)
        else:
            keep &= np.array([v is not None for v in feature], dtype=bool)
        return feature[keep], label[keep].astype(str)

    bf, bl = arrays(base, base_group, base_idx)
    cf, cl = arrays(current, cur_group, cur_idx)
    return concept_drift(bf, bl, cf, cl, numeric=kind == "numeric")


_NUMERIC_FIELDS = ("count", "num_nulls", "distinct_count", "avg", "stddev", "min", "max")


def _derived(rows: list[dict[str, Any]], custom: list[CustomMetric]) -> None:
    derived = [m for m in custom if m.type == "derived"]
    if not derived or not rows:
        return
    fields = list(_NUMERIC_FIELDS) + [m.name for m in custom if m.type == "aggregate"]
    table = pa.table({f: pa.array([_num(r.get(f)) for r in rows], pa.float64()) for f in fields})
    con = duckdb.connect()
    try:
        con.register("t", table)
        for metric in derived:
            try:
                values = (
                    con.sql(f"SELECT ({metric.definition})::DOUBLE AS v FROM t")
                    .to_arrow_table()
                    .column("v")
                    .to_pylist()
                )
            except duckdb.Error as exc:
                raise InvalidInput(
                    f"Derived custom metric {metric.name!r} ({metric.definition!r}) is not "
                    f"valid SQL over the metrics {', '.join(fields)}: "
                    f"{str(exc).splitlines()[0]}"
                ) from None
            for row, value in zip(rows, values, strict=True):
                if row["column_name"] in metric.input_columns:
                    row[metric.name] = value
    finally:
        con.close()


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _drift_custom(
    rows: list[dict[str, Any]], custom: list[CustomMetric], current: GroupedData, base: GroupedData
) -> None:
    drift = [m for m in custom if m.type == "drift"]
    if not drift or not rows:
        return
    fields = list(_NUMERIC_FIELDS) + [m.name for m in custom if m.type == "aggregate"]

    def side(data: GroupedData, pick: int) -> pa.Table:
        values: dict[str, list[float | None]] = {f: [] for f in fields}
        for row in rows:
            cmp: Comparison = row["__cmp"]
            group = cmp.current if pick == 0 else cmp.base
            metrics = data.profiles.get(group, {}).get(row["column_name"], {})
            if row["column_name"] == TABLE:
                metrics = {**metrics, "count": data.rows.get(group)}
            for f in fields:
                values[f].append(_num(metrics.get(f)))
        return pa.table({f: pa.array(v, pa.float64()) for f, v in values.items()})

    con = duckdb.connect()
    try:
        con.register("cur", side(current, 0))
        con.register("base", side(base, 1))
        for metric in drift:
            expr = metric.definition.replace("{{current_df}}", "cur").replace("{{base_df}}", "base")
            try:
                values = (
                    con.sql(f"SELECT ({expr})::DOUBLE AS v FROM cur POSITIONAL JOIN base")
                    .to_arrow_table()
                    .column("v")
                    .to_pylist()
                )
            except duckdb.Error as exc:
                raise InvalidInput(
                    f"Drift custom metric {metric.name!r} ({metric.definition!r}) is not valid "
                    "SQL: use {{current_df}}.<metric> and {{base_df}}.<metric> with metrics "
                    f"{', '.join(fields)}: {str(exc).splitlines()[0]}"
                ) from None
            for row, value in zip(rows, values, strict=True):
                if row["column_name"] in metric.input_columns:
                    row[metric.name] = value
    finally:
        con.close()


def drift_columns() -> list[str]:
    """Names of the statistics columns of a drift metrics table."""
    return [
        *DRIFT_METRICS,
        "concept_chi_squared_statistic",
        "concept_chi_squared_pvalue",
        "count_delta",
        "avg_delta",
        *(f"{m}_delta" for m in QUALITY_METRICS),
    ]


def window_sql(timestamp_col: str, granularity: str) -> str:
    """DuckDB expression placing a row in its window of ``granularity`` (UTC)."""
    return f"time_bucket({granularity_interval(granularity)}, {_quote(timestamp_col)}::TIMESTAMP)"


def is_windowed(info: MonitorInfo) -> bool:
    return not isinstance(info.profile, Snapshot)


def naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    from datetime import timezone

    return value.astimezone(timezone.utc).replace(tzinfo=None)
