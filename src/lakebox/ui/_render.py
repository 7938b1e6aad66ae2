"""Rendering pages: the template set, the navigation, and error pages for lakebox errors."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from lakebox.errors import LakeboxError
from lakebox.ui._csrf import CSRF_FIELD, csrf_token, set_cookie

__all__ = ["NAV", "TEMPLATES", "page_router", "render"]

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")

# (label, path) of the navigation bar; the MLflow UI (runs, experiments) is linked beside them.
NAV = [
    ("Catalog", "/ui/catalog"),
    ("Features", "/ui/features"),
    ("Models", "/ui/models"),
    ("Jobs", "/ui/jobs"),
    ("Serving", "/ui/serving"),
    ("Monitors", "/ui/monitors"),
]


def _timestamp(value: Any) -> str:
    """Milliseconds since the epoch (or a datetime) as ``YYYY-MM-DD HH:MM:SS`` UTC."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    else:
        moment = datetime.fromtimestamp(float(value) / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _duration(ms: Any) -> str:
    """Milliseconds as a short human duration: ``850 ms``, ``12.3 s``, ``4 min 5 s``."""
    if ms is None or ms == "":
        return ""
    ms = float(ms)
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes} min {seconds} s"


TEMPLATES.env.filters["timestamp"] = _timestamp
TEMPLATES.env.filters["duration"] = _duration


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render ``template`` with the navigation and a CSRF token (set as a cookie too).

    Templates extending ``base.html`` get ``nav``, ``path`` and ``csrf_token``; forms include
    ``{{ csrf_input() }}``; htmx requests send the token as a header by themselves.
    """
    token = csrf_token(request)
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "nav": NAV,
            "path": request.url.path,
            "csrf_token": token,
            "csrf_field": CSRF_FIELD,
            **(context or {}),
        },
        status_code=status_code,
    )
    set_cookie(response, token)
    return response


class _PageRoute(APIRoute):
    """A UI route: a :class:`~lakebox.errors.LakeboxError` becomes a page (or, for an htmx
    request, a fragment) with the error's message and HTTP status, never a JSON body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except LakeboxError as exc:
                fragment = request.headers.get("hx-request")
                template = "_error_fragment.html" if fragment else "error.html"
                return render(
                    request,
                    template,
                    {"error": exc, "error_code": exc.error_code},
                    status_code=exc.http_status,
                )

        return handle


def page_router() -> APIRouter:
    """A router for a page module: paths relative to ``/ui``, hidden from the OpenAPI document,
    lakebox errors rendered as pages."""
    return APIRouter(route_class=_PageRoute, include_in_schema=False)
