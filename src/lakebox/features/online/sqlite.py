"""SQLite online store: embedded, one file, the default (``sqlite:///path/online.db``).

Each feature table is a SQLite table ``(k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID``; layouts
live in ``_lakebox_layouts``. WAL mode lets serving processes read while a publish writes.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from lakebox.errors import InvalidInput
from lakebox.features.online._base import OnlineStore, TableLayout

__all__ = ["SqliteOnlineStore"]

_CHUNK = 500


def _data_table(table: str) -> str:
    return '"' + ("lakebox:" + table).replace('"', '""') + '"'


class SqliteOnlineStore(OnlineStore):
    """Online store in a SQLite file.

    Args:
        uri: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``.
    """

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        path = uri.removeprefix("sqlite://")
        if path.startswith("/"):
            path = path[1:]
        if not path:
            raise InvalidInput(
                f"SQLite online store URI {uri!r} names no file; use "
                "sqlite:////absolute/path/online.db."
            )
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=30
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS _lakebox_layouts "
            "(name TEXT PRIMARY KEY, layout TEXT NOT NULL)"
        )

    def _layout_text(self, table: str) -> str | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT layout FROM _lakebox_layouts WHERE name = ?", (table,)
            ).fetchone()
        return None if row is None else str(row[0])

    def _write_pairs(
        self, table: str, layout: TableLayout, pairs: list[tuple[str, str]], *, overwrite: bool
    ) -> None:
        data = _data_table(table)
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                if overwrite:
                    conn.execute(f"DROP TABLE IF EXISTS {data}")
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {data} "
                    "(k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID"
                )
                conn.executemany(f"INSERT OR REPLACE INTO {data} (k, v) VALUES (?, ?)", pairs)
                conn.execute(
                    "INSERT OR REPLACE INTO _lakebox_layouts (name, layout) VALUES (?, ?)",
                    (table, layout.to_json()),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _read_values(
        self, table: str, keys: list[str]
    ) -> tuple[str | None, list[str | bytes | None]]:
        data = _data_table(table)
        found: dict[str, str] = {}
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN")
            try:
                row = conn.execute(
                    "SELECT layout FROM _lakebox_layouts WHERE name = ?", (table,)
                ).fetchone()
                if row is not None:
                    if len(keys) == 1:
                        hit = conn.execute(f"SELECT v FROM {data} WHERE k = ?", keys).fetchone()
                        if hit is not None:
                            found[keys[0]] = hit[0]
                    else:
                        for start in range(0, len(keys), _CHUNK):
                            chunk = keys[start : start + _CHUNK]
                            marks = ",".join("?" * len(chunk))
                            found.update(
                                conn.execute(f"SELECT k, v FROM {data} WHERE k IN ({marks})", chunk)
                            )
            finally:
                conn.execute("COMMIT")
        return (None if row is None else str(row[0])), [found.get(k) for k in keys]

    def drop(self, table: str) -> None:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"DROP TABLE IF EXISTS {_data_table(table)}")
            conn.execute("DELETE FROM _lakebox_layouts WHERE name = ?", (table,))
            conn.execute("COMMIT")
        self._layouts.pop(table, None)

    def count(self, table: str) -> int:
        if self._layout_text(table) is None:
            return 0
        with self._lock:
            return int(
                self._conn.execute(f"SELECT count(*) FROM {_data_table(table)}").fetchone()[0]
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
