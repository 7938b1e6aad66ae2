"""A query's checkpoint folder: identity, offsets, commits, operator state, status.

Layout (``<home>/checkpoints/<query>``)::

    metadata.json          query id, name, source and sink it was started with
    offsets/<batch>.json   what batch <batch> reads (written before it runs)
    commits/<batch>.json   written after the sink committed batch <batch>
    state/<batch>/         operator state (Parquet) after batch <batch>
    status.json            the latest progress, for ``lakebox streams status``
    stop                   present when a stop was requested

Every file is written to a temporary name and renamed, so a killed process never leaves a
torn file behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lakebox.errors import Conflict, InvalidInput

__all__ = ["Checkpoint", "status_record", "write_json"]

KEEP_STATES = 3


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _ids(folder: Path, suffix: str = ".json") -> list[int]:
    if not folder.exists():
        return []
    return sorted(
        int(p.name[: -len(suffix)] if suffix else p.name)
        for p in folder.iterdir()
        if not p.name.startswith(".")
        and p.name.endswith(suffix)
        and (p.name[: -len(suffix)] if suffix else p.name).isdigit()
    )


class Checkpoint:
    """One query's checkpoint folder (see the module docstring for its layout)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_fh: Any = None

    # ----------------------------------------------------------------- identity
    @property
    def metadata(self) -> dict[str, Any] | None:
        file = self.path / "metadata.json"
        return _read_json(file) if file.exists() else None

    def bind(self, *, name: str, source: dict[str, Any], sink: dict[str, Any]) -> str:
        """Create the checkpoint, or check that it belongs to this query; returns the
        query id (stable across restarts: it keys the sink's exactly-once transactions)."""
        meta = self.metadata
        if meta is None:
            meta = {"id": str(uuid.uuid4()), "name": name, "source": source, "sink": sink}
            write_json(self.path / "metadata.json", meta)
            return str(meta["id"])
        if meta.get("source") != source or meta.get("sink") != sink:
            raise InvalidInput(
                f"Checkpoint {self.path} belongs to query {meta.get('name')!r}, which reads "
                f"{_describe(meta.get('source'))} and writes {_describe(meta.get('sink'))}; "
                f"query {name!r} reads {_describe(source)} and writes {_describe(sink)}. "
                "Give this query its own name (or checkpoint_location), or delete the old "
                f"checkpoint with `lakebox streams reset {meta.get('name')}`."
            )
        return str(meta["id"])

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the checkpoint exclusively while the query runs (released even on SIGKILL)."""
        self.path.mkdir(parents=True, exist_ok=True)
        fh = open(self.path / "lock", "a+")  # noqa: SIM115 - held until the run ends
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            status = self.status() or {}
            raise Conflict(
                f"Query {status.get('name', self.path.name)!r} is already running "
                f"(pid {status.get('pid', '?')}) on checkpoint {self.path}; stop it first "
                "with `lakebox streams stop`."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()

    # ----------------------------------------------------------------- offsets and commits
    def offset_ids(self) -> list[int]:
        return _ids(self.path / "offsets")

    def commit_ids(self) -> list[int]:
        return _ids(self.path / "commits")

    def offset(self, batch_id: int) -> dict[str, Any]:
        return dict(_read_json(self.path / "offsets" / f"{batch_id}.json"))

    def commit(self, batch_id: int) -> dict[str, Any]:
        return dict(_read_json(self.path / "commits" / f"{batch_id}.json"))

    def write_offset(self, batch_id: int, data: dict[str, Any]) -> None:
        write_json(self.path / "offsets" / f"{batch_id}.json", data)

    def write_commit(self, batch_id: int, data: dict[str, Any]) -> None:
        write_json(self.path / "commits" / f"{batch_id}.json", data)

    # ----------------------------------------------------------------- state
    def save_state(self, batch_id: int, tables: dict[str, pa.Table]) -> None:
        """Write operator state after ``batch_id`` (before its commit file)."""
        final = self.path / "state" / str(batch_id)
        tmp = self.path / "state" / f".{batch_id}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, table in tables.items():
            pq.write_table(table, tmp / f"{name}.parquet")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in _ids(self.path / "state", suffix="")[:-KEEP_STATES]:
            shutil.rmtree(self.path / "state" / str(old), ignore_errors=True)

    def load_state(self, batch_id: int | None) -> dict[str, pa.Table]:
        if batch_id is None:
            return {}
        folder = self.path / "state" / str(batch_id)
        if not folder.exists():
            return {}
        return {p.stem: pq.read_table(p) for p in folder.glob("*.parquet")}

    # ----------------------------------------------------------------- status and stop
    def status(self) -> dict[str, Any] | None:
        file = self.path / "status.json"
        try:
            return dict(_read_json(file)) if file.exists() else None
        except (OSError, ValueError):
            return None

    def write_status(self, data: dict[str, Any]) -> None:
        write_json(self.path / "status.json", data)

    @property
    def stop_requested(self) -> bool:
        return (self.path / "stop").exists()

    def request_stop(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "stop").touch()

    def clear_stop(self) -> None:
        (self.path / "stop").unlink(missing_ok=True)


def _describe(part: Any) -> str:
    if not isinstance(part, dict):
        return repr(part)
    kind = part.get("kind", "?")
    target = part.get("table") or part.get("path") or part.get("function") or ""
    return f"{kind} {target}".strip()


def status_record(
    query: Any,
    state: str,
    *,
    trigger: Any,
    started_at: datetime,
    last_batch_id: int | None,
    watermark: Any,
    bad_files: int,
    message: str | None,
    progress: Mapping[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """The ``status.json`` record of a running query, whichever runner (local or Spark) runs
    it: ``ws.streams`` reads this one shape. ``progress`` holds the last batch's numbers;
    ``extra`` keys (e.g. ``engine``) follow ``state``."""
    status = {
        "name": query.name,
        "id": query.id,
        "pid": os.getpid(),
        "state": state,
        **extra,
        "trigger": trigger,
        "source": query.stream.source.describe(),
        "sink": query.sink.describe(),
        "started_at": started_at.isoformat(),
        "updated_at": datetime.now(timezone.utc).isoformat(),
        "last_batch_id": last_batch_id,
        "watermark": watermark,
        "bad_files": bad_files,
        "message": message,
        "input_rows": None,
        "output_rows": None,
        "batch_duration_ms": None,
        "processed_rows_per_second": None,
        "input_rows_per_second": None,
    }
    status.update(progress)
    return status
