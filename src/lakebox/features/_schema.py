"""Metadata tables of the feature store (component ``features``)."""

from __future__ import annotations

from sqlalchemy import Column, Connection, DateTime, Integer, MetaData, String, Table, Text

from lakebox.metadata._migrations import Migration

metadata = MetaData()

# Keys and timeseries columns of a feature table; description and tags live in the catalog.
feature_tables = Table(
    "features_tables",
    metadata,
    Column("full_name", String(800), primary_key=True),
    Column("primary_keys", Text, nullable=False),  # JSON list
    Column("timeseries_columns", Text, nullable=False),  # JSON list (0 or 1 entries)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Which logged models use which feature table (one row per model and table).
table_models = Table(
    "features_table_models",
    metadata,
    Column("full_name", String(800), primary_key=True),
    Column("model_uri", String(1000), primary_key=True),
    Column("run_id", String(64), nullable=True),
    Column("model_name", String(500), nullable=True),
    Column("model_version", String(32), nullable=True),
    Column("table_version", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Where a feature table was published online (one row per table and store).
online_publications = Table(
    "features_online",
    metadata,
    Column("full_name", String(800), primary_key=True),
    Column("store_uri", String(1000), primary_key=True),
    Column("table_version", Integer, nullable=False),
    Column("mode", String(16), nullable=False),
    Column("num_rows", Integer, nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
)

# Python UDFs: source and signature, so models can carry them.
functions = Table(
    "features_functions",
    metadata,
    Column("full_name", String(800), primary_key=True),
    Column("function_name", String(255), nullable=False),
    Column("source", Text, nullable=False),
    Column("imports", Text, nullable=False),  # JSON {alias: module}
    Column("parameters", Text, nullable=False),  # JSON [{"name", "type"}]
    Column("return_type", String(255), nullable=True),
    Column("comment", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)


MIGRATIONS = [
    Migration("features", 1, "feature tables, model usage, online publications, functions", _v1)
]
