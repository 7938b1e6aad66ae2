"""Catalog explorer pages: catalogs → schemas → tables, and one table's schema, metadata,
history, a sample of rows and a time-travel selector.

Routes (relative to ``/ui``):

- ``/catalog``: every catalog with its schemas.
- ``/catalog/{catalog}``: the schemas of a catalog and how many tables each holds.
- ``/catalog/{catalog}/{schema}``: the tables of a schema.
- ``/catalog/{catalog}/{schema}/{table}?version=N``: a table, at version N when given.
- ``/catalog/{catalog}/{schema}/{table}/snapshot?version=N``: the fragment the time-travel
  selector swaps in (schema, row count and sample at that version).

Pages read Delta snapshots directly (``ws.tables.delta_table``), not through ``ws.tables.read``,
so browsing a table is not recorded as a lineage read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Request
from fastapi.responses import Response

from lakebox.catalog import TableName
from lakebox.catalog._convert import delta_type_name
from lakebox.errors import InvalidInput, NotFound, close_matches
from lakebox.ui._render import page_router, render

if TYPE_CHECKING:
    import pyarrow.dataset as pads
    from deltalake import DeltaTable

    from lakebox.catalog import TableInfo
    from lakebox.workspace import Workspace

__all__ = ["build_pages"]

SAMPLE_ROWS = 20
HISTORY_LIMIT = 200
_CELL_CHARS = 120


@dataclass
class _Column:
    """A column as the table page shows it (at the version being viewed)."""

    name: str
    type: str
    nullable: bool
    comment: str | None
    tags: dict[str, str]
    partition: bool


def build_pages(ws: Workspace) -> APIRouter:
    """The catalog explorer's routes (paths relative to ``/ui``)."""
    pages = page_router()

    @pages.get("/catalog")
    def catalogs(request: Request) -> Response:
        by_schema: dict[tuple[str, str], list[str]] = {}
        for info in ws.tables.list():
            by_schema.setdefault((info.catalog, info.schema), []).append(info.name)
        tree = [
            (name, [(s, by_schema.get((name, s), [])) for s in ws.tables.list_schemas(name)])
            for name in ws.tables.list_catalogs()
        ]
        return render(request, "catalog/catalogs.html", {"catalogs": tree})

    @pages.get("/catalog/{catalog}")
    def schemas(request: Request, catalog: str) -> Response:
        known = _schemas_of(ws, catalog)
        tables = ws.tables.list(catalog)
        counts = {s: sum(1 for t in tables if t.schema == s) for s in known}
        return render(
            request, "catalog/schemas.html", {"catalog": catalog.lower(), "schemas": counts}
        )

    @pages.get("/catalog/{catalog}/{schema}")
    def tables(request: Request, catalog: str, schema: str) -> Response:
        if schema.lower() not in _schemas_of(ws, catalog):
            raise NotFound(
                f"Schema {catalog.lower()}.{schema.lower()} does not exist."
                f"{close_matches(schema.lower(), ws.tables.list_schemas(catalog))} "
                f"Schemas of catalog {catalog.lower()!r}: {ws.tables.list_schemas(catalog)}."
            )
        found = ws.tables.list(catalog, schema)
        return render(
            request,
            "catalog/tables.html",
            {
                "catalog": catalog.lower(),
                "schema": schema.lower(),
                "tables": found,
                "links": _links(ws, [t.full_name for t in found]),
            },
        )

    @pages.get("/catalog/{catalog}/{schema}/{table}")
    def table_page(
        request: Request, catalog: str, schema: str, table: str, version: str | None = None
    ) -> Response:
        tn = TableName.parse(f"{catalog}.{schema}.{table}")
        info = ws.tables.get(tn)
        history = ws.tables.history(tn, limit=HISTORY_LIMIT)
        for entry in history:
            entry["parameters_text"] = _pairs(entry.get("operationParameters"))
            entry["metrics_text"] = _pairs(entry.get("operationMetrics"))
        dt = ws.tables.delta_table(tn)
        context = {
            "info": info,
            "tn": tn,
            "history": history,
            "history_limit": HISTORY_LIMIT,
            "properties": dict(dt.metadata().configuration),
            "protocol": dt.protocol(),
            "links": _links(ws, [tn.full_name]).get(tn.full_name, {}),
            **_snapshot(ws, info, _version(version), latest=dt),
        }
        return render(request, "catalog/table.html", context)

    @pages.get("/catalog/{catalog}/{schema}/{table}/snapshot")
    def snapshot(
        request: Request, catalog: str, schema: str, table: str, version: str | None = None
    ) -> Response:
        info = ws.tables.get(TableName.parse(f"{catalog}.{schema}.{table}"))
        context = _snapshot(ws, info, _version(version))
        response = render(request, "catalog/_snapshot.html", context)
        if request.headers.get("hx-request"):
            # The address bar follows the selector, so the view can be shared or reloaded.
            response.headers["HX-Push-Url"] = (
                f"{context['table_path']}?version={context['version']}"
            )
        return response

    return pages


