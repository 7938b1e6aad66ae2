"""Alert rules: SQL conditions over the metric tables, checked after every refresh.

A rule is a DuckDB boolean expression over the columns of the drift metrics table (when it
names a drift column such as ``js_distance``, ``ks_pvalue`` or ``f1_score_delta``) or of the
profile metrics table (``f1_score``, ``num_nulls``, ...). It fires when any row written by the
refresh matches, e.g.::

    js_distance > 0.2                                   # any feature, any window
    js_distance > 0.2 AND column_name = 'spend_7d'
    f1_score_delta < -0.05 AND drift_type = 'BASELINE'  # f1 down by more than 0.05
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import pyarrow as pa

from lakebox.errors import InvalidInput

__all__ = ["check_rule", "matching_rows", "rule_table"]

_IDENT = re.compile(r"\"([^\"]+)\"|\b([A-Za-z_]\w*)\b")
_STRING = re.compile(r"'(?:[^']|'')*'")


def _identifiers(rule: str) -> set[str]:
    text = _STRING.sub("''", rule)
    return {a or b for a, b in _IDENT.findall(text)}


def rule_table(rule: str, profile_schema: pa.Schema, drift_schema: pa.Schema) -> str:
    """``"drift"`` or ``"profile"``: the metric table a rule reads."""
    names = _identifiers(rule)
    drift_only = set(drift_schema.names) - set(profile_schema.names)
    if names & drift_only:
        return "drift"
    return "profile"


def check_rule(rule: str, profile_schema: pa.Schema, drift_schema: pa.Schema) -> str:
    """Validate a rule against the metric tables' schemas; returns the table it reads."""
    if not isinstance(rule, str) or not rule.strip():
        raise InvalidInput("An alert rule is a SQL condition, e.g. 'js_distance > 0.2'.")
    which = rule_table(rule, profile_schema, drift_schema)
    schema = drift_schema if which == "drift" else profile_schema
    con = duckdb.connect()
    try:
        con.register("m", schema.empty_table())
        con.sql(f"SELECT * FROM m WHERE ({rule})").to_arrow_table()
    except duckdb.Error as exc:
        columns = ", ".join(schema.names)
        raise InvalidInput(
            f"Alert rule {rule!r} is not a valid condition over the {which} "
            f"metrics table: {str(exc).splitlines()[0]}. Columns: {columns}."
        ) from None
    finally:
        con.close()
    return which


def matching_rows(rule: str, table: pa.Table, *, limit: int = 50) -> list[dict[str, Any]]:
    """Rows of ``table`` matching ``rule`` (identifying columns and the named metrics)."""
    if table.num_rows == 0:
        return []
    con = duckdb.connect()
    try:
        con.register("m", table)
        names = _identifiers(rule) & set(table.column_names)
        keep = [
            c
            for c in (
                "window_start",
                "granularity",
                "drift_type",
                "model_id",
                "slice_key",
                "slice_value",
                "column_name",
            )
            if c in table.column_names
        ]
        cols = ", ".join(f'"{c}"' for c in dict.fromkeys([*keep, *sorted(names)]))
        rows = (
            con.sql(f"SELECT {cols} FROM m WHERE ({rule}) LIMIT {int(limit)}")
            .to_arrow_table()
            .to_pylist()
        )
    except duckdb.Error as exc:
        raise InvalidInput(f"Alert rule {rule!r} failed: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    for row in rows:
        for key, value in row.items():
            if hasattr(value, "isoformat"):
                row[key] = value.isoformat()
    return rows
