"""Databricks Jobs API routes: ``/api/2.2/jobs/...``, also served under ``/api/2.1/jobs/...``.

Bodies and responses follow Databricks' JSON, so ``databricks-sdk``'s ``w.jobs`` works against
``lakebox up`` unchanged (``create``, ``get``, ``list``, ``update``, ``reset``, ``delete``,
``run_now(...).result()``, ``submit``, ``get_run``, ``list_runs``, ``cancel_run``,
``repair_run``, ``get_run_output``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from lakebox.server._schema import ERROR_RESPONSES, UNSET, Answer, Body, Empty, page_start

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["build_router"]

_RUN_NOW_PARAMS = ("notebook_params", "python_named_params", "sql_params")


MAX_ID = 2**63 - 1  # ids are 64-bit integers in the metadata database
_JOB_ID = Field(ge=0, le=MAX_ID, description="The job's id.")
_RUN_ID = Field(ge=0, le=MAX_ID, description="The run's id (or a task run's id).")
_Params = dict[str, Any] | None


# ---------------------------------------------------------------------- request bodies
class JobSettings(Body):
    """Databricks' ``JobSettings``; lakebox validates tasks and the rest itself."""

    name: str | None = None
    tasks: list[dict[str, Any]] | None = None
    job_clusters: list[dict[str, Any]] | None = None
    parameters: list[dict[str, Any]] | None = None
    schedule: dict[str, Any] | None = None
    trigger: dict[str, Any] | None = None
    max_concurrent_runs: int | None = None
    timeout_seconds: int | None = None
    tags: dict[str, Any] | None = None


class SubmitRun(JobSettings):
    run_name: str | None = None
    idempotency_token: str | None = None


class JobId(Body):
    job_id: int = _JOB_ID


class UpdateJob(JobId):
    new_settings: JobSettings | None = None
    fields_to_remove: list[str] | None = None


class ResetJob(JobId):
    new_settings: JobSettings


class RunNow(JobId):
    job_parameters: _Params = None
    notebook_params: _Params = None
    python_named_params: _Params = None
    sql_params: _Params = None
    idempotency_token: str | None = None


class RunId(Body):
    run_id: int = _RUN_ID


class CancelAllRuns(Body):
    job_id: int | None = Field(None, ge=0, le=MAX_ID, description="Omit to cancel every run.")
    all_queued_runs: bool | None = None


class RepairRun(RunId):
    rerun_tasks: list[str] | None = None
    rerun_all_failed_tasks: bool = False
    rerun_dependent_tasks: bool = False
    latest_repair_id: int | None = Field(None, ge=0, le=MAX_ID)
    job_parameters: _Params = None
    notebook_params: _Params = None
    python_named_params: _Params = None
    sql_params: _Params = None


def _parameters(body: RunNow | RepairRun) -> dict[str, Any] | None:
    params = dict(body.job_parameters or {})
    for legacy in _RUN_NOW_PARAMS:  # older clients pass parameters per task type
        params.update(getattr(body, legacy) or {})
    return params or None


# ---------------------------------------------------------------------- answers
class CreateJobResponse(Answer):
    job_id: int


class JobJson(Answer):
    """Databricks' ``Job`` (``settings`` is the ``JobSettings`` given)."""

    job_id: int
    creator_user_name: str
    created_time: int
    settings: dict[str, Any]
    run_as_user_name: str


class Paged(Answer):
    has_more: bool
    next_page_token: str | None = None
    prev_page_token: str | None = None


class ListJobsResponse(Paged):
    jobs: list[JobJson] | None = None


class RunState(Answer):
    life_cycle_state: str
    state_message: str
    user_cancelled_or_timedout: bool
    result_state: str | None = None


class TerminationDetails(Answer):
    code: str
    type: str
    message: str


class RunStatus(Answer):
    state: str
    termination_details: TerminationDetails | None = None


class RunTask(Answer):
    run_id: int
    task_key: str
    attempt_number: int
    state: RunState
    status: RunStatus
    depends_on: list[dict[str, Any]]
    run_if: str
    start_time: int | None = None
    end_time: int | None = None


class JobParameter(Answer):
    name: str
    value: Any = None
    default: Any = None


class RunJson(Answer):
    """Databricks' ``Run``."""

    run_id: int
    number_in_job: int
    run_name: str
    run_type: str
    state: RunState
    status: RunStatus
    tasks: list[RunTask] | None = None
    job_parameters: list[JobParameter]
    job_id: int | None = None
    start_time: int | None = None
    end_time: int | None = None
    lakebox_attempts: list[RunTask] | None = None


class ListRunsResponse(Paged):
    runs: list[RunJson] | None = None


class RunNowResponse(Answer):
    run_id: int
    number_in_job: int


class SubmitRunResponse(Answer):
    run_id: int


class NotebookOutput(Answer):
    result: str
    truncated: bool


class RunOutput(Answer):
    """Databricks' ``RunOutput`` (plus ``logs``)."""

    metadata: RunJson
    notebook_output: NotebookOutput | None = None
    sql_output: Any = None
    error: str | None = None
    error_trace: str | None = None
    task_values: dict[str, Any] | None = None
    logs: str | None = None
    logs_truncated: bool | None = None


class RepairRunResponse(Answer):
    repair_id: int


