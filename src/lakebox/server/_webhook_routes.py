"""Databricks registry-webhook REST routes (``/api/2.0/mlflow/registry-webhooks/...``) and the
lakebox delivery log (``/api/2.0/lakebox/webhooks/deliveries``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query
from pydantic import ConfigDict, Field

from lakebox.server._schema import ERROR_RESPONSES, UNSET, Answer, Body, Empty, page_start

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["build_router"]


def _events(value: list[str] | str | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


# ---------------------------------------------------------------------- request bodies
class HttpUrlSpec(Body):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Absolute http:// or https:// URL to POST events to.")
    secret: str | None = None
    authorization: str | None = None
    enable_ssl_verification: bool | None = None


class JobSpec(Body):
    job_id: str = Field(min_length=1, description="The lakebox job to run per event.")
    access_token: str | None = None
    workspace_url: str | None = None


class CreateWebhook(Body):
    events: list[str] | str = Field(description="Event names, e.g. MODEL_VERSION_CREATED.")
    model_name: str | None = None
    http_url_spec: HttpUrlSpec | None = None
    job_spec: JobSpec | None = None
    description: str | None = None
    status: str | None = Field(None, description="ACTIVE (default), TEST_MODE or DISABLED.")


class UpdateWebhook(Body):
    id: str = Field(min_length=1, description="The webhook id.")
    events: list[str] | str | None = None
    http_url_spec: HttpUrlSpec | None = None
    job_spec: JobSpec | None = None
    description: str | None = None
    status: str | None = None


class TestWebhook(Body):
    id: str = Field(min_length=1, description="The webhook id.")
    event: str | None = None


# ---------------------------------------------------------------------- answers
class HttpUrlSpecOut(Answer):
    url: str
    enable_ssl_verification: bool


class JobSpecOut(Answer):
    job_id: str
    workspace_url: str | None = None


class RegistryWebhook(Answer):
    """Databricks' ``RegistryWebhook`` (secrets are never returned)."""

    id: str
    events: list[str]
    status: str
    creation_timestamp: int
    last_updated_timestamp: int
    model_name: str | None = None
    description: str | None = None
    http_url_spec: HttpUrlSpecOut | None = None
    job_spec: JobSpecOut | None = None


class WebhookResponse(Answer):
    webhook: RegistryWebhook


class ListWebhooksResponse(Answer):
    webhooks: list[RegistryWebhook]
    next_page_token: str | None = None


class TestResult(Answer):
    status_code: int
    body: str | None = None


class TestWebhookResponse(TestResult):
    webhook: TestResult


class DeliveryJson(Answer):
    id: int
    webhook_id: str
    event_id: str
    event: str
    model_name: str | None
    version: str | None
    status: str
    attempts: int
    next_attempt_at: int
    last_status_code: int | None
    last_error: str | None
    created_at: int
    finished_at: int | None


class DeliveriesResponse(Answer):
    deliveries: list[DeliveryJson]


def build_router(ws: Workspace) -> APIRouter:
    router = APIRouter(tags=["webhooks"], responses=ERROR_RESPONSES)
    prefix = "/api/2.0/mlflow/registry-webhooks"

    def spec(value: Body | None) -> dict[str, Any] | None:
        return None if value is None else value.fields()

    @router.post(f"{prefix}/create", response_model=WebhookResponse, **UNSET)
    def create(body: CreateWebhook) -> dict[str, Any]:
        hook = ws.webhooks.create(
            _events(body.events) or [],
            model_name=body.model_name,
            http_url_spec=spec(body.http_url_spec),
            job_spec=spec(body.job_spec),
            description=body.description,
            status=body.status or "ACTIVE",
        )
        return {"webhook": hook.to_json()}

    @router.get(f"{prefix}/list", response_model=ListWebhooksResponse, **UNSET)
    def list_webhooks(
        model_name: str | None = None,
        events: list[str] | None = Query(None),
        max_results: int = Query(0, ge=0),
        page_token: str | None = None,
    ) -> dict[str, Any]:
        hooks = ws.webhooks.list(model_name=model_name, events=events or None)
        start = page_start(page_token)
        end = start + max_results if max_results else len(hooks)
        out: dict[str, Any] = {"webhooks": [h.to_json() for h in hooks[start:end]]}
        if end < len(hooks):
            out["next_page_token"] = str(end)
        return out

    @router.patch(f"{prefix}/update", response_model=WebhookResponse, **UNSET)
    def update(body: UpdateWebhook) -> dict[str, Any]:
        hook = ws.webhooks.update(
            body.id,
            events=_events(body.events),
            http_url_spec=spec(body.http_url_spec),
            job_spec=spec(body.job_spec),
            description=body.description,
            status=body.status,
        )
        return {"webhook": hook.to_json()}

    @router.delete(f"{prefix}/delete", response_model=Empty)
    def delete(id: str = Query(...)) -> dict[str, Any]:
        ws.webhooks.delete(id)
        return {}

    @router.post(f"{prefix}/test", response_model=TestWebhookResponse, **UNSET)
    def test(body: TestWebhook) -> dict[str, Any]:
        result = ws.webhooks.test(body.id, event=body.event)
        # Newer clients read the fields at the top level, older ones under "webhook".
        return {**result, "webhook": result}

    @router.get("/api/2.0/lakebox/webhooks/deliveries", response_model=DeliveriesResponse, **UNSET)
    def deliveries(
        webhook_id: str | None = None,
        status: str | None = None,
        limit: int = Query(100, ge=1, le=10000),
    ) -> dict[str, Any]:
        found = ws.webhooks.deliveries(webhook_id=webhook_id, status=status, limit=limit)
        return {"deliveries": [d.__dict__ for d in found]}

    return router
