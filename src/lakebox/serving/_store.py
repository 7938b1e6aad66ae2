"""Endpoint rows in the metadata database (component ``serving``).

One row per endpoint holds the active ``config`` (what is being served), the
``pending_config`` while an update is in progress, a ``config_version`` counter that every
server worker watches, and the state (``READY``/``NOT_READY``, ``config_update``, ``reason``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from lakebox.errors import AlreadyExists, NotFound, close_matches
from lakebox.metadata._migrations import Migration
from lakebox.serving._config import EndpointConfig

if TYPE_CHECKING:
    from lakebox.metadata import MetadataDB

__all__ = ["MIGRATIONS", "EndpointRecord", "EndpointStore"]

metadata = MetaData()

endpoints = Table(
    "serving_endpoints",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("config", Text, nullable=True),  # JSON EndpointConfig being served
    Column("pending_config", Text, nullable=True),  # JSON EndpointConfig being rolled out
    Column("config_version", Integer, nullable=False),
    Column("ready", String(16), nullable=False),  # READY / NOT_READY
    Column(
        "config_update", String(16), nullable=False
    ),  # NOT_UPDATING / IN_PROGRESS / UPDATE_FAILED
    Column("reason", Text, nullable=True),
    Column("served_versions", Text, nullable=True),  # JSON {served entity: model version}
    Column("description", Text, nullable=True),
    Column("tags", Text, nullable=True),  # JSON list of {key, value}
    Column("creator", String(255), nullable=True),
    Column("creation_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)


MIGRATIONS = [Migration("serving", 1, "serving endpoints: configs, state", _v1)]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _config(text: str | None) -> EndpointConfig | None:
    return None if text is None else EndpointConfig.from_json(json.loads(text))


@dataclass(frozen=True)
class EndpointRecord:
    """An endpoint as stored."""

    name: str
    config: EndpointConfig | None
    pending_config: EndpointConfig | None
    config_version: int
    ready: str
    config_update: str
    reason: str | None
    served_versions: dict[str, str]
    description: str | None
    tags: list[dict[str, str]]
    creator: str | None
    creation_timestamp: int
    last_updated_timestamp: int

    @property
    def target(self) -> EndpointConfig:
        """The config workers should serve: the pending one while an update is in progress."""
        cfg = self.pending_config or self.config
        if cfg is None:
            raise NotFound(f"Serving endpoint {self.name!r} has no config.")
        return cfg


def _record(row: Any) -> EndpointRecord:
    return EndpointRecord(
        name=row.name,
        config=_config(row.config),
        pending_config=_config(row.pending_config),
        config_version=row.config_version,
        ready=row.ready,
        config_update=row.config_update,
        reason=row.reason,
        served_versions=json.loads(row.served_versions or "{}"),
        description=row.description,
        tags=json.loads(row.tags or "[]"),
        creator=row.creator,
        creation_timestamp=row.creation_timestamp,
        last_updated_timestamp=row.last_updated_timestamp,
    )


class EndpointStore:
    """Reads and writes endpoint rows."""

    def __init__(self, db: MetadataDB) -> None:
        self.db = db

    def insert(
        self,
        name: str,
        config: EndpointConfig,
        *,
        description: str | None,
        tags: list[dict[str, str]],
        creator: str | None,
    ) -> EndpointRecord:
        now = _now_ms()
        with self.db.begin() as conn:
            exists = conn.execute(select(endpoints.c.name).where(endpoints.c.name == name)).first()
            if exists:
                raise AlreadyExists(
                    f"Serving endpoint {name!r} already exists; update its config with "
                    f"PUT /api/2.0/serving-endpoints/{name}/config or delete it first."
                )
            conn.execute(
                endpoints.insert().values(
                    name=name,
                    config=None,
                    pending_config=json.dumps(config.to_json()),
                    config_version=1,
                    ready="NOT_READY",
                    config_update="IN_PROGRESS",
                    reason="Loading the served models.",
                    served_versions="{}",
                    description=description,
                    tags=json.dumps(tags),
                    creator=creator,
                    creation_timestamp=now,
                    last_updated_timestamp=now,
                )
            )
        return self.get(name)

    def get(self, name: str) -> EndpointRecord:
        with self.db.engine.connect() as conn:
            row = conn.execute(select(endpoints).where(endpoints.c.name == name)).first()
            if row is None:
                names = [r.name for r in conn.execute(select(endpoints.c.name)).all()]
        if row is None:
            raise NotFound(
                f"Serving endpoint {name!r} does not exist; existing endpoints: "
                f"{sorted(names) or 'none'}." + close_matches(name, names)
            )
        return _record(row)

    def list(self) -> list[EndpointRecord]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(select(endpoints).order_by(endpoints.c.name)).all()
        return [_record(r) for r in rows]

    def versions(self) -> dict[str, int]:
        """``{endpoint: config_version}``: the cheap query every worker polls."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(select(endpoints.c.name, endpoints.c.config_version)).all()
        return {r.name: r.config_version for r in rows}

    def update_config(self, name: str, config: EndpointConfig) -> EndpointRecord:
        with self.db.begin() as conn:
            row = conn.execute(select(endpoints).where(endpoints.c.name == name)).first()
            if row is None:
                self.get(name)  # raises NotFound with suggestions
                raise NotFound(f"Serving endpoint {name!r} does not exist.")
            conn.execute(
                endpoints.update()
                .where(endpoints.c.name == name)
                .values(
                    pending_config=json.dumps(config.to_json()),
                    config_version=row.config_version + 1,
                    config_update="IN_PROGRESS",
                    reason="Loading the new config beside the one being served.",
                    last_updated_timestamp=_now_ms(),
                )
            )
        return self.get(name)

    def mark_loaded(
        self,
        name: str,
        config_version: int,
        served_versions: dict[str, str],
        *,
        reason: str | None = None,
    ) -> None:
        """A worker serves ``config_version``: it becomes the active config."""
        with self.db.begin() as conn:
            row = conn.execute(select(endpoints).where(endpoints.c.name == name)).first()
            if row is None or row.config_version != config_version:
                return  # deleted or superseded meanwhile: the newer config wins
            values: dict[str, Any] = {
                "ready": "READY",
                "config_update": "NOT_UPDATING",
                "reason": reason,
                "served_versions": json.dumps(served_versions),
                "last_updated_timestamp": _now_ms(),
            }
            if row.pending_config is not None:
                values.update(config=row.pending_config, pending_config=None)
            conn.execute(endpoints.update().where(endpoints.c.name == name).values(**values))

    def mark_failed(self, name: str, config_version: int, reason: str) -> None:
        """Loading ``config_version`` failed: keep serving the previous config, if any."""
        with self.db.begin() as conn:
            row = conn.execute(select(endpoints).where(endpoints.c.name == name)).first()
            if row is None or row.config_version != config_version:
                return
            values: dict[str, Any] = {
                "config_update": "UPDATE_FAILED",
                "reason": reason,
                "last_updated_timestamp": _now_ms(),
            }
            if row.config is not None:
                values["pending_config"] = None  # the old config stays active
            else:
                values["ready"] = "NOT_READY"
            conn.execute(endpoints.update().where(endpoints.c.name == name).values(**values))

    def set_reason(
        self, name: str, reason: str | None, served_versions: dict[str, str] | None = None
    ) -> None:
        """Record a registry move's outcome without touching the config."""
        values: dict[str, Any] = {"reason": reason, "last_updated_timestamp": _now_ms()}
        if served_versions is not None:
            values["served_versions"] = json.dumps(served_versions)
        with self.db.begin() as conn:
            conn.execute(endpoints.update().where(endpoints.c.name == name).values(**values))

    def delete(self, name: str) -> None:
        with self.db.begin() as conn:
            deleted = conn.execute(endpoints.delete().where(endpoints.c.name == name)).rowcount
        if not deleted:
            self.get(name)
