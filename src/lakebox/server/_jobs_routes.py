"""Databricks Jobs API routes: ``/api/2.2/jobs/...``, also served under ``/api/2.1/jobs/...``.

Bodies and responses follow Databricks' JSON, so ``databricks-sdk``'s ``w.jobs`` works against
``lakebox up`` unchanged (``create``, ``get``, ``list``, ``update``, ``reset``, ``delete``,
``run_now(...).result()``, ``submit``, ``get_run``, ``list_runs``, ``cancel_run``,
``repair_run``, ``get_run_output``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body, Query
from starlette.concurrency import run_in_threadpool

from lakebox.errors import InvalidInput

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["build_router"]

_RUN_NOW_PARAMS = ("notebook_params", "python_named_params", "sql_params")


def _need(body: dict[str, Any], field: str) -> Any:
    if body.get(field) is None:
        raise InvalidInput(f"Missing required field {field!r}.")
    return body[field]


def _page(
    items: list[Any], limit: int, offset: int, page_token: str | None
) -> tuple[list[Any], dict[str, Any]]:
    start = int(page_token) if page_token and page_token.isdigit() else offset
    end = start + limit if limit else len(items)
    extra: dict[str, Any] = {"has_more": end < len(items)}
    if end < len(items):
        extra["next_page_token"] = str(end)
    if start > 0:
        extra["prev_page_token"] = str(max(0, start - (limit or start)))
    return items[start:end], extra


def _add_routes(router: APIRouter, ws: Workspace) -> None:
    from lakebox.jobs._wire import job_json, run_json

    @router.post("/jobs/create")
    async def create(body: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
        settings = {k: v for k, v in body.items() if k not in ("access_control_list",)}
        return {"job_id": await run_in_threadpool(ws.jobs.create, settings)}

    @router.get("/jobs/get")
    def get(job_id: int = Query(...)) -> dict[str, Any]:
        return job_json(ws.jobs.get(job_id))

    @router.get("/jobs/list")
    def list_jobs(
        limit: int = Query(20, ge=0, le=100),
        offset: int = Query(0, ge=0),
        page_token: str | None = None,
        name: str | None = None,
        expand_tasks: bool = False,
    ) -> dict[str, Any]:
        jobs = ws.jobs.list(name=name)
        page, extra = _page(jobs, limit, offset, page_token)
        out = []
        for job in page:
            item = job_json(job)
            if not expand_tasks:
                item["settings"] = {
                    k: v for k, v in item["settings"].items() if k not in ("tasks", "job_clusters")
                }
            out.append(item)
        return {"jobs": out, **extra} if out else extra

    @router.post("/jobs/update")
    async def update(body: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
        await run_in_threadpool(
            ws.jobs.update,
            _need(body, "job_id"),
            body.get("new_settings") or {},
            fields_to_remove=body.get("fields_to_remove"),
        )
        return {}

    @router.post("/jobs/reset")
    async def reset(body: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
        await run_in_threadpool(ws.jobs.reset, _need(body, "job_id"), _need(body, "new_settings"))
        return {}

    @router.post("/jobs/delete")
    def delete(body: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
        ws.jobs.delete(_need(body, "job_id"))
        return {}

    @router.post("/jobs/run-now")
    def run_now(body: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
        params = dict(body.get("job_parameters") or {})
        for legacy in _RUN_NOW_PARAMS:  # older clients pass parameters per task type
            params.update(body.get(legacy) or {})
        run_id = ws.jobs.run_now(_need(body, "job_id"), job_parameters=params or None)
        return {"run_id": run_id, "number_in_job": run_id}

    @router.post("/jobs/runs/submit")
    async def submit(body: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
        settings = {
            k: v
            for k, v in body.items()
            if k not in ("run_name", "idempotency_token", "access_control_list")
        }
        settings.setdefault("name", body.get("run_name") or "Untitled")
        run_id = await run_in_threadpool(ws.jobs.submit, settings, run_name=body.get("run_name"))
        return {"run_id": run_id}

    @router.get("/jobs/runs/get")
    def get_run(
        run_id: int = Query(...), include_history: bool = False, page_token: str | None = None
    ) -> dict[str, Any]:
        return run_json(ws.jobs.get_run(run_id), include_history=include_history)

    @router.get("/jobs/runs/list")
    def list_runs(
        job_id: int | None = None,
        active_only: bool = False,
        completed_only: bool = False,
        limit: int = Query(25, ge=0, le=1000),
        offset: int = Query(0, ge=0),
        page_token: str | None = None,
        expand_tasks: bool = False,
    ) -> dict[str, Any]:
        start = int(page_token) if page_token and page_token.isdigit() else offset
        found = ws.jobs.list_runs(
            job_id,
            active_only=active_only,
            completed_only=completed_only,
            limit=(limit + 1) if limit else 0,
            offset=start,
        )
        more = bool(limit) and len(found) > limit
        page = found[:limit] if limit else found
        out: dict[str, Any] = {"has_more": more}
        if page:
            items = [run_json(r, include_history=False) for r in page]
            if not expand_tasks:
                for item in items:
                    item.pop("tasks", None)
            out["runs"] = items
        if more:
            out["next_page_token"] = str(start + limit)
        return out

    @router.post("/jobs/runs/cancel")
    def cancel_run(body: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
        ws.jobs.cancel_run(_need(body, "run_id"))
        return {}

    @router.post("/jobs/runs/cancel-all")
    def cancel_all(body: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
        if body.get("job_id") is not None:
            ws.jobs.cancel_all_runs(body["job_id"])
        else:
            for run in ws.jobs.list_runs(active_only=True, limit=0):
                ws.jobs.cancel_run(run.run_id)
        return {}

    @router.get("/jobs/runs/get-output")
    def get_output(run_id: int = Query(...)) -> dict[str, Any]:
        return ws.jobs.get_run_output(run_id)

    @router.post("/jobs/runs/repair")
    def repair(body: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
        params = dict(body.get("job_parameters") or {})
        for legacy in _RUN_NOW_PARAMS:
            params.update(body.get(legacy) or {})
        repair_id = ws.jobs.repair_run(
            _need(body, "run_id"),
            rerun_tasks=body.get("rerun_tasks"),
            rerun_all_failed_tasks=bool(body.get("rerun_all_failed_tasks")),
            rerun_dependent_tasks=bool(body.get("rerun_dependent_tasks")),
            job_parameters=params or None,
            latest_repair_id=body.get("latest_repair_id"),
        )
        return {"repair_id": repair_id}

    @router.post("/jobs/runs/delete")
    def delete_run(body: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
        ws.jobs.delete_run(_need(body, "run_id"))
        return {}


def build_router(ws: Workspace) -> APIRouter:
    router = APIRouter(tags=["jobs"])
    for version in ("2.2", "2.1"):
        sub = APIRouter(prefix=f"/api/{version}")
        _add_routes(sub, ws)
        router.include_router(sub)
    return router
