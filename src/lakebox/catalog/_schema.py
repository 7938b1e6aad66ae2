"""Metadata tables of the catalog (component ``catalog``)."""

from __future__ import annotations

from sqlalchemy import Column, Connection, DateTime, MetaData, String, Table, Text

from lakebox.metadata._migrations import Migration

metadata = MetaData()

schemas = Table(
    "catalog_schemas",
    metadata,
    Column("catalog", String(255), primary_key=True),
    Column("schema", String(255), primary_key=True),
    Column("comment", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

tables = Table(
    "catalog_tables",
    metadata,
    Column("full_name", String(800), primary_key=True),
    Column("catalog", String(255), nullable=False, index=True),
    Column("schema", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("location", Text, nullable=False),
    Column("comment", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# column_name "" holds table-level entries
tags = Table(
    "catalog_tags",
    metadata,
    Column("full_name", String(800), primary_key=True),
    Column("column_name", String(255), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)

column_comments = Table(
    "catalog_column_comments",
    metadata,
    Column("full_name", String(800), primary_key=True),
    Column("column_name", String(255), primary_key=True),
    Column("comment", Text, nullable=False),
)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)


MIGRATIONS = [Migration("catalog", 1, "schemas, tables, tags, column comments", _v1)]
