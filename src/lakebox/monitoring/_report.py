"""The HTML dashboard of a monitor: one standalone file (plotly.js inlined, works offline)
under ``<home>/reports/``, also served by ``lakebox up``.

Sections: drift over time per column, baseline vs current distributions, model quality over
time, row counts, and the alert history.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa

from lakebox.errors import MissingDependency

if TYPE_CHECKING:
    from lakebox.monitoring._monitor import MonitorInfo
    from lakebox.workspace import Workspace

__all__ = ["chart_sections", "metric_tables", "report_path", "write_report"]

MAX_DIST_COLUMNS = 12
SAMPLE_ROWS = 5000


def report_path(ws: Workspace, table_name: str) -> Path:
    """Where the report of the monitor on ``table_name`` is written."""
    return Path(ws.home) / "reports" / f"{table_name}.html"


class _Figure:
    """A plotly figure as plain dicts (rendered by plotly.js without Python-side validation,
    which costs seconds for a dozen charts)."""

    def __init__(self) -> None:
        self.data: list[dict[str, Any]] = []
        self.layout: dict[str, Any] = {}

    def add_trace(self, trace: dict[str, Any]) -> None:
        self.data.append(trace)

    def update_layout(self, **layout: Any) -> None:
        if isinstance(layout.get("title"), str):  # plotly.js 3 wants {"text": ...}
            layout["title"] = {"text": layout["title"]}
        self.layout.update(layout)

    def update_yaxes(self, **axis: Any) -> None:
        self.layout.setdefault("yaxis", {}).update(axis)


class _Traces:
    """``go.Scatter(...)``-style constructors producing trace dicts."""

    Figure = _Figure

    @staticmethod
    def Scatter(**kw: Any) -> dict[str, Any]:
        return {"type": "scatter", **kw}

    @staticmethod
    def Bar(**kw: Any) -> dict[str, Any]:
        return {"type": "bar", **kw}


def _plotly() -> Any:
    try:
        import plotly.io  # noqa: F401
    except ImportError:  # pragma: no cover - plotly is a core dependency
        raise MissingDependency("plotly", "all", "Monitor reports") from None
    return _Traces


def _read(ws: Workspace, name: str) -> pa.Table | None:
    if not ws.tables.exists(name):
        return None
    return ws.tables.read(name, output="arrow")


def _div(fig: _Figure, div_id: str) -> str:
    import plotly.io

    fig.update_layout(margin={"l": 50, "r": 20, "t": 50, "b": 40}, height=360)
    spec = {"data": fig.data, "layout": fig.layout}
    html_div = plotly.io.to_html(
        spec, full_html=False, include_plotlyjs=False, div_id=div_id, validate=False
    )
    return str(html_div)


def metric_tables(ws: Workspace, info: MonitorInfo) -> tuple[pa.Table | None, pa.Table | None]:
    """The monitor's profile and drift metric tables (``None`` before the first refresh)."""
    return (
        _read(ws, info.profile_metrics_table_name),
        _read(ws, info.drift_metrics_table_name),
    )


def chart_sections(ws: Workspace, info: MonitorInfo) -> dict[str, str]:
    """The dashboard's chart sections as HTML (plotly divs, without plotly.js itself), by name:
    ``drift``, ``distributions`` and ``quality``. The report file and the workspace pages
    both draw these."""
    go = _plotly()
    profile, drift = metric_tables(ws, info)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        if drift is not None:
            con.register("drift", drift)
        if profile is not None:
            con.register("profile", profile)
        return {
            "drift": _drift_section(go, con, info, drift),
            "distributions": _distribution_section(go, con, ws, info, profile),
            "quality": _quality_section(go, con, info, profile),
        }
    finally:
        con.close()


