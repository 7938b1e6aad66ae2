"""The outbox, webhooks and dispatcher on a PostgreSQL metadata database (a real server)."""

import uuid

import pytest
from sqlalchemy import create_engine, text

from lakebox.events import Dispatcher, DispatcherConfig, Outbox, Webhooks
from lakebox.events._receiver import Receiver
from lakebox.metadata import MetadataDB


@pytest.fixture
def pg_db(postgres_url):
    name = f"events_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    db = MetadataDB(postgres_url.rsplit("/", 1)[0] + f"/{name}")
    db.migrate()
    yield db
    db.dispose()
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE {name}"))
    admin.dispose()


def test_deliveries_on_postgresql(pg_db):
    outbox, hooks = Outbox(pg_db), Webhooks(pg_db)
    config = DispatcherConfig(max_attempts=2, backoff_seconds=0.01, poll_interval_seconds=0.01)
    with Receiver(secret="pg") as ok, Receiver(status=500) as failing:
        good = hooks.create(["COMMENT_CREATED"], http_url_spec={"url": ok.url, "secret": "pg"})
        bad = hooks.create(["COMMENT_CREATED"], http_url_spec={"url": failing.url})
        ids = [outbox.emit("COMMENT_CREATED", comment=str(i)) for i in range(30)]
        dispatcher = Dispatcher(pg_db, config=config)
        dispatcher.start()
        calls = ok.wait_for(30)
        failing.wait_for(60)
        dispatcher.stop()
    assert [c["event_id"] for c in calls] == ids and all(c["valid"] for c in calls)
    assert {d.status for d in hooks.deliveries(webhook_id=good.id)} == {"SUCCEEDED"}
    dead = hooks.deliveries(webhook_id=bad.id, status="DEAD")
    assert len(dead) == 30 and {d.attempts for d in dead} == {2}
