"""Databricks workspace-registry REST routes: stage transitions, transition requests and
comments (``/api/2.0/mlflow/...``). Everything else of the registry is MLflow's own REST API,
served by the mounted MLflow server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body, Query

from lakebox.errors import InvalidInput

if TYPE_CHECKING:
    from lakebox.models import Activity
    from lakebox.workspace import Workspace

__all__ = ["build_router", "model_version_json"]

_REQUEST_ACTIONS = [
    "APPROVE_TRANSITION_REQUEST",
    "REJECT_TRANSITION_REQUEST",
    "CANCEL_TRANSITION_REQUEST",
]


def _field(body: dict[str, Any], key: str) -> Any:
    value = body.get(key)
    if value is None or value == "":
        raise InvalidInput(f"Missing required field {key!r} in the request body.")
    return value


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def model_version_json(mv: Any) -> dict[str, Any]:
    """An MLflow ``ModelVersion`` as Databricks' ``ModelVersionDatabricks`` JSON."""
    out: dict[str, Any] = {
        "name": mv.name,
        "version": str(mv.version),
        "creation_timestamp": mv.creation_timestamp,
        "last_updated_timestamp": mv.last_updated_timestamp,
        "current_stage": mv.current_stage,
        "source": mv.source,
        "status": mv.status,
        "tags": [{"key": k, "value": v} for k, v in (mv.tags or {}).items()],
    }
    for key in ("description", "run_id", "run_link", "user_id", "status_message"):
        value = getattr(mv, key, None)
        if value:
            out[key] = value
    return out


def _request_json(activity: Activity) -> dict[str, Any]:
    out: dict[str, Any] = {
        "creation_timestamp": activity.creation_timestamp,
        "to_stage": activity.to_stage,
        "user_id": activity.user_id,
        "available_actions": _REQUEST_ACTIONS,
    }
    if activity.comment:
        out["comment"] = activity.comment
    return out


def _comment_json(activity: Activity) -> dict[str, Any]:
    return {
        "id": str(activity.id),
        "comment": activity.comment,
        "user_id": activity.user_id,
        "creation_timestamp": activity.creation_timestamp,
        "last_updated_timestamp": activity.last_updated_timestamp,
        "available_actions": ["EDIT_COMMENT", "DELETE_COMMENT"],
    }


def build_router(ws: Workspace) -> APIRouter:
    router = APIRouter(prefix="/api/2.0/mlflow", tags=["registry"])

    @router.post("/databricks/model-versions/transition-stage")
    def transition_stage(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        mv = ws.models.transition_stage(
            _field(body, "name"),
            _field(body, "version"),
            _field(body, "stage"),
            archive_existing_versions=_flag(body.get("archive_existing_versions", False)),
            comment=body.get("comment"),
        )
        return {"model_version_databricks": model_version_json(mv)}

    @router.post("/transition-requests/create")
    def create_request(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        activity = ws.models.create_transition_request(
            _field(body, "name"),
            _field(body, "version"),
            _field(body, "stage"),
            comment=body.get("comment"),
        )
        return {"request": _request_json(activity)}

    @router.get("/transition-requests/list")
    def list_requests(name: str = Query(...), version: str = Query(...)) -> dict[str, Any]:
        return {
            "requests": [a.to_json() for a in ws.models.list_transition_requests(name, version)]
        }

    @router.post("/transition-requests/approve")
    def approve_request(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        activity = ws.models.approve_transition_request(
            _field(body, "name"),
            _field(body, "version"),
            _field(body, "stage"),
            archive_existing_versions=_flag(body.get("archive_existing_versions", False)),
            comment=body.get("comment"),
        )
        return {"activity": activity.to_json()}

    @router.post("/transition-requests/reject")
    def reject_request(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        activity = ws.models.reject_transition_request(
            _field(body, "name"),
            _field(body, "version"),
            _field(body, "stage"),
            comment=body.get("comment"),
        )
        return {"activity": activity.to_json()}

    @router.delete("/transition-requests/delete")
    def delete_request(
        name: str = Query(...),
        version: str = Query(...),
        stage: str = Query(...),
        creator: str | None = None,
        comment: str | None = None,
    ) -> dict[str, Any]:
        activity = ws.models.cancel_transition_request(
            name, version, stage, creator=creator, comment=comment
        )
        return {"activity": activity.to_json()}

    @router.post("/comments/create")
    def create_comment(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        activity = ws.models.create_comment(
            _field(body, "name"), _field(body, "version"), _field(body, "comment")
        )
        return {"comment": _comment_json(activity)}

    @router.patch("/comments/update")
    def update_comment(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        activity = ws.models.update_comment(_field(body, "id"), _field(body, "comment"))
        return {"comment": _comment_json(activity)}

    @router.delete("/comments/delete")
    def delete_comment(id: str = Query(...)) -> dict[str, Any]:
        ws.models.delete_comment(id)
        return {}

    return router
