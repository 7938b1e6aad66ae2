"""The workspace UI: server-rendered pages under ``/ui`` served by ``lakebox up``.

Pages are Jinja2 templates with htmx for in-place actions; every asset ships in the package
(no CDN). Each page group is a module listed in :data:`PAGE_MODULES` that defines
``build_pages(ws) -> fastapi.APIRouter`` (made with :func:`lakebox.ui._render.page_router`).
"""

from lakebox.ui._app import PAGE_MODULES, build_router

__all__ = ["PAGE_MODULES", "build_router"]
