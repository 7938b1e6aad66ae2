"""Monitor pages: every monitor with its last refresh and open alerts, and one monitor's
dashboard (drift and quality over time, alert and refresh history, a Refresh button).

An alert is *open* while its rule holds in the newest window of the metric tables (a rule
that fired on an older window and no longer holds is history, not open).

The charts are the monitoring report's own figures (:mod:`lakebox.monitoring._report`),
drawn by the page's plotly.js. A refresh started here runs in a background thread of the
server; the page polls a small status fragment until the refresh has finished, then reloads
the charts and the history.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from lakebox.errors import Conflict
from lakebox.ui._csrf import require_csrf
from lakebox.ui._render import page_router, render

if TYPE_CHECKING:
    import pyarrow as pa

    from lakebox.monitoring import Alert, MonitorInfo, RefreshInfo
    from lakebox.workspace import Workspace

__all__ = ["build_pages"]

_ACTIVE = ("PENDING", "RUNNING")
_DONE = ("SUCCESS", "FAILED", "CANCELED")


def build_pages(ws: Workspace) -> APIRouter:
    """The ``/ui/monitors`` pages."""
    pages = page_router()
    refreshing = _Refreshing(ws)

    @pages.get("/monitors")
    def monitors(request: Request) -> Response:
        rows = [_summary(ws, info) for info in ws.monitors.list()]
        return render(request, "monitors/list.html", {"monitors": rows})

    @pages.get("/monitors/{table_name}")
    def dashboard(request: Request, table_name: str) -> Response:
        info = ws.monitors.get(table_name)
        refreshes = ws.monitors.list_refreshes(info.table_name)
        active = next((r for r in refreshes if r.state in _ACTIVE), None)
        return render(
            request,
            "monitors/dashboard.html",
            {
                "m": _summary(ws, info),
                "info": info,
                "profile": _profile_facts(info),
                "links": {
                    name: _catalog_href(name)
                    for name in (
                        info.table_name,
                        info.baseline_table_name,
                        info.profile_metrics_table_name,
                        info.drift_metrics_table_name,
                    )
                    if name
                },
                "active": active,
                "after": (active.refresh_id - 1) if active else 0,
            },
        )

    @pages.get("/monitors/{table_name}/charts")
    def charts(request: Request, table_name: str) -> Response:
        info = ws.monitors.get(table_name)
        return render(request, "monitors/_charts.html", {"sections": _chart_sections(ws, info)})

    @pages.get("/monitors/{table_name}/summary")
    def summary(request: Request, table_name: str) -> Response:
        info = ws.monitors.get(table_name)
        return render(request, "monitors/_summary.html", {"m": _summary(ws, info)})

    @pages.get("/monitors/{table_name}/activity")
    def activity(request: Request, table_name: str) -> Response:
        info = ws.monitors.get(table_name)
        return render(request, "monitors/_activity.html", _activity(ws, info))

    @pages.post("/monitors/{table_name}/refresh", dependencies=[Depends(require_csrf)])
    def refresh(request: Request, table_name: str, mode: str = Form("incremental")) -> Response:
        info = ws.monitors.get(table_name)
        after = refreshing.start(info.table_name, full=mode == "full")
        return _status(request, ws, refreshing, info.table_name, after)

    @pages.get("/monitors/{table_name}/refresh-status")
    def refresh_status(request: Request, table_name: str, after: int = 0) -> Response:
        info = ws.monitors.get(table_name)
        return _status(request, ws, refreshing, info.table_name, after)

    return pages


class _Refreshing:
    """Refreshes started from the pages, each in its own thread; an error raised before
    the refresh was recorded (so the status fragment could not show it) is kept here."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.threads: dict[str, threading.Thread] = {}
        self.errors: dict[tuple[str, int], str] = {}
        self.lock = threading.Lock()

    def start(self, table_name: str, *, full: bool) -> int:
        """Start a refresh; returns the id of the newest refresh before it.

        Raises:
            Conflict: a refresh of this monitor is running.
        """
        with self.lock:
            thread = self.threads.get(table_name)
            refreshes = self.ws.monitors.list_refreshes(table_name)
            running = next((r for r in refreshes if r.state in _ACTIVE), None)
            if (thread is not None and thread.is_alive()) or running is not None:
                which = f"Refresh {running.refresh_id}" if running else "A refresh"
                raise Conflict(
                    f"{which} of {table_name!r} is still running; wait for it to finish "
                    "(this page shows its state)."
                )
            after = refreshes[0].refresh_id if refreshes else 0
            thread = threading.Thread(
                target=self._run,
                args=(table_name, after, full),
                name=f"lakebox-ui-refresh-{table_name}",
                daemon=True,
            )
            self.threads[table_name] = thread
            thread.start()
        return after

    def _run(self, table_name: str, after: int, full: bool) -> None:
        try:
            self.ws.monitors.refresh(table_name, full=full)
        except Exception as exc:  # recorded on the refresh too, when it got that far
            self.errors[(table_name, after)] = str(exc) or type(exc).__name__

    def running(self, table_name: str) -> bool:
        thread = self.threads.get(table_name)
        return thread is not None and thread.is_alive()


