"""Stream sources: new commits of a Delta table, and new files in a folder.

A source *plans* a batch (which files it reads, recorded in the checkpoint before the batch
runs) and *reads* a plan; a replayed batch reads exactly the files it planned the first time.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lakebox.errors import Conflict, InvalidInput, NotFound, SchemaMismatch

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["DeltaSource", "FileSource", "Plan", "Source"]

NonAppend = Literal["error", "skip", "ignore_deletes"]
FileFormat = Literal["json", "csv", "parquet"]


@dataclass
class Plan:
    """What one batch reads: ``entries`` (JSON-able) and where the next batch starts."""

    entries: list[dict[str, Any]]
    end: dict[str, Any]


class Source:
    """Interface of a stream source."""

    def describe(self) -> dict[str, Any]:
        """Identity recorded in the checkpoint (a restarted query must match it)."""
        raise NotImplementedError

    def start(self, ws: Workspace, history: list[dict[str, Any]]) -> None:
        """Prepare to plan, given every recorded offset of the query (oldest first)."""

    def initial_offset(self) -> dict[str, Any]:
        raise NotImplementedError

    def bound(self) -> Any:
        """What is available now (``available_now`` reads up to it)."""
        return None

    def plan(self, start: dict[str, Any], *, limit: bool, bound: Any = None) -> Plan:
        raise NotImplementedError

    def read(self, entries: list[dict[str, Any]]) -> pa.Table:
        raise NotImplementedError

    def read_all(self) -> pa.Table:
        """Everything the source holds now, as one table (to run a stream as a batch)."""
        raise NotImplementedError


# ----------------------------------------------------------------------------- Delta
def _filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    if "://" not in location or location.startswith("file://"):
        return pafs.LocalFileSystem(), location.removeprefix("file://")
    return pafs.FileSystem.from_uri(location)


class DeltaSource(Source):
    """New commits of a Delta table, file by file.

    Args:
        table: the catalog table to read.
        starting_version: read commits from this version on; by default the table's current
            content is read first, then every later commit.
        non_append: what to do with commits that delete or rewrite rows (``DELETE``,
            ``MERGE``, overwrite): ``"error"`` stops the stream, ``"skip"`` skips such commits
            whole, ``"ignore_deletes"`` skips commits that only delete and stops on others.
            Commits that change no data (``OPTIMIZE``) are always skipped.
        max_files_per_trigger: files per batch (rate limit; ``once`` ignores it).
        max_rows_per_trigger: rows per batch, at file granularity.
    """

    def __init__(
        self,
        table: str,
        *,
        starting_version: int | None = None,
        non_append: NonAppend = "error",
        max_files_per_trigger: int = 1000,
        max_rows_per_trigger: int | None = None,
    ) -> None:
        if non_append not in ("error", "skip", "ignore_deletes"):
            raise InvalidInput(
                f"non_append must be 'error', 'skip' or 'ignore_deletes', got {non_append!r}."
            )
        if max_files_per_trigger < 1:
            raise InvalidInput(
                f"max_files_per_trigger must be at least 1, got {max_files_per_trigger!r}."
            )
        self.table = table
        self.starting_version = starting_version
        self.non_append = non_append
        self.max_files = max_files_per_trigger
        self.max_rows = max_rows_per_trigger
        self._ws: Workspace | None = None

    def describe(self) -> dict[str, Any]:
        return {"kind": "delta", "table": self.table}

    def start(self, ws: Workspace, history: list[dict[str, Any]]) -> None:
        self._ws = ws
        self.table = ws.tables.resolve(self.table).full_name
        dt = ws.tables.delta_table(self.table)
        self._dt = dt
        self.location = ws.tables.location(self.table)
        self._fs, self._root = _filesystem(self.location)
        self.schema = pa.schema(dt.schema().to_arrow())
        self._partitions = list(dt.metadata().partition_columns)
        self._schema_string = _schema_string(dt)
        recorded = next((h["schema"] for h in reversed(history) if h.get("schema")), None)
        if recorded:  # the schema the query started with, not today's
            self._schema_string = recorded["delta"]
            self.schema = _schema_from_json(recorded)

    def recorded_schema(self) -> dict[str, Any]:
        return {**_schema_to_json(self.schema), "delta": self._schema_string}

    def _check_alive(self) -> None:
        assert self._ws is not None
        if not self._ws.tables.exists(self.table):
            raise NotFound(
                f"Source table {self.table!r} was dropped while the stream was "
                "reading it; recreate it and reset the stream "
                "(`lakebox streams reset <query>`)."
            )

    def initial_offset(self) -> dict[str, Any]:
        if self.starting_version is not None:
            return {"version": int(self.starting_version), "index": 0, "snapshot": False}
        assert self._ws is not None
        return {
            "version": self._ws.tables.delta_table(self.table).version(),
            "index": 0,
            "snapshot": True,
        }

    def bound(self) -> int:
        try:
            self._dt.update_incremental()
        except Exception:
            self._check_alive()
            raise NotFound(
                f"Source table {self.table!r} can no longer be read at "
                f"{self.location}; was it moved or dropped?"
            ) from None
        return int(self._dt.version())

    def _latest(self) -> int:
        return self.bound()

    # ----------------------------------------------------------------- planning
    def plan(self, start: dict[str, Any], *, limit: bool, bound: Any = None) -> Plan:
        latest = self._latest() if bound is None else int(bound)
        entries: list[dict[str, Any]] = []
        rows = 0
        version, index, snapshot = int(start["version"]), int(start["index"]), start["snapshot"]

        def full() -> bool:
            if not limit:
                return False
            return len(entries) >= self.max_files or (
                self.max_rows is not None and rows >= self.max_rows
            )

        if snapshot:
            files = self._snapshot_files(version)
            while index < len(files) and not full():
                entries.append(files[index])
                rows += files[index].get("rows") or 0
                index += 1
            if index < len(files):
                return Plan(entries, {"version": version, "index": index, "snapshot": True})
            version, index = version + 1, 0
        while version <= latest and not full():
            adds = self._commit_adds(version)
            while index < len(adds) and not full():
                entries.append(adds[index])
                rows += adds[index].get("rows") or 0
                index += 1
            if index < len(adds):
                break
            version, index = version + 1, 0
        return Plan(entries, {"version": version, "index": index, "snapshot": False})

    def _open(self, version: int) -> Any:
        """The source table at ``version`` (a ``DeltaTable``)."""
        assert self._ws is not None
        return self._ws.tables.delta_table(self.table, version=version)

    def _snapshot_files(self, version: int) -> list[dict[str, Any]]:
        dt = self._open(version)
        actions = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
        files = []
        for action in actions:
            parts = {
                k[len("partition.") :]: (None if v is None else str(v))
                for k, v in action.items()
                if k.startswith("partition.")
            }
            files.append(
                {
                    "path": action["path"],
                    "partition_values": parts,
                    "rows": action.get("num_records"),
                    "version": version,
                    "mtime": str(action.get("modification_time")),
                }
            )
        return sorted(files, key=lambda f: (f["mtime"], f["path"]))

    def _commit_adds(self, version: int) -> list[dict[str, Any]]:
        path = f"{self._root}/_delta_log/{version:020d}.json"
        try:
            with self._fs.open_input_stream(path) as fh:
                text = fh.read().decode()
        except FileNotFoundError:
            self._check_alive()
            raise NotFound(
                f"Version {version} of source table {self.table!r} is no longer in "
                "its Delta log (log cleanup); reset the stream to start over."
            ) from None
        actions = [json.loads(line) for line in text.splitlines() if line.strip()]
        info: dict[str, Any] = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        operation = info.get("operation", "?")
        meta = next((a["metaData"] for a in actions if "metaData" in a), None)
        if meta is not None and meta.get("schemaString") != self._schema_string:
            raise SchemaMismatch(
                f"Version {version} of source table {self.table!r} ({operation}) changed its "
                "schema; the stream reads the schema it started with. Start a new query (a new "
                "name or `lakebox streams reset`) to read the new schema."
            )
        adds = [a["add"] for a in actions if "add" in a and a["add"].get("dataChange", True)]
        removes = [
            a["remove"] for a in actions if "remove" in a and a["remove"].get("dataChange", True)
        ]
        if removes:
            if self.non_append == "skip" or (self.non_append == "ignore_deletes" and not adds):
                return []
            raise Conflict(
                f"Version {version} of source table {self.table!r} is a {operation} that "
                "deleted or rewrote rows, and a stream reads appended rows only. Pass "
                "non_append='skip' to skip such commits, or 'ignore_deletes' to skip commits "
                "that only delete."
            )
        out = []
        for add in adds:
            if add.get("deletionVector"):
                raise Conflict(
                    f"Version {version} of {self.table!r} adds a file with a "
                    "deletion vector, which the stream cannot read."
                )
            stats = json.loads(add["stats"]) if add.get("stats") else {}
            out.append(
                {
                    "path": unquote(add["path"]),
                    "partition_values": add.get("partitionValues") or {},
                    "rows": stats.get("numRecords"),
                    "version": version,
                }
            )
        return out

    # ----------------------------------------------------------------- reading
    def read(self, entries: list[dict[str, Any]]) -> pa.Table:
        tables = [self._read_file(e) for e in entries]
        if not tables:
            return self.schema.empty_table()
        return pa.concat_tables(tables)

    def _read_file(self, entry: dict[str, Any]) -> pa.Table:
        path = f"{self._root}/{entry['path']}"
        try:
            table = pq.read_table(path, filesystem=self._fs)
        except FileNotFoundError:
            self._check_alive()
            raise NotFound(
                f"File {entry['path']} of source table {self.table!r} (version "
                f"{entry.get('version')}) is gone, probably vacuumed; reset the "
                "stream to start over."
            ) from None
        columns = []
        for field in self.schema:
            if field.name in self._partitions:
                raw = (entry.get("partition_values") or {}).get(field.name)
                value = pa.array([raw] * table.num_rows, pa.string())
                columns.append(value.cast(field.type) if field.type != pa.string() else value)
            elif field.name in table.column_names:
                columns.append(table[field.name].cast(field.type))
            else:
                columns.append(pa.nulls(table.num_rows, field.type))
        return pa.Table.from_arrays(columns, schema=self.schema)

    def read_all(self) -> pa.Table:
        assert self._ws is not None
        return self._ws.tables.read(self.table, output="arrow").select(self.schema.names)


def _schema_string(dt: Any) -> str | None:
    log = Path(str(dt.table_uri).removeprefix("file://")) / "_delta_log"
    # The schema string as the log holds it: compare like with like.
    if log.exists():
        for version in range(dt.version(), -1, -1):
            file = log / f"{version:020d}.json"
            if not file.exists():
                break
            for line in file.read_text().splitlines():
                if '"metaData"' in line:
                    return str(json.loads(line)["metaData"]["schemaString"])
    return json.dumps(json.loads(dt.schema().to_json()), separators=(",", ":"))


# ----------------------------------------------------------------------------- files
_READERS = ("json", "csv", "parquet")


class FileSource(Source):
    """New files in a folder (like Databricks Auto Loader): JSON lines, CSV or Parquet.

    Files whose name starts with ``.`` or ``_`` are ignored (write files under such a name
    and rename them when complete). A file that cannot be parsed or does not fit the schema
    is moved to ``bad_records_path`` beside a ``<name>.reason.txt`` saying why, and the
    stream keeps going.

    Args:
        path: the folder to watch.
        format: ``"json"`` (one object per line), ``"csv"`` (with a header) or ``"parquet"``.
        schema: a pyarrow schema; by default inferred from the first good file and kept.
        bad_records_path: where bad files go (default ``<path>/_bad_records``).
        max_files_per_trigger: files per batch (``once`` ignores it).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: FileFormat,
        schema: pa.Schema | None = None,
        bad_records_path: str | None = None,
        max_files_per_trigger: int = 1000,
    ) -> None:
        if format not in _READERS:
            raise InvalidInput(f"format must be one of {list(_READERS)}, got {format!r}.")
        if max_files_per_trigger < 1:
            raise InvalidInput(
                f"max_files_per_trigger must be at least 1, got {max_files_per_trigger!r}."
            )
        self.path = Path(path).expanduser().resolve()
        self.format = format
        self.schema = schema
        self.bad_path = Path(bad_records_path) if bad_records_path else self.path / "_bad_records"
        self.max_files = max_files_per_trigger
        self._seen: set[str] = set()
        self.bad_files = 0

    def describe(self) -> dict[str, Any]:
        return {"kind": "files", "path": str(self.path), "format": self.format}

    def start(self, ws: Workspace, history: list[dict[str, Any]]) -> None:
        if not self.path.is_dir():
            raise NotFound(f"Source folder {self.path} does not exist; create it or fix the path.")
        for offset in history:
            self._seen.update(e["name"] for e in offset.get("entries", []))
            if self.schema is None and offset.get("schema"):
                self.schema = _schema_from_json(offset["schema"])

    def initial_offset(self) -> dict[str, Any]:
        return {}

    def _listing(self) -> list[dict[str, Any]]:
        found = []
        with os.scandir(self.path) as it:
            for item in it:
                if item.name.startswith((".", "_")) or not item.is_file():
                    continue
                found.append({"name": item.name, "mtime": item.stat().st_mtime_ns})
        return sorted(found, key=lambda f: (f["mtime"], f["name"]))

    def bound(self) -> set[str]:
        return {f["name"] for f in self._listing()}

    def plan(self, start: dict[str, Any], *, limit: bool, bound: Any = None) -> Plan:
        entries = []
        for item in self._listing():
            if item["name"] in self._seen or (bound is not None and item["name"] not in bound):
                continue
            entries.append(item)
            if limit and len(entries) >= self.max_files:
                break
        self._seen.update(e["name"] for e in entries)
        return Plan(entries, {})

    def recorded_schema(self) -> dict[str, Any] | None:
        return None if self.schema is None else _schema_to_json(self.schema)

    def read(self, entries: list[dict[str, Any]]) -> pa.Table:
        tables = []
        for entry in entries:
            table = self._read_one(entry["name"])
            if table is not None:
                tables.append(table)
        if not tables:
            return self.schema.empty_table() if self.schema is not None else pa.table({})
        return pa.concat_tables(tables)

    def _read_one(self, name: str) -> pa.Table | None:
        file = self.path / name
        if not file.exists():
            return None  # moved to bad records by an earlier attempt of this batch
        try:
            table = _parse(file, self.format, self.schema)
            if self.schema is None:
                self.schema = table.schema
            return _fit(table, self.schema)
        except (pa.ArrowException, ValueError, OSError, InvalidInput) as exc:
            self._quarantine(file, exc)
            return None

    def _quarantine(self, file: Path, exc: BaseException) -> None:
        self.bad_path.mkdir(parents=True, exist_ok=True)
        reason = " ".join(str(exc).split())[:2000]
        (self.bad_path / f"{file.name}.reason.txt").write_text(
            f"{file.name}: {type(exc).__name__}: {reason}\n"
        )
        shutil.move(str(file), str(self.bad_path / file.name))
        self.bad_files += 1

    def read_all(self) -> pa.Table:
        return self.read(self._listing())


def _parse(file: Path, fmt: str, schema: pa.Schema | None) -> pa.Table:
    if fmt == "json":
        import pyarrow.json as pajson

        options = pajson.ParseOptions(explicit_schema=schema) if schema is not None else None
        return pajson.read_json(file, parse_options=options)
    if fmt == "csv":
        import pyarrow.csv as pacsv

        convert = pacsv.ConvertOptions(column_types=schema) if schema is not None else None
        return pacsv.read_csv(file, convert_options=convert)
    return pq.read_table(file)


def _fit(table: pa.Table, schema: pa.Schema) -> pa.Table:
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise InvalidInput(f"missing column(s) {missing}; the stream's schema is {schema.names}")
    return pa.Table.from_arrays([table[f.name].cast(f.type) for f in schema], schema=schema)


def _schema_to_json(schema: pa.Schema) -> dict[str, Any]:
    return {"ipc": schema.serialize().to_pybytes().hex()}


def _schema_from_json(data: dict[str, Any]) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(data["ipc"])))
