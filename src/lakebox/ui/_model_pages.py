"""Model registry pages: registered models with stages and aliases, and a model page with its
versions, pending transition requests (approve / reject), comments and activity, and the
webhooks that fire for the model with their recent deliveries.

Write actions are htmx POSTs (CSRF-checked) that answer with the refreshed model body.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from lakebox.errors import LakeboxError
from lakebox.ui._csrf import require_csrf
from lakebox.ui._render import page_router, render

if TYPE_CHECKING:
    from lakebox.events import Webhook
    from lakebox.workspace import Workspace

__all__ = ["build_pages"]

RECENT_DELIVERIES = 10
_ACTIVITY_LABELS = {
    "REQUESTED_TRANSITION": "requested a transition",
    "APPLIED_TRANSITION": "moved the version",
    "APPROVED_REQUEST": "approved a request",
    "REJECTED_REQUEST": "rejected a request",
    "CANCELLED_REQUEST": "cancelled a request",
    "NEW_COMMENT": "commented",
}
_DELIVERY_KINDS = {"SUCCEEDED": "success", "DEAD": "failed", "PENDING": "pending"}


def _stage_kind(stage: str | None) -> str:
    return (stage or "none").lower()


def _experiment_ids(ws: Workspace, run_ids: set[str]) -> dict[str, str]:
    """The experiment of each source run (for MLflow UI links); runs that are gone are left out."""
    out = {}
    for run_id in run_ids:
        try:
            out[run_id] = ws.models.client.get_run(run_id).info.experiment_id
        except Exception:  # deleted run, other tracking store: no link, just the id
            continue
    return out


def _webhook_view(ws: Workspace, hook: Webhook, model_name: str) -> dict[str, Any]:
    deliveries = ws.webhooks.deliveries(webhook_id=hook.id, limit=200)
    if hook.model_name is None:  # a registry-wide hook: only this model's events
        deliveries = [d for d in deliveries if d.model_name == model_name]
    return {
        "id": hook.id,
        "scope": "this model" if hook.model_name else "registry-wide",
        "events": hook.events,
        "status": hook.status,
        "target": hook.url if hook.url is not None else f"job {hook.job_id}",
        "description": hook.description or "",
        "deliveries": [
            {
                "event": d.event,
                "version": d.version,
                "status": d.status,
                "kind": _DELIVERY_KINDS.get(d.status, ""),
                "attempts": d.attempts,
                "code": d.last_status_code,
                "error": d.last_error or "",
                "created": d.created_at,
                "finished": d.finished_at,
            }
            for d in deliveries[:RECENT_DELIVERIES]
        ],
    }


def _model_context(ws: Workspace, name: str) -> dict[str, Any]:
    """Everything the model page shows."""
    model = ws.models.get_model(name)
    versions = sorted(ws.models.versions(name), key=lambda v: -int(v.version))
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    experiments = _experiment_ids(ws, {v.run_id for v in versions if v.run_id})
    rows = []
    for v in versions:
        activity = [
            {
                "type": a.activity_type,
                "label": _ACTIVITY_LABELS.get(a.activity_type, a.activity_type.lower()),
                "user": a.user_id,
                "when": a.creation_timestamp,
                "from_stage": a.from_stage,
                "to_stage": a.to_stage,
                "comment": a.comment or "",
                "system_comment": a.system_comment or "",
                "status": a.request_status or "",
            }
            for a in ws.models.activities(name, v.version)
        ]
        rows.append(
            {
                "version": str(v.version),
                "stage": v.current_stage or "None",
                "kind": _stage_kind(v.current_stage),
                "aliases": sorted(aliases.get(str(v.version), [])),
                "tags": dict(v.tags or {}),
                "description": v.description or "",
                "run_id": v.run_id,
                "experiment_id": experiments.get(v.run_id or ""),
                "source": v.source,
                "status": v.status,
                "created": v.creation_timestamp,
                "activity": list(reversed(activity)),  # newest first
            }
        )
    pending = [
        {
            "version": r.version,
            "from_stage": r.from_stage or "None",
            "to_stage": r.to_stage,
            "user": r.user_id,
            "when": r.creation_timestamp,
            "comment": r.comment or "",
            "id": r.id,
        }
        for r in ws.models.pending_requests(name)
    ]
    hooks = [h for h in ws.webhooks.list() if h.model_name in (None, name)]
    return {
        "model": model,
        "name": name,
        "tags": dict(model.tags or {}),
        "model_aliases": dict(sorted((model.aliases or {}).items())),
        "versions": rows,
        "pending": pending,
        "webhooks": [_webhook_view(ws, h, name) for h in hooks],
    }


def build_pages(ws: Workspace) -> APIRouter:
    """The ``/ui/models`` pages."""
    pages = page_router()

    def body(
        request: Request,
        name: str,
        *,
        notice: str | None = None,
        error: LakeboxError | None = None,
    ) -> Response:
        context = _model_context(ws, name)
        context.update(notice=notice, action_error=error)
        status = error.http_status if error is not None else 200
        return render(request, "models/_model_body.html", context, status_code=status)

    @pages.get("/models")
    def model_list(request: Request) -> Response:
        pending = Counter(r.model_name for r in ws.models.pending_requests())
        rows = []
        for m in ws.models.list():
            latest = sorted(m.latest_versions or [], key=lambda v: -int(v.version))
            rows.append(
                {
                    "name": m.name,
                    "description": m.description or "",
                    "latest": [
                        {
                            "version": str(v.version),
                            "stage": v.current_stage or "None",
                            "kind": _stage_kind(v.current_stage),
                        }
                        for v in latest
                    ],
                    "newest": str(latest[0].version) if latest else "",
                    "aliases": dict(sorted((m.aliases or {}).items())),
                    "pending": pending.get(m.name, 0),
                    "updated": m.last_updated_timestamp,
                }
            )
        return render(request, "models/list.html", {"rows": rows})

    @pages.get("/models/{name}")
    def model_page(request: Request, name: str) -> Response:
        return render(request, "models/model.html", _model_context(ws, name))

    @pages.post(
        "/models/{name}/versions/{version}/requests/approve",
        dependencies=[Depends(require_csrf)],
    )
    def approve(
        request: Request,
        name: str,
        version: str,
        stage: str = Form(...),
        comment: str = Form(""),
        archive_existing_versions: bool = Form(False),
    ) -> Response:
        ws.models.get_model(name)  # an unknown model is a 404 page, not a body
        try:
            ws.models.approve_transition_request(
                name,
                version,
                stage,
                archive_existing_versions=archive_existing_versions,
                comment=comment.strip() or None,
            )
        except LakeboxError as exc:
            return body(request, name, error=exc)
        return body(request, name, notice=f"Approved: {name} version {version} is now in {stage}.")

    @pages.post(
        "/models/{name}/versions/{version}/requests/reject",
        dependencies=[Depends(require_csrf)],
    )
    def reject(
        request: Request,
        name: str,
        version: str,
        stage: str = Form(...),
        comment: str = Form(""),
    ) -> Response:
        ws.models.get_model(name)
        try:
            ws.models.reject_transition_request(
                name, version, stage, comment=comment.strip() or None
            )
        except LakeboxError as exc:
            return body(request, name, error=exc)
        return body(
            request, name, notice=f"Rejected the request to move version {version} to {stage}."
        )

    @pages.post("/models/{name}/versions/{version}/comments", dependencies=[Depends(require_csrf)])
    def add_comment(request: Request, name: str, version: str, comment: str = Form("")) -> Response:
        ws.models.get_model(name)
        try:
            ws.models.create_comment(name, version, comment)
        except LakeboxError as exc:
            return body(request, name, error=exc)
        return body(request, name, notice=f"Comment added to version {version}.")

    return pages
