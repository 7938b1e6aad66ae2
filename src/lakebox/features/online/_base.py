"""The online store interface and the value encoding every backend shares."""

from __future__ import annotations

import base64
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from lakebox.errors import InvalidInput

__all__ = ["BACKENDS", "OnlineStore", "TableLayout", "open_online_store"]

# URI scheme -> "module:Class".
BACKENDS = {
    "sqlite": "lakebox.features.online.sqlite:SqliteOnlineStore",
    "redis": "lakebox.features.online.redis:RedisOnlineStore",
    "rediss": "lakebox.features.online.redis:RedisOnlineStore",
}


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot store {type(value).__name__} values online")


def _decoder(arrow_type: pa.DataType) -> Any:
    """A function turning a stored JSON value back into the column's Python value."""
    if pa.types.is_timestamp(arrow_type):
        return datetime.fromisoformat
    if pa.types.is_date(arrow_type):
        return date.fromisoformat
    if pa.types.is_time(arrow_type):
        return time.fromisoformat
    if pa.types.is_decimal(arrow_type):
        return Decimal
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return base64.b64decode
    return None


class TableLayout:
    """How one table is stored online: key columns and feature columns with their types."""

    def __init__(self, keys: Sequence[str], schema: pa.Schema) -> None:
        self.keys = list(keys)
        self.schema = schema
        self.features = [n for n in schema.names if n not in self.keys]
        self._key_kinds = [self._kind(schema.field(k).type) for k in self.keys]
        self._decoders = [
            (i, d)
            for i, n in enumerate(self.features)
            if (d := _decoder(schema.field(n).type)) is not None
        ]

    @staticmethod
    def _kind(arrow_type: pa.DataType) -> Any:
        if pa.types.is_integer(arrow_type):
            return int
        if pa.types.is_floating(arrow_type):
            return float
        if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
            return str
        return None

    def to_json(self) -> str:
        return json.dumps(
            {"keys": self.keys, "schema": base64.b64encode(self.schema.serialize()).decode()}
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> TableLayout:
        data = json.loads(text)
        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(data["schema"])))
        return cls(data["keys"], schema)

    def encode_key(self, values: Sequence[Any]) -> str:
        """The canonical key string, as :meth:`encode_rows` writes it: ``[1,"a"]``.

        Values are first converted to the key column's kind, so a numpy or float ``2.0``
        finds the integer key ``2`` (but ``2.5`` finds nothing).
        """
        parts = []
        for value, kind in zip(values, self._key_kinds, strict=False):
            if value is None:
                parts.append("null")
            elif kind is int and not (isinstance(value, float) and not value.is_integer()):
                try:
                    parts.append(str(int(value)))
                except (TypeError, ValueError):
                    parts.append(json.dumps(value, default=_default))
            elif kind is not None:
                try:
                    parts.append(json.dumps(kind(value)))
                except (TypeError, ValueError):
                    parts.append(json.dumps(value, default=_default))
            else:
                parts.append(json.dumps(value, default=_default))
        return "[" + ",".join(parts) + "]"

    def encode_rows(self, table: pa.Table) -> list[tuple[str, str]]:
        """``(key, value)`` pairs: the key string and the feature values as a JSON list."""
        key_cols = [table.column(k).to_pylist() for k in self.keys]
        feat_cols = [table.column(f).to_pylist() for f in self.features]
        keys = [
            json.dumps(list(v), default=_default, separators=(",", ":"))
            for v in zip(*key_cols, strict=False)
        ]
        if feat_cols:
            values = [
                json.dumps(list(v), default=_default, separators=(",", ":"))
                for v in zip(*feat_cols, strict=False)
            ]
        else:
            values = ["[]"] * len(keys)
        return list(zip(keys, values, strict=False))

    def decode_values(self, texts: Sequence[str | bytes | None]) -> list[list[Any] | None]:
        """Decode stored values (None stays None) with one JSON parse for the batch."""
        present = [t.decode() if isinstance(t, bytes) else t for t in texts if t is not None]
        rows: list[list[Any]] = json.loads("[" + ",".join(present) + "]") if present else []
        if self._decoders:
            for values in rows:
                for i, decode in self._decoders:
                    if values[i] is not None:
                        values[i] = decode(values[i])
        it = iter(rows)
        return [None if t is None else next(it) for t in texts]


