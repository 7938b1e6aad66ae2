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

from fastapi import APIRouter, Body
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from lakebox.errors import InvalidInput, LakeboxError

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


def build_router(ws: Workspace) -> APIRouter:
    serving = ws.serving
    runtime = serving.runtime

    def start() -> None:
        threading.Thread(target=runtime.load_all, name="lakebox-serving-load", daemon=True).start()

    def stop() -> None:
        runtime.close()

    router = APIRouter(tags=["serving"], on_startup=[start], on_shutdown=[stop])

    def _deploy_later(name: str) -> None:
        def run() -> None:
            with contextlib.suppress(LakeboxError):  # deleted meanwhile
                runtime.deploy(serving.store.get(name))

        threading.Thread(target=run, name=f"lakebox-serving-deploy-{name}", daemon=True).start()

    # ----------------------------------------------------------------- management
    @router.post("/api/2.0/serving-endpoints")
    def create(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        from lakebox.serving import endpoint_json
        from lakebox.serving._config import check_endpoint_name

        name = check_endpoint_name(body.get("name"))
        config = body.get("config")
        if config is None:
            raise InvalidInput(
                "Missing 'config' in the request body: give served_entities and, for several, "
                "traffic_config.routes."
            )
        tags = body.get("tags") or []
        if not isinstance(tags, list):
            raise InvalidInput("tags must be a list of {key, value} objects.")
        record = serving.create_endpoint(
            name,
            config=config,
            description=body.get("description"),
            tags={str(t.get("key")): str(t.get("value", "")) for t in tags if isinstance(t, dict)},
            wait=False,
        )
        _deploy_later(record.name)
        return endpoint_json(record)

    @router.get("/api/2.0/serving-endpoints")
    def list_endpoints() -> dict[str, Any]:
        from lakebox.serving import endpoint_json

        return {"endpoints": [endpoint_json(r) for r in serving.list_endpoints()]}

    @router.get("/api/2.0/serving-endpoints/{name}")
    def get(name: str) -> dict[str, Any]:
        from lakebox.serving import endpoint_json

        return endpoint_json(serving.get_endpoint(name))

    @router.put("/api/2.0/serving-endpoints/{name}/config")
    def update_config(name: str, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        from lakebox.serving import endpoint_json

        record = serving.update_config(name, config=body, wait=False)
        _deploy_later(name)
        return endpoint_json(record)

    @router.delete("/api/2.0/serving-endpoints/{name}")
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
