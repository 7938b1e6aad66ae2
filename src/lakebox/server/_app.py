"""The one ASGI app: lakebox REST routes first, then the MLflow server mounted at ``/``."""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

from fastapi import FastAPI

from lakebox._version import __version__
from lakebox.server._auth import TokenAuthMiddleware
from lakebox.server._errors import ApiFallback, install_error_handlers

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["ROUTE_MODULES", "app_from_env", "create_app"]

# Modules exposing ``build_router(ws) -> fastapi.APIRouter``, included in this order.
ROUTE_MODULES = [
    "lakebox.server._catalog_routes",
    "lakebox.server._registry_routes",
    "lakebox.server._webhook_routes",
    "lakebox.server._jobs_routes",
    "lakebox.server._serving_routes",
    "lakebox.server._monitor_routes",
    "lakebox.ui",
]


def create_app(ws: Workspace, *, token: str | None = None, mount_mlflow: bool = True) -> FastAPI:
    """Build the server app for a workspace.

    Args:
        ws: the workspace to serve.
        token: bearer token to require; defaults to ``LAKEBOX_TOKEN`` or ``[server] token``.
            Empty means no authentication (only allowed on loopback addresses; see
            :func:`lakebox.server.check_bind`).
        mount_mlflow: mount the MLflow tracking server and UI at ``/``.
    """
    app = FastAPI(
        title="lakebox",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.workspace = ws

    install_error_handlers(app)  # Databricks' {"error_code", "message"} for every error

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "OK", "version": __version__}

    for module_name in ROUTE_MODULES:
        module = importlib.import_module(module_name)
        app.include_router(module.build_router(ws))

    if mount_mlflow:
        # ApiFallback: JSON 404/405 for API paths instead of the mounted app's HTML page.
        app.mount("/", ApiFallback(_mlflow_app(ws), lambda: app.router.routes))

    token = (
        token
        if token is not None
        else (os.environ.get("LAKEBOX_TOKEN") or ws.settings.server.token)
    )
    app.state.token = token or None
    if token:
        app.add_middleware(TokenAuthMiddleware, token=token)
    return app


def _mlflow_app(ws: Workspace) -> FastAPI:
    # MLflow's server reads its stores from these variables (as `mlflow server` sets them for
    # its workers); they must be set before its handlers build the stores.
    os.environ["_MLFLOW_SERVER_FILE_STORE"] = ws.tracking_uri
    os.environ["_MLFLOW_SERVER_REGISTRY_STORE"] = ws.registry_uri
    os.environ["_MLFLOW_SERVER_ARTIFACT_ROOT"] = ws.artifact_root
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.server.fastapi_app import create_fastapi_app

    return create_fastapi_app()


def app_from_env() -> FastAPI:
    """App factory for uvicorn workers: the workspace comes from ``LAKEBOX_HOME``."""
    from lakebox.workspace import Workspace

    return create_app(Workspace())
