"""The ``local`` engine: DuckDB over Arrow, in the process.

Feature tables are scanned straight from their Delta files (the snapshot's pyarrow dataset, with
projection pushdown); point-in-time lookups are DuckDB ``ASOF LEFT JOIN`` s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from lakebox.engines._base import Engine, FeatureJoin, TableSnapshot
from lakebox.errors import InvalidInput

__all__ = ["LocalEngine"]

_ROW = "__lakebox_row"
_TS = "__lakebox_ts"


def _q(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


class LocalEngine(Engine):
    """DuckDB/Arrow engine.

    Args:
        threads: DuckDB threads; 0 means all cores.
    """

    name = "local"

    def __init__(self, *, threads: int = 0, **_: Any) -> None:
        self.threads = threads

    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        if self.threads:
            con.execute(f"SET threads = {int(self.threads)}")
        return con

    # ----------------------------------------------------------------- frames
    def is_frame(self, data: Any) -> bool:
        return isinstance(data, pa.Table)

    def frame(self, data: Any) -> pa.Table:
        from lakebox.catalog._convert import to_arrow

        return to_arrow(data)

    def schema(self, frame: Any) -> pa.Schema:
        schema: pa.Schema = self.frame(frame).schema
        return schema

    def select(self, frame: Any, columns: Sequence[str]) -> pa.Table:
        return self.frame(frame).select(list(columns))

    def join_frame(self, frame: Any, joins: Sequence[FeatureJoin]) -> pa.Table:
        return self.join_features(self.frame(frame), joins)

    def map_batches(self, frame: Any, fn: Any, *, sample_rows: int = 64) -> pa.Table:
        result: pa.Table = fn(self.frame(frame))
        return result

    def user_frame(self, frame: Any) -> Any:
        return self.frame(frame).to_pandas()

    # ----------------------------------------------------------------- joins
    def join_features(self, entities: pa.Table, joins: Sequence[FeatureJoin]) -> pa.Table:
        if _ROW in entities.column_names:
            raise InvalidInput(f"Column name {_ROW!r} is reserved; rename it.")
        needed: list[str] = []
        for join in joins:
            for column in [ec for ec, _ in join.keys] + [join.entity_timestamp]:
                if column is not None and column not in needed:
                    needed.append(column)
        if not joins:
            return entities
        con = self._connect()
        try:
            # Only the key and time columns go through DuckDB; the entity columns are kept
            # as given and the outputs appended in row order.
            numbered = entities.select(needed).append_column(
                _ROW, pa.array(np.arange(entities.num_rows))
            )
            con.register("__entities", numbered)
            ctes: list[str] = []
            from_clause = "__entities AS e"
            select_list: list[str] = []
            params: list[Any] = []
            for i, join in enumerate(joins):
                alias = f"f{i}"
                con.register(f"__source{i}", join.source.dataset)
                cte, clause, outputs = self._join_sql(join, alias, f"__source{i}", params)
                ctes.append(cte)
                from_clause += clause
                select_list.extend(outputs)
            query = (
                f"WITH {', '.join(ctes)} SELECT {', '.join(select_list)} "
                f"FROM {from_clause} ORDER BY e.{_q(_ROW)}"
            )
            result = con.sql(query, params=params or None).to_arrow_table()
        except duckdb.Error as exc:
            raise InvalidInput(f"Cannot join features: {' '.join(str(exc).split())}") from None
        finally:
            con.close()
        out = entities
        for name in result.column_names:
            out = out.append_column(name, result.column(name))
        return out

    @staticmethod
    def _join_sql(
        join: FeatureJoin, alias: str, source: str, params: list[Any]
    ) -> tuple[str, str, list[str]]:
        feature_cols = [fc for _, fc in join.keys] + [
            c for c in join.columns if c not in {fc for _, fc in join.keys}
        ]
        projected = ", ".join(_q(c) for c in feature_cols)
        partition = ", ".join(_q(fc) for _, fc in join.keys)
        on = " AND ".join(f"e.{_q(ec)} = {alias}.{_q(fc)}" for ec, fc in join.keys)
        ts = join.feature_timestamp
        if ts is not None and join.entity_timestamp is not None:
            cte = (
                f"{alias} AS (SELECT {projected}, {_q(ts)} AS {_TS} FROM {source} "
                f"WHERE {_q(ts)} IS NOT NULL)"
            )
            clause = (
                f" ASOF LEFT JOIN {alias} ON {on} AND "
                f"e.{_q(join.entity_timestamp)} >= {alias}.{_TS}"
            )
        elif ts is not None:
            cte = (
                f"{alias} AS (SELECT {projected} FROM {source} WHERE {_q(ts)} IS NOT NULL "
                f"QUALIFY row_number() OVER (PARTITION BY {partition} "
                f"ORDER BY {_q(ts)} DESC) = 1)"
            )
            clause = f" LEFT JOIN {alias} ON {on}"
        else:
            cte = (
                f"{alias} AS (SELECT {projected} FROM {source} "
                f"QUALIFY row_number() OVER (PARTITION BY {partition}) = 1)"
            )
            clause = f" LEFT JOIN {alias} ON {on}"
        outputs = []
        for column, output in join.columns.items():
            expr = f"{alias}.{_q(column)}"
            if join.lookback is not None and join.entity_timestamp is not None and ts is not None:
                micros = int(join.lookback.total_seconds() * 1_000_000)
                expr = (
                    f"CASE WHEN {alias}.{_TS} >= e.{_q(join.entity_timestamp)} - "
                    f"to_microseconds({micros}) THEN {expr} END"
                )
            if output in join.defaults and join.defaults[output] is not None:
                params.append(join.defaults[output])
                expr = f"COALESCE({expr}, ?)"
            outputs.append(f"{expr} AS {_q(output)}")
        return cte, clause, outputs

    # ----------------------------------------------------------------- latest rows
    def latest_rows(
        self,
        source: TableSnapshot,
        *,
        keys: Sequence[str],
        timestamp: str | None = None,
        columns: Sequence[str] | None = None,
        where: str | None = None,
    ) -> pa.Table:
        con = self._connect()
        try:
            con.register("__source", source.dataset)
            select_list = ", ".join(_q(c) for c in columns) if columns else "*"
            order = f" ORDER BY {_q(timestamp)} DESC NULLS LAST" if timestamp else ""
            where_clause = f" WHERE {where}" if where else ""
            query = (
                f"SELECT {select_list} FROM __source{where_clause} QUALIFY row_number() "
                f"OVER (PARTITION BY {', '.join(_q(k) for k in keys)}{order}) = 1"
            )
            return con.sql(query).to_arrow_table()
        except duckdb.Error as exc:
            raise InvalidInput(
                f"Cannot select rows of {source.name!r}"
                + (f" where {where!r}" if where else "")
                + f": {' '.join(str(exc).split())}"
            ) from None
        finally:
            con.close()

    # ----------------------------------------------------------------- checks
    def duplicate_keys(
        self, data: pa.Table, keys: Sequence[str], *, limit: int = 5
    ) -> tuple[int, list[dict[str, Any]]]:
        con = self._connect()
        try:
            con.register("__data", data.select(list(keys)))
            cols = ", ".join(_q(k) for k in keys)
            dupes = con.sql(
                f"SELECT {cols}, count(*) AS __n FROM __data GROUP BY {cols} HAVING count(*) > 1"
            ).to_arrow_table()
        finally:
            con.close()
        examples = dupes.slice(0, limit).select(list(keys)).to_pylist()
        return dupes.num_rows, examples