def _page(
    items: list[Any], limit: int, offset: int, page_token: str | None
) -> tuple[list[Any], dict[str, Any]]:
    start = page_start(page_token, offset)
    end = start + limit if limit else len(items)
    extra: dict[str, Any] = {"has_more": end < len(items)}
    if end < len(items):
        extra["next_page_token"] = str(end)
    if start > 0:
        extra["prev_page_token"] = str(max(0, start - (limit or start)))
    return items[start:end], extra


def _add_routes(router: APIRouter, ws: Workspace) -> None:
    from lakebox.jobs._wire import job_json, run_json

    @router.post("/jobs/create", response_model=CreateJobResponse, **UNSET)
    async def create(body: JobSettings) -> dict[str, Any]:
        settings = {k: v for k, v in body.fields().items() if k != "access_control_list"}
        return {"job_id": await run_in_threadpool(ws.jobs.create, settings)}

    @router.get("/jobs/get", response_model=JobJson, **UNSET)
    def get(job_id: int = Query(..., ge=0, le=MAX_ID)) -> dict[str, Any]:
        return job_json(ws.jobs.get(job_id))

    @router.get("/jobs/list", response_model=ListJobsResponse, **UNSET)
    def list_jobs(
        limit: int = Query(20, ge=0, le=100),
        offset: int = Query(0, ge=0, le=MAX_ID),
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

    @router.post("/jobs/update", response_model=Empty)
    async def update(body: UpdateJob) -> dict[str, Any]:
        await run_in_threadpool(
            ws.jobs.update,
            body.job_id,
            body.new_settings.fields() if body.new_settings else {},
            fields_to_remove=body.fields_to_remove,
        )
        return {}

    @router.post("/jobs/reset", response_model=Empty)
    async def reset(body: ResetJob) -> dict[str, Any]:
        await run_in_threadpool(ws.jobs.reset, body.job_id, body.new_settings.fields())
        return {}

    @router.post("/jobs/delete", response_model=Empty)
    def delete(body: JobId) -> dict[str, Any]:
        ws.jobs.delete(body.job_id)
        return {}

    @router.post("/jobs/run-now", response_model=RunNowResponse, **UNSET)
    def run_now(body: RunNow) -> dict[str, Any]:
        run_id = ws.jobs.run_now(body.job_id, job_parameters=_parameters(body))
        return {"run_id": run_id, "number_in_job": run_id}

    @router.post("/jobs/runs/submit", response_model=SubmitRunResponse, **UNSET)
    async def submit(body: SubmitRun) -> dict[str, Any]:
        settings = {
            k: v
            for k, v in body.fields().items()
            if k not in ("run_name", "idempotency_token", "access_control_list")
        }
        settings.setdefault("name", body.run_name or "Untitled")
        run_id = await run_in_threadpool(ws.jobs.submit, settings, run_name=body.run_name)
        return {"run_id": run_id}

    @router.get("/jobs/runs/get", response_model=RunJson, **UNSET)
    def get_run(
        run_id: int = Query(..., ge=0, le=MAX_ID),
        include_history: bool = False,
        page_token: str | None = None,
    ) -> dict[str, Any]:
        return run_json(ws.jobs.get_run(run_id), include_history=include_history)

    @router.get("/jobs/runs/list", response_model=ListRunsResponse, **UNSET)
    def list_runs(
        job_id: int | None = Query(None, ge=0, le=MAX_ID),
        active_only: bool = False,
        completed_only: bool = False,
        limit: int = Query(25, ge=0, le=1000),
        offset: int = Query(0, ge=0, le=MAX_ID),
        page_token: str | None = None,
        expand_tasks: bool = False,
    ) -> dict[str, Any]:
        start = page_start(page_token, offset)
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

    @router.post("/jobs/runs/cancel", response_model=Empty)
    def cancel_run(body: RunId) -> dict[str, Any]:
        ws.jobs.cancel_run(body.run_id)
        return {}

    @router.post("/jobs/runs/cancel-all", response_model=Empty)
    def cancel_all(body: CancelAllRuns) -> dict[str, Any]:
        if body.job_id is not None:
            ws.jobs.cancel_all_runs(body.job_id)
        else:
            for run in ws.jobs.list_runs(active_only=True, limit=0):
                ws.jobs.cancel_run(run.run_id)
        return {}

    @router.get("/jobs/runs/get-output", response_model=RunOutput, **UNSET)
    def get_output(run_id: int = Query(..., ge=0, le=MAX_ID)) -> dict[str, Any]:
        return ws.jobs.get_run_output(run_id)

    @router.post("/jobs/runs/repair", response_model=RepairRunResponse, **UNSET)
    def repair(body: RepairRun) -> dict[str, Any]:
        repair_id = ws.jobs.repair_run(
            body.run_id,
            rerun_tasks=body.rerun_tasks,
            rerun_all_failed_tasks=body.rerun_all_failed_tasks,
            rerun_dependent_tasks=body.rerun_dependent_tasks,
            job_parameters=_parameters(body),
            latest_repair_id=body.latest_repair_id,
        )
        return {"repair_id": repair_id}

    @router.post("/jobs/runs/delete", response_model=Empty)
    def delete_run(body: RunId) -> dict[str, Any]:
        ws.jobs.delete_run(body.run_id)
        return {}


def build_router(ws: Workspace) -> APIRouter:
    router = APIRouter(tags=["jobs"], responses=ERROR_RESPONSES)
    for version in ("2.2", "2.1"):
        sub = APIRouter(prefix=f"/api/{version}")
        _add_routes(sub, ws)
        router.include_router(sub)
    return router
