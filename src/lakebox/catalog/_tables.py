"""``ws.tables``: the catalog of Delta tables."""

from __future__ import annotations

import builtins
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from lakebox.catalog import _schema as meta
from lakebox.catalog._convert import conform, delta_type_name, to_arrow, to_arrow_schema
from lakebox.catalog._names import TableName, check_part
from lakebox.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    LakeboxError,
    NotFound,
    close_matches,
)
from lakebox.metadata import MetadataDB
from lakebox.metadata._db import utcnow

__all__ = ["ColumnInfo", "ReadHook", "TableInfo", "Tables"]

Output = Literal["pandas", "arrow"]
# Called after every read with (table name, Delta version read, table location).
ReadHook = Callable[[TableName, int, str], None]
SAFE_RETENTION_HOURS = 168


@dataclass
class ColumnInfo:
    """One column of a table."""

    name: str
    type: str
    nullable: bool
    comment: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class TableInfo:
    """What the catalog knows about one table. ``version`` and ``columns`` are filled by
    :meth:`Tables.get`, not by :meth:`Tables.list`."""

    full_name: str
    location: str
    comment: str | None
    created_at: datetime
    tags: dict[str, str] = field(default_factory=dict)
    version: int | None = None
    columns: list[ColumnInfo] = field(default_factory=list)
    partition_columns: list[str] = field(default_factory=list)
    num_files: int | None = None

    @property
    def catalog(self) -> str:
        return self.full_name.split(".")[0]

    @property
    def schema(self) -> str:
        return self.full_name.split(".")[1]

    @property
    def name(self) -> str:
        return self.full_name.split(".")[2]


