"""The metadata database engine and its migrations."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from lakebox.errors import SettingsError
from lakebox.metadata._migrations import all_migrations

__all__ = ["MetadataDB", "utcnow"]

_versions_metadata = MetaData()
schema_versions = Table(
    "lakebox_schema_versions",
    _versions_metadata,
    Column("component", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


def utcnow() -> datetime:
    """Timezone-aware now, the one clock metadata rows use."""
    return datetime.now(timezone.utc)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers and one writer work at once across processes (server workers, jobs).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class MetadataDB:
    """The workspace's metadata database.

    Args:
        url: A SQLAlchemy URL, e.g. ``sqlite:////abs/path/lakebox.db`` or
            ``postgresql+psycopg://user:pw@localhost/lakebox``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            if url.startswith("sqlite"):
                self.engine: Engine = create_engine(url, connect_args={"timeout": 30})
                event.listen(self.engine, "connect", _sqlite_pragmas)
            else:
                self.engine = create_engine(url, pool_pre_ping=True)
        except Exception as exc:  # bad URL or missing driver: say which setting to fix
            raise SettingsError(
                f"Cannot use metadata database URL {url!r}: {exc}. Set [metadata] url in "
                "lakebox.toml to a SQLAlchemy URL such as sqlite:////path/lakebox.db or "
                "postgresql+psycopg://user:password@host/dbname."
            ) from None

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success, rolled back on error."""
        with self.engine.begin() as conn:
            yield conn

    def migrate(self) -> dict[str, int]:
        """Bring every component up to its newest schema version; returns the versions."""
        try:
            _versions_metadata.create_all(self.engine, checkfirst=True)
        except OperationalError as exc:
            raise SettingsError(
                f"Cannot open the metadata database {self.url!r}: {exc.orig}. Check [metadata] "
                "url in lakebox.toml and that the database server is running."
            ) from None
        applied = self.versions()
        for component, migrations in all_migrations().items():
            for migration in migrations:
                if migration.version <= applied.get(component, 0):
                    continue
                try:
                    with self.begin() as conn:
                        migration.upgrade(conn)
                        values = {"version": migration.version, "applied_at": utcnow()}
                        if migration.version == 1:
                            conn.execute(
                                schema_versions.insert().values(component=component, **values)
                            )
                        else:
                            conn.execute(
                                schema_versions.update()
                                .where(schema_versions.c.component == component)
                                .where(schema_versions.c.version == migration.version - 1)
                                .values(**values)
                            )
                except IntegrityError:
                    pass  # another process applied it concurrently
                applied[component] = migration.version
        return self.versions()

    def versions(self) -> dict[str, int]:
        """The applied schema version of each component."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(schema_versions.c.component, schema_versions.c.version))
            return {row.component: row.version for row in rows}

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()
