"""The dispatcher against a real HTTP receiver on loopback: signing, retries with backoff,
dead letter, order per webhook, leases after a crash, job triggers."""

import json
import os
import time

import pytest
from sqlalchemy import update

from lakebox.errors import NotFound
from lakebox.events import Dispatcher, DispatcherConfig, Outbox, Webhooks
from lakebox.events import _schema as s
from lakebox.events._receiver import Receiver

FAST = DispatcherConfig(
    max_attempts=3,
    backoff_seconds=0.01,
    backoff_max_seconds=0.05,
    poll_interval_seconds=0.01,
    timeout_seconds=5,
)


@pytest.fixture
def bus(ws):
    return Outbox(ws.metadata), Webhooks(ws.metadata)


def _drain(dispatcher, *, until, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until():
        dispatcher.run_once()
        time.sleep(0.005)


def test_delivers_signed_payload_with_event_id(ws, bus):
    outbox, hooks = bus
    with Receiver(secret="k") as receiver:
        hook = hooks.create(
            ["COMMENT_CREATED"],
            http_url_spec={"url": receiver.url, "secret": "k", "authorization": "Bearer t"},
        )
        event_id = outbox.emit(
            "COMMENT_CREATED", model_name="m", version="3", comment="hi", text="x"
        )
        dispatcher = Dispatcher(ws.metadata, config=FAST)
        assert dispatcher.run_once() == 1
        dispatcher.stop()
    (call,) = receiver.received
    assert call["valid"] and call["event_id"] == event_id and call["attempt"] == "1"
    assert call["authorization"] == "Bearer t"
    body = call["body"]
    assert body["webhook_id"] == hook.id and body["event"] == "COMMENT_CREATED"
    assert (body["model_name"], body["version"], body["comment"]) == ("m", "3", "hi")
    (delivery,) = hooks.deliveries()
    assert delivery.status == "SUCCEEDED" and delivery.attempts == 1
    assert delivery.last_status_code == 200


def test_retries_with_backoff_then_dead_letter_and_order_is_kept(ws, bus):
    outbox, hooks = bus
    with Receiver(status=500) as receiver:
        hook = hooks.create(["COMMENT_CREATED"], http_url_spec={"url": receiver.url})
        first = outbox.emit("COMMENT_CREATED", comment="1")
        second = outbox.emit("COMMENT_CREATED", comment="2")
        dispatcher = Dispatcher(ws.metadata, config=FAST)
        assert dispatcher.run_once() == 1  # the head failed: the second waits behind it
        (pending,) = [d for d in hooks.deliveries() if d.event_id == first]
        assert pending.status == "PENDING" and pending.attempts == 1
        assert "HTTP 500" in pending.last_error
        _drain(dispatcher, until=lambda: len(hooks.deliveries(status="DEAD")) == 2)
        dispatcher.stop()
    ids = [c["event_id"] for c in receiver.received]
    assert ids == [first] * 3 + [second] * 3
    dead = hooks.deliveries(webhook_id=hook.id, status="DEAD")
    assert {d.attempts for d in dead} == {3}
    log = hooks.attempts(dead[0].id)
    assert [a["attempt"] for a in log] == [1, 2, 3] and {a["status_code"] for a in log} == {500}


def test_unreachable_receiver_is_a_failed_attempt(ws, bus):
    outbox, hooks = bus
    receiver = Receiver()
    url = receiver.url
    receiver.stop()  # nothing listens there any more
    hooks.create(["COMMENT_CREATED"], http_url_spec={"url": url})
    outbox.emit("COMMENT_CREATED")
    dispatcher = Dispatcher(ws.metadata, config=FAST)
    dispatcher.run_once()
    dispatcher.stop()
    (delivery,) = hooks.deliveries()
    assert delivery.status == "PENDING" and "ConnectError" in delivery.last_error


def test_backoff_schedule():
    config = DispatcherConfig(backoff_seconds=1, backoff_max_seconds=5)
    assert [config.backoff_ms(n) for n in (1, 2, 3, 4, 5)] == [1000, 2000, 4000, 5000, 5000]


def test_lease_of_a_dead_process_is_taken_over_but_a_live_one_is_respected(ws, bus):
    outbox, hooks = bus
    with Receiver() as receiver:
        hooks.create(["COMMENT_CREATED"], http_url_spec={"url": receiver.url})
        outbox.emit("COMMENT_CREATED")
        dispatcher = Dispatcher(ws.metadata, config=FAST)
        far = int(time.time() * 1000) + 600_000
        live_owner = f"{dispatcher.host}:{os.getpid()}:other"
        with ws.metadata.begin() as conn:  # another live dispatcher holds it
            conn.execute(update(s.deliveries).values(lease_owner=live_owner, lease_until=far))
        assert dispatcher.run_once() == 0 and receiver.received == []
        dead_pid = 2**22 + 12345  # above pid_max: no such process
        with ws.metadata.begin() as conn:  # the holder was SIGKILLed mid-send
            conn.execute(
                update(s.deliveries).values(
                    lease_owner=f"{dispatcher.host}:{dead_pid}:gone", lease_until=far
                )
            )
        assert dispatcher.run_once() == 1
        dispatcher.stop()
    assert len(receiver.received) == 1
    assert hooks.deliveries()[0].status == "SUCCEEDED"


def test_disabled_after_queueing_is_skipped(ws, bus):
    outbox, hooks = bus
    hook = hooks.create(["COMMENT_CREATED"], http_url_spec={"url": "http://127.0.0.1:9/x"})
    outbox.emit("COMMENT_CREATED")
    hooks.update(hook.id, status="DISABLED")
    dispatcher = Dispatcher(ws.metadata, config=FAST)
    dispatcher.run_once()
    dispatcher.stop()
    (delivery,) = hooks.deliveries()
    assert delivery.status == "SKIPPED" and "DISABLED" in delivery.last_error


def test_job_webhook_without_job_runner_fails_visibly(ws, bus):
    outbox, hooks = bus
    hooks.create(["COMMENT_CREATED"], job_spec={"job_id": 42})
    outbox.emit("COMMENT_CREATED")
    dispatcher = Dispatcher(ws.metadata, config=FAST, job_runner=None)
    dispatcher.run_once()
    dispatcher.stop()
    (delivery,) = hooks.deliveries()
    assert delivery.status == "DEAD" and "no job runner available" in delivery.last_error


def test_job_webhook_starts_a_run_with_the_event(ws, bus):
    outbox, hooks = bus
    started = []

    def run_now(job_id, parameters):
        if job_id != "42":
            raise NotFound(f"Job {job_id} does not exist.")
        started.append((job_id, json.loads(parameters["event"])))
        return 7

    good = hooks.create(["COMMENT_CREATED"], job_spec={"job_id": 42})
    hooks.create(["COMMENT_CREATED"], job_spec={"job_id": 43})
    outbox.emit("COMMENT_CREATED", model_name="m", comment="c")
    dispatcher = Dispatcher(ws.metadata, config=FAST, job_runner=run_now)
    _drain(dispatcher, until=lambda: not hooks.deliveries(status="PENDING"))
    dispatcher.stop()
    assert [(j, e["webhook_id"], e["comment"]) for j, e in started] == [("42", good.id, "c")]
    status = {d.webhook_id: (d.status, d.last_error) for d in hooks.deliveries()}
    assert status[good.id] == ("SUCCEEDED", None)
    assert [v for k, v in status.items() if k != good.id] == [("DEAD", "Job 43 does not exist.")]


def test_background_thread(ws, bus):
    outbox, hooks = bus
    with Receiver() as receiver:
        hooks.create(["COMMENT_CREATED"], http_url_spec={"url": receiver.url})
        dispatcher = Dispatcher(ws.metadata, config=FAST)
        dispatcher.start()
        for i in range(20):
            outbox.emit("COMMENT_CREATED", comment=str(i))
        calls = receiver.wait_for(20)
        dispatcher.stop()
    assert [c["body"]["comment"] for c in calls] == [str(i) for i in range(20)]
