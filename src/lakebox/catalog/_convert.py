"""Turning user data and schemas into Arrow, and checking data against a table's schema."""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
from deltalake import Schema as DeltaSchema

from lakebox.errors import InvalidInput, SchemaMismatch

__all__ = ["conform", "delta_type_name", "to_arrow", "to_arrow_schema"]

# Integer and float widenings Delta readers accept without rewriting data.
_WIDENINGS = {
    ("byte", "short"),
    ("byte", "integer"),
    ("byte", "long"),
    ("short", "integer"),
    ("short", "long"),
    ("integer", "long"),
    ("float", "double"),
}


def to_arrow(data: Any) -> pa.Table:
    """Accept a pandas / polars / Spark DataFrame, a pyarrow Table or RecordBatch, or any object
    that exports the Arrow C stream interface, and return a pyarrow Table without pandas
    metadata."""
    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, pa.RecordBatch):
        table = pa.Table.from_batches([data])
    elif type(data).__module__.startswith("pandas"):
        if type(data).__name__ != "DataFrame":
            raise InvalidInput(
                f"Expected a DataFrame, got a pandas {type(data).__name__}. "
                "Use series.to_frame() to write one column."
            )
        table = pa.Table.from_pandas(data, preserve_index=False)
    elif hasattr(data, "to_arrow") and type(data).__module__.startswith("polars"):
        table = data.to_arrow()
    elif hasattr(data, "toArrow") and type(data).__module__.startswith("pyspark"):
        table = data.toArrow()  # a Spark DataFrame (classic or Connect), collected to the driver
    elif hasattr(data, "__arrow_c_stream__"):
        table = pa.table(data)
    else:
        raise InvalidInput(
            f"Cannot write a {type(data).__name__}: pass a pandas or polars "
            "DataFrame or a pyarrow Table."
        )
    names = table.column_names
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(f"Duplicate column names {duplicates}: rename them before writing.")
    return table.replace_schema_metadata(None)


def to_arrow_schema(schema: Any) -> pa.Schema:
    """A pyarrow schema from a pyarrow schema, a deltalake Schema or a DDL string such as
    ``"id BIGINT, name STRING, ts TIMESTAMP"``."""
    if isinstance(schema, pa.Schema):
        return schema
    if isinstance(schema, DeltaSchema):
        return pa.schema(schema.to_arrow())
    if isinstance(schema, str):
        import duckdb

        ddl = re.sub(r"\bSTRING\b", "VARCHAR", schema, flags=re.IGNORECASE)
        con = duckdb.connect()
        try:
            con.execute(f"CREATE TABLE __schema ({ddl})")
            arrow = con.sql("SELECT * FROM __schema LIMIT 0").to_arrow_table().schema
        except duckdb.Error as exc:
            raise InvalidInput(
                f"Cannot parse schema {schema!r}: {exc}. Write it as "
                "'name TYPE, ...', e.g. 'id BIGINT, name STRING'."
            ) from None
        finally:
            con.close()
        return arrow
    raise InvalidInput(
        f"Unsupported schema {type(schema).__name__}: pass a pyarrow.Schema, a "
        "deltalake.Schema or a DDL string such as 'id BIGINT, name STRING'."
    )


def delta_type_name(arrow_type: pa.DataType) -> str:
    """The Delta type of an Arrow type, as Delta names it (long, string, timestamp_ntz, ...)."""
    try:
        field = DeltaSchema.from_arrow(pa.schema([pa.field("c", arrow_type)])).fields[0]
    except Exception:
        return str(arrow_type)
    kind = field.type
    return str(getattr(kind, "type", kind))


def conform(data: pa.Table, target: pa.Schema, *, table: str, merge_schema: bool) -> pa.Table:
    """Check ``data`` against the table schema ``target`` and cast it to the table's types.

    Missing nullable columns are filled with nulls; extra columns need ``merge_schema=True``;
    a column whose type differs (other than a safe widening) is a :class:`SchemaMismatch` naming
    every such column with both types. Nothing is written by this function.
    """
    problems: list[str] = []
    incoming = {f.name: f for f in data.schema}
    columns: list[pa.Array | pa.ChunkedArray] = []
    fields: list[pa.Field] = []
    for field in target:
        if field.name not in incoming:
            if not field.nullable:
                problems.append(
                    f"column {field.name!r} ({delta_type_name(field.type)}, NOT NULL) "
                    "is missing from the data"
                )
            columns.append(pa.nulls(data.num_rows, field.type))
            fields.append(field)
            continue
        have, want = delta_type_name(incoming[field.name].type), delta_type_name(field.type)
        if have != want and (have, want) not in _WIDENINGS:
            problems.append(f"column {field.name!r}: table has {want}, data has {have}")
            continue
        column = data.column(field.name)
        if not field.nullable and column.null_count:
            problems.append(
                f"column {field.name!r} is NOT NULL but the data has {column.null_count} null(s)"
            )
            continue
        columns.append(column.cast(field.type) if column.type != field.type else column)
        fields.append(field)
    extra = [name for name in data.column_names if name not in target.names]
    if extra and not merge_schema:
        problems.append(
            "columns not in the table: "
            + ", ".join(f"{n!r} ({delta_type_name(incoming[n].type)})" for n in extra)
            + " (pass merge_schema=True to add them)"
        )
    if problems:
        raise SchemaMismatch(
            f"Data does not match the schema of table {table!r}: "
            + "; ".join(problems)
            + ". Nothing was written."
        )
    for name in extra:
        columns.append(data.column(name))
        fields.append(incoming[name])
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))
