"""Model serving REST routes: Databricks' ``/api/2.0/serving-endpoints`` management API,
``/serving-endpoints/{name}/invocations`` (and per served model), ``/metrics`` and ``/ready``.

The invocation routes are plain Starlette routes (no FastAPI parameter resolution on the hot
path); they answer with the served model's name in the ``served-model-name`` header.
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from lakebox.errors import LakeboxError
from lakebox.server._schema import ERROR_RESPONSES, UNSET, Answer, Body, Empty, ErrorResponse

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["build_router"]

_JSON = "application/json"


def _error(exc: LakeboxError) -> Response:
    return Response(json.dumps(exc.to_json()), status_code=exc.http_status, media_type=_JSON)


async def _read_body(request: Request, limit: int) -> bytes:
    from lakebox.serving._runtime import check_body_size

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        check_body_size(int(declared), limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        check_body_size(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------------- request bodies
class EndpointCoreConfig(Body):
    """Databricks' ``EndpointCoreConfigInput`` (plus lakebox's ``inference_table``); the
    entries are checked by :mod:`lakebox.serving`."""

    served_entities: list[dict[str, Any]] | None = Field(
        None, description='e.g. [{"entity_name": "churn", "entity_version": "1"}]'
    )
    served_models: list[dict[str, Any]] | None = None
    traffic_config: dict[str, Any] | None = None
    auto_capture_config: dict[str, Any] | None = None
    inference_table: str | None = None


class EndpointTag(Body):
    key: str
    value: str | None = None


class CreateServingEndpoint(Body):
    name: str = Field(description="1-63 letters, digits, '-' or '_'.")
    config: EndpointCoreConfig
    description: str | None = None
    tags: list[EndpointTag] | None = None


# ---------------------------------------------------------------------- answers
class EndpointState(Answer):
    ready: str
    config_update: str
    reason: str | None = None


class ServedEntityOut(Answer):
    name: str
    entity_name: str
    entity_version: str | None = None
    workers: int
    state: dict[str, Any] | None = None


class EndpointConfigOut(Answer):
    served_entities: list[ServedEntityOut]
    served_models: list[dict[str, Any]]
    traffic_config: dict[str, Any]
    config_version: int
    inference_table: str | None = None


class ServingEndpointDetailed(Answer):
    """Databricks' ``ServingEndpointDetailed``."""

    name: str
    id: str
    creator: str | None = None
    creation_timestamp: int
    last_updated_timestamp: int
    state: EndpointState
    tags: list[dict[str, Any]] | None = None
    permission_level: str
    description: str | None = None
    config: EndpointConfigOut | None = None
    pending_config: EndpointConfigOut | None = None


class ListEndpointsResponse(Answer):
    endpoints: list[ServingEndpointDetailed]


class QueryEndpointInput(Body):
    """Databricks' ``QueryEndpointInput``: one of the four input forms (or a ``text/csv``
    body), plus optional ``params``."""

    dataframe_split: dict[str, Any] | None = Field(
        None, description='{"columns": [...], "data": [[...], ...]}'
    )
    dataframe_records: list[dict[str, Any]] | None = None
    instances: list[Any] | None = None
    inputs: Any = None
    params: dict[str, Any] | None = None
    client_request_id: str | None = None


class QueryEndpointResponse(Answer):
    predictions: Any


_QUERY_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "The request body is over the size limit."},
}


