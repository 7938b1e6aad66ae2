"""Registry webhooks: create, list, update, delete, test, and their delivery log."""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import delete, func, select, update

from lakebox.errors import InvalidInput, NotFound, close_matches
from lakebox.events import _schema as s
from lakebox.events._delivery import Sender, Target, render_body
from lakebox.events._outbox import now_ms
from lakebox.events._types import EVENTS, validate_events
from lakebox.metadata import MetadataDB

__all__ = ["STATUSES", "Delivery", "Webhook", "Webhooks"]

STATUSES = ("ACTIVE", "TEST_MODE", "DISABLED")
DELIVERY_STATUSES = ("PENDING", "SUCCEEDED", "DEAD", "SKIPPED")


@dataclass(frozen=True)
class Webhook:
    """A registry webhook. ``secret`` is kept for signing and never shown in :meth:`to_json`."""

    id: str
    events: list[str]
    status: str
    model_name: str | None = None
    description: str | None = None
    url: str | None = None
    secret: str | None = field(default=None, repr=False)
    authorization: str | None = field(default=None, repr=False)
    enable_ssl_verification: bool = True
    job_id: str | None = None
    workspace_url: str | None = None
    creation_timestamp: int = 0
    last_updated_timestamp: int = 0

    def target(self) -> Target:
        """Where deliveries go."""
        return Target(
            webhook_id=self.id,
            url=self.url,
            secret=self.secret,
            authorization=self.authorization,
            enable_ssl_verification=self.enable_ssl_verification,
            job_id=self.job_id,
        )

    def to_json(self) -> dict[str, Any]:
        """Databricks' ``RegistryWebhook`` JSON (without secrets)."""
        out: dict[str, Any] = {
            "id": self.id,
            "events": list(self.events),
            "status": self.status,
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
        }
        if self.model_name:
            out["model_name"] = self.model_name
        if self.description:
            out["description"] = self.description
        if self.url is not None:
            out["http_url_spec"] = {
                "url": self.url,
                "enable_ssl_verification": self.enable_ssl_verification,
            }
        if self.job_id is not None:
            out["job_spec"] = {
                "job_id": self.job_id,
                **({"workspace_url": self.workspace_url} if self.workspace_url else {}),
            }
        return out


@dataclass(frozen=True)
class Delivery:
    """One event's delivery to one webhook, with its retry state."""

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


def _row_to_webhook(row: Any) -> Webhook:
    return Webhook(
        id=row.id,
        events=json.loads(row.events),
        status=row.status,
        model_name=row.model_name,
        description=row.description,
        url=row.url,
        secret=row.secret,
        authorization=row.authorization,
        enable_ssl_verification=bool(row.enable_ssl_verification),
        job_id=row.job_id,
        workspace_url=row.workspace_url,
        creation_timestamp=row.creation_timestamp,
        last_updated_timestamp=row.last_updated_timestamp,
    )


def _check_status(status: str) -> str:
    value = str(status).strip().upper()
    if value not in STATUSES:
        raise InvalidInput(
            f"Invalid webhook status {status!r}.{close_matches(value, STATUSES)} "
            f"Use one of {', '.join(STATUSES)}."
        )
    return value


def _http_columns(spec: dict[str, Any]) -> dict[str, Any]:
    unknown = set(spec) - {"url", "secret", "authorization", "enable_ssl_verification"}
    if unknown:
        raise InvalidInput(
            f"Unknown http_url_spec field(s) {sorted(unknown)}; valid: url, "
            "secret, authorization, enable_ssl_verification."
        )
    url = spec.get("url")
    try:
        parsed = httpx.URL(str(url or ""))
    except Exception:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInput(
            f"Invalid webhook URL {url!r}: give an absolute http:// or https:// "
            "URL such as https://example.com/hook."
        )
    return {
        "url": str(url),
        "secret": spec.get("secret") or None,
        "authorization": spec.get("authorization") or None,
        "enable_ssl_verification": 0 if spec.get("enable_ssl_verification") is False else 1,
        "job_id": None,
        "workspace_url": None,
    }


def _job_columns(spec: dict[str, Any]) -> dict[str, Any]:
    job_id = spec.get("job_id")
    if job_id is None or str(job_id).strip() == "":
        raise InvalidInput("job_spec needs a job_id, e.g. job_spec={'job_id': 42}.")
    text = str(job_id).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InvalidInput(f"job_spec.job_id must be a lakebox job id such as 42, got {job_id!r}.")
    return {
        "job_id": text,
        "workspace_url": spec.get("workspace_url") or None,
        "url": None,
        "secret": None,
        "authorization": None,
        "enable_ssl_verification": 1,
    }