def write_report(ws: Workspace, info: MonitorInfo) -> Path:
    """Render the dashboard of ``info`` and return the file's path."""
    import plotly.offline

    sections = [*chart_sections(ws, info).values(), _alert_section(ws, info)]
    refreshes = ws.monitors.list_refreshes(info.table_name)
    last = refreshes[0] if refreshes else None
    meta = {
        "table": info.table_name,
        "profile": info.profile.kind,
        "baseline": info.baseline_table_name or "none",
        "metric tables": f"{info.profile_metrics_table_name}, {info.drift_metrics_table_name}",
        "last refresh": (
            f"#{last.refresh_id} {last.state} {last.mode} at "
            f"{_ms(last.end_time_ms or last.start_time_ms)}"
            if last
            else "never"
        ),
    }
    head = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in meta.items()
    )
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>lakebox monitor: {html.escape(info.table_name)}</title>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
h1 {{ font-size: 1.5em; }} h2 {{ margin-top: 2em; border-bottom: 1px solid #ddd; }}
table {{ border-collapse: collapse; }} th, td {{ padding: 4px 10px; text-align: left;
border-bottom: 1px solid #eee; font-size: 0.9em; }} .empty {{ color: #888; }}
</style></head>
<body>
<h1>Monitor: {html.escape(info.table_name)}</h1>
<table class="meta">{head}</table>
{"".join(sections)}
<p class="empty">Generated by lakebox at {generated}.</p>
</body></html>
"""
    path = report_path(ws, info.table_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


def _ms(value: int | None) -> str:
    if value is None:
        return ""
    return datetime.fromtimestamp(value / 1000, timezone.utc).isoformat(timespec="seconds")


def _first_granularity(info: MonitorInfo) -> str | None:
    return getattr(info.profile, "granularities", [None])[0]


def _gran_filter(info: MonitorInfo) -> str:
    g = _first_granularity(info)
    return "granularity IS NULL" if g is None else f"granularity = '{g}'"


def _drift_section(
    go: Any, con: duckdb.DuckDBPyConnection, info: MonitorInfo, drift: pa.Table | None
) -> str:
    title = "<h2>Drift over time</h2>"
    if drift is None or drift.num_rows == 0:
        return title + '<p class="empty">No drift metrics yet (refresh the monitor).</p>'
    drift_type = "BASELINE" if info.baseline_table_name else "CONSECUTIVE"
    rows = (
        con.sql(
            "SELECT window_start, column_name, js_distance, ks_pvalue, chi_squared_pvalue "
            f"FROM drift WHERE drift_type = '{drift_type}' AND slice_key IS NULL AND "
            f"model_id IS NULL AND column_name <> ':table' AND {_gran_filter(info)} "
            "ORDER BY column_name, window_start"
        )
        .to_arrow_table()
        .to_pylist()
    )
    out = [title]
    for metric, label in (
        ("js_distance", "Jensen-Shannon distance"),
        ("p_value", "test p-value (KS for numbers, chi-square for categories)"),
    ):
        fig = go.Figure()
        by_col: dict[str, tuple[list[Any], list[Any]]] = {}
        for r in rows:
            value = (
                r["js_distance"]
                if metric == "js_distance"
                else (r["ks_pvalue"] if r["ks_pvalue"] is not None else r["chi_squared_pvalue"])
            )
            xs, ys = by_col.setdefault(r["column_name"], ([], []))
            xs.append(r["window_start"])
            ys.append(value)
        for col, (xs, ys) in by_col.items():
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=col))
        fig.update_layout(title=f"{label} vs {drift_type.lower()}, per column")
        if metric == "p_value":
            fig.update_yaxes(type="log")
        out.append(_div(fig, f"drift-{metric}"))
    return "".join(out)


def _sample(con: duckdb.DuckDBPyConnection, source: Any, column: str, where: str = "") -> list[Any]:
    con.register("__s", source)
    try:
        q = '"' + column.replace('"', '""') + '"'
        return [
            r[0]
            for r in con.sql(
                f"SELECT {q} FROM __s WHERE {q} IS NOT NULL {where} "
                f"USING SAMPLE reservoir({SAMPLE_ROWS} ROWS) REPEATABLE (42)"
            ).fetchall()
        ]
    finally:
        con.unregister("__s")


def _distribution_section(
    go: Any,
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    info: MonitorInfo,
    profile: pa.Table | None,
) -> str:
    title = "<h2>Distributions: baseline vs latest window</h2>"
    if profile is None or profile.num_rows == 0:
        return title + '<p class="empty">No profile metrics yet.</p>'
    latest = con.sql(
        f"SELECT max(window_start) FROM profile WHERE log_type = 'INPUT' AND {_gran_filter(info)}"
    ).fetchall()
    latest_start = latest[0][0] if latest else None
    cols = con.sql(
        "SELECT DISTINCT column_name, data_type FROM profile WHERE column_name <> ':table' "
        "ORDER BY column_name"
    ).fetchall()[:MAX_DIST_COLUMNS]
    dataset, _ = ws.tables.dataset(info.table_name)
    base_ds = None
    if info.baseline_table_name:
        base_ds, _ = ws.tables.dataset(info.baseline_table_name)
    where = ""
    ts_col = getattr(info.profile, "timestamp_col", None)
    granularity = _first_granularity(info)
    if ts_col and granularity and latest_start is not None:
        from lakebox.monitoring._compute import window_sql

        start = latest_start.replace(tzinfo=None).isoformat(sep=" ")
        where = f"AND {window_sql(ts_col, granularity)} = TIMESTAMP '{start}'"
    out = [
        title,
        f"<p>Latest window starts {html.escape(str(latest_start))}; samples of "
        f"{SAMPLE_ROWS} rows.</p>",
    ]
    for i, (col, kind) in enumerate(cols):
        fig = go.Figure()
        current = _sample(con, dataset, col, where)
        reference = _sample(con, base_ds, col) if base_ds is not None else []
        if kind == "numeric" and current:
            both = np.asarray(reference + current, dtype=float)
            edges = np.histogram_bin_edges(both, bins=30)
            centers = ((edges[:-1] + edges[1:]) / 2).tolist()
            for name, values in (("baseline", reference), ("current", current)):
                if values:
                    counts = np.histogram(np.asarray(values, dtype=float), edges)[0]
                    fig.add_trace(
                        go.Bar(x=centers, y=(counts / len(values)).tolist(), name=name, opacity=0.6)
                    )
            fig.update_layout(barmode="overlay", bargap=0)
        else:
            for name, values in (("baseline", reference), ("current", current)):
                if not values:
                    continue
                freq: dict[str, int] = {}
                for v in values:
                    freq[str(v)] = freq.get(str(v), 0) + 1
                keys = sorted(freq)
                fig.add_trace(go.Bar(x=keys, y=[freq[k] / len(values) for k in keys], name=name))
        fig.update_layout(title=f"{col}")
        out.append(_div(fig, f"dist-{i}"))
    return "".join(out)


def _quality_section(
    go: Any, con: duckdb.DuckDBPyConnection, info: MonitorInfo, profile: pa.Table | None
) -> str:
    title = "<h2>Quality and volume over time</h2>"
    if profile is None or profile.num_rows == 0:
        return title + '<p class="empty">No profile metrics yet.</p>'
    problem = getattr(info.profile, "problem_type", None)
    metrics = (
        ["accuracy_score", "f1_score", "roc_auc"]
        if problem == "classification"
        else ["rmse", "mae", "r2"]
    )
    rows = (
        con.sql(
            f"SELECT window_start, coalesce(model_id, 'all models') AS model, count, "
            f"{', '.join(metrics)} FROM profile WHERE column_name = ':table' AND "
            f"log_type = 'INPUT' AND slice_key IS NULL AND {_gran_filter(info)} "
            "ORDER BY model, window_start"
        )
        .to_arrow_table()
        .to_pylist()
    )
    out = [title]
    if (
        problem
        and info.profile.kind == "inference_log"
        and getattr(info.profile, "label_col", None)
    ):
        fig = go.Figure()
        for metric in metrics:
            for model in sorted({r["model"] for r in rows}):
                pts = [r for r in rows if r["model"] == model and r[metric] is not None]
                fig.add_trace(
                    go.Scatter(
                        x=[r["window_start"] for r in pts],
                        y=[r[metric] for r in pts],
                        mode="lines+markers",
                        name=f"{metric} ({model})",
                    )
                )
        fig.update_layout(title="Model quality per window (rows with labels)")
        out.append(_div(fig, "quality"))
    fig = go.Figure()
    for model in sorted({r["model"] for r in rows}):
        pts = [r for r in rows if r["model"] == model]
        fig.add_trace(
            go.Bar(x=[r["window_start"] for r in pts], y=[r["count"] for r in pts], name=model)
        )
    fig.update_layout(title="Rows per window")
    out.append(_div(fig, "volume"))
    return "".join(out)


def _alert_section(ws: Workspace, info: MonitorInfo) -> str:
    events = ws.monitors.alert_history(info.table_name)
    rules = ws.monitors.list_alerts(info.table_name)
    out = ["<h2>Alerts</h2>"]
    if rules:
        out.append(
            "<p>Rules: "
            + "; ".join(
                html.escape(f"#{a.alert_id} {a.rule}" + (f" → job {a.job_id}" if a.job_id else ""))
                for a in rules
            )
            + "</p>"
        )
    if not events:
        out.append('<p class="empty">No alert has fired.</p>')
        return "".join(out)
    out.append(
        "<table id='alert-history'><tr><th>fired</th><th>rule</th><th>refresh</th>"
        "<th>job run</th><th>details</th></tr>"
    )
    for e in events[:200]:
        out.append(
            f"<tr><td>{_ms(e.fired_at)}</td><td>{html.escape(e.rule)}</td>"
            f"<td>{e.refresh_id}</td><td>{e.job_run_id or ''}</td>"
            f"<td>{html.escape(json.dumps(e.matches[:3], default=str))}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)
