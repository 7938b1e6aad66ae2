"""Databricks workspace-registry REST routes: stage transitions, transition requests and
comments (``/api/2.0/mlflow/...``). Everything else of the registry is MLflow's own REST API,
served by the mounted MLflow server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query
from pydantic import Field

from lakebox.server._schema import ERROR_RESPONSES, UNSET, Answer, Body, Empty

if TYPE_CHECKING:
    from lakebox.models import Activity
    from lakebox.workspace import Workspace

__all__ = ["build_router", "model_version_json"]

_REQUEST_ACTIONS = [
    "APPROVE_TRANSITION_REQUEST",
    "REJECT_TRANSITION_REQUEST",
    "CANCEL_TRANSITION_REQUEST",
]


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


# ---------------------------------------------------------------------- request bodies
_Name = Field(min_length=1, description="Registered model name.")
_Version = Field(min_length=1, description="Model version number.")
_Stage = Field(min_length=1, description="Staging, Production, Archived or None.")


class TransitionStage(Body):
    name: str = _Name
    version: str = _Version
    stage: str = _Stage
    archive_existing_versions: bool = False
    comment: str | None = None


class CreateTransitionRequest(Body):
    name: str = _Name
    version: str = _Version
    stage: str = _Stage
    comment: str | None = None


class RejectTransitionRequest(CreateTransitionRequest):
    pass


class ApproveTransitionRequest(TransitionStage):
    pass


class CreateComment(Body):
    name: str = _Name
    version: str = _Version
    comment: str = Field(min_length=1)


class UpdateComment(Body):
    id: str = Field(min_length=1, description="The comment's id.")
    comment: str = Field(min_length=1)


# ---------------------------------------------------------------------- answers
class Tag(Answer):
    key: str
    value: str


class ModelVersionDatabricks(Answer):
    name: str
    version: str
    creation_timestamp: int
    last_updated_timestamp: int
    current_stage: str
    source: str
    status: str
    tags: list[Tag]
    description: str | None = None
    run_id: str | None = None
    run_link: str | None = None
    user_id: str | None = None
    status_message: str | None = None


class TransitionStageResponse(Answer):
    model_version_databricks: ModelVersionDatabricks


class TransitionRequest(Answer):
    creation_timestamp: int
    to_stage: str | None = None
    user_id: str
    available_actions: list[str]
    comment: str | None = None


class CreateTransitionRequestResponse(Answer):
    request: TransitionRequest


class ActivityJson(Answer):
    """Databricks' ``Activity``."""

    id: str
    activity_type: str
    user_id: str
    creation_timestamp: int
    last_updated_timestamp: int
    from_stage: str | None = None
    to_stage: str | None = None
    comment: str | None = None
    system_comment: str | None = None


class ActivityResponse(Answer):
    activity: ActivityJson


class ListTransitionRequestsResponse(Answer):
    requests: list[ActivityJson]


class CommentObject(Answer):
    id: str
    comment: str | None = None
    user_id: str
    creation_timestamp: int
    last_updated_timestamp: int
    available_actions: list[str]


class CommentResponse(Answer):
    comment: CommentObject


def build_router(ws: Workspace) -> APIRouter:
    router = APIRouter(prefix="/api/2.0/mlflow", tags=["registry"], responses=ERROR_RESPONSES)

    @router.post(
        "/databricks/model-versions/transition-stage",
        response_model=TransitionStageResponse,
        **UNSET,
    )
    def transition_stage(body: TransitionStage) -> dict[str, Any]:
        mv = ws.models.transition_stage(
            body.name,
            body.version,
            body.stage,
            archive_existing_versions=body.archive_existing_versions,
            comment=body.comment,
        )
        return {"model_version_databricks": model_version_json(mv)}

    @router.post(
        "/transition-requests/create", response_model=CreateTransitionRequestResponse, **UNSET
    )
    def create_request(body: CreateTransitionRequest) -> dict[str, Any]:
        activity = ws.models.create_transition_request(
            body.name, body.version, body.stage, comment=body.comment
        )
        return {"request": _request_json(activity)}

    @router.get("/transition-requests/list", response_model=ListTransitionRequestsResponse, **UNSET)
    def list_requests(name: str = Query(...), version: str = Query(...)) -> dict[str, Any]:
        return {
            "requests": [a.to_json() for a in ws.models.list_transition_requests(name, version)]
        }

    @router.post("/transition-requests/approve", response_model=ActivityResponse, **UNSET)
    def approve_request(body: ApproveTransitionRequest) -> dict[str, Any]:
        activity = ws.models.approve_transition_request(
            body.name,
            body.version,
            body.stage,
            archive_existing_versions=body.archive_existing_versions,
            comment=body.comment,
        )
        return {"activity": activity.to_json()}

    @router.post("/transition-requests/reject", response_model=ActivityResponse, **UNSET)
    def reject_request(body: RejectTransitionRequest) -> dict[str, Any]:
        activity = ws.models.reject_transition_request(
            body.name, body.version, body.stage, comment=body.comment
        )
        return {"activity": activity.to_json()}

    @router.delete("/transition-requests/delete", response_model=ActivityResponse, **UNSET)
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

    @router.post("/comments/create", response_model=CommentResponse, **UNSET)
    def create_comment(body: CreateComment) -> dict[str, Any]:
        activity = ws.models.create_comment(body.name, body.version, body.comment)
        return {"comment": _comment_json(activity)}

    @router.patch("/comments/update", response_model=CommentResponse, **UNSET)
    def update_comment(body: UpdateComment) -> dict[str, Any]:
        activity = ws.models.update_comment(body.id, body.comment)
        return {"comment": _comment_json(activity)}

    @router.delete("/comments/delete", response_model=Empty)
    def delete_comment(id: str = Query(...)) -> dict[str, Any]:
        ws.models.delete_comment(id)
        return {}

    return router