class Webhooks:
    """Registry webhooks of a workspace (``ws.webhooks``).

    Args:
        db: the metadata database.
        model_exists: checks that a model-specific webhook names a registered model.
        job_runner: starts job runs for :meth:`test` of ``job_spec`` webhooks.

    Example:
        >>> hook = ws.webhooks.create(["MODEL_VERSION_TRANSITIONED_TO_STAGING"],   # doctest: +SKIP
        ...     model_name="churn", http_url_spec={"url": "https://ci.example.com/hook",
        ...                                        "secret": "s3cret"})
        >>> ws.webhooks.test(hook.id)["status_code"]                              # doctest: +SKIP
        200
    """

    def __init__(
        self,
        db: MetadataDB,
        *,
        model_exists: Callable[[str], bool] | None = None,
        job_runner: Callable[[], Any] | None = None,
    ) -> None:
        self.db = db
        self._model_exists = model_exists
        self._job_runner = job_runner

    # ------------------------------------------------------------------ CRUD
    def create(
        self,
        events: builtins.list[str],
        *,
        model_name: str | None = None,
        http_url_spec: dict[str, Any] | None = None,
        job_spec: dict[str, Any] | None = None,
        description: str | None = None,
        status: str = "ACTIVE",
    ) -> Webhook:
        """Create a webhook; give exactly one of ``http_url_spec`` and ``job_spec``.

        Args:
            events: event names, e.g. ``["MODEL_VERSION_TRANSITIONED_TO_STAGING"]``.
            model_name: listen to one model only; ``None`` makes a registry-wide webhook.
            http_url_spec: ``{"url", "secret", "authorization", "enable_ssl_verification"}``.
            job_spec: ``{"job_id"}``: start this lakebox job with the event as parameter.
            description: free text.
            status: ``ACTIVE`` (default), ``TEST_MODE`` (only :meth:`test` fires) or
                ``DISABLED``.
        """
        model_name = model_name or None
        checked = validate_events(list(events or []), model_name=model_name)
        status = _check_status(status)
        if (http_url_spec is None) == (job_spec is None):
            raise InvalidInput(
                "Give exactly one of http_url_spec (a URL to POST to) and job_spec (a job to run)."
            )
        target = _http_columns(http_url_spec) if http_url_spec else _job_columns(job_spec or {})
        if model_name and self._model_exists and not self._model_exists(model_name):
            raise NotFound(
                f"Registered model {model_name!r} does not exist; register it first "
                "or omit model_name for a registry-wide webhook."
            )
        now = now_ms()
        webhook_id = uuid.uuid4().hex
        with self.db.begin() as conn:
            conn.execute(
                s.webhooks.insert().values(
                    id=webhook_id,
                    model_name=model_name,
                    events=json.dumps(checked),
                    description=description,
                    status=status,
                    creation_timestamp=now,
                    last_updated_timestamp=now,
                    **target,
                )
            )
        return self.get(webhook_id)

    def get(self, webhook_id: str) -> Webhook:
        """One webhook by id."""
        with self.db.engine.connect() as conn:
            row = conn.execute(select(s.webhooks).where(s.webhooks.c.id == webhook_id)).first()
        if row is None:
            raise NotFound(
                f"Webhook {webhook_id!r} does not exist; `lakebox webhooks list` shows the ids."
            )
        return _row_to_webhook(row)

    def list(
        self, *, model_name: str | None = None, events: builtins.list[str] | None = None
    ) -> builtins.list[Webhook]:
        """Webhooks, oldest first; filtered by model and by any of ``events``."""
        query = select(s.webhooks).order_by(s.webhooks.c.creation_timestamp, s.webhooks.c.id)
        if model_name:
            query = query.where(s.webhooks.c.model_name == model_name)
        with self.db.engine.connect() as conn:
            hooks = [_row_to_webhook(r) for r in conn.execute(query)]
        if events:
            wanted = set(validate_events(list(events), model_name=None))
            hooks = [h for h in hooks if wanted & set(h.events)]
        return hooks

    def update(
        self,
        webhook_id: str,
        *,
        events: builtins.list[str] | None = None,
        http_url_spec: dict[str, Any] | None = None,
        job_spec: dict[str, Any] | None = None,
        description: str | None = None,
        status: str | None = None,
    ) -> Webhook:
        """Change a webhook; only the given fields change."""
        current = self.get(webhook_id)
        values: dict[str, Any] = {}
        if events is not None:
            values["events"] = json.dumps(
                validate_events(list(events), model_name=current.model_name)
            )
        if http_url_spec is not None and job_spec is not None:
            raise InvalidInput("Give at most one of http_url_spec and job_spec.")
        if http_url_spec is not None:
            spec = dict(http_url_spec)
            if "secret" not in spec and current.url is not None:
                spec["secret"] = current.secret  # keep the secret unless replaced
            values.update(_http_columns(spec))
        if job_spec is not None:
            values.update(_job_columns(job_spec))
        if description is not None:
            values["description"] = description
        if status is not None:
            values["status"] = _check_status(status)
        values["last_updated_timestamp"] = now_ms()
        with self.db.begin() as conn:
            conn.execute(update(s.webhooks).where(s.webhooks.c.id == webhook_id).values(**values))
        return self.get(webhook_id)

    def delete(self, webhook_id: str) -> None:
        """Delete a webhook and its pending deliveries."""
        self.get(webhook_id)
        with self.db.begin() as conn:
            ids = select(s.deliveries.c.id).where(s.deliveries.c.webhook_id == webhook_id)
            conn.execute(delete(s.attempts).where(s.attempts.c.delivery_id.in_(ids)))
            conn.execute(delete(s.deliveries).where(s.deliveries.c.webhook_id == webhook_id))
            conn.execute(delete(s.webhooks).where(s.webhooks.c.id == webhook_id))

    # ------------------------------------------------------------------ test
    def test(self, webhook_id: str, *, event: str | None = None) -> dict[str, Any]:
        """Send a sample event now (works in ``TEST_MODE``); returns ``status_code`` and
        ``body`` of the receiver's answer. Nothing is queued or retried."""
        hook = self.get(webhook_id)
        chosen = (event or hook.events[0]).strip().upper()
        if chosen not in EVENTS:
            raise InvalidInput(f"Unknown webhook event {event!r}.{close_matches(chosen, EVENTS)}")
        if chosen not in hook.events:
            raise InvalidInput(
                f"Webhook {webhook_id} does not listen to {chosen}; it listens "
                f"to {', '.join(hook.events)}."
            )
        payload = {
            "event": chosen,
            "event_timestamp": now_ms(),
            "model_name": hook.model_name or "test-model",
            "version": "1",
            "text": "This is a test webhook message from lakebox.",
            "test": True,
        }
        runner = self._job_runner() if self._job_runner else None
        sender = Sender(job_runner=runner)
        try:
            result = sender.send(
                hook.target(), render_body(payload, hook.id), event_id=uuid.uuid4().hex
            )
        finally:
            sender.close()
        if result.status_code is None and not result.ok:
            return {"status_code": 0, "body": result.error or ""}
        return {"status_code": result.status_code or 200, "body": result.body}

    # ------------------------------------------------------------------ log
    def deliveries(
        self, *, webhook_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> builtins.list[Delivery]:
        """The delivery log, newest first: each event sent to each webhook, its attempts,
        status (``PENDING``, ``SUCCEEDED``, ``DEAD`` = dead letter, ``SKIPPED``) and last error."""
        d, o = s.deliveries, s.outbox
        query = (
            select(d, o.c.event_id, o.c.event, o.c.model_name, o.c.version)
            .join(o, o.c.seq == d.c.seq)
            .order_by(d.c.id.desc())
            .limit(limit)
        )
        if webhook_id:
            query = query.where(d.c.webhook_id == webhook_id)
        if status:
            wanted = status.strip().upper()
            if wanted not in DELIVERY_STATUSES:
                raise InvalidInput(
                    f"Invalid delivery status {status!r}; use one of "
                    f"{', '.join(DELIVERY_STATUSES)}."
                )
            query = query.where(d.c.status == wanted)
        with self.db.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Delivery(
                id=r.id,
                webhook_id=r.webhook_id,
                event_id=r.event_id,
                event=r.event,
                model_name=r.model_name,
                version=r.version,
                status=r.status,
                attempts=r.attempts,
                next_attempt_at=r.next_attempt_at,
                last_status_code=r.last_status_code,
                last_error=r.last_error,
                created_at=r.created_at,
                finished_at=r.finished_at,
            )
            for r in rows
        ]

    def attempts(self, delivery_id: int) -> builtins.list[dict[str, Any]]:
        """Every attempt of one delivery, oldest first."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                select(s.attempts)
                .where(s.attempts.c.delivery_id == delivery_id)
                .order_by(s.attempts.c.attempt)
            ).all()
        return [dict(r._mapping) for r in rows]

    def counts(self) -> dict[str, int]:
        """Deliveries by status."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                select(s.deliveries.c.status, func.count()).group_by(s.deliveries.c.status)
            ).all()
        return {status: count for status, count in rows}
