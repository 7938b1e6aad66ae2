"""Stream sinks: Delta append (exactly once) and ``foreach_batch``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError

from lakebox.errors import Conflict, SchemaMismatch

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["DeltaSink", "ForeachBatchSink", "Sink"]

COMMIT_RETRIES = 10


class Sink:
    """Interface of a stream sink."""

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def start(self, ws: Workspace) -> None:
        """Resolve names before the first batch."""

    def commit(
        self,
        ws: Workspace,
        *,
        query_id: str,
        batch_id: int,
        table: pa.Table,
        metadata: dict[str, str],
    ) -> bool:
        """Write one batch; returns False when it was already written (a replay)."""
        raise NotImplementedError


class DeltaSink(Sink):
    """Append each batch to a Delta table exactly once.

    Each commit carries the Delta application transaction ``(query id, batch id)``; before
    writing, the sink reads ``transaction_version(query id)`` and skips a batch the table
    already holds, so a batch replayed after a crash is never written twice. A concurrent
    commit makes delta-rs fail the write, which is then re-checked and retried.
    """

    def __init__(self, table: str, *, partition_by: Sequence[str] | None = None) -> None:
        self.table = table
        self.partition_by = list(partition_by) if partition_by else None

    def describe(self) -> dict[str, Any]:
        return {"kind": "delta", "table": self.table}

    def start(self, ws: Workspace) -> None:
        self.table = ws.tables.resolve(self.table).full_name
        self._dt: DeltaTable | None = None

    def _delta_table(self, ws: Workspace) -> DeltaTable | None:
        """The output table, kept open and brought up to date (None if it does not exist)."""
        if self._dt is not None:
            try:
                self._dt.update_incremental()
                return self._dt
            except Exception:  # dropped or replaced: open it again through the catalog
                self._dt = None
        if not ws.tables.exists(self.table):
            return None
        self._dt = ws.tables.delta_table(self.table)
        return self._dt

    def commit(
        self,
        ws: Workspace,
        *,
        query_id: str,
        batch_id: int,
        table: pa.Table,
        metadata: dict[str, str],
    ) -> bool:
        dt = self._delta_table(ws)
        if dt is not None:
            done = dt.transaction_version(query_id)
            if done is not None and done >= batch_id:
                return False
        if table.num_rows == 0:
            return True
        if dt is None:
            ws.tables.create(self.table, schema=table.schema, partition_by=self.partition_by)
            dt = self._delta_table(ws)
            assert dt is not None
        target = pa.schema(dt.schema().to_arrow())
        table = _conform(self.table, table, target)
        props = CommitProperties(
            custom_metadata=metadata, app_transactions=[Transaction(query_id, batch_id)]
        )
        for _ in range(COMMIT_RETRIES):
            try:
                write_deltalake(dt, table, mode="append", commit_properties=props)
                return True
            except CommitFailedError:
                dt.update_incremental()
                done = dt.transaction_version(query_id)
                if done is not None and done >= batch_id:
                    return False
        raise Conflict(
            f"Batch {batch_id} could not be committed to {self.table!r}: "
            f"{COMMIT_RETRIES} concurrent commits in a row conflicted with it. "
            "Restart the stream; the batch is retried."
        )


def _conform(name: str, table: pa.Table, target: pa.Schema) -> pa.Table:
    missing = [f.name for f in target if f.name not in table.column_names and not f.nullable]
    extra = [c for c in table.column_names if c not in target.names]
    if missing or extra:
        raise SchemaMismatch(
            f"The stream's output does not fit table {name!r}: extra column(s) {extra}, "
            f"missing column(s) {missing} (the table has {target.names}). Write to a new "
            "table or change the transform."
        )
    try:
        columns = [
            table[f.name].cast(f.type)
            if f.name in table.column_names
            else pa.nulls(table.num_rows, f.type)
            for f in target
        ]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaMismatch(f"The stream's output does not fit table {name!r}: {exc}.") from None
    return pa.Table.from_arrays(columns, schema=target)


class ForeachBatchSink(Sink):
    """Call ``fn(batch, batch_id)`` for every batch (a pandas DataFrame, or Arrow with
    ``arrow=True``). At least once: after a crash the last batch may be passed again with the
    same ``batch_id``, which ``fn`` can use to stay idempotent."""

    def __init__(self, fn: Callable[[Any, int], Any], *, arrow: bool = False) -> None:
        self.fn = fn
        self.arrow = arrow

    def describe(self) -> dict[str, Any]:
        fn = self.fn
        name = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
        return {"kind": "foreach_batch", "function": name}

    def commit(
        self,
        ws: Workspace,
        *,
        query_id: str,
        batch_id: int,
        table: pa.Table,
        metadata: dict[str, str],
    ) -> bool:
        self.fn(table if self.arrow else table.to_pandas(), batch_id)
        return True
