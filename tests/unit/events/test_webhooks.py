"""Webhook definitions: validation, CRUD, and which webhooks an event is queued for."""

import pytest

from lakebox.errors import InvalidInput, NotFound
from lakebox.events import Outbox, Webhooks

URL = {"url": "https://example.com/hook", "secret": "s"}


@pytest.fixture
def hooks(ws):
    # the events layer only asks whether a model exists; ws.webhooks asks the registry
    return Webhooks(ws.metadata, model_exists=lambda name: name == "churn")


def test_create_get_list_update_delete(hooks):
    hook = hooks.create(["COMMENT_CREATED"], model_name="churn", http_url_spec=URL, description="d")
    assert hooks.get(hook.id) == hook and hook.status == "ACTIVE"
    shown = hook.to_json()
    assert shown["http_url_spec"] == {"url": URL["url"], "enable_ssl_verification": True}
    assert "secret" not in str(shown)
    wide = hooks.create(["REGISTERED_MODEL_CREATED"], job_spec={"job_id": 7})
    assert wide.to_json()["job_spec"] == {"job_id": "7"}
    assert [h.id for h in hooks.list()] == [hook.id, wide.id]
    assert [h.id for h in hooks.list(model_name="churn")] == [hook.id]
    assert [h.id for h in hooks.list(events=["REGISTERED_MODEL_CREATED"])] == [wide.id]
    changed = hooks.update(hook.id, status="test_mode", http_url_spec={"url": "http://h/x"})
    assert changed.status == "TEST_MODE" and changed.secret == "s"  # secret kept
    hooks.delete(hook.id)
    with pytest.raises(NotFound, match=hook.id):
        hooks.get(hook.id)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"events": ["COMMENT_CREATED"]}, "exactly one"),
        (
            {"events": ["COMMENT_CREATED"], "http_url_spec": URL, "job_spec": {"job_id": 1}},
            "exactly one",
        ),
        (
            {"events": ["COMMENT_CREATED"], "http_url_spec": {"url": "not a url"}},
            "Invalid webhook URL",
        ),
        (
            {"events": ["COMMENT_CREATED"], "http_url_spec": {"url": "ftp://h/x"}},
            "Invalid webhook URL",
        ),
        (
            {"events": ["COMMENT_CREATED"], "http_url_spec": URL, "status": "ON"},
            "Invalid webhook status",
        ),
        ({"events": ["NOPE"], "http_url_spec": URL}, "Unknown webhook event"),
        (
            {"events": ["REGISTERED_MODEL_CREATED"], "http_url_spec": URL, "model_name": "churn"},
            "registry-wide",
        ),
        ({"events": ["COMMENT_CREATED"], "job_spec": {}}, "job_id"),
    ],
)
def test_bad_definitions_are_refused(hooks, kwargs, message):
    events = kwargs.pop("events")
    with pytest.raises(InvalidInput, match=message):
        hooks.create(events, **kwargs)
    assert hooks.list() == []


def test_unknown_model_is_refused(hooks):
    with pytest.raises(NotFound, match="'churnn' does not exist"):
        hooks.create(["COMMENT_CREATED"], model_name="churnn", http_url_spec=URL)


def test_events_are_queued_for_matching_active_webhooks_only(ws):
    hooks = Webhooks(ws.metadata)
    outbox = Outbox(ws.metadata)
    churn = hooks.create(["COMMENT_CREATED"], model_name="churn", http_url_spec=URL)
    wide = hooks.create(["COMMENT_CREATED", "MODEL_VERSION_CREATED"], http_url_spec=URL)
    hooks.create(["COMMENT_CREATED"], http_url_spec=URL, status="TEST_MODE")
    hooks.create(["COMMENT_CREATED"], http_url_spec=URL, status="DISABLED")
    outbox.emit("COMMENT_CREATED", model_name="churn", version="1", comment="a")
    outbox.emit("COMMENT_CREATED", model_name="other", version="1", comment="b")
    outbox.emit("MODEL_VERSION_TAG_SET", model_name="churn", version="1")
    queued = sorted((d.webhook_id, d.model_name) for d in hooks.deliveries())
    assert queued == sorted([(churn.id, "churn"), (wide.id, "churn"), (wide.id, "other")])
    assert [e.event for e in outbox.events()] == [
        "COMMENT_CREATED",
        "COMMENT_CREATED",
        "MODEL_VERSION_TAG_SET",
    ]
    hooks.delete(wide.id)
    assert {d.webhook_id for d in hooks.deliveries()} == {churn.id}