def build_router(ws: Workspace) -> APIRouter:
    serving = ws.serving
    runtime = serving.runtime

    def start() -> None:
        threading.Thread(target=runtime.load_all, name="lakebox-serving-load", daemon=True).start()

    def stop() -> None:
        runtime.close()

    router = APIRouter(
        tags=["serving"], on_startup=[start], on_shutdown=[stop], responses=ERROR_RESPONSES
    )

    def _deploy_later(name: str) -> None:
        def run() -> None:
            with contextlib.suppress(LakeboxError):  # deleted meanwhile
                runtime.deploy(serving.store.get(name))

        threading.Thread(target=run, name=f"lakebox-serving-deploy-{name}", daemon=True).start()

    # ----------------------------------------------------------------- management
    _detailed = {"response_model": ServingEndpointDetailed, **UNSET}

    @router.post("/api/2.0/serving-endpoints", **_detailed)
    def create(body: CreateServingEndpoint) -> dict[str, Any]:
        from lakebox.serving import endpoint_json
        from lakebox.serving._config import check_endpoint_name

        name = check_endpoint_name(body.name)
        record = serving.create_endpoint(
            name,
            config=body.config.fields(),
            description=body.description,
            tags={t.key: t.value or "" for t in body.tags or []},
            wait=False,
        )
        _deploy_later(record.name)
        return endpoint_json(record)

    @router.get("/api/2.0/serving-endpoints", response_model=ListEndpointsResponse, **UNSET)
    def list_endpoints() -> dict[str, Any]:
        from lakebox.serving import endpoint_json

        return {"endpoints": [endpoint_json(r) for r in serving.list_endpoints()]}

    @router.get("/api/2.0/serving-endpoints/{name}", **_detailed)
    def get(name: str) -> dict[str, Any]:
        from lakebox.serving import endpoint_json

        return endpoint_json(serving.get_endpoint(name))

    @router.put("/api/2.0/serving-endpoints/{name}/config", **_detailed)
    def update_config(name: str, body: EndpointCoreConfig) -> dict[str, Any]:
        from lakebox.serving import endpoint_json

        record = serving.update_config(name, config=body.fields(), wait=False)
        _deploy_later(name)
        return endpoint_json(record)

    @router.delete("/api/2.0/serving-endpoints/{name}", response_model=Empty)
    def delete(name: str) -> dict[str, Any]:
        serving.delete_endpoint(name)
        return {}

    # ----------------------------------------------------------------- invocations
    async def invoke(request: Request) -> Response:
        params = request.path_params
        try:
            body = await _read_body(request, serving.max_body_bytes)
        except LakeboxError as exc:
            return _error(exc)
        result = await runtime.invoke(
            params["name"],
            body,
            request.headers.get("content-type", _JSON),
            served_model=params.get("served_model"),
        )
        headers = {"served-model-name": result.served_model} if result.served_model else None
        return Response(result.body, status_code=result.status, media_type=_JSON, headers=headers)

    router.add_route(
        "/serving-endpoints/{name}/invocations", invoke, methods=["POST"], include_in_schema=False
    )
    router.add_route(
        "/serving-endpoints/{name}/served-models/{served_model}/invocations",
        invoke,
        methods=["POST"],
        include_in_schema=False,
    )

    # The plain routes above answer first; these entries only document them in OpenAPI.
    @router.post(
        "/serving-endpoints/{name}/invocations",
        response_model=QueryEndpointResponse,
        responses=_QUERY_ERRORS,
        summary="Query a serving endpoint",
    )
    def query_doc(name: str, body: QueryEndpointInput) -> Any:
        raise AssertionError("answered by the plain invocation route")  # pragma: no cover

    @router.post(
        "/serving-endpoints/{name}/served-models/{served_model}/invocations",
        response_model=QueryEndpointResponse,
        responses=_QUERY_ERRORS,
        summary="Query one served model of a serving endpoint",
    )
    def query_served_doc(name: str, served_model: str, body: QueryEndpointInput) -> Any:
        raise AssertionError("answered by the plain invocation route")  # pragma: no cover

    # ----------------------------------------------------------------- operations
    async def metrics(_request: Request) -> Response:
        return PlainTextResponse(
            runtime.metrics.render(loaded=runtime.loaded()), media_type="text/plain; version=0.0.4"
        )

    async def ready(_request: Request) -> Response:
        waiting = sorted(set(serving.store.versions()) - set(runtime.deployments))
        status = 200 if not waiting else 503
        return JSONResponse(
            {"ready": not waiting, "loading": waiting, "endpoints": sorted(runtime.deployments)},
            status_code=status,
        )

    router.add_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    router.add_route("/ready", ready, methods=["GET"], include_in_schema=False)
    return router