class Tables:
    """Create, write, merge, read and manage Delta tables named ``catalog.schema.table``.

    Reached as ``ws.tables``. Every write is one Delta commit: it either happens whole or not
    at all, and data that does not fit the table's schema is refused before anything is written.

    Example:
        >>> ws.tables.write("main.sales.orders", df)            # doctest: +SKIP
        >>> ws.tables.read("main.sales.orders", version=0)       # doctest: +SKIP
    """

    def __init__(
        self, *, root: str, db: MetadataDB, storage_options: Mapping[str, str] | None = None
    ) -> None:
        self._root = root.rstrip("/")
        self._db = db
        self._storage_options = dict(storage_options or {}) or None
        self.read_hooks: list[ReadHook] = []

    # ----------------------------------------------------------------- names and locations
    def resolve(self, name: str | TableName) -> TableName:
        """Validate a one-, two- or three-part name and return the full name."""
        return TableName.parse(name)

    def location(self, name: str | TableName) -> str:
        """Where the table's files live (a path or URI), whether or not it exists yet."""
        tn = self.resolve(name)
        return f"{self._root}/{tn.catalog}/{tn.schema}/{tn.table}"

    def exists(self, name: str | TableName) -> bool:
        """Whether the table is in the catalog."""
        tn = self.resolve(name)
        with self._db.begin() as conn:
            row = conn.execute(
                select(meta.tables.c.full_name).where(meta.tables.c.full_name == tn.full_name)
            ).first()
        return row is not None

    def delta_table(
        self,
        name: str | TableName,
        *,
        version: int | None = None,
        timestamp: datetime | str | None = None,
    ) -> DeltaTable:
        """The ``deltalake.DeltaTable`` behind a catalog table, optionally at a version or time."""
        tn = self.resolve(name)
        if version is not None and timestamp is not None:
            raise InvalidInput("Pass either version= or timestamp=, not both.")
        if version is not None and (
            not isinstance(version, int) or isinstance(version, bool) or version < 0
        ):
            raise InvalidInput(f"version must be a non-negative integer, got {version!r}.")
        try:
            # Opening directly at the version replays the log once, as plain delta-rs does.
            dt = DeltaTable(
                self.location(tn), version=version, storage_options=self._storage_options
            )
        except TableNotFoundError:
            raise self._not_found(tn) from None
        except DeltaError as exc:
            raise self._version_error(tn, version, exc) from None
        if timestamp is not None:
            self._load_timestamp(dt, tn, timestamp)
        return dt

    def _version_error(self, tn: TableName, version: int | None, exc: Exception) -> LakeboxError:
        latest = DeltaTable(self.location(tn), storage_options=self._storage_options).version()
        if version is not None and version > latest:
            return NotFound(
                f"Table {tn.full_name!r} has no version {version}: its latest version is {latest}."
            )
        return NotFound(
            f"Version {version} of table {tn.full_name!r} can no longer be read "
            f"({_short(exc)}); it was probably removed by vacuum."
        )

    def _load_timestamp(self, dt: DeltaTable, tn: TableName, timestamp: datetime | str) -> None:
        try:
            when = datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else timestamp
        except ValueError:
            raise InvalidInput(
                f"timestamp {timestamp!r} is not an ISO date or time such as "
                "'2024-05-01' or '2024-05-01T12:00:00+00:00'."
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        first_commit_ms = dt.history()[-1]["timestamp"]
        if when.timestamp() * 1000 < first_commit_ms:
            first = datetime.fromtimestamp(first_commit_ms / 1000, tz=timezone.utc)
            raise NotFound(
                f"Table {tn.full_name!r} has no version at or before "
                f"{when.isoformat()}: its first commit is at {first.isoformat()}."
            )
        try:
            dt.load_as_version(when)
        except (DeltaError, ValueError) as exc:
            raise NotFound(
                f"Table {tn.full_name!r} has no version at or before {when.isoformat()} ({exc})."
            ) from None

    def _not_found(self, tn: TableName) -> NotFound:
        known = [t.full_name for t in self.list()]
        return NotFound(
            f"Table {tn.full_name!r} does not exist."
            f"{close_matches(tn.full_name, known)} "
            "List tables with ws.tables.list() or `lakebox tables list`."
        )

    # ----------------------------------------------------------------- create and write
    def create(
        self,
        name: str | TableName,
        data: Any = None,
        *,
        schema: Any = None,
        partition_by: Sequence[str] | None = None,
        comment: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> TableInfo:
        """Create a table from data (pandas, polars, pyarrow) or from a schema.

        Args:
            name: ``catalog.schema.table`` (shorter names resolve against ``main.default``).
            data: rows to write as version 0.
            schema: a pyarrow / deltalake schema or DDL (``"id BIGINT, name STRING"``) when
                there is no data.
            partition_by: partition columns.
            comment: table comment.
            tags: table tags.
        """
        tn = self.resolve(name)
        if (data is None) == (schema is None):
            raise InvalidInput(
                f"Create table {tn.full_name!r} from data or from a schema: "
                "pass exactly one of them."
            )
        table = to_arrow(data) if data is not None else None
        self._create(
            tn, table, schema=schema, partition_by=partition_by, comment=comment, tags=tags
        )
        return self.get(tn)

    def _create(
        self,
        tn: TableName,
        table: pa.Table | None,
        *,
        schema: Any = None,
        partition_by: Sequence[str] | None = None,
        comment: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        arrow_schema = table.schema if table is not None else to_arrow_schema(schema)
        self._check_partitions(tn, arrow_schema, partition_by)
        location = self.location(tn)
        partitions = list(partition_by or []) or None
        with self._db.begin() as conn:
            self._insert_catalog_row(conn, tn, location, comment)
            try:
                if table is not None:
                    write_deltalake(
                        location,
                        table,
                        mode="error",
                        partition_by=partitions,
                        storage_options=self._storage_options,
                    )
                else:
                    DeltaTable.create(
                        location,
                        arrow_schema,
                        mode="error",
                        partition_by=partitions,
                        storage_options=self._storage_options,
                    )
            except (DeltaError, ValueError, pa.ArrowException) as exc:
                if "exists" in str(exc).lower():
                    raise AlreadyExists(
                        f"A Delta table already exists at {location}, the location of "
                        f"{tn.full_name!r}, but the catalog does not list it; move it away "
                        "or choose another name."
                    ) from None
                raise InvalidInput(f"Cannot create table {tn.full_name!r}: {_short(exc)}") from None
            for key, value in (tags or {}).items():
                conn.execute(
                    meta.tags.insert().values(
                        full_name=tn.full_name, column_name="", key=key, value=str(value)
                    )
                )

    def _insert_catalog_row(
        self, conn: Any, tn: TableName, location: str, comment: str | None
    ) -> None:
        now = utcnow()
        exists = conn.execute(
            select(meta.schemas.c.schema).where(
                meta.schemas.c.catalog == tn.catalog, meta.schemas.c.schema == tn.schema
            )
        ).first()
        if exists is None:
            conn.execute(
                meta.schemas.insert().values(catalog=tn.catalog, schema=tn.schema, created_at=now)
            )
        try:
            conn.execute(
                meta.tables.insert().values(
                    full_name=tn.full_name,
                    catalog=tn.catalog,
                    schema=tn.schema,
                    name=tn.table,
                    location=location,
                    comment=comment,
                    created_at=now,
                )
            )
        except IntegrityError:
            raise AlreadyExists(
                f"Table {tn.full_name!r} already exists. Write to it with "
                "ws.tables.write(), or drop it first."
            ) from None

    @staticmethod
    def _check_partitions(
        tn: TableName, schema: pa.Schema, partition_by: Sequence[str] | None
    ) -> None:
        missing = [c for c in partition_by or [] if c not in schema.names]
        if missing:
            raise InvalidInput(
                f"Partition column(s) {missing} of table {tn.full_name!r} are not "
                f"in its columns {schema.names}."
            )

    def write(
        self,
        name: str | TableName,
        data: Any,
        *,
        mode: Literal["append", "overwrite"] = "append",
        merge_schema: bool = False,
        overwrite_schema: bool = False,
        partition_by: Sequence[str] | None = None,
        commit_properties: Any = None,
    ) -> int:
        """Append to or overwrite a table, creating it if it does not exist yet.

        The data must match the table's schema: missing nullable columns become null, integer
        and float columns may be widened, anything else raises :class:`SchemaMismatch` and
        writes nothing. ``merge_schema=True`` adds new columns; ``overwrite_schema=True`` (with
        ``mode="overwrite"``) replaces the schema.

        Returns:
            The new table version.
        """
        tn = self.resolve(name)
        if mode not in ("append", "overwrite"):
            raise InvalidInput(f"mode must be 'append' or 'overwrite', got {mode!r}.")
        if overwrite_schema and mode != "overwrite":
            raise InvalidInput("overwrite_schema=True needs mode='overwrite'.")
        table = to_arrow(data)
        try:
            dt = DeltaTable(self.location(tn), storage_options=self._storage_options)
        except TableNotFoundError:
            self._create(tn, table, partition_by=partition_by)
            return 0
        if not overwrite_schema:
            table = conform(
                table,
                pa.schema(dt.schema().to_arrow()),
                table=tn.full_name,
                merge_schema=merge_schema,
            )
        schema_mode: Literal["merge", "overwrite"] | None = (
            "overwrite" if overwrite_schema else "merge" if merge_schema else None
        )
        try:
            write_deltalake(
                dt,
                table,
                mode=mode,
                schema_mode=schema_mode,
                partition_by=list(partition_by) if partition_by else None,
                commit_properties=commit_properties,
            )
        except CommitFailedError as exc:
            raise Conflict(
                f"A concurrent commit to {tn.full_name!r} conflicted with this write "
                f"({exc}); nothing was written. Retry the write."
            ) from None
        except (DeltaError, ValueError, pa.ArrowException) as exc:
            raise InvalidInput(f"Cannot write to table {tn.full_name!r}: {exc}") from None
        return dt.version()

    def merge(
        self,
        name: str | TableName,
        data: Any,
        *,
        on: Sequence[str],
        when_matched: Literal["update", "delete", "ignore"] = "update",
        when_not_matched: Literal["insert", "ignore"] = "insert",
        when_not_matched_by_source: Literal["ignore", "delete"] = "ignore",
        merge_schema: bool = False,
    ) -> dict[str, Any]:
        """Upsert rows into a table, matching on the key columns ``on``.

        Args:
            when_matched: what to do with target rows that have a source row with the same key.
            when_not_matched: what to do with source rows whose key is not in the target.
            when_not_matched_by_source: what to do with target rows whose key is not in the
                source (``"delete"`` makes the target equal the source).

        Returns:
            delta-rs merge metrics (rows inserted, updated, deleted, ...).
        """
        tn = self.resolve(name)
        keys = [on] if isinstance(on, str) else list(on)
        if not keys:
            raise InvalidInput("merge needs at least one key column in on=[...].")
        for value, allowed, option in (
            (when_matched, ("update", "delete", "ignore"), "when_matched"),
            (when_not_matched, ("insert", "ignore"), "when_not_matched"),
            (when_not_matched_by_source, ("ignore", "delete"), "when_not_matched_by_source"),
        ):
            if value not in allowed:
                raise InvalidInput(f"{option} must be one of {list(allowed)}, got {value!r}.")
        dt = self.delta_table(tn)
        target_schema = pa.schema(dt.schema().to_arrow())
        source = to_arrow(data)
        missing = [k for k in keys if k not in source.column_names or k not in target_schema.names]
        if missing:
            raise InvalidInput(
                f"Merge key(s) {missing} must be columns of both the data "
                f"{source.column_names} and table {tn.full_name!r} "
                f"{target_schema.names}."
            )
        source = conform(source, target_schema, table=tn.full_name, merge_schema=merge_schema)
        _refuse_duplicate_keys(source, keys, what=f"merge into {tn.full_name!r}")
        predicate = " AND ".join(f't."{k}" = s."{k}"' for k in keys)
        merger = dt.merge(
            source, predicate, source_alias="s", target_alias="t", merge_schema=merge_schema
        )
        if when_matched == "update":
            merger = merger.when_matched_update_all()
        elif when_matched == "delete":
            merger = merger.when_matched_delete()
        if when_not_matched == "insert":
            merger = merger.when_not_matched_insert_all()
        if when_not_matched_by_source == "delete":
            merger = merger.when_not_matched_by_source_delete()
        try:
            return dict(merger.execute())
        except CommitFailedError as exc:
            raise Conflict(
                f"A concurrent commit to {tn.full_name!r} conflicted with this merge "
                f"({exc}); nothing was written. Retry the merge."
            ) from None

    def delete(self, name: str | TableName, where: str | None = None) -> int:
        """Delete the rows matching a SQL predicate (all rows when ``where`` is None).

        Returns:
            The number of rows deleted.
        """
        tn = self.resolve(name)
        dt = self.delta_table(tn)
        try:
            metrics = dt.delete(where)
        except DeltaError as exc:
            raise InvalidInput(
                f"Cannot delete from {tn.full_name!r} where {where!r}: "
                f"{_short(exc)}. Nothing was deleted."
            ) from None
        return int(metrics.get("num_deleted_rows", 0))

    # ----------------------------------------------------------------- read
    def dataset(
        self,
        name: str | TableName,
        *,
        version: int | None = None,
        timestamp: datetime | str | None = None,
    ) -> tuple[pads.Dataset, int]:
        """The table as a pyarrow Dataset (lazy, with pushdown) and the version it shows."""
        tn = self.resolve(name)
        dt = self.delta_table(tn, version=version, timestamp=timestamp)
        read_version = dt.version()
        for hook in self.read_hooks:
            hook(tn, read_version, dt.table_uri)
        return dt.to_pyarrow_dataset(), read_version

    def read(
        self,
        name: str | TableName,
        *,
        columns: Sequence[str] | None = None,
        filter: str | pads.Expression | None = None,
        version: int | None = None,
        timestamp: datetime | str | None = None,
        output: Output = "pandas",
    ) -> Any:
        """Read a table, optionally at an older version or time (time travel).

        Args:
            columns: columns to read (all by default).
            filter: a SQL predicate (``"day >= '2024-01-01'"``) or a pyarrow expression.
            version: the Delta version to read.
            timestamp: read the newest version committed at or before this time.
            output: ``"pandas"`` (default) or ``"arrow"``.
        """
        if output not in ("pandas", "arrow"):
            raise InvalidInput(f"output must be 'pandas' or 'arrow', got {output!r}.")
        tn = self.resolve(name)
        dataset, _ = self.dataset(tn, version=version, timestamp=timestamp)
        if columns is not None:
            unknown = [c for c in columns if c not in dataset.schema.names]
            if unknown:
                raise InvalidInput(
                    f"Unknown column(s) {unknown} in table {tn.full_name!r}; "
                    f"its columns are {dataset.schema.names}."
                )
        if isinstance(filter, str):
            table = _sql_filter(dataset, tn, list(columns) if columns else None, filter)
        else:
            table = dataset.to_table(columns=list(columns) if columns else None, filter=filter)
        return table.to_pandas() if output == "pandas" else table

    def history(self, name: str | TableName, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first: version, timestamp, operation, parameters and
        metrics."""
        dt = self.delta_table(name)
        rows = []
        for entry in dt.history(limit):
            entry = dict(entry)
            entry["timestamp"] = datetime.fromtimestamp(entry["timestamp"] / 1000, tz=timezone.utc)
            rows.append(entry)
        return rows

    # ----------------------------------------------------------------- maintenance
    def restore(self, name: str | TableName, version: int) -> int:
        """Make the table's content equal to an older version (a new commit). Returns the new
        version."""
        tn = self.resolve(name)
        dt = self.delta_table(tn)
        self.delta_table(tn, version=version)  # a clear error for a missing version
        try:
            dt.restore(version)
        except DeltaError as exc:
            raise Conflict(
                f"Cannot restore {tn.full_name!r} to version {version}: {_short(exc)}."
            ) from None
        return dt.version()

    def optimize(
        self, name: str | TableName, *, zorder_by: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Compact small files, and Z-order them by ``zorder_by`` columns when given."""
        tn = self.resolve(name)
        dt = self.delta_table(tn)
        if zorder_by:
            names = pa.schema(dt.schema().to_arrow()).names
            partitions = dt.metadata().partition_columns
            bad = [c for c in zorder_by if c not in names or c in partitions]
            if bad:
                raise InvalidInput(
                    f"Cannot Z-order {tn.full_name!r} by {bad}: Z-order columns "
                    f"must be non-partition columns of the table {names}."
                )
            return dict(dt.optimize.z_order(list(zorder_by)))
        return dict(dt.optimize.compact())

    def vacuum(
        self,
        name: str | TableName,
        retention_hours: int = SAFE_RETENTION_HOURS,
        *,
        force: bool = False,
        dry_run: bool = False,
    ) -> list[str]:
        """Delete files no version newer than ``retention_hours`` needs.

        A retention under 168 hours can break readers of older versions and concurrent
        writers, so it is refused unless ``force=True``.

        Returns:
            The files deleted (or that would be, with ``dry_run=True``).
        """
        tn = self.resolve(name)
        if retention_hours < 0:
            raise InvalidInput(f"retention_hours must be >= 0, got {retention_hours}.")
        if retention_hours < SAFE_RETENTION_HOURS and not force:
            raise InvalidInput(
                f"Refusing to vacuum {tn.full_name!r} with a retention of {retention_hours} h: "
                f"under {SAFE_RETENTION_HOURS} h, time travel to older versions and concurrent "
                "writers can fail. Pass force=True (CLI: --force) if you are sure."
            )
        dt = self.delta_table(tn)
        return list(
            dt.vacuum(
                retention_hours=retention_hours,
                dry_run=dry_run,
                enforce_retention_duration=not force,
            )
        )

    # ----------------------------------------------------------------- metadata
    def get(self, name: str | TableName) -> TableInfo:
        """Everything the catalog knows about a table, including its current schema."""
        tn = self.resolve(name)
        with self._db.begin() as conn:
            row = conn.execute(
                select(meta.tables).where(meta.tables.c.full_name == tn.full_name)
            ).first()
            if row is None:
                raise self._not_found(tn)
            tag_rows = conn.execute(
                select(meta.tags).where(meta.tags.c.full_name == tn.full_name)
            ).all()
            comment_rows = conn.execute(
                select(meta.column_comments).where(meta.column_comments.c.full_name == tn.full_name)
            ).all()
        dt = self.delta_table(tn)
        col_comments = {r.column_name: r.comment for r in comment_rows}
        col_tags: dict[str, dict[str, str]] = {}
        for r in tag_rows:
            col_tags.setdefault(r.column_name, {})[r.key] = r.value
        schema = pa.schema(dt.schema().to_arrow())
        columns = [
            ColumnInfo(
                f.name,
                delta_type_name(f.type),
                f.nullable,
                col_comments.get(f.name),
                col_tags.get(f.name, {}),
            )
            for f in schema
        ]
        return TableInfo(
            full_name=row.full_name,
            location=row.location,
            comment=row.comment,
            created_at=row.created_at,
            tags=col_tags.get("", {}),
            version=dt.version(),
            columns=columns,
            partition_columns=list(dt.metadata().partition_columns),
            num_files=len(dt.file_uris()),
        )

    def list(
        self, catalog: str | None = None, schema: str | None = None
    ) -> builtins.list[TableInfo]:
        """Tables in the catalog, optionally only those of one catalog or schema."""
        query = select(meta.tables).order_by(meta.tables.c.full_name)
        if catalog is not None:
            query = query.where(
                meta.tables.c.catalog == check_part(catalog, what="catalog", full=catalog)
            )
        if schema is not None:
            query = query.where(
                meta.tables.c.schema == check_part(schema, what="schema", full=schema)
            )
        with self._db.begin() as conn:
            rows = conn.execute(query).all()
        return [
            TableInfo(
                full_name=r.full_name,
                location=r.location,
                comment=r.comment,
                created_at=r.created_at,
            )
            for r in rows
        ]

    def list_catalogs(self) -> builtins.list[str]:
        """Names of catalogs that hold at least one schema."""
        with self._db.begin() as conn:
            rows = conn.execute(
                select(meta.schemas.c.catalog).distinct().order_by(meta.schemas.c.catalog)
            ).all()
        return [r.catalog for r in rows]

    def list_schemas(self, catalog: str = "main") -> builtins.list[str]:
        """Names of the schemas in a catalog."""
        catalog = check_part(catalog, what="catalog", full=catalog)
        with self._db.begin() as conn:
            rows = conn.execute(
                select(meta.schemas.c.schema)
                .where(meta.schemas.c.catalog == catalog)
                .order_by(meta.schemas.c.schema)
            ).all()
        return [r.schema for r in rows]

    def set_comment(
        self, name: str | TableName, comment: str | None, *, column: str | None = None
    ) -> None:
        """Set (or clear, with None) the comment of a table or of one of its columns."""
        tn = self.resolve(name)
        with self._db.begin() as conn:
            if column is None:
                self._require_row(conn, tn)
                conn.execute(
                    meta.tables.update()
                    .where(meta.tables.c.full_name == tn.full_name)
                    .values(comment=comment)
                )
                return
            self._require_column(tn, column)
            conn.execute(
                delete(meta.column_comments).where(
                    meta.column_comments.c.full_name == tn.full_name,
                    meta.column_comments.c.column_name == column,
                )
            )
            if comment is not None:
                conn.execute(
                    meta.column_comments.insert().values(
                        full_name=tn.full_name, column_name=column, comment=comment
                    )
                )

    def set_tags(
        self, name: str | TableName, tags: Mapping[str, str], *, column: str | None = None
    ) -> None:
        """Set tags on a table or on one of its columns (existing keys are overwritten)."""
        tn = self.resolve(name)
        if column is not None:
            self._require_column(tn, column)
        with self._db.begin() as conn:
            self._require_row(conn, tn)
            for key, value in tags.items():
                if not key:
                    raise InvalidInput("Tag keys must be non-empty strings.")
                conn.execute(
                    delete(meta.tags).where(
                        meta.tags.c.full_name == tn.full_name,
                        meta.tags.c.column_name == (column or ""),
                        meta.tags.c.key == key,
                    )
                )
                conn.execute(
                    meta.tags.insert().values(
                        full_name=tn.full_name, column_name=column or "", key=key, value=str(value)
                    )
                )

    def unset_tags(
        self, name: str | TableName, keys: Sequence[str], *, column: str | None = None
    ) -> None:
        """Remove tags from a table or column; unknown keys are ignored."""
        tn = self.resolve(name)
        with self._db.begin() as conn:
            self._require_row(conn, tn)
            conn.execute(
                delete(meta.tags).where(
                    meta.tags.c.full_name == tn.full_name,
                    meta.tags.c.column_name == (column or ""),
                    meta.tags.c.key.in_(list(keys)),
                )
            )

    def _require_row(self, conn: Any, tn: TableName) -> None:
        row = conn.execute(
            select(meta.tables.c.full_name).where(meta.tables.c.full_name == tn.full_name)
        ).first()
        if row is None:
            raise self._not_found(tn)

    def _require_column(self, tn: TableName, column: str) -> None:
        names = pa.schema(self.delta_table(tn).schema().to_arrow()).names
        if column not in names:
            raise NotFound(
                f"Table {tn.full_name!r} has no column {column!r}."
                f"{close_matches(column, names)} Its columns are {names}."
            )

    def drop(self, name: str | TableName, *, missing_ok: bool = False) -> None:
        """Remove a table from the catalog and delete its files."""
        tn = self.resolve(name)
        with self._db.begin() as conn:
            row = conn.execute(
                select(meta.tables).where(meta.tables.c.full_name == tn.full_name)
            ).first()
            if row is None:
                if missing_ok:
                    return
                raise self._not_found(tn)
            for table in (meta.tags, meta.column_comments, meta.tables):
                conn.execute(delete(table).where(table.c.full_name == tn.full_name))
            _delete_location(row.location, self._storage_options)


def _refuse_duplicate_keys(table: pa.Table, keys: list[str], *, what: str) -> None:
    counts = table.group_by(keys).aggregate([([], "count_all")])
    dupes = counts.filter(pc.greater(counts["count_all"], 1))
    if dupes.num_rows:
        examples = dupes.slice(0, 5).select(keys).to_pylist()
        raise InvalidInput(
            f"Cannot {what}: {dupes.num_rows} key(s) appear more than once in "
            f"the data, e.g. {examples}. De-duplicate on {keys} first; nothing "
            "was written."
        )


def _sql_filter(
    dataset: pads.Dataset, tn: TableName, columns: list[str] | None, predicate: str
) -> pa.Table:
    import duckdb

    con = duckdb.connect()
    try:
        con.register("__lakebox_table", dataset)
        select_list = ", ".join(f'"{c}"' for c in columns) if columns else "*"
        return con.sql(
            f"SELECT {select_list} FROM __lakebox_table WHERE {predicate}"
        ).to_arrow_table()
    except duckdb.Error as exc:
        raise InvalidInput(
            f"Invalid filter {predicate!r} on table {tn.full_name!r}: "
            f"{_short(exc)}. Use a SQL predicate over its columns "
            f"{dataset.schema.names}."
        ) from None
    finally:
        con.close()


_NOISE = ("Generic DeltaTable error:", "External error:", "Generic error:")


def _short(exc: BaseException) -> str:
    """A library error as one readable line, without delta-rs' wrapper prefixes."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    for prefix in _NOISE:
        text = text.replace(prefix, "")
    return " ".join(text.split())


def _delete_location(location: str, storage_options: dict[str, str] | None) -> None:
    if "://" not in location or location.startswith("file://"):
        path = Path(location.removeprefix("file://"))
        if path.exists():
            shutil.rmtree(path)
        return
    import pyarrow.fs as pafs

    fs, path = pafs.FileSystem.from_uri(location)
    fs.delete_dir(path)
