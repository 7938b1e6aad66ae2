"""The durable outbox: every event is one row, and every webhook that listens to it gets a
delivery row in the same transaction."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from lakebox.events import _schema as s
from lakebox.events._types import EVENTS, current_context
from lakebox.metadata import MetadataDB

__all__ = ["Event", "Outbox", "now_ms"]


def now_ms() -> int:
    """Milliseconds since the epoch: the clock of every events row."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Event:
    """One event in the outbox."""

    seq: int
    event_id: str
    event: str
    model_name: str | None
    version: str | None
    event_timestamp: int
    payload: dict[str, Any]


class Outbox:
    """Writes events (and their pending deliveries) to the metadata database.

    Args:
        db: the workspace's metadata database.

    Example:
        >>> outbox = Outbox(ws.metadata)                                       # doctest: +SKIP
        >>> outbox.emit("MODEL_VERSION_CREATED", model_name="churn", version="3",
        ...             text="A new version was created.")
    """

    def __init__(self, db: MetadataDB) -> None:
        self.db = db

    def emit(
        self,
        event: str,
        *,
        model_name: str | None = None,
        version: str | None = None,
        conn: Connection | None = None,
        **fields: Any,
    ) -> str:
        """Record an event; returns its id.

        Fields set with :func:`~lakebox.events.event_context` are added unless given here.
        Pass ``conn`` to write inside the caller's transaction (same metadata database).
        """
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}")
        event_id = uuid.uuid4().hex
        timestamp = now_ms()
        payload: dict[str, Any] = {"event": event, "event_timestamp": timestamp}
        if model_name is not None:
            payload["model_name"] = model_name
        if version is not None:
            payload["version"] = str(version)
        context = current_context()
        for key in ("comment",):
            if key in context and key not in fields:
                fields[key] = context[key]
        payload.update({k: v for k, v in fields.items() if v is not None})
        if conn is None:
            with self.db.begin() as own:
                self._insert(own, event_id, event, model_name, version, timestamp, payload)
        else:
            self._insert(conn, event_id, event, model_name, version, timestamp, payload)
        return event_id

    def emit_many(
        self,
        events: list[tuple[str, dict[str, Any]]],
        *,
        model_name: str | None = None,
        version: str | None = None,
    ) -> list[str]:
        """Record several events of one change in one transaction (e.g. a transition's
        ``MODEL_VERSION_TRANSITIONED_STAGE`` and ``..._TO_PRODUCTION``); returns their ids."""
        with self.db.begin() as conn:
            return [
                self.emit(event, model_name=model_name, version=version, conn=conn, **fields)
                for event, fields in events
            ]

    @staticmethod
    def _insert(
        conn: Connection,
        event_id: str,
        event: str,
        model_name: str | None,
        version: str | None,
        timestamp: int,
        payload: dict[str, Any],
    ) -> None:
        inserted = conn.execute(
            s.outbox.insert().values(
                event_id=event_id,
                event=event,
                model_name=model_name,
                version=None if version is None else str(version),
                payload=json.dumps(payload),
                event_timestamp=timestamp,
            )
        ).inserted_primary_key
        seq = inserted[0] if inserted is not None else None
        listeners = conn.execute(
            select(s.webhooks.c.id, s.webhooks.c.events, s.webhooks.c.model_name).where(
                s.webhooks.c.status == "ACTIVE"
            )
        ).all()
        rows = [
            {
                "webhook_id": hook.id,
                "seq": seq,
                "status": "PENDING",
                "attempts": 0,
                "next_attempt_at": timestamp,
                "created_at": timestamp,
            }
            for hook in listeners
            if event in json.loads(hook.events)
            and (hook.model_name is None or hook.model_name == model_name)
        ]
        if rows:
            conn.execute(s.deliveries.insert(), rows)

    def events(
        self,
        *,
        model_name: str | None = None,
        event: str | None = None,
        after_seq: int = 0,
        limit: int = 1000,
    ) -> Iterator[Event]:
        """Events in the order they happened, optionally filtered."""
        query = select(s.outbox).where(s.outbox.c.seq > after_seq).order_by(s.outbox.c.seq)
        if model_name is not None:
            query = query.where(s.outbox.c.model_name == model_name)
        if event is not None:
            query = query.where(s.outbox.c.event == event)
        with self.db.engine.connect() as conn:
            rows = conn.execute(query.limit(limit)).all()
        for row in rows:
            yield Event(
                seq=row.seq,
                event_id=row.event_id,
                event=row.event,
                model_name=row.model_name,
                version=row.version,
                event_timestamp=row.event_timestamp,
                payload=json.loads(row.payload),
            )
