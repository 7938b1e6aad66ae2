"""``ws.streams``: start streams and see, stop or reset the queries of a workspace."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakebox.errors import Conflict, NotFound, close_matches
from lakebox.streaming._checkpoint import Checkpoint
from lakebox.streaming._query import Stream, checkpoint_root
from lakebox.streaming._sources import DeltaSource, FileFormat, FileSource, NonAppend

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["Streams", "read_delta", "read_files"]


def read_delta(
    ws: Workspace,
    table: str,
    *,
    starting_version: int | None = None,
    non_append: NonAppend = "error",
    max_files_per_trigger: int = 1000,
    max_rows_per_trigger: int | None = None,
) -> Stream:
    """A stream of the rows appended to Delta table ``table``.

    Args:
        ws: the workspace.
        table: the source table.
        starting_version: start at this version's commit (default: the current content
            first, then every new commit).
        non_append: commits that delete or rewrite rows: ``"error"`` (default) stops the
            stream, ``"skip"`` skips them, ``"ignore_deletes"`` skips pure deletes.
        max_files_per_trigger: files per batch.
        max_rows_per_trigger: rows per batch (whole files).

    Example:
        >>> from lakebox import streaming
        >>> stream = streaming.read_delta(ws, "main.raw.events")              # doctest: +SKIP
    """
    ws.tables.delta_table(table)  # a clear error now if it does not exist
    return Stream(
        ws,
        DeltaSource(
            table,
            starting_version=starting_version,
            non_append=non_append,
            max_files_per_trigger=max_files_per_trigger,
            max_rows_per_trigger=max_rows_per_trigger,
        ),
    )


def read_files(
    ws: Workspace,
    path: str | os.PathLike[str],
    *,
    format: FileFormat,
    schema: pa.Schema | None = None,
    bad_records_path: str | None = None,
    max_files_per_trigger: int = 1000,
) -> Stream:
    """A stream of the new files landing in folder ``path`` (JSON lines, CSV or Parquet),
    like Databricks Auto Loader; bad files go to ``bad_records_path`` with the reason.

    Example:
        >>> stream = streaming.read_files(ws, "landing/", format="json")      # doctest: +SKIP
    """
    return Stream(
        ws,
        FileSource(
            path,
            format=format,
            schema=schema,
            bad_records_path=bad_records_path,
            max_files_per_trigger=max_files_per_trigger,
        ),
    )


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


class Streams:
    """The streaming queries of a workspace (reached as ``ws.streams``).

    Example:
        >>> q = ws.streams.read_delta("main.raw.events").write_delta(       # doctest: +SKIP
        ...     "main.preds.events", query_name="score")
        >>> q.run(processing_time="5 seconds")                               # doctest: +SKIP
        >>> ws.streams.status("score")["last_batch_id"]                      # doctest: +SKIP
    """

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def read_delta(self, table: str, **options: Any) -> Stream:
        """See :func:`lakebox.streaming.read_delta`."""
        return read_delta(self._ws, table, **options)

    def read_files(self, path: str | os.PathLike[str], **options: Any) -> Stream:
        """See :func:`lakebox.streaming.read_files`."""
        return read_files(self._ws, path, **options)

    def _checkpoint(self, name: str) -> Checkpoint:
        ckpt = Checkpoint(checkpoint_root(self._ws) / name)
        if ckpt.metadata is None:
            known = [q["name"] for q in self.list()]
            raise NotFound(
                f"No streaming query {name!r} in {self._ws.home}."
                f"{close_matches(name, known)} List them with "
                "`lakebox streams list`."
            )
        return ckpt

    def list(self) -> list[dict[str, Any]]:
        """Every query with a checkpoint here: name, state, last batch, watermark, ..."""
        root = checkpoint_root(self._ws)
        if not root.exists():
            return []
        return [
            self._status(Checkpoint(p))
            for p in sorted(root.iterdir())
            if (p / "metadata.json").exists()
        ]

    def _status(self, ckpt: Checkpoint) -> dict[str, Any]:
        meta = ckpt.metadata or {}
        status = ckpt.status() or {"name": meta.get("name"), "state": "NEW"}
        status.setdefault("id", meta.get("id"))
        if status.get("state") == "RUNNING" and not _alive(status.get("pid")):
            status["state"] = "TERMINATED"  # the process died without stopping cleanly
        status["stop_requested"] = ckpt.stop_requested
        status["checkpoint"] = str(ckpt.path)
        return status

    def status(self, name: str) -> dict[str, Any]:
        """The latest progress of query ``name``: ``state``, ``last_batch_id``,
        ``input_rows_per_second``, ``processed_rows_per_second``, ``batch_duration_ms``,
        ``watermark``, ``bad_files``, ..."""
        return self._status(self._checkpoint(name))

    def stop(self, name: str, *, wait: float = 0.0) -> dict[str, Any]:
        """Ask query ``name`` to stop after its current batch; wait up to ``wait`` seconds
        for it to do so."""
        import time

        ckpt = self._checkpoint(name)
        ckpt.request_stop()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and self._status(ckpt)["state"] == "RUNNING":
            time.sleep(0.05)
        return self._status(ckpt)

    def reset(self, name: str) -> None:
        """Delete query ``name``'s checkpoint: it starts from scratch next time."""
        ckpt = self._checkpoint(name)
        if self._status(ckpt)["state"] == "RUNNING":
            raise Conflict(f"Query {name!r} is running; stop it before resetting it.")
        shutil.rmtree(ckpt.path)
