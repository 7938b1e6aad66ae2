"""The event bus: registry event types, the durable outbox, webhooks and their dispatcher.

Depends on nothing but the metadata database (and MLflow, only inside the registry-store
plugin that MLflow loads through its ``mlflow.model_registry_store`` entry point).
"""

from lakebox.events._delivery import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    DeliveryResult,
    render_body,
    sign,
    verify_signature,
)
from lakebox.events._dispatcher import Dispatcher, DispatcherConfig
from lakebox.events._outbox import Event, Outbox
from lakebox.events._plugin import registry_store_uri, split_registry_uri
from lakebox.events._types import EVENTS, REGISTRY_WIDE_ONLY, event_context
from lakebox.events._webhooks import STATUSES, Delivery, Webhook, Webhooks

__all__ = [
    "Delivery",
    "DeliveryResult",
    "Dispatcher",
    "DispatcherConfig",
    "EVENTS",
    "EVENT_ID_HEADER",
    "Event",
    "Outbox",
    "REGISTRY_WIDE_ONLY",
    "SIGNATURE_HEADER",
    "STATUSES",
    "Webhook",
    "Webhooks",
    "event_context",
    "registry_store_uri",
    "render_body",
    "sign",
    "split_registry_uri",
    "verify_signature",
]