def _status(
    request: Request, ws: Workspace, refreshing: _Refreshing, table_name: str, after: int
) -> Response:
    """The state of the first refresh after ``after`` (polled until it is done)."""
    newer = [r for r in ws.monitors.list_refreshes(table_name) if r.refresh_id > after]
    current = newer[-1] if newer else None
    error = refreshing.errors.get((table_name, after))
    if current is not None:
        state, done = current.state, current.state in _DONE
    elif error is not None:
        state, done = "FAILED", True
    else:
        # started here and not recorded yet, or nothing is running at all
        state = "PENDING" if refreshing.running(table_name) else "NONE"
        done = state == "NONE"
    response = render(
        request,
        "monitors/_refresh_status.html",
        {
            "table_name": table_name,
            "after": after,
            "refresh": current,
            "state": state,
            "done": done,
            "error": error,
        },
    )
    if done and state != "NONE":
        response.headers["HX-Trigger"] = "monitor-refreshed"
    return response


# ---------------------------------------------------------------------- facts
def _catalog_href(name: str) -> str:
    return "/ui/catalog/" + "/".join(name.split("."))


def _open_alerts(ws: Workspace, info: MonitorInfo) -> list[Alert]:
    """The alert rules whose condition holds in the newest window of the metric tables
    (a rule that fired on an older window and no longer holds is not open)."""
    from lakebox.errors import LakeboxError
    from lakebox.monitoring import _report
    from lakebox.monitoring._alerts import matching_rows, rule_table

    rules = ws.monitors.list_alerts(info.table_name)
    if not rules:
        return []
    profile, drift = (_latest(t) for t in _report.metric_tables(ws, info))
    if profile is None or drift is None:
        return []
    found = []
    for alert in rules:
        try:
            which = rule_table(alert.rule, profile.schema, drift.schema)
            if matching_rows(alert.rule, drift if which == "drift" else profile, limit=1):
                found.append(alert)
        except LakeboxError:
            continue  # a rule the metric tables no longer fit: not open
    return found


def _latest(table: pa.Table | None) -> pa.Table | None:
    """The rows of the newest ``window_start`` (all rows when there is no window)."""
    import pyarrow.compute as pc

    if table is None or "window_start" not in table.column_names or table.num_rows == 0:
        return table
    newest = pc.max(table["window_start"])
    if not newest.is_valid:
        return table
    return table.filter(pc.equal(table["window_start"], newest))


def _summary(ws: Workspace, info: MonitorInfo) -> dict[str, Any]:
    """A monitor's list row: type, last refresh, open alerts."""
    refreshes = ws.monitors.list_refreshes(info.table_name)
    last = refreshes[0] if refreshes else None
    open_alerts = _open_alerts(ws, info)
    return {
        "table_name": info.table_name,
        "href": f"/ui/monitors/{info.table_name}",
        "catalog_href": _catalog_href(info.table_name),
        "kind": info.profile.kind,
        "baseline": info.baseline_table_name,
        "last": last,
        "last_kind": _state_kind(last.state) if last else "",
        "last_time": (last.end_time_ms or last.start_time_ms) if last else None,
        "open_alerts": open_alerts,
        "rules": len(ws.monitors.list_alerts(info.table_name)),
        "failure": info.latest_failure,
        "refreshes": len(refreshes),
    }


def _state_kind(state: str) -> str:
    return {
        "SUCCESS": "success",
        "FAILED": "failed",
        "CANCELED": "failed",
        "RUNNING": "running",
        "PENDING": "pending",
    }.get(state, "")


def _profile_facts(info: MonitorInfo) -> list[tuple[str, str]]:
    facts: list[tuple[str, str]] = [("type", info.profile.kind)]
    for key, value in info.profile.to_api().items():
        if value not in (None, [], {}):
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            facts.append((key.replace("_", " "), shown))
    if info.slicing_exprs:
        facts.append(("slices", ", ".join(info.slicing_exprs)))
    if info.columns:
        facts.append(("columns", ", ".join(info.columns)))
    if info.custom_metrics:
        facts.append(("custom metrics", ", ".join(m.name for m in info.custom_metrics)))
    if info.schedule:
        facts.append(("schedule", str(info.schedule.get("quartz_cron_expression", ""))))
    return facts


def _activity(ws: Workspace, info: MonitorInfo) -> dict[str, Any]:
    refreshes: list[RefreshInfo] = ws.monitors.list_refreshes(info.table_name)
    rules = ws.monitors.list_alerts(info.table_name)
    return {
        "table_name": info.table_name,
        "rules": rules,
        "alert_jobs": {a.alert_id: a.job_id for a in rules if a.job_id is not None},
        "open_ids": {a.alert_id for a in _open_alerts(ws, info)},
        "events": ws.monitors.alert_history(info.table_name)[:100],
        "refreshes": [
            {
                "r": r,
                "kind": _state_kind(r.state),
                "duration_ms": (r.end_time_ms - r.start_time_ms) if r.end_time_ms else None,
            }
            for r in refreshes[:50]
        ],
    }


def _chart_sections(ws: Workspace, info: MonitorInfo) -> list[dict[str, str]]:
    """The report's drift, quality and distribution sections (plotly divs drawn by the
    page's plotly.js), each as ``{"id", "html"}``."""
    from lakebox.monitoring._report import chart_sections

    sections = chart_sections(ws, info)
    return [{"id": key, "html": sections[key]} for key in ("drift", "quality", "distributions")]
