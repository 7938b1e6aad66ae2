"""Unity-Catalog-shaped REST routes over the catalog: ``/api/2.1/unity-catalog/...``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query

from lakebox.catalog import TableInfo
from lakebox.server._schema import ERROR_RESPONSES, UNSET, Answer, Empty, page_start

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["build_router", "table_json"]

_UC_TYPES = {
    "long": "LONG",
    "integer": "INT",
    "short": "SHORT",
    "byte": "BYTE",
    "float": "FLOAT",
    "double": "DOUBLE",
    "string": "STRING",
    "boolean": "BOOLEAN",
    "binary": "BINARY",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "timestamp_ntz": "TIMESTAMP_NTZ",
}


def _type_name(delta_type: str) -> str:
    if delta_type in _UC_TYPES:
        return _UC_TYPES[delta_type]
    match = re.match(r"^(decimal|array|struct|map)", delta_type.lower())
    return match.group(1).upper() if match else "USER_DEFINED_TYPE"


def _millis(info: TableInfo) -> int:
    return int(info.created_at.timestamp() * 1000)


def table_json(info: TableInfo) -> dict[str, Any]:
    """A table as Unity Catalog's TableInfo JSON."""
    out: dict[str, Any] = {
        "name": info.name,
        "catalog_name": info.catalog,
        "schema_name": info.schema,
        "full_name": info.full_name,
        "table_type": "MANAGED",
        "data_source_format": "DELTA",
        "storage_location": info.location,
        "created_at": _millis(info),
        "properties": dict(info.tags),
    }
    if info.comment:
        out["comment"] = info.comment
    if info.columns:
        out["columns"] = [
            {
                "name": c.name,
                "type_name": _type_name(c.type),
                "type_text": c.type,
                "position": i,
                "nullable": c.nullable,
                **({"comment": c.comment} if c.comment else {}),
            }
            for i, c in enumerate(info.columns)
        ]
    if info.version is not None:
        out["properties"]["delta.lastCommitVersion"] = str(info.version)
    if info.partition_columns:
        for c in out.get("columns", []):
            if c["name"] in info.partition_columns:
                c["partition_index"] = info.partition_columns.index(c["name"])
    return out


class CatalogInfo(Answer):
    name: str
    full_name: str


class ListCatalogsResponse(Answer):
    catalogs: list[CatalogInfo]


class SchemaInfo(Answer):
    name: str
    catalog_name: str
    full_name: str


class ListSchemasResponse(Answer):
    schemas: list[SchemaInfo]


class ColumnInfo(Answer):
    name: str
    type_name: str
    type_text: str
    position: int
    nullable: bool
    comment: str | None = None
    partition_index: int | None = None


class TableInfoJson(Answer):
    """Unity Catalog's ``TableInfo``."""

    name: str
    catalog_name: str
    schema_name: str
    full_name: str
    table_type: str
    data_source_format: str
    storage_location: str
    created_at: int
    properties: dict[str, str]
    comment: str | None = None
    columns: list[ColumnInfo] | None = None


class ListTablesResponse(Answer):
    tables: list[TableInfoJson]
    next_page_token: str | None = None


def build_router(ws: Workspace) -> APIRouter:
    router = APIRouter(prefix="/api/2.1/unity-catalog", tags=["catalog"], responses=ERROR_RESPONSES)

    @router.get("/catalogs", response_model=ListCatalogsResponse, **UNSET)
    def list_catalogs() -> dict[str, Any]:
        return {"catalogs": [{"name": c, "full_name": c} for c in ws.tables.list_catalogs()]}

    @router.get("/schemas", response_model=ListSchemasResponse, **UNSET)
    def list_schemas(catalog_name: str = Query(...)) -> dict[str, Any]:
        return {
            "schemas": [
                {"name": s, "catalog_name": catalog_name, "full_name": f"{catalog_name}.{s}"}
                for s in ws.tables.list_schemas(catalog_name)
            ]
        }

    @router.get("/tables", response_model=ListTablesResponse, **UNSET)
    def list_tables(
        catalog_name: str | None = None,
        schema_name: str | None = None,
        max_results: int = Query(0, ge=0),
        page_token: str | None = None,
    ) -> dict[str, Any]:
        tables = ws.tables.list(catalog=catalog_name, schema=schema_name)
        start = page_start(page_token)
        end = start + max_results if max_results else len(tables)
        out: dict[str, Any] = {"tables": [table_json(t) for t in tables[start:end]]}
        if end < len(tables):
            out["next_page_token"] = str(end)
        return out

    @router.get("/tables/{full_name}", response_model=TableInfoJson, **UNSET)
    def get_table(full_name: str) -> dict[str, Any]:
        return table_json(ws.tables.get(full_name))

    @router.delete("/tables/{full_name}", response_model=Empty)
    def delete_table(full_name: str) -> dict[str, Any]:
        ws.tables.drop(full_name)
        return {}

    return router
