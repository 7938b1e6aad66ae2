"""``lakebox monitors ...``."""

from __future__ import annotations

from datetime import datetime, timezone

import typer
from rich.table import Table

from lakebox.cli._common import console, friendly_errors, workspace

app = typer.Typer(
    help="Data and model monitors: drift metrics, alerts, reports.", no_args_is_help=True
)


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@app.command()
@friendly_errors
def create(
    table_name: str = typer.Argument(..., help="The table to monitor."),
    profile: str = typer.Option("snapshot", help="snapshot, time-series or inference-log."),
    timestamp_col: str = typer.Option(None, help="Timestamp column (time-series, inference)."),
    granularity: list[str] = typer.Option(
        ["1 day"], "--granularity", "-g", help="Window size, e.g. '1 day' (repeatable)."
    ),
    model_id_col: str = typer.Option(None, help="Model id column (inference-log)."),
    prediction_col: str = typer.Option(None, help="Prediction column (inference-log)."),
    label_col: str = typer.Option(None, help="Label column (inference-log)."),
    problem_type: str = typer.Option("classification", help="classification or regression."),
    prediction_proba_col: str = typer.Option(None, help="Positive-class probability column."),
    baseline: str = typer.Option(None, help="Baseline table for BASELINE drift."),
    slice_expr: list[str] = typer.Option([], "--slice", help="Slicing expression (repeatable)."),
    column: list[str] = typer.Option([], "--column", help="Only these columns (repeatable)."),
) -> None:
    """Create a monitor on a table."""
    from lakebox.monitoring import InferenceLog, Snapshot, TimeSeries
    from lakebox.monitoring._profiles import Profile

    prof: Profile
    kind = profile.replace("_", "-").lower()
    if kind == "snapshot":
        prof = Snapshot()
    elif kind == "time-series":
        prof = TimeSeries(timestamp_col, list(granularity))
    elif kind == "inference-log":
        prof = InferenceLog(
            timestamp_col,
            list(granularity),
            model_id_col=model_id_col,
            prediction_col=prediction_col,
            label_col=label_col,
            problem_type=problem_type,
            prediction_proba_col=prediction_proba_col,
        )
    else:
        raise typer.BadParameter(
            f"--profile {profile!r}: use snapshot, time-series or inference-log."
        )
    info = workspace().monitors.create(
        table_name,
        prof,
        baseline_table_name=baseline,
        slicing_exprs=list(slice_expr),
        columns=list(column) or None,
    )
    console.print(
        f"Monitor created on [bold]{info.table_name}[/]; metric tables "
        f"{info.profile_metrics_table_name}, {info.drift_metrics_table_name}"
    )


@app.command("list")
@friendly_errors
def list_() -> None:
    """List monitors."""
    out = Table("table", "profile", "baseline", "version", "status")
    for info in workspace().monitors.list():
        out.add_row(
            info.table_name,
            info.profile.kind,
            info.baseline_table_name or "",
            str(info.monitor_version),
            info.status,
        )
    console.print(out)


@app.command()
@friendly_errors
def refresh(
    table_name: str,
    full: bool = typer.Option(False, "--full", help="Recompute every window."),
) -> None:
    """Refresh a monitor's metric tables (new or changed windows only, unless --full)."""
    info = workspace().monitors.refresh(table_name, full=full)
    console.print(f"Refresh {info.refresh_id} {info.state}: {info.message}", highlight=False)
    for alert in info.alerts:
        console.print(f"[bold red]ALERT[/] {alert.message}", highlight=False)


@app.command()
@friendly_errors
def refreshes(table_name: str) -> None:
    """List a monitor's refreshes."""
    out = Table("id", "state", "trigger", "mode", "started", "message")
    for r in workspace().monitors.list_refreshes(table_name):
        out.add_row(
            str(r.refresh_id), r.state, r.trigger, r.mode, _when(r.start_time_ms), r.message or ""
        )
    console.print(out)


@app.command()
@friendly_errors
def report(table_name: str) -> None:
    """Write the monitor's HTML dashboard and print its path."""
    path = workspace().monitors.report(table_name)
    console.print(f"Report: {path}", highlight=False)
    console.print(f"Served by lakebox up at /monitoring/reports/{table_name}", highlight=False)


@app.command("add-alert")
@friendly_errors
def add_alert(
    table_name: str,
    rule: str = typer.Argument(..., help="SQL condition, e.g. 'js_distance > 0.2'."),
    job_id: int = typer.Option(None, help="Job to run when the rule fires."),
) -> None:
    """Add an alert rule checked after each refresh."""
    alert = workspace().monitors.add_alert(table_name, rule, job_id=job_id)
    console.print(f"Alert {alert.alert_id} on {alert.table_name}: {alert.rule}", highlight=False)


@app.command()
@friendly_errors
def alerts(table_name: str) -> None:
    """Show a monitor's alert rules and their history."""
    ws = workspace()
    out = Table("id", "rule", "job")
    for a in ws.monitors.list_alerts(table_name):
        out.add_row(str(a.alert_id), a.rule, str(a.job_id or ""))
    console.print(out)
    hist = Table("fired", "alert", "refresh", "job run", "message")
    for e in ws.monitors.alert_history(table_name):
        hist.add_row(
            _when(e.fired_at),
            str(e.alert_id),
            str(e.refresh_id or ""),
            str(e.job_run_id or ""),
            e.message or "",
        )
    console.print(hist)


@app.command()
@friendly_errors
def delete(
    table_name: str,
    drop_metric_tables: bool = typer.Option(False, help="Also drop the metric tables."),
) -> None:
    """Delete a monitor (its metric tables stay unless --drop-metric-tables)."""
    workspace().monitors.delete(table_name, drop_metric_tables=drop_metric_tables)
    console.print(f"Monitor on {table_name} deleted.")
