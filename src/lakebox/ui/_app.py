"""The UI router: home, login, static assets, and every page module of :data:`PAGE_MODULES`."""

from __future__ import annotations

import hmac
import importlib
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from lakebox.errors import NotFound
from lakebox.server._auth import TOKEN_COOKIE
from lakebox.ui._csrf import require_csrf
from lakebox.ui._render import page_router, render

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["PAGE_MODULES", "build_router"]

# Modules defining ``build_pages(ws) -> APIRouter`` (paths relative to /ui), included in order.
PAGE_MODULES: list[str] = [
    "lakebox.ui._job_pages",
    "lakebox.ui._model_pages",
    "lakebox.ui._catalog_pages",
    "lakebox.ui._feature_pages",
    "lakebox.ui._serving_pages",
    "lakebox.ui._monitor_pages",
]

_STATIC = Path(__file__).parent / "static"


def _static_files() -> dict[str, Path]:
    """Assets served under /ui/static: the package's own, plus plotly.js from the plotly
    package (charts work offline, nothing comes from a CDN)."""
    files = {p.name: p for p in _STATIC.iterdir() if p.is_file()}
    spec = find_spec("plotly")
    if spec is not None and spec.origin is not None:
        plotly_js = Path(spec.origin).parent / "package_data" / "plotly.min.js"
        if plotly_js.exists():
            files["plotly.min.js"] = plotly_js
    return files


def _safe_next(target: str) -> str:
    """A redirect target after login: a path on this server only."""
    return target if target.startswith("/") and not target.startswith("//") else "/ui/"


def build_router(ws: Workspace) -> APIRouter:
    """The ``/ui`` router for ``lakebox up``."""
    router = APIRouter(prefix="/ui", include_in_schema=False)
    pages = page_router()
    static = _static_files()

    @router.get("/static/{name}")
    def static_file(name: str) -> FileResponse:
        if name not in static:
            raise NotFound(f"No UI asset {name!r}.")
        return FileResponse(static[name], headers={"Cache-Control": "public, max-age=3600"})

    @pages.get("/")
    def home(request: Request) -> Response:
        return render(request, "home.html", {"counts": _counts(ws)})

    @pages.get("/login")
    def login_form(request: Request, next: str = "/ui/") -> Response:
        if not request.app.state.token:
            return RedirectResponse(_safe_next(next), status_code=303)
        return render(request, "login.html", {"next": _safe_next(next), "failed": False})

    @pages.post("/login", dependencies=[Depends(require_csrf)])
    def login(request: Request, token: str = Form(""), next: str = Form("/ui/")) -> Response:
        expected: str | None = request.app.state.token
        if expected and not hmac.compare_digest(token.encode(), expected.encode()):
            return render(
                request, "login.html", {"next": _safe_next(next), "failed": True}, status_code=401
            )
        response = RedirectResponse(_safe_next(next), status_code=303)
        if expected:
            response.set_cookie(TOKEN_COOKIE, expected, path="/", httponly=True, samesite="strict")
        return response

    @pages.post("/logout", dependencies=[Depends(require_csrf)])
    def logout() -> Response:
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(TOKEN_COOKIE, path="/")
        return response

    for module_name in PAGE_MODULES:
        pages.include_router(importlib.import_module(module_name).build_pages(ws))
    router.include_router(pages)
    return router


def _counts(ws: Workspace) -> dict[str, Any]:
    """How many of each thing the workspace holds, for the home page."""
    return {
        "Catalog": (len(ws.tables.list()), "tables"),
        "Features": (len(ws.features.list_tables()), "feature tables"),
        "Models": (len(ws.models.list()), "registered models"),
        "Jobs": (len(ws.jobs.list()), "jobs"),
        "Serving": (len(ws.serving.list_endpoints()), "serving endpoints"),
        "Monitors": (len(ws.monitors.list()), "monitors"),
    }
