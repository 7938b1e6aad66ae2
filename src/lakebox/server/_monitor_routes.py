"""Quality-monitor REST routes shaped like Databricks'
``/api/2.1/unity-catalog/tables/{table_name}/monitor`` (create, get, update, delete) and
``.../monitor/refreshes`` (run, list, get), so ``databricks-sdk``'s ``w.quality_monitors``
works; plus ``/monitoring/reports/{table_name}`` serving the HTML dashboard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from lakebox.errors import InvalidInput
from lakebox.server._schema import ERROR_RESPONSES, UNSET, Answer, Body, Empty

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


# ---------------------------------------------------------------------- request bodies
class SnapshotProfile(Body):
    pass


class TimeSeriesProfile(Body):
    timestamp_col: str
    granularities: list[str] | None = Field(None, description='e.g. ["1 day"]')


class InferenceLogProfile(TimeSeriesProfile):
    model_id_col: str
    prediction_col: str
    label_col: str | None = None
    problem_type: str | None = Field(
        None, description="PROBLEM_TYPE_CLASSIFICATION or PROBLEM_TYPE_REGRESSION."
    )
    prediction_proba_col: str | None = None


class CustomMetricInput(Body):
    name: str
    definition: str
    input_columns: list[str] | None = None
    type: str | None = None
    output_data_type: str | None = None


class MonitorSettings(Body):
    """Databricks' create/update monitor request (give one profile to create)."""

    snapshot: SnapshotProfile | None = None
    time_series: TimeSeriesProfile | None = None
    inference_log: InferenceLogProfile | None = None
    baseline_table_name: str | None = None
    slicing_exprs: list[str] | None = None
    custom_metrics: list[CustomMetricInput] | None = None
    output_schema_name: str | None = None
    schedule: dict[str, Any] | None = None
    assets_dir: str | None = None
    columns: list[str] | None = None
    drift_sample_rows: int | None = Field(None, ge=100, le=2**31 - 1)


# ---------------------------------------------------------------------- answers
class MonitorInfoJson(Answer):
    """Databricks' ``MonitorInfo`` (plus lakebox's columns, drift_sample_rows, job id)."""

    table_name: str
    status: str
    monitor_version: int
    profile_metrics_table_name: str
    drift_metrics_table_name: str
    output_schema_name: str
    snapshot: dict[str, Any] | None = None
    time_series: dict[str, Any] | None = None
    inference_log: dict[str, Any] | None = None
    slicing_exprs: list[str]
    custom_metrics: list[dict[str, Any]]
    assets_dir: str | None = None
    baseline_table_name: str | None = None
    schedule: dict[str, Any] | None = None
    latest_monitor_failure_msg: str | None = None
    dashboard_id: str
    columns: list[str] | None = None
    drift_sample_rows: int | None = None
    refresh_job_id: int | None = None


class MonitorRefreshInfo(Answer):
    refresh_id: int
    state: str
    trigger: str
    start_time_ms: int
    end_time_ms: int | None = None
    message: str | None = None


class ListRefreshesResponse(Answer):
    refreshes: list[MonitorRefreshInfo]


_REFRESH_ID = Path(ge=0, le=2**63 - 1)


def build_router(ws: Workspace) -> APIRouter:
    router = APIRouter(tags=["monitors"], responses=ERROR_RESPONSES)

    def dump(info: Any) -> dict[str, Any]:
        return dict(info.to_api())

    @router.post(_PREFIX, response_model=MonitorInfoJson, **UNSET)
    async def create(table_name: str, body: MonitorSettings) -> dict[str, Any]:
        kwargs = _kwargs(body.fields())
        if "profile" not in kwargs:
            raise InvalidInput("A monitor needs one of snapshot, time_series or inference_log.")
        profile = kwargs.pop("profile")
        output = kwargs.get("output_schema_name")
        if output and output == ".".join(ws.tables.resolve(table_name).full_name.split(".")[:2]):
            kwargs["output_schema_name"] = None
        info = await run_in_threadpool(ws.monitors.create, table_name, profile, **kwargs)
        return dump(info)

    @router.get(_PREFIX, response_model=MonitorInfoJson, **UNSET)
    def get(table_name: str) -> dict[str, Any]:
        return dump(ws.monitors.get(table_name))

    @router.put(_PREFIX, response_model=MonitorInfoJson, **UNSET)
    async def update(table_name: str, body: MonitorSettings) -> dict[str, Any]:
        kwargs = _kwargs(body.fields())
        output = kwargs.get("output_schema_name")
        if output and output == ".".join(ws.tables.resolve(table_name).full_name.split(".")[:2]):
            kwargs["output_schema_name"] = None
        kwargs.pop("assets_dir", None)
        info = await run_in_threadpool(ws.monitors.update, table_name, **kwargs)
        return dump(info)

    @router.delete(_PREFIX, response_model=Empty)
    def delete(table_name: str) -> dict[str, Any]:
        ws.monitors.delete(table_name)
        return {}

    @router.post(_PREFIX + "/refreshes", response_model=MonitorRefreshInfo, **UNSET)
    async def run_refresh(table_name: str) -> dict[str, Any]:
        info = await run_in_threadpool(ws.monitors.refresh, table_name)
        return info.to_api()

    @router.get(_PREFIX + "/refreshes", response_model=ListRefreshesResponse, **UNSET)
    def list_refreshes(table_name: str) -> dict[str, Any]:
        return {"refreshes": [r.to_api() for r in ws.monitors.list_refreshes(table_name)]}

    @router.get(_PREFIX + "/refreshes/{refresh_id}", response_model=MonitorRefreshInfo, **UNSET)
    def get_refresh(table_name: str, refresh_id: int = _REFRESH_ID) -> dict[str, Any]:
        return ws.monitors.get_refresh(table_name, refresh_id).to_api()

    @router.post(_PREFIX + "/refreshes/{refresh_id}/cancel", response_model=Empty)
    def cancel_refresh(table_name: str, refresh_id: int = _REFRESH_ID) -> dict[str, Any]:
        refresh = ws.monitors.get_refresh(table_name, refresh_id)
        raise InvalidInput(
            f"Refresh {refresh.refresh_id} is {refresh.state}; lakebox refreshes "
            "run to completion and cannot be cancelled."
        )

    # A page, not an API: left out of the OpenAPI document (errors are still JSON).
    @router.get(
        "/monitoring/reports/{table_name}", response_class=HTMLResponse, include_in_schema=False
    )
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
