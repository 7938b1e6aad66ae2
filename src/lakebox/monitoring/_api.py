"""``ws.monitors``: create, refresh and alert on data and model monitors."""

from __future__ import annotations

import builtins
import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlalchemy import delete, select, update

from lakebox.errors import AlreadyExists, Conflict, InvalidInput, NotFound, close_matches
from lakebox.monitoring import _schema as s
from lakebox.monitoring._alerts import check_rule, matching_rows
from lakebox.monitoring._compute import group_data, load_frame, plan_columns
from lakebox.monitoring._monitor import DEFAULT_DRIFT_SAMPLE_ROWS, MonitorInfo
from lakebox.monitoring._profiles import CustomMetric, Profile

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["Alert", "AlertEvent", "Monitors", "RefreshInfo"]

ALERT_EVENT = "MONITOR_ALERT_TRIGGERED"
STALE_REFRESH_MS = 6 * 3600 * 1000


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class RefreshInfo:
    """One refresh, as Databricks' ``MonitorRefreshInfo`` (plus ``mode`` and fired alerts)."""

    refresh_id: int
    table_name: str
    state: str
    trigger: str
    mode: str
    start_time_ms: int
    end_time_ms: int | None = None
    message: str | None = None
    alerts: list[AlertEvent] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        out = {
            "refresh_id": self.refresh_id,
            "state": self.state,
            "trigger": self.trigger,
            "start_time_ms": self.start_time_ms,
            "end_time_ms": self.end_time_ms,
            "message": self.message,
        }
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class Alert:
    """A threshold rule on a monitor's metric tables, and the job it starts."""

    alert_id: int
    table_name: str
    rule: str
    job_id: int | None
    job_parameters: dict[str, Any]
    created_at: int


@dataclass(frozen=True)
class AlertEvent:
    """One firing of an alert."""

    id: int
    alert_id: int
    table_name: str
    refresh_id: int | None
    rule: str
    fired_at: int
    matches: list[dict[str, Any]]
    job_run_id: int | None
    event_id: str | None
    message: str | None


