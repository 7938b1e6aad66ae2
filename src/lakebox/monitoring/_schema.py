"""Metadata tables of monitoring (component ``monitoring``): monitors, refreshes, alert
rules and alert history."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from lakebox.metadata._migrations import Migration

metadata = MetaData()

monitors = Table(
    "monitoring_monitors",
    metadata,
    Column("table_name", String(800), primary_key=True),
    Column("config", Text, nullable=False),  # JSON: the monitor in its API form
    Column("status", String(40), nullable=False),
    Column("monitor_version", Integer, nullable=False),
    Column("state", Text, nullable=False),  # JSON: refresh bookkeeping (versions, windows)
    Column("failure", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

refreshes = Table(
    "monitoring_refreshes",
    metadata,
    Column("refresh_id", Integer, primary_key=True, autoincrement=True),
    Column("table_name", String(800), nullable=False, index=True),
    Column("state", String(20), nullable=False),
    Column("trigger", String(40), nullable=False),
    Column("mode", String(20), nullable=False),
    Column("start_time_ms", BigInteger, nullable=False),
    Column("end_time_ms", BigInteger, nullable=True),
    Column("message", Text, nullable=True),
)

alerts = Table(
    "monitoring_alerts",
    metadata,
    Column("alert_id", Integer, primary_key=True, autoincrement=True),
    Column("table_name", String(800), nullable=False, index=True),
    Column("rule", Text, nullable=False),
    Column("job_id", BigInteger, nullable=True),
    Column("job_parameters", Text, nullable=True),  # JSON
    Column("created_at", BigInteger, nullable=False),
)

alert_events = Table(
    "monitoring_alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, nullable=False, index=True),
    Column("table_name", String(800), nullable=False, index=True),
    Column("refresh_id", Integer, nullable=True),
    Column("rule", Text, nullable=False),
    Column("fired_at", BigInteger, nullable=False),
    Column("matches", Text, nullable=False),  # JSON list of the rows that broke the rule
    Column("job_run_id", BigInteger, nullable=True),
    Column("event_id", String(64), nullable=True),
    Column("message", Text, nullable=True),
)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)


MIGRATIONS = [Migration("monitoring", 1, "monitors, refreshes, alerts, alert events", _v1)]
