"""Metadata tables of the registry lifecycle (component ``models``): transition requests,
comments and applied transitions of model versions, as Databricks' activity records."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Connection, Index, Integer, MetaData, String, Table, Text

from lakebox.metadata._migrations import Migration

metadata = MetaData()

activities = Table(
    "models_activities",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(255), nullable=False),
    Column("version", String(32), nullable=False),
    # REQUESTED_TRANSITION, APPLIED_TRANSITION, APPROVED_REQUEST, REJECTED_REQUEST,
    # CANCELLED_REQUEST, NEW_COMMENT
    Column("activity_type", String(32), nullable=False),
    Column("from_stage", String(16), nullable=True),
    Column("to_stage", String(16), nullable=True),
    Column("comment", Text, nullable=True),
    Column("system_comment", Text, nullable=True),
    Column("user_id", String(255), nullable=False),
    # requests only: PENDING until approved, rejected or cancelled
    Column("request_status", String(16), nullable=True),
    Column("creation_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
    Index("ix_models_activities_version", "model_name", "version"),
)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)


MIGRATIONS = [Migration("models", 1, "transition requests, comments, stage activities", _v1)]