class Monitors:
    """Monitors on catalog tables: profile and drift metric tables, alerts, reports.

    Example:
        >>> from lakebox.monitoring import InferenceLog
        >>> ws.monitors.create("main.serving.churn_log",                      # doctest: +SKIP
        ...     InferenceLog("ts", ["1 day"], model_id_col="model_version",
        ...                  prediction_col="prediction", label_col="churned"),
        ...     baseline_table_name="main.fs.training_snapshot")
        >>> ws.monitors.add_alert("main.serving.churn_log", "js_distance > 0.2",
        ...                       job_id=retrain_job_id)                       # doctest: +SKIP
        >>> ws.monitors.refresh("main.serving.churn_log").alerts              # doctest: +SKIP
    """

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.db = ws.metadata

    # ------------------------------------------------------------------ CRUD
    def create(
        self,
        table_name: str,
        profile: Profile,
        *,
        baseline_table_name: str | None = None,
        slicing_exprs: list[str] | None = None,
        custom_metrics: list[CustomMetric] | None = None,
        output_schema_name: str | None = None,
        columns: list[str] | None = None,
        drift_sample_rows: int | None = DEFAULT_DRIFT_SAMPLE_ROWS,
        schedule: dict[str, Any] | None = None,
        assets_dir: str | None = None,
    ) -> MonitorInfo:
        """Create a monitor on a table (checked against the table now, refreshed later).

        Args:
            table_name: the table to watch.
            profile: ``Snapshot()``, ``TimeSeries(...)`` or ``InferenceLog(...)``.
            baseline_table_name: reference rows for BASELINE drift (same columns).
            slicing_exprs: SQL expressions to slice by, e.g. ``["plan", "age > 40"]``.
            custom_metrics: :class:`CustomMetric` SQL metrics.
            output_schema_name: ``catalog.schema`` for the metric tables.
            columns: columns to profile (default: all numeric, string and boolean ones).
            drift_sample_rows: per-side row cap for KS and Wasserstein (None: all rows).
            schedule: ``{"quartz_cron_expression": "0 0 6 * * ?", "timezone_id": "UTC"}``:
                a job that refreshes the monitor on that schedule.
            assets_dir: kept for Databricks compatibility (reports go to ``<home>/reports``).
        """
        name = self.ws.tables.resolve(table_name).full_name
        info = MonitorInfo(
            table_name=name,
            profile=profile,
            baseline_table_name=(
                self.ws.tables.resolve(baseline_table_name).full_name
                if baseline_table_name
                else None
            ),
            slicing_exprs=list(slicing_exprs or []),
            custom_metrics=list(custom_metrics or []),
            output_schema_name=output_schema_name,
            columns=columns,
            drift_sample_rows=drift_sample_rows,
            schedule=schedule,
            assets_dir=assets_dir,
        )
        self._validate(info)
        with self.db.begin() as conn:
            exists = conn.execute(
                select(s.monitors.c.table_name).where(s.monitors.c.table_name == name)
            ).first()
            if exists:
                raise AlreadyExists(
                    f"Table {name!r} already has a monitor; update or delete it "
                    "first (lakebox monitors delete)."
                )
            now = _now_ms()
            conn.execute(
                s.monitors.insert().values(
                    table_name=name,
                    config=json.dumps(info.to_api()),
                    status=info.status,
                    monitor_version=1,
                    state="{}",
                    created_at=now,
                    updated_at=now,
                )
            )
        if schedule:
            info = self._schedule(info)
        return info

    def get(self, table_name: str) -> MonitorInfo:
        """The monitor on ``table_name``.

        Raises:
            NotFound: the table has no monitor.
        """
        row = self._row(table_name)
        return self._info(row)

    def list(self) -> builtins.list[MonitorInfo]:
        """Every monitor, by table name."""
        with self.db.begin() as conn:
            rows = conn.execute(select(s.monitors).order_by(s.monitors.c.table_name)).all()
        return [self._info(r) for r in rows]

    def update(self, table_name: str, **changes: Any) -> MonitorInfo:
        """Change a monitor's settings (same keywords as :meth:`create`, plus ``profile``).

        The next refresh recomputes every window when the change shapes the metrics.
        """
        current = self.get(table_name)
        allowed = {
            "profile",
            "baseline_table_name",
            "slicing_exprs",
            "custom_metrics",
            "output_schema_name",
            "columns",
            "drift_sample_rows",
            "schedule",
            "assets_dir",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidInput(
                f"Cannot update {sorted(unknown)} of a monitor; updatable: "
                f"{', '.join(sorted(allowed))}."
            )
        if changes.get("baseline_table_name"):
            changes["baseline_table_name"] = self.ws.tables.resolve(
                changes["baseline_table_name"]
            ).full_name
        info = current.with_changes(**changes, monitor_version=current.monitor_version + 1)
        self._validate(info)
        with self.db.begin() as conn:
            conn.execute(
                update(s.monitors)
                .where(s.monitors.c.table_name == info.table_name)
                .values(
                    config=json.dumps(info.to_api()),
                    monitor_version=info.monitor_version,
                    updated_at=_now_ms(),
                )
            )
        if "schedule" in changes:
            info = self._schedule(info)
        return info

    def delete(self, table_name: str, *, drop_metric_tables: bool = False) -> None:
        """Delete a monitor, its alerts and history (metric tables stay unless asked)."""
        info = self.get(table_name)
        with self.db.begin() as conn:
            for table in (s.monitors, s.refreshes, s.alerts, s.alert_events):
                conn.execute(delete(table).where(table.c.table_name == info.table_name))
        if info.refresh_job_id is not None and "jobs" in self._jobs_available():
            with contextlib.suppress(Exception):  # the job may be gone already
                self.ws.jobs.delete(info.refresh_job_id)
        if drop_metric_tables:
            for name in (info.profile_metrics_table_name, info.drift_metrics_table_name):
                self.ws.tables.drop(name, missing_ok=True)

    # ------------------------------------------------------------------ refresh
    def refresh(
        self, table_name: str, *, full: bool = False, trigger: str = "MANUAL"
    ) -> RefreshInfo:
        """Refresh the metric tables, then check the alerts.

        Args:
            table_name: the monitored table.
            full: recompute every window (default: only new or changed windows).
            trigger: ``"MANUAL"`` or ``"SCHEDULE"`` (recorded with the refresh).

        Returns:
            The finished refresh, with the alerts it fired.

        Raises:
            Conflict: another refresh of this monitor is running.
        """
        from lakebox.monitoring._refresh import run_refresh

        row = self._row(table_name)
        info = self._info(row)
        start = _now_ms()
        with self.db.begin() as conn:
            active = (s.refreshes.c.table_name == info.table_name) & (
                s.refreshes.c.state.in_(("PENDING", "RUNNING"))
            )
            # a refresh whose process died never finishes: give up on it after a while
            conn.execute(
                update(s.refreshes)
                .where(active & (s.refreshes.c.start_time_ms < start - STALE_REFRESH_MS))
                .values(state="FAILED", end_time_ms=start, message="abandoned (no progress)")
            )
            running = conn.execute(select(s.refreshes.c.refresh_id).where(active)).first()
            if running:
                raise Conflict(
                    f"Refresh {running.refresh_id} of {info.table_name!r} is still "
                    "running; wait for it to finish."
                )
            refresh_id = int(
                conn.execute(
                    s.refreshes.insert().values(
                        table_name=info.table_name,
                        state="RUNNING",
                        trigger=trigger,
                        mode="full" if full else "incremental",
                        start_time_ms=start,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            )
        try:
            result = run_refresh(self.ws, info, json.loads(row.state), full=full)
        except Exception as exc:
            message = str(exc) if str(exc) else type(exc).__name__
            with self.db.begin() as conn:
                conn.execute(
                    update(s.refreshes)
                    .where(s.refreshes.c.refresh_id == refresh_id)
                    .values(state="FAILED", end_time_ms=_now_ms(), message=message)
                )
                conn.execute(
                    update(s.monitors)
                    .where(s.monitors.c.table_name == info.table_name)
                    .values(failure=message)
                )
            raise
        with self.db.begin() as conn:
            conn.execute(
                update(s.monitors)
                .where(s.monitors.c.table_name == info.table_name)
                .values(state=json.dumps(result.state, default=str), failure=None)
            )
        fired = self._check_alerts(info, refresh_id, result.profile, result.drift)
        message = result.message
        if fired:
            message += f"; {len(fired)} alert(s) fired"
        end = _now_ms()
        with self.db.begin() as conn:
            conn.execute(
                update(s.refreshes)
                .where(s.refreshes.c.refresh_id == refresh_id)
                .values(state="SUCCESS", end_time_ms=end, message=message, mode=result.mode)
            )
        return RefreshInfo(
            refresh_id, info.table_name, "SUCCESS", trigger, result.mode, start, end, message, fired
        )

    def list_refreshes(self, table_name: str) -> builtins.list[RefreshInfo]:
        """The monitor's refreshes, newest first."""
        name = self._row(table_name).table_name
        with self.db.begin() as conn:
            rows = conn.execute(
                select(s.refreshes)
                .where(s.refreshes.c.table_name == name)
                .order_by(s.refreshes.c.refresh_id.desc())
            ).all()
        return [self._refresh(r) for r in rows]

    def get_refresh(self, table_name: str, refresh_id: int) -> RefreshInfo:
        """One refresh of the monitor."""
        name = self._row(table_name).table_name
        with self.db.begin() as conn:
            row = conn.execute(
                select(s.refreshes).where(
                    (s.refreshes.c.table_name == name)
                    & (s.refreshes.c.refresh_id == int(refresh_id))
                )
            ).first()
        if row is None:
            raise NotFound(
                f"Monitor on {name!r} has no refresh {refresh_id}; list them with "
                "lakebox monitors refreshes."
            )
        return self._refresh(row)

    # ------------------------------------------------------------------ metrics
    def profile_metrics(self, table_name: str) -> pa.Table:
        """The ``<table>_profile_metrics`` table."""
        return self.ws.tables.read(self.get(table_name).profile_metrics_table_name, output="arrow")

    def drift_metrics(self, table_name: str) -> pa.Table:
        """The ``<table>_drift_metrics`` table."""
        return self.ws.tables.read(self.get(table_name).drift_metrics_table_name, output="arrow")

    # ------------------------------------------------------------------ alerts
    def add_alert(
        self,
        table_name: str,
        rule: str,
        *,
        job_id: int | None = None,
        job_parameters: dict[str, Any] | None = None,
    ) -> Alert:
        """Add a threshold rule checked after every refresh.

        Args:
            table_name: the monitored table.
            rule: a SQL condition over the drift or profile metrics table, e.g.
                ``"js_distance > 0.2"`` or ``"f1_score_delta < -0.05"``.
            job_id: a job to run when the rule fires (``ws.jobs.run_now``); its run gets
                the job parameters ``monitor_table``, ``alert_rule`` and ``refresh_id``.
            job_parameters: more job parameters for that run.
        """
        from lakebox.monitoring._refresh import _drift_schema, _profile_schema

        info = self.get(table_name)
        check_rule(rule, _profile_schema(info), _drift_schema(info))
        if job_id is not None:
            self.ws.jobs.get(int(job_id))  # NotFound names the job
        with self.db.begin() as conn:
            alert_id = int(
                conn.execute(
                    s.alerts.insert().values(
                        table_name=info.table_name,
                        rule=rule,
                        job_id=job_id,
                        job_parameters=json.dumps(job_parameters or {}),
                        created_at=_now_ms(),
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            )
        return self._alert_by_id(alert_id)

    def list_alerts(self, table_name: str) -> builtins.list[Alert]:
        """The monitor's alert rules."""
        name = self._row(table_name).table_name
        with self.db.begin() as conn:
            rows = conn.execute(
                select(s.alerts).where(s.alerts.c.table_name == name).order_by(s.alerts.c.alert_id)
            ).all()
        return [self._alert(r) for r in rows]

    def delete_alert(self, alert_id: int) -> None:
        """Remove an alert rule (its history stays)."""
        self._alert_by_id(alert_id)
        with self.db.begin() as conn:
            conn.execute(delete(s.alerts).where(s.alerts.c.alert_id == int(alert_id)))

    def alert_history(self, table_name: str) -> builtins.list[AlertEvent]:
        """Every firing of the monitor's alerts, newest first."""
        name = self._row(table_name).table_name
        with self.db.begin() as conn:
            rows = conn.execute(
                select(s.alert_events)
                .where(s.alert_events.c.table_name == name)
                .order_by(s.alert_events.c.id.desc())
            ).all()
        return [self._event(r) for r in rows]

    # ------------------------------------------------------------------ reports
    def report(self, table_name: str) -> Path:
        """Write the monitor's HTML dashboard to ``<home>/reports/`` and return its path."""
        from lakebox.monitoring._report import write_report

        return write_report(self.ws, self.get(table_name))

    # ------------------------------------------------------------------ internals
    def _row(self, table_name: str) -> Any:
        name = self.ws.tables.resolve(table_name).full_name
        with self.db.begin() as conn:
            row = conn.execute(select(s.monitors).where(s.monitors.c.table_name == name)).first()
            if row is None:
                names = [r.table_name for r in conn.execute(select(s.monitors.c.table_name))]
        if row is None:
            raise NotFound(
                f"Table {name!r} has no monitor.{close_matches(name, names)} "
                "Create one with ws.monitors.create or lakebox monitors create."
            )
        return row

    def _info(self, row: Any) -> MonitorInfo:
        info = MonitorInfo.from_api(row.table_name, json.loads(row.config))
        return info.with_changes(monitor_version=row.monitor_version, latest_failure=row.failure)

    def _validate(self, info: MonitorInfo) -> None:
        dataset, _ = self.ws.tables.dataset(info.table_name)
        plan = plan_columns(info, dataset.schema)
        from lakebox.monitoring._refresh import _connect

        con = _connect(self.ws)
        try:
            frame = load_frame(
                con,
                dataset,
                plan,
                list(plan.columns),
                info.slicing_exprs,
                window_sql=None,
                model=False,
                where="false",
            )
            group_data(
                con,
                frame,
                plan,
                list(plan.columns),
                info.slicing_exprs,
                list(info.custom_metrics),
                by_window=False,
                by_model=False,
            )
            if info.baseline_table_name:
                from lakebox.monitoring._compute import check_baseline

                bds, _ = self.ws.tables.dataset(info.baseline_table_name)
                check_baseline(info, plan, bds.schema)
        finally:
            con.close()
        from lakebox.monitoring._compute import _derived, _drift_custom

        rows = [{"column_name": c} for c in plan.columns]
        _derived(rows, list(info.custom_metrics))
        if any(m.type == "drift" for m in info.custom_metrics):
            from lakebox.monitoring._compute import Comparison, GroupedData

            empty = GroupedData(pa.table({}), {}, {}, {}, {})
            cmp = Comparison(
                (None, None, None, None), (None, None, None, None), "BASELINE", None, None, None
            )
            _drift_custom(
                [{"column_name": c, "__cmp": cmp} for c in plan.columns],
                list(info.custom_metrics),
                empty,
                empty,
            )
        for metric in info.custom_metrics:
            for col in metric.input_columns:
                if col != ":table" and col not in plan.columns:
                    raise InvalidInput(
                        f"Custom metric {metric.name!r}: input column {col!r} "
                        "is not a profiled column of "
                        f"{info.table_name!r}.{close_matches(col, plan.columns)}"
                    )

    def _jobs_available(self) -> str:
        try:
            import lakebox.jobs  # noqa: F401
        except ImportError:
            return ""
        return "jobs"

    def _schedule(self, info: MonitorInfo) -> MonitorInfo:
        """Create (or replace) the job that refreshes this monitor on its schedule."""
        if not self._jobs_available():
            raise InvalidInput("Scheduled refreshes need lakebox.jobs, which is not available.")
        if info.refresh_job_id is not None:
            with contextlib.suppress(Exception):
                self.ws.jobs.delete(info.refresh_job_id)
        job_id = None
        if info.schedule:
            job_id = self.ws.jobs.create(
                {
                    "name": f"refresh monitor {info.table_name}",
                    "schedule": dict(info.schedule),
                    "tasks": [
                        {
                            "task_key": "refresh",
                            "lakebox_task": {
                                "type": "refresh_monitor",
                                "parameters": {
                                    "table_name": info.table_name,
                                    "trigger": "SCHEDULE",
                                },
                            },
                        }
                    ],
                }
            )
        info = info.with_changes(refresh_job_id=job_id)
        with self.db.begin() as conn:
            conn.execute(
                update(s.monitors)
                .where(s.monitors.c.table_name == info.table_name)
                .values(config=json.dumps(info.to_api()))
            )
        return info

    def _check_alerts(
        self, info: MonitorInfo, refresh_id: int, profile: pa.Table, drift: pa.Table
    ) -> builtins.list[AlertEvent]:
        from lakebox.monitoring._alerts import rule_table

        fired = []
        for alert in self.list_alerts(info.table_name):
            which = rule_table(alert.rule, profile.schema, drift.schema)
            matches = matching_rows(alert.rule, drift if which == "drift" else profile)
            if not matches:
                continue
            fired.append(self._fire(info, alert, refresh_id, matches))
        return fired

    def _fire(
        self,
        info: MonitorInfo,
        alert: Alert,
        refresh_id: int,
        matches: builtins.list[dict[str, Any]],
    ) -> AlertEvent:
        columns = sorted({str(m.get("column_name")) for m in matches if m.get("column_name")})
        message = (
            f"alert {alert.alert_id} on {info.table_name}: {alert.rule!r} matched "
            f"{len(matches)} row(s)" + (f" (columns: {', '.join(columns)})" if columns else "")
        )
        event_id = _emit_event(self.ws, info.table_name, alert, refresh_id, matches, message)
        run_id = None
        if alert.job_id is not None:
            params = {
                **alert.job_parameters,
                "monitor_table": info.table_name,
                "alert_rule": alert.rule,
                "refresh_id": str(refresh_id),
            }
            try:
                run_id = self.ws.jobs.run_now(alert.job_id, job_parameters=params)
                message += f"; started run {run_id} of job {alert.job_id}"
            except Exception as exc:  # the alert is still recorded
                message += f"; could not start job {alert.job_id}: {exc}"
        with self.db.begin() as conn:
            event_row_id = int(
                conn.execute(
                    s.alert_events.insert().values(
                        alert_id=alert.alert_id,
                        table_name=info.table_name,
                        refresh_id=refresh_id,
                        rule=alert.rule,
                        fired_at=_now_ms(),
                        matches=json.dumps(matches, default=str),
                        job_run_id=run_id,
                        event_id=event_id,
                        message=message,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            )
            row = conn.execute(
                select(s.alert_events).where(s.alert_events.c.id == event_row_id)
            ).one()
        return self._event(row)

    def _alert_by_id(self, alert_id: int) -> Alert:
        with self.db.begin() as conn:
            row = conn.execute(select(s.alerts).where(s.alerts.c.alert_id == int(alert_id))).first()
        if row is None:
            raise NotFound(f"No monitor alert with id {alert_id}.")
        return self._alert(row)

    @staticmethod
    def _alert(row: Any) -> Alert:
        return Alert(
            row.alert_id,
            row.table_name,
            row.rule,
            row.job_id,
            json.loads(row.job_parameters or "{}"),
            row.created_at,
        )

    @staticmethod
    def _event(row: Any) -> AlertEvent:
        return AlertEvent(
            row.id,
            row.alert_id,
            row.table_name,
            row.refresh_id,
            row.rule,
            row.fired_at,
            json.loads(row.matches),
            row.job_run_id,
            row.event_id,
            row.message,
        )

    @staticmethod
    def _refresh(row: Any) -> RefreshInfo:
        return RefreshInfo(
            row.refresh_id,
            row.table_name,
            row.state,
            row.trigger,
            row.mode,
            row.start_time_ms,
            row.end_time_ms,
            row.message,
        )


def _emit_event(
    ws: Workspace,
    table_name: str,
    alert: Alert,
    refresh_id: int,
    matches: builtins.list[dict[str, Any]],
    message: str,
) -> str | None:
    """Adapter to the events outbox: emit ``MONITOR_ALERT_TRIGGERED`` when the events package
    knows that event type (it only accepts registered event names); otherwise None."""
    try:
        from lakebox.events import EVENTS, Outbox
    except ImportError:
        return None
    if ALERT_EVENT not in EVENTS:
        return None
    return Outbox(ws.metadata).emit(
        ALERT_EVENT,
        table_name=table_name,
        alert_id=alert.alert_id,
        rule=alert.rule,
        refresh_id=refresh_id,
        matches=matches[:10],
        text=message,
    )
