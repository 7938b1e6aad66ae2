"""One refresh of a monitor: compute the metric rows of new or changed windows and write them
to the ``_profile_metrics`` and ``_drift_metrics`` Delta tables.

Incremental refreshes find changed windows from the Delta log: the data files added or removed
since the version the previous refresh read hold every row that changed, so only the windows of
those rows (and the windows that compare against them) are recomputed and replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads

from lakebox.errors import InvalidInput
from lakebox.monitoring._compute import (
    QUALITY_METRICS,
    Comparison,
    GroupedData,
    check_baseline,
    compute_metrics,
    drift_columns,
    plan_columns,
    window_sql,
)
from lakebox.monitoring._frames import Frames, WindowBy, open_frames
from lakebox.monitoring._profiles import InferenceLog, Snapshot, granularity_interval

if TYPE_CHECKING:
    from lakebox.monitoring._monitor import MonitorInfo
    from lakebox.workspace import Workspace

__all__ = ["RefreshResult", "run_refresh"]

_TS = pa.timestamp("us", tz="UTC")


@dataclass
class RefreshResult:
    """What a refresh computed and wrote."""

    mode: str  # full | incremental
    profile: pa.Table
    drift: pa.Table
    windows: list[datetime]
    state: dict[str, Any]
    skipped_columns: list[str]
    message: str


def _profile_schema(info: MonitorInfo) -> pa.Schema:
    fields = [
        ("window_start", _TS),
        ("window_end", _TS),
        ("granularity", pa.string()),
        ("model_id", pa.string()),
        ("slice_key", pa.string()),
        ("slice_value", pa.string()),
        ("column_name", pa.string()),
        ("data_type", pa.string()),
        ("log_type", pa.string()),
        ("count", pa.int64()),
        ("num_nulls", pa.int64()),
        ("distinct_count", pa.int64()),
        ("avg", pa.float64()),
        ("stddev", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("quantiles", pa.list_(pa.float64())),
        ("frequent_items", pa.list_(pa.struct([("item", pa.string()), ("count", pa.int64())]))),
    ]
    fields += [(m, pa.float64()) for m in QUALITY_METRICS]
    fields += [(m.name, pa.float64()) for m in info.custom_metrics if m.type != "drift"]
    return pa.schema(fields)


def _drift_schema(info: MonitorInfo) -> pa.Schema:
    fields = [
        ("window_start", _TS),
        ("window_end", _TS),
        ("window_cmp_start", _TS),
        ("window_cmp_end", _TS),
        ("drift_type", pa.string()),
        ("granularity", pa.string()),
        ("model_id", pa.string()),
        ("slice_key", pa.string()),
        ("slice_value", pa.string()),
        ("column_name", pa.string()),
        ("data_type", pa.string()),
    ]
    fields += [(c, pa.float64()) for c in drift_columns()]
    fields += [(m.name, pa.float64()) for m in info.custom_metrics if m.type == "drift"]
    return pa.schema(fields)


def _to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    cols = {}
    for f in schema:
        values = [r.get(f.name) for r in rows]
        if pa.types.is_timestamp(f.type):
            values = [
                v.replace(tzinfo=timezone.utc)
                if isinstance(v, datetime) and v.tzinfo is None
                else v
                for v in values
            ]
        cols[f.name] = pa.array(values, f.type)
    return pa.table(cols, schema=schema)


def _connect(ws: Workspace) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    if ws.settings.engine.threads:
        con.execute(f"SET threads={int(ws.settings.engine.threads)}")
    return con


def _shift(
    con: duckdb.DuckDBPyConnection, windows: list[datetime], interval: str, sign: str
) -> dict[datetime, datetime]:
    if not windows:
        return {}
    rel = con.sql(
        f"SELECT w, w {sign} {interval} AS s FROM (SELECT unnest($ws::TIMESTAMP[]) w)",
        params={"ws": windows},
    )
    return {r["w"]: r["s"] for r in rel.to_arrow_table().to_pylist()}


def _changed_windows(
    ws: Workspace,
    info: MonitorInfo,
    old_version: int,
    ts_col: str,
    granularities: list[str],
    con: duckdb.DuckDBPyConnection,
) -> dict[str, set[datetime]] | None:
    """Windows holding rows of files added or removed since ``old_version`` (None: unknown)."""
    try:
        new = set(ws.tables.delta_table(info.table_name).file_uris())
        old = set(ws.tables.delta_table(info.table_name, version=old_version).file_uris())
    except Exception:  # old version vacuumed or log gone: recompute everything
        return None
    files = sorted(new ^ old)
    out: dict[str, set[datetime]] = {g: set() for g in granularities}
    if not files:
        return out
    try:
        ts = pads.dataset(files, format="parquet").to_table(columns=[ts_col])
    except Exception:  # e.g. the timestamp is a partition column, or a file was vacuumed
        return None
    con.register("__changed", ts)
    try:
        for g in granularities:
            rel = con.sql(
                f"SELECT DISTINCT {window_sql(ts_col, g)} AS w FROM __changed "
                f'WHERE "{ts_col}" IS NOT NULL'
            )
            out[g] = {r["w"] for r in rel.to_arrow_table().to_pylist()}
    finally:
        con.unregister("__changed")
    return out


def run_refresh(
    ws: Workspace,
    info: MonitorInfo,
    state: dict[str, Any],
    *,
    full: bool,
    refresh_time: datetime | None = None,
) -> RefreshResult:
    """Compute and write the metric tables of one refresh (see the module docstring)."""
    refresh_time = (refresh_time or datetime.now(timezone.utc)).astimezone(timezone.utc)
    refresh_naive = refresh_time.replace(tzinfo=None)
    dataset, version = ws.tables.dataset(info.table_name)
    plan = plan_columns(info, dataset.schema)
    columns = list(plan.columns)
    con = _connect(ws)
    frames = open_frames(ws, con)
    try:
        base: GroupedData | None = None
        base_version = None
        base_cols: list[str] = []
        if info.baseline_table_name:
            bds, base_version = ws.tables.dataset(info.baseline_table_name)
            base_cols = check_baseline(info, plan, bds.schema)
            frame = frames.load(
                info.baseline_table_name,
                base_version,
                plan,
                base_cols,
                info.slicing_exprs,
                window=None,
                model=False,
            )
            if frames.num_rows(frame) == 0:
                raise InvalidInput(
                    f"Baseline table {info.baseline_table_name!r} is empty; "
                    "write the reference rows first."
                )
            base = frames.group(
                frame,
                plan,
                base_cols,
                info.slicing_exprs,
                list(info.custom_metrics),
                by_window=False,
                by_model=False,
                sample_rows=info.drift_sample_rows,
            )
        incremental = (
            not full
            and state.get("config_hash") == info.config_hash()
            and state.get("baseline_version") == base_version
            and state.get("table_version") is not None
        )
        profile_rows: list[dict[str, Any]] = []
        drift_rows: list[dict[str, Any]] = []
        replaced: dict[str, set[datetime]] = {}
        if base is not None and not incremental:
            rows, _ = compute_metrics(
                info, plan, base, None, [], {}, None, None, log_type="BASELINE"
            )
            profile_rows += rows
        if isinstance(info.profile, Snapshot):
            windows = _snapshot(
                info,
                plan,
                columns,
                frames,
                base,
                state,
                version,
                refresh_naive,
                profile_rows,
                drift_rows,
                incremental,
            )
            new_state: dict[str, Any] = {"snapshot_time": refresh_naive.isoformat()}
        else:
            windows = []
            old_version = int(state.get("table_version") or 0)
            changed = (
                _changed_windows(
                    ws, info, old_version, plan.timestamp_col or "", info.profile.granularities, con
                )
                if incremental
                else None
            )
            if changed is None:
                incremental = False
                if base is not None and not any(r["log_type"] == "BASELINE" for r in profile_rows):
                    profile_rows += compute_metrics(
                        info, plan, base, None, [], {}, None, None, log_type="BASELINE"
                    )[0]
            for g in info.profile.granularities:
                targets = changed[g] if changed is not None else None
                done = _windowed(
                    info,
                    plan,
                    columns,
                    con,
                    frames,
                    version,
                    base,
                    g,
                    targets,
                    profile_rows,
                    drift_rows,
                    incremental=incremental,
                )
                replaced[g] = done
                windows += sorted(done)
            new_state = {}
            if not incremental and not profile_rows:
                raise InvalidInput(
                    f"Table {info.table_name!r} has no rows with a {plan.timestamp_col!r} "
                    "timestamp to profile (empty windows); write data before refreshing."
                )
        profile = _to_table(profile_rows, _profile_schema(info))
        drift = _to_table(drift_rows, _drift_schema(info))
        _write(
            ws,
            info,
            profile,
            drift,
            incremental=incremental,
            replaced=replaced,
            snapshot=isinstance(info.profile, Snapshot),
        )
    finally:
        frames.close()
        con.close()
    new_state.update(
        table_version=version, baseline_version=base_version, config_hash=info.config_hash()
    )
    mode = "incremental" if incremental else "full"
    message = (
        f"{mode} refresh of {info.table_name} (version {version}): "
        f"{len(windows)} window(s), {profile.num_rows} profile and "
        f"{drift.num_rows} drift row(s)"
    )
    if plan.skipped:
        message += f"; not profiled (unsupported type): {', '.join(plan.skipped)}"
    return RefreshResult(mode, profile, drift, windows, new_state, plan.skipped, message)


def _snapshot(
    info: MonitorInfo,
    plan: Any,
    columns: list[str],
    frames: Frames,
    base: GroupedData | None,
    state: dict[str, Any],
    version: int,
    now: datetime,
    profile_rows: list[dict[str, Any]],
    drift_rows: list[dict[str, Any]],
    incremental: bool,
) -> list[datetime]:
    frame = frames.load(
        info.table_name,
        version,
        plan,
        columns,
        info.slicing_exprs,
        window=now,
        model=isinstance(info.profile, InferenceLog),
    )
    if frames.num_rows(frame) == 0:
        raise InvalidInput(f"Table {info.table_name!r} is empty; there is nothing to profile.")
    prev_time = state.get("snapshot_time")
    if incremental and prev_time and state.get("table_version") is not None:
        try:
            prev = datetime.fromisoformat(prev_time)
            old_frame = frames.load(
                info.table_name,
                int(state["table_version"]),
                plan,
                columns,
                info.slicing_exprs,
                window=prev,
                model=False,
            )
            both = frames.union(frame, old_frame) if prev != now else None
            if both is not None:
                frame = both
            else:
                prev_time = None
        except Exception:
            prev_time = None
    else:
        prev_time = None
    grouped = frames.group(
        frame,
        plan,
        columns,
        info.slicing_exprs,
        list(info.custom_metrics),
        by_window=True,
        by_model=False,
        sample_rows=info.drift_sample_rows,
    )
    ends = {now: now}
    comparisons = []
    if prev_time:
        prev = datetime.fromisoformat(prev_time)
        ends[prev] = prev
        for group in grouped.profiles:
            if group[0] == now:
                comparisons.append(
                    Comparison(group, (prev, *group[1:]), "CONSECUTIVE", None, now, prev)
                )
    frames.prepare_drift(grouped, None, comparisons, plan)
    rows, drifts = compute_metrics(info, plan, grouped, None, comparisons, ends, None, {now})
    profile_rows += rows
    drift_rows += drifts
    if base is not None:
        cmp = [
            Comparison(g, (None, g[1], g[2], None), "BASELINE", None, now, None)
            for g in grouped.profiles
            if g[0] == now
        ]
        frames.prepare_drift(grouped, base, cmp, plan)
        drift_rows += compute_metrics(info, plan, grouped, base, cmp, ends, None, set())[1]
    return [now]


def _windowed(
    info: MonitorInfo,
    plan: Any,
    columns: list[str],
    con: duckdb.DuckDBPyConnection,
    frames: Frames,
    version: int,
    base: GroupedData | None,
    granularity: str,
    targets: set[datetime] | None,
    profile_rows: list[dict[str, Any]],
    drift_rows: list[dict[str, Any]],
    *,
    incremental: bool,
) -> set[datetime]:
    interval = granularity_interval(granularity)
    window = WindowBy(plan.timestamp_col, granularity)
    if targets is not None:
        if not targets:
            return set()
        nxt = _shift(con, sorted(targets), interval, "+")
        extended = set(targets) | set(nxt.values())
        prev = _shift(con, sorted(extended), interval, "-")
        window = WindowBy(plan.timestamp_col, granularity, sorted(extended | set(prev.values())))
        targets = extended
    frame = frames.load(
        info.table_name,
        version,
        plan,
        columns,
        info.slicing_exprs,
        window=window,
        model=isinstance(info.profile, InferenceLog),
    )
    if frames.num_rows(frame) == 0:
        return set()
    # per-model groups only when several models served (else they equal the all-models group)
    several = isinstance(info.profile, InferenceLog) and frames.model_count(frame) > 1
    grouped = frames.group(
        frame,
        plan,
        columns,
        info.slicing_exprs,
        list(info.custom_metrics),
        by_window=True,
        by_model=several,
        sample_rows=info.drift_sample_rows,
    )
    present = sorted({g[0] for g in grouped.rows})
    ends = _shift(con, present, interval, "+")
    starts_before = _shift(con, present, interval, "-")
    chosen = set(present) if targets is None else set(present) & targets
    comparisons = []
    for group in grouped.profiles:
        w = group[0]
        if w not in chosen:
            continue
        p = starts_before[w]
        if (p, *group[1:]) in grouped.profiles:
            comparisons.append(
                Comparison(
                    group, (p, *group[1:]), "CONSECUTIVE", granularity, ends[w], ends.get(p, w)
                )
            )
    frames.prepare_drift(grouped, None, comparisons, plan)
    rows, drifts = compute_metrics(
        info, plan, grouped, None, comparisons, ends, granularity, chosen
    )
    profile_rows += rows
    drift_rows += drifts
    if base is not None:
        cmp = [
            Comparison(g, (None, g[1], g[2], None), "BASELINE", granularity, ends[g[0]], None)
            for g in grouped.profiles
            if g[0] in chosen
        ]
        frames.prepare_drift(grouped, base, cmp, plan)
        drift_rows += compute_metrics(info, plan, grouped, base, cmp, ends, granularity, set())[1]
    return chosen


def _write(
    ws: Workspace,
    info: MonitorInfo,
    profile: pa.Table,
    drift: pa.Table,
    *,
    incremental: bool,
    replaced: dict[str, set[datetime]],
    snapshot: bool,
) -> None:
    targets = ((info.profile_metrics_table_name, profile), (info.drift_metrics_table_name, drift))
    for name, table in targets:
        if not incremental or not ws.tables.exists(name):
            ws.tables.write(name, table, mode="overwrite", overwrite_schema=True)
            continue
        if not snapshot:
            for g, windows in replaced.items():
                if not windows:
                    continue
                listed = ", ".join(
                    f"'{w.replace(tzinfo=timezone.utc).isoformat().replace('+00:00', 'Z')}'"
                    for w in sorted(windows)
                )
                ws.tables.delete(name, f"granularity = '{g}' AND window_start IN ({listed})")
        if table.num_rows:
            ws.tables.write(name, table, mode="append")
