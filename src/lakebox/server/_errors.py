"""Every error the server answers has Databricks' JSON shape ``{"error_code", "message"}``.

- :class:`~lakebox.errors.LakeboxError` -> its status and code;
- request validation (bad query values, missing fields, malformed JSON) -> 400
  ``INVALID_PARAMETER_VALUE`` (Databricks answers 400, not FastAPI's 422);
- Starlette/FastAPI ``HTTPException`` (404, 405, ...) -> its status with a code for it;
- anything unexpected -> 500 ``INTERNAL_ERROR``, logged with its traceback, none in the answer;
- unknown ``/api/...`` paths, which would fall through to the MLflow server mounted at ``/``
  and get its HTML page, -> 404 ``ENDPOINT_NOT_FOUND``; a lakebox path with a wrong method ->
  405 (see :class:`ApiFallback`).

The OpenAPI document declares these answers as ``ErrorResponse`` (``_schema.py``), no 422.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lakebox.errors import LakeboxError

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ApiFallback", "error_body", "install_error_handlers"]

logger = logging.getLogger("lakebox.server")

# Databricks error codes for plain HTTP statuses (no lakebox error behind them).
_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "RESOURCE_CONFLICT",
    413: "REQUEST_LIMIT_EXCEEDED",
    415: "BAD_REQUEST",
    429: "REQUEST_LIMIT_EXCEEDED",
    501: "NOT_IMPLEMENTED",
    503: "TEMPORARILY_UNAVAILABLE",
}
# Paths whose unknown or wrongly-methoded requests answer with the JSON shape.
_API_PREFIXES = ("/api/", "/serving-endpoints/")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def error_body(status: int, message: str, error_code: str | None = None) -> dict[str, str]:
    """The error JSON for an HTTP status."""
    code = error_code or _STATUS_CODES.get(
        status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST"
    )
    return {"error_code": code, "message": message}


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e.get("loc", ()))
        if e.get("type") == "json_invalid":
            problems.append(
                f"malformed JSON in the request body ({e.get('ctx', {}).get('error', e['msg'])})"
            )
        else:
            problems.append(f"{where}: {e['msg']}")
    return "Invalid request: " + "; ".join(problems)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app`` and drop FastAPI's 422 from its OpenAPI."""

    @app.exception_handler(LakeboxError)
    async def _lakebox_error(request: Request, exc: LakeboxError) -> JSONResponse:
        if exc.http_status >= 500 and exc.http_status != 501:
            logger.error("%s %s failed: %s", request.method, request.url.path, exc.message)
        return JSONResponse(exc.to_json(), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            error_body(400, _validation_message(exc), "INVALID_PARAMETER_VALUE"), status_code=400
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = f"No API found for '{request.method} {request.url.path}'."
        elif exc.status_code == 405 and exc.detail == "Method Not Allowed":
            message = f"Method {request.method} is not allowed on {request.url.path}."
        else:
            message = str(exc.detail)
        return JSONResponse(
            error_body(exc.status_code, message),
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("Unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            error_body(
                500,
                f"Internal error ({type(exc).__name__}) while handling {request.method} "
                f"{request.url.path}; the server log has the details.",
                "INTERNAL_ERROR",
            ),
            status_code=500,
        )

    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _finish_openapi(default_openapi())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _finish_openapi(schema: dict[str, Any]) -> None:
    """FastAPI documents a 422 ``HTTPValidationError``; lakebox answers 400 instead. The
    bearer token is declared (optional: a loopback server may run without one)."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearerAuth"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "[server] token in lakebox.toml or LAKEBOX_TOKEN, when set.",
    }
    schema["security"] = [{"bearerAuth": []}, {}]
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("422", None)
    schemas = schema.get("components", {}).get("schemas", {})
    if '"#/components/schemas/HTTPValidationError"' not in json.dumps(schema.get("paths", {})):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)


class ApiFallback:
    """Wraps the app mounted at ``/`` (MLflow's server) so API clients always get JSON errors.

    A request reaches the mount when no lakebox route matched it fully. If a lakebox route
    matched its path with another method, the answer is 405 with ``Allow``. Under ``/api/``
    a 404 or 405 that the mounted app answers with a non-JSON page (Flask's HTML) becomes the
    JSON shape; MLflow's own JSON errors pass unchanged.
    """

    def __init__(self, app: ASGIApp, routes: Callable[[], list[Any]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        allowed = self._allowed_methods(scope)
        if allowed:
            await _send_json(
                send,
                405,
                error_body(405, f"Method {scope['method']} is not allowed on {scope['path']}."),
                extra_headers=[(b"allow", ", ".join(sorted(allowed)).encode())],
            )
            return
        if not path.startswith(_API_PREFIXES):
            await self.app(scope, receive, send)
            return
        replaced = False

        async def send_wrapper(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start":
                status = message["status"]
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if status in (404, 405) and not content_type.startswith(b"application/json"):
                    replaced = True
                    what = "No API found for" if status == 404 else "Method not allowed:"
                    allow = [(k, v) for k, v in message.get("headers", []) if k == b"allow"]
                    await _send_json(
                        send,
                        status,
                        error_body(status, f"{what} '{scope['method']} {scope['path']}'."),
                        extra_headers=allow,
                    )
                    return
            if replaced:
                return
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _allowed_methods(self, scope: Scope) -> set[str]:
        routes = [r for r in self.routes() if not (isinstance(r, Mount) and r.path == "")]
        if not any(r.matches(scope)[0] == Match.PARTIAL for r in routes):
            return set()
        allowed = set()
        for method in _METHODS:  # routers may nest: ask each route about each method
            probe = {**scope, "method": method}
            if any(r.matches(probe)[0] == Match.FULL for r in routes):
                allowed.add(method)
        return allowed


async def _send_json(
    send: Send,
    status: int,
    body: dict[str, str],
    *,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    data = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
