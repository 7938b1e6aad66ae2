"""The ``refresh_monitor`` built-in job task (registered through the ``lakebox.task_types``
entry point, so jobs can refresh monitors on a schedule)."""

from __future__ import annotations

from typing import Any

__all__ = ["refresh_monitor"]


def refresh_monitor(
    ws: Any, table_name: str, full: bool = False, trigger: str = "SCHEDULE"
) -> dict[str, Any]:
    """Refresh the monitor on ``table_name``; returns the refresh id, mode and fired alerts."""
    if isinstance(full, str):
        full = full.lower() in ("1", "true", "yes")
    info = ws.monitors.refresh(table_name, full=bool(full), trigger=trigger)
    print(info.message)
    return {
        "refresh_id": info.refresh_id,
        "mode": info.mode,
        "alerts": [a.alert_id for a in info.alerts],
    }