def _schemas_of(ws: Workspace, catalog: str) -> list[str]:
    """The schemas of ``catalog``, or a NotFound naming it and the catalogs there are."""
    known = ws.tables.list_schemas(catalog)
    if not known:
        catalogs = ws.tables.list_catalogs()
        raise NotFound(
            f"Catalog {catalog.lower()!r} does not exist.{close_matches(catalog.lower(), catalogs)}"
            f" Catalogs: {catalogs}."
        )
    return known


def _version(text: str | None) -> int | None:
    """The ``?version=`` query parameter: empty means the latest version."""
    if text is None or text.strip() in ("", "latest"):
        return None
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 0:
        raise InvalidInput(
            f"version must be a non-negative integer such as ?version=0, got {text!r}."
        )
    return number


def _snapshot(
    ws: Workspace, info: TableInfo, version: int | None, *, latest: DeltaTable | None = None
) -> dict[str, Any]:
    """Schema, row count and the first rows of a table at ``version`` (latest when None).

    Column comments and tags are the catalog's current ones, shown on the columns that exist
    at that version.
    """
    if version is None and latest is not None:
        dt = latest
    else:
        dt = ws.tables.delta_table(info.full_name, version=version)
    schema = pa.schema(dt.schema().to_arrow())
    partitions = set(dt.metadata().partition_columns)
    current = {c.name: c for c in info.columns}
    columns = [
        _Column(
            name=f.name,
            type=delta_type_name(f.type),
            nullable=f.nullable,
            comment=current[f.name].comment if f.name in current else None,
            tags=current[f.name].tags if f.name in current else {},
            partition=f.name in partitions,
        )
        for f in schema
    ]
    dataset = dt.to_pyarrow_dataset()
    sample = dataset.head(SAMPLE_ROWS)
    shown = dt.version()
    return {
        "full_name": info.full_name,
        "version": shown,
        "latest_version": info.version,
        "is_latest": shown == info.version,
        "columns": columns,
        "added": [c.name for c in info.columns if c.name not in schema.names],
        "num_rows": _row_count(dt, dataset),
        "sample_names": sample.column_names,
        "sample_rows": [[_cell(v) for v in row.values()] for row in sample.to_pylist()],
        "table_path": "/ui/catalog/" + info.full_name.replace(".", "/"),
    }


def _row_count(dt: DeltaTable, dataset: pads.Dataset) -> int:
    """Rows at the snapshot: the sum of the row counts the Delta log records per file (no
    file is opened), or a count over the Parquet footers when a file has no statistics."""
    try:
        counts = pa.table(dt.get_add_actions(flatten=True)).column("num_records")
    except (KeyError, TypeError, ValueError, pa.ArrowException):
        return int(dataset.count_rows())
    if counts.null_count:
        return int(dataset.count_rows())
    return int(pc.sum(counts).as_py() or 0)


def _links(ws: Workspace, names: list[str]) -> dict[str, dict[str, str]]:
    """For each table that is a feature table or is monitored, the pages to link to."""
    wanted = set(names)
    links: dict[str, dict[str, str]] = {}
    for feature_table in ws.features.list_tables():
        if feature_table.name in wanted:
            links.setdefault(feature_table.name, {})["feature"] = (
                f"/ui/features/{feature_table.name}"
            )
    for monitor in ws.monitors.list():
        if monitor.table_name in wanted:
            links.setdefault(monitor.table_name, {})["monitor"] = (
                f"/ui/monitors/{monitor.table_name}"
            )
    return links


def _pairs(values: Any) -> str:
    """A commit's parameters or metrics as ``key=value`` text."""
    if not values:
        return ""
    if not isinstance(values, dict):
        return str(values)
    return ", ".join(f"{k}={_cell(v, limit=80)}" for k, v in values.items())


def _cell(value: Any, *, limit: int = _CELL_CHARS) -> str:
    """One value as short text: nulls as ``null``, times in UTC, long text cut."""
    if value is None:
        return "null"
    if isinstance(value, float):
        text = repr(value) if math.isfinite(value) else str(value)
    elif isinstance(value, datetime):
        moment = value.astimezone(timezone.utc) if value.tzinfo else value
        text = moment.isoformat(sep=" ")
    elif isinstance(value, (date, Decimal, int, bool)):
        text = str(value)
    elif isinstance(value, bytes):
        text = value[:32].hex() + ("…" if len(value) > 32 else "")
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
