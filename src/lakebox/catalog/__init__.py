"""The catalog: Delta tables named ``catalog.schema.table``, and SQL over them."""

from lakebox.catalog._names import DEFAULT_CATALOG, DEFAULT_SCHEMA, TableName
from lakebox.catalog._sql import run_sql
from lakebox.catalog._tables import ColumnInfo, TableInfo, Tables

__all__ = [
    "ColumnInfo",
    "DEFAULT_CATALOG",
    "DEFAULT_SCHEMA",
    "TableInfo",
    "TableName",
    "Tables",
    "run_sql",
]
