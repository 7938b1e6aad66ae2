"""Metadata tables of the event bus (component ``events``).

``events_outbox`` holds every event once; ``events_deliveries`` holds one row per (webhook,
event) written in the same transaction as the event, so nothing is lost between the two;
``events_attempts`` is the delivery log.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from lakebox.metadata._migrations import Migration

metadata = MetaData()

webhooks = Table(
    "events_webhooks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model_name", String(255), nullable=True, index=True),
    Column("events", Text, nullable=False),  # JSON list
    Column("description", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("url", Text, nullable=True),
    Column("secret", Text, nullable=True),
    Column("authorization", Text, nullable=True),
    Column("enable_ssl_verification", Integer, nullable=False, default=1),
    Column("job_id", String(64), nullable=True),
    Column("workspace_url", Text, nullable=True),
    Column("creation_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
)

outbox = Table(
    "events_outbox",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(32), nullable=False, unique=True),
    Column("event", String(64), nullable=False),
    Column("model_name", String(255), nullable=True),
    Column("version", String(32), nullable=True),
    Column("payload", Text, nullable=False),  # JSON without webhook_id
    Column("event_timestamp", BigInteger, nullable=False),
)

deliveries = Table(
    "events_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "webhook_id",
        String(32),
        ForeignKey("events_webhooks.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("seq", Integer, ForeignKey("events_outbox.seq"), nullable=False),
    Column("status", String(16), nullable=False),  # PENDING, SUCCEEDED, DEAD, SKIPPED
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("lease_owner", String(255), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=True),
    UniqueConstraint("webhook_id", "seq", name="uq_events_deliveries_webhook_seq"),
    Index("ix_events_deliveries_status_webhook", "status", "webhook_id", "seq"),
)

attempts = Table(
    "events_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "delivery_id",
        Integer,
        ForeignKey("events_deliveries.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("attempt", Integer, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)


MIGRATIONS = [Migration("events", 1, "webhooks, outbox, deliveries, delivery attempts", _v1)]
