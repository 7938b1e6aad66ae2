"""Redis online store (``redis://host:port/db``; needs ``pip install 'lakebox[redis]'``).

Each feature table is one Redis hash ``lakebox:t:<table>`` (field: key, value: features), so a
batch of keys is one ``HMGET``; the layout is the string ``lakebox:layout:<table>``. An
overwrite fills a fresh hash and swaps it in with ``RENAME`` inside a transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from lakebox.errors import InvalidInput, MissingDependency
from lakebox.features.online._base import OnlineStore, TableLayout

__all__ = ["RedisOnlineStore"]

_BATCH = 10_000


def _hash(table: str) -> str:
    return f"lakebox:t:{table}"


def _layout_key(table: str) -> str:
    return f"lakebox:layout:{table}"


class RedisOnlineStore(OnlineStore):
    """Online store in Redis.

    Args:
        uri: ``redis://[:password@]host:port/db`` (or ``rediss://`` for TLS).
    """

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        try:
            import redis
        except ImportError:
            raise MissingDependency("redis", "redis", "The Redis online store") from None
        self._client: Any = redis.Redis.from_url(uri)
        try:
            self._client.ping()
        except redis.RedisError as exc:
            raise InvalidInput(
                f"Cannot reach the Redis online store at {uri}: {exc}. Start "
                "redis-server or fix the URI."
            ) from None

    def _layout_text(self, table: str) -> str | None:
        raw = self._client.get(_layout_key(table))
        return None if raw is None else raw.decode()

    def _write_pairs(
        self, table: str, layout: TableLayout, pairs: list[tuple[str, str]], *, overwrite: bool
    ) -> None:
        target = _hash(table)
        staging = f"{target}:staging:{uuid.uuid4().hex}" if overwrite else target
        try:
            pipe = self._client.pipeline(transaction=False)
            for start in range(0, len(pairs), _BATCH):
                pipe.hset(staging, mapping=dict(pairs[start : start + _BATCH]))
                pipe.execute()
            swap = self._client.pipeline(transaction=True)
            if overwrite:
                if pairs:
                    swap.rename(staging, target)
                else:
                    swap.delete(target)
            swap.set(_layout_key(table), layout.to_json())
            swap.execute()
        finally:
            if overwrite:
                self._client.delete(staging)

    def _read_values(
        self, table: str, keys: list[str]
    ) -> tuple[str | None, list[str | bytes | None]]:
        pipe = self._client.pipeline(transaction=False)
        pipe.get(_layout_key(table))
        pipe.hmget(_hash(table), keys)
        layout, values = pipe.execute()
        return (None if layout is None else layout.decode()), values

    def drop(self, table: str) -> None:
        self._client.delete(_hash(table), _layout_key(table))
        self._layouts.pop(table, None)

    def count(self, table: str) -> int:
        return int(self._client.hlen(_hash(table)))

    def close(self) -> None:
        self._client.close()
