"""The metadata database: one SQLAlchemy engine (SQLite by default, PostgreSQL by URL) with
versioned schema migrations contributed by each package."""

from lakebox.metadata._db import MetadataDB
from lakebox.metadata._migrations import Migration

__all__ = ["MetadataDB", "Migration"]
