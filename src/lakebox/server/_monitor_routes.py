"""Quality-monitor REST routes shaped like Databricks'
``/api/2.1/unity-catalog/tables/{table_name}/monitor`` (create, get, update, delete) and
``.../monitor/refreshes`` (run, list, get), so ``databricks-sdk``'s ``w.quality_monitors``
works; plus ``/monitoring/reports/{table_name}`` serving the HTML dashboard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from lakebox.errors import InvalidInput

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["build_router"]

_PREFIX = "/api/2.1/unity-catalog/tables/{table_name}/monitor"
_CREATE_KEYS = (
    "snapshot",
    "time_series",
    "inference_log",
    "baseline_table_name",
    "slicing_exprs",
    "custom_metrics",
    "output_schema_name",
    "schedule",
    "assets_dir",
    "columns",
    "drift_sample_rows",
)


def _kwargs(body: dict[str, Any]) -> dict[str, Any]:
    from lakebox.monitoring._monitor import DEFAULT_DRIFT_SAMPLE_ROWS
    from lakebox.monitoring._profiles import CustomMetric, profile_from_dict

    out: dict[str, Any] = {}
    if any(body.get(k) is not None for k in ("snapshot", "time_series", "inference_log")):
        out["profile"] = profile_from_dict(body)
    for key in (
        "baseline_table_name",
        "slicing_exprs",
        "output_schema_name",
        "schedule",
        "assets_dir",
        "columns",
    ):
        if key in body:
            out[key] = body[key]
    if "custom_metrics" in body:
        out["custom_metrics"] = [CustomMetric.from_api(m) for m in body["custom_metrics"] or []]
    if "drift_sample_rows" in body:
        out["drift_sample_rows"] = body["drift_sample_rows"]
    elif "profile" in out:
        out.setdefault("drift_sample_rows", DEFAULT_DRIFT_SAMPLE_ROWS)
    return out


def build_router(ws: Workspace) -> APIRouter:
    router = APIRouter(tags=["monitors"])

    def dump(info: Any) -> dict[str, Any]:
        return dict(info.to_api())

    @router.post(_PREFIX)
    async def create(
        table_name: str, body: dict[str, Any] = Body(default_factory=dict)
    ) -> dict[str, Any]:
        kwargs = _kwargs(body)
        if "profile" not in kwargs:
            raise InvalidInput("A monitor needs one of snapshot, time_series or inference_log.")
        profile = kwargs.pop("profile")
        output = kwargs.get("output_schema_name")
        if output and output == ".".join(ws.tables.resolve(table_name).full_name.split(".")[:2]):
            kwargs["output_schema_name"] = None
        info = await run_in_threadpool(ws.monitors.create, table_name, profile, **kwargs)
        return dump(info)

    @router.get(_PREFIX)
    def get(table_name: str) -> dict[str, Any]:
        return dump(ws.monitors.get(table_name))

    @router.put(_PREFIX)
    async def update(
        table_name: str, body: dict[str, Any] = Body(default_factory=dict)
    ) -> dict[str, Any]:
        kwargs = _kwargs(body)
        output = kwargs.get("output_schema_name")
        if output and output == ".".join(ws.tables.resolve(table_name).full_name.split(".")[:2]):
            kwargs["output_schema_name"] = None
        kwargs.pop("assets_dir", None)
        info = await run_in_threadpool(ws.monitors.update, table_name, **kwargs)
        return dump(info)

    @router.delete(_PREFIX)
    def delete(table_name: str) -> dict[str, Any]:
        ws.monitors.delete(table_name)
        return {}

    @router.post(_PREFIX + "/refreshes")
    async def run_refresh(table_name: str) -> dict[str, Any]:
        info = await run_in_threadpool(ws.monitors.refresh, table_name)
        return info.to_api()

    @router.get(_PREFIX + "/refreshes")
    def list_refreshes(table_name: str) -> dict[str, Any]:
        return {"refreshes": [r.to_api() for r in ws.monitors.list_refreshes(table_name)]}

    @router.get(_PREFIX + "/refreshes/{refresh_id}")
    def get_refresh(table_name: str, refresh_id: int) -> dict[str, Any]:
        return ws.monitors.get_refresh(table_name, refresh_id).to_api()

    @router.post(_PREFIX + "/refreshes/{refresh_id}/cancel")
    def cancel_refresh(table_name: str, refresh_id: int) -> dict[str, Any]:
        refresh = ws.monitors.get_refresh(table_name, refresh_id)
        raise InvalidInput(
            f"Refresh {refresh.refresh_id} is {refresh.state}; lakebox refreshes "
            "run to completion and cannot be cancelled."
        )

    @router.get("/monitoring/reports/{table_name}", response_class=HTMLResponse)
    async def report(table_name: str) -> HTMLResponse:
        from lakebox.monitoring._report import report_path

        info = ws.monitors.get(table_name)
        path = report_path(ws, info.table_name)
        refreshes = ws.monitors.list_refreshes(info.table_name)
        last = max((r.end_time_ms or 0 for r in refreshes), default=0)
        if not path.exists() or path.stat().st_mtime * 1000 < last:  # stale: re-render
            path = await run_in_threadpool(ws.monitors.report, table_name)
        return HTMLResponse(path.read_text(encoding="utf-8"))

    return router
