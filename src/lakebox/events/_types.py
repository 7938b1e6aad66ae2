"""Registry event names and the payloads webhooks receive (as Databricks sends them)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from lakebox.errors import InvalidInput, close_matches

__all__ = [
    "ALIAS_EVENTS",
    "EVENTS",
    "REGISTRY_WIDE_ONLY",
    "event_context",
    "stage_event",
    "transition_request_event",
    "validate_events",
]

# Databricks' RegistryWebhookEvent values, then lakebox's alias and monitoring events.
EVENTS = (
    "MODEL_VERSION_CREATED",
    "MODEL_VERSION_TRANSITIONED_STAGE",
    "TRANSITION_REQUEST_CREATED",
    "COMMENT_CREATED",
    "REGISTERED_MODEL_CREATED",
    "MODEL_VERSION_TAG_SET",
    "MODEL_VERSION_TRANSITIONED_TO_STAGING",
    "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
    "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED",
    "TRANSITION_REQUEST_TO_STAGING_CREATED",
    "TRANSITION_REQUEST_TO_PRODUCTION_CREATED",
    "TRANSITION_REQUEST_TO_ARCHIVED_CREATED",
    "MODEL_VERSION_ALIAS_SET",
    "MODEL_VERSION_ALIAS_DELETED",
    "MONITOR_ALERT_TRIGGERED",
)
ALIAS_EVENTS = ("MODEL_VERSION_ALIAS_SET", "MODEL_VERSION_ALIAS_DELETED")
# Events a model-specific webhook cannot listen to: there is no model yet when a model is
# created, and monitor alerts belong to a table, not a model.
REGISTRY_WIDE_ONLY = ("REGISTERED_MODEL_CREATED", "MONITOR_ALERT_TRIGGERED")

_STAGE_SUFFIX = {"Staging": "STAGING", "Production": "PRODUCTION", "Archived": "ARCHIVED"}

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "lakebox_event_context", default=None
)


@contextlib.contextmanager
def event_context(**fields: Any) -> Iterator[None]:
    """Add fields (``comment``, ``user_id``) to events emitted inside the block in this thread.

    The MLflow store API has no place for a transition comment; lakebox's own calls put it here
    so the registry-store plugin can include it in the payload.

    Example:
        >>> with event_context(comment="ship it"):                           # doctest: +SKIP
        ...     client.transition_model_version_stage("churn", "2", "Production")
    """
    merged = {**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    """Fields set by the innermost :func:`event_context`."""
    return dict(_context.get() or {})


def validate_events(events: list[str] | tuple[str, ...], *, model_name: str | None) -> list[str]:
    """Check event names for a webhook; returns them de-duplicated in the given order."""
    if not events:
        raise InvalidInput(
            "A webhook needs at least one event; valid events: " + ", ".join(EVENTS) + "."
        )
    out: list[str] = []
    for name in events:
        event = str(name).strip().upper()
        if event not in EVENTS:
            raise InvalidInput(
                f"Unknown webhook event {name!r}.{close_matches(event, EVENTS)} "
                f"Valid events: {', '.join(EVENTS)}."
            )
        if model_name and event in REGISTRY_WIDE_ONLY:
            raise InvalidInput(
                f"Event {event} can only be used by a registry-wide webhook: "
                f"drop model_name={model_name!r} or remove {event}."
            )
        if event not in out:
            out.append(event)
    return out


def stage_event(name: str, version: str, from_stage: str, to_stage: str) -> list[tuple[str, str]]:
    """The (event, text) pairs a stage transition fires."""
    text = (
        f"Registered model '{name}' version {version} transitioned from {from_stage} to {to_stage}."
    )
    out = [("MODEL_VERSION_TRANSITIONED_STAGE", text)]
    if to_stage in _STAGE_SUFFIX:
        out.append((f"MODEL_VERSION_TRANSITIONED_TO_{_STAGE_SUFFIX[to_stage]}", text))
    return out


def transition_request_event(
    name: str, version: str, from_stage: str, to_stage: str, user_id: str
) -> list[tuple[str, str]]:
    """The (event, text) pairs a new transition request fires."""
    text = (
        f"{user_id} requested a transition of registered model '{name}' version {version} "
        f"from {from_stage} to {to_stage}."
    )
    out = [("TRANSITION_REQUEST_CREATED", text)]
    if to_stage in _STAGE_SUFFIX:
        out.append((f"TRANSITION_REQUEST_TO_{_STAGE_SUFFIX[to_stage]}_CREATED", text))
    return out