class OnlineStore(ABC):
    """Latest feature rows by key. Each backend module implements this class.

    Tables are named like catalog tables; each has key columns and feature columns. Writes
    replace whole rows; reads are batched and return rows in the order of the keys asked for.
    """

    def __init__(self, uri: str) -> None:
        #: The URI the store was opened with (recorded when a table is published to it).
        self.uri = uri
        self._layouts: dict[str, tuple[str, TableLayout]] = {}

    @abstractmethod
    def _write_pairs(
        self, table: str, layout: TableLayout, pairs: list[tuple[str, str]], *, overwrite: bool
    ) -> None:
        """Store encoded rows; with ``overwrite`` the table holds exactly these rows after."""

    @abstractmethod
    def _read_values(
        self, table: str, keys: list[str]
    ) -> tuple[str | None, list[str | bytes | None]]:
        """The table's layout text and the encoded values for the encoded keys (None where
        missing, in order), read together so a concurrent overwrite is noticed."""

    @abstractmethod
    def _layout_text(self, table: str) -> str | None:
        """The stored layout of a table, or None when it was never written."""

    def layout(self, table: str) -> TableLayout | None:
        """The table's key and feature columns, or None when it was never written."""
        text = self._layout_text(table)
        return None if text is None else TableLayout.from_json(text)

    @abstractmethod
    def drop(self, table: str) -> None:
        """Remove a table; a missing table is not an error."""

    @abstractmethod
    def count(self, table: str) -> int:
        """Rows stored for a table (0 when missing)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    # ----------------------------------------------------------------- shared logic
    def write(
        self,
        table: str,
        rows: pa.Table,
        *,
        keys: Sequence[str],
        mode: Literal["merge", "overwrite"] = "merge",
    ) -> int:
        """Store ``rows`` (one per key) under ``table``.

        Args:
            table: the table name.
            rows: key and feature columns.
            keys: the key columns.
            mode: ``"merge"`` upserts by key; ``"overwrite"`` replaces the table's rows.

        Returns:
            The number of rows written.
        """
        if mode not in ("merge", "overwrite"):
            raise InvalidInput(f"mode must be 'merge' or 'overwrite', got {mode!r}.")
        missing = [k for k in keys if k not in rows.column_names]
        if missing or not keys:
            raise InvalidInput(
                f"Key column(s) {missing or list(keys)} are not in the rows {rows.column_names}."
            )
        layout = TableLayout(keys, rows.schema)
        self._layouts.pop(table, None)
        existing = self.layout(table)
        if (
            mode == "merge"
            and existing is not None
            and (existing.keys != layout.keys or existing.schema != layout.schema)
        ):
            raise InvalidInput(
                f"Online table {table!r} has keys {existing.keys} and columns "
                f"{existing.schema.names} with other types; publish with "
                "mode='overwrite' to replace it."
            )
        self._write_pairs(table, layout, layout.encode_rows(rows), overwrite=mode == "overwrite")
        return rows.num_rows

    def read(
        self,
        table: str,
        keys: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
        *,
        features: Sequence[str] | None = None,
        _retry: bool = True,
    ) -> list[dict[str, Any] | None]:
        """The stored rows for a batch of keys, in the same order; None where a key is missing.

        Args:
            table: the table name.
            keys: one dict per key (``{"customer_id": 42}``) or one tuple of key values.
            features: feature columns to return (all by default).
        """
        cached = self._layouts.get(table)
        if cached is None:
            text = self._layout_text(table)
            if text is None:
                raise InvalidInput(
                    f"Table {table!r} is not in the online store {self.uri}; "
                    "publish it first with ws.features.publish_table()."
                )
            cached = self._layouts[table] = (text, TableLayout.from_json(text))
        text, layout = cached
        encoded = []
        for key in keys:
            if isinstance(key, Mapping):
                try:
                    values = [key[k] for k in layout.keys]
                except KeyError:
                    raise InvalidInput(
                        f"Lookup key {dict(key)} of table {table!r} needs the "
                        f"columns {layout.keys}."
                    ) from None
            else:
                values = list(key)
                if len(values) != len(layout.keys):
                    raise InvalidInput(
                        f"Key {key!r} for table {table!r} needs "
                        f"{len(layout.keys)} value(s): {layout.keys}."
                    )
            encoded.append(layout.encode_key(values))
        current, raw = self._read_values(table, encoded)
        if current != text:  # the table was overwritten with another layout since cached
            self._layouts.pop(table, None)
            if _retry:
                return self.read(table, keys, features=features, _retry=False)
            raise InvalidInput(f"Online table {table!r} changed while reading; retry.")
        wanted = list(features) if features is not None else layout.features
        unknown = [f for f in wanted if f not in layout.features]
        if unknown:
            raise InvalidInput(
                f"Online table {table!r} has no feature(s) {unknown}; it has {layout.features}."
            )
        positions = [layout.features.index(f) for f in wanted]
        out: list[dict[str, Any] | None] = []
        for decoded in layout.decode_values(raw):
            out.append(
                None
                if decoded is None
                else {f: decoded[p] for f, p in zip(wanted, positions, strict=False)}
            )
        return out

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def open_online_store(uri: str | None, *, home: str | Path | None = None) -> OnlineStore:
    """Open an online store by URI.

    Args:
        uri: ``"sqlite"`` (``<home>/online.db``), ``"sqlite:///path/online.db"``,
            ``"redis"`` (``redis://127.0.0.1:6379/0``) or ``"redis://host:port/db"``.
        home: the workspace folder, for the default SQLite file.
    """
    import importlib

    uri = uri or "sqlite"
    if uri == "sqlite":
        if home is None:
            raise InvalidInput(
                "online_store='sqlite' needs a workspace folder; pass a sqlite:///path URI instead."
            )
        uri = f"sqlite:///{Path(home) / 'online.db'}"
    elif uri == "redis":
        uri = "redis://127.0.0.1:6379/0"
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in BACKENDS:
        raise InvalidInput(
            f"Unknown online store {uri!r}: use 'sqlite', 'sqlite:///path', "
            "'redis' or 'redis://host:port/db'."
        )
    module_name, class_name = BACKENDS[scheme].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    store: OnlineStore = cls(uri)
    return store
