"""Databricks registry-webhook REST routes (``/api/2.0/mlflow/registry-webhooks/...``) and the
lakebox delivery log (``/api/2.0/lakebox/webhooks/deliveries``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body, Query

from lakebox.errors import InvalidInput

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["build_router"]


def _events(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise InvalidInput(f"events must be a list of event names, got {value!r}.")
    return [str(v) for v in value]


def build_router(ws: Workspace) -> APIRouter:
    router = APIRouter(tags=["webhooks"])
    prefix = "/api/2.0/mlflow/registry-webhooks"

    @router.post(f"{prefix}/create")
    def create(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        hook = ws.webhooks.create(
            _events(body.get("events")) or [],
            model_name=body.get("model_name"),
            http_url_spec=body.get("http_url_spec"),
            job_spec=body.get("job_spec"),
            description=body.get("description"),
            status=body.get("status") or "ACTIVE",
        )
        return {"webhook": hook.to_json()}

    @router.get(f"{prefix}/list")
    def list_webhooks(
        model_name: str | None = None,
        events: list[str] | None = Query(None),
        max_results: int = Query(0, ge=0),
        page_token: str | None = None,
    ) -> dict[str, Any]:
        hooks = ws.webhooks.list(model_name=model_name, events=events or None)
        start = int(page_token) if page_token and page_token.isdigit() else 0
        end = start + max_results if max_results else len(hooks)
        out: dict[str, Any] = {"webhooks": [h.to_json() for h in hooks[start:end]]}
        if end < len(hooks):
            out["next_page_token"] = str(end)
        return out

    @router.patch(f"{prefix}/update")
    def update(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        webhook_id = body.get("id")
        if not webhook_id:
            raise InvalidInput("Missing required field 'id' (the webhook id).")
        hook = ws.webhooks.update(
            webhook_id,
            events=_events(body.get("events")),
            http_url_spec=body.get("http_url_spec"),
            job_spec=body.get("job_spec"),
            description=body.get("description"),
            status=body.get("status"),
        )
        return {"webhook": hook.to_json()}

    @router.delete(f"{prefix}/delete")
    def delete(id: str = Query(...)) -> dict[str, Any]:
        ws.webhooks.delete(id)
        return {}

    @router.post(f"{prefix}/test")
    def test(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        webhook_id = body.get("id")
        if not webhook_id:
            raise InvalidInput("Missing required field 'id' (the webhook id).")
        result = ws.webhooks.test(webhook_id, event=body.get("event"))
        # Newer clients read the fields at the top level, older ones under "webhook".
        return {**result, "webhook": result}

    @router.get("/api/2.0/lakebox/webhooks/deliveries")
    def deliveries(
        webhook_id: str | None = None,
        status: str | None = None,
        limit: int = Query(100, ge=1, le=10000),
    ) -> dict[str, Any]:
        found = ws.webhooks.deliveries(webhook_id=webhook_id, status=status, limit=limit)
        return {"deliveries": [d.__dict__ for d in found]}

    return router
