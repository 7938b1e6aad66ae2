"""SQL over catalog tables with DuckDB.

Table references in ``FROM`` / ``JOIN`` clauses are resolved against the catalog (one-, two- or
three-part names) and replaced by the tables' Arrow datasets, so DuckDB scans the Delta files
directly with projection and filter pushdown. ``name VERSION AS OF n`` and
``name TIMESTAMP AS OF 'time'`` read older versions, as in Databricks SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from lakebox.catalog._names import TableName
from lakebox.catalog._tables import Tables, _short
from lakebox.errors import InvalidInput, InvalidName

__all__ = ["run_sql"]

_STARTS_FROM = {"from", "join"}
_ENDS_FROM = {
    "where",
    "group",
    "order",
    "having",
    "limit",
    "select",
    "on",
    "using",
    "union",
    "except",
    "intersect",
    "qualify",
    "window",
    "set",
    "values",
    "offset",
    "pivot",
    "unpivot",
    "returning",
}


@dataclass
class _Token:
    start: int
    end: int
    kind: str
    text: str

    @property
    def word(self) -> str:
        return self.text.lower()

    @property
    def ident(self) -> str:
        text = self.text
        return text[1:-1].replace('""', '"') if text.startswith('"') else text


def _tokens(query: str) -> list[_Token]:
    raw = duckdb.tokenize(query)
    out = []
    for i, (start, kind) in enumerate(raw):
        end = raw[i + 1][0] if i + 1 < len(raw) else len(query)
        text = query[start:end].rstrip()
        kind_name = str(kind).rsplit(".", 1)[-1]
        if kind_name == "comment":
            continue
        out.append(_Token(start, start + len(text), kind_name, text))
    return out


def run_sql(tables: Tables, query: str, *, output: str = "arrow", threads: int = 0) -> Any:
    """Run a SQL query over catalog tables; returns a pyarrow Table or a pandas DataFrame."""
    if output not in ("arrow", "pandas"):
        raise InvalidInput(f"output must be 'arrow' or 'pandas', got {output!r}.")
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("The SQL query is empty.")
    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"SET threads={int(threads)}")
        try:
            rewritten = _bind_tables(tables, query, con)
            result = con.sql(rewritten).to_arrow_table()
        except duckdb.Error as exc:
            raise InvalidInput(f"SQL error: {_short(exc)}") from None
    finally:
        con.close()
    return result.to_pandas() if output == "pandas" else result


def _bind_tables(tables: Tables, query: str, con: duckdb.DuckDBPyConnection) -> str:
    toks = _tokens(query)
    in_from = [False]  # one flag per parenthesis depth
    prev = ""  # previous significant token, lower-cased
    pieces: list[str] = []
    cursor = 0
    registered: dict[tuple[str, str], str] = {}
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok.kind == "identifier" and (prev in _STARTS_FROM or (prev == "," and in_from[-1])):
            j = i
            parts = [tok.ident]
            while (
                j + 2 < len(toks) and toks[j + 1].text == "." and toks[j + 2].kind == "identifier"
            ):
                parts.append(toks[j + 2].ident)
                j += 2
            end = toks[j].end
            travel, j = _time_travel(toks, j)
            if travel is not None:
                end = toks[j].end
            alias = _bind_one(tables, parts, travel, con, registered)
            if alias is not None:
                pieces.append(query[cursor : tok.start])
                pieces.append(alias)
                cursor = end
            prev = "identifier"
            i = j + 1
            continue
        word = tok.word
        if tok.kind == "keyword" or tok.kind == "identifier":
            if word in _STARTS_FROM:
                in_from[-1] = True
            elif word in _ENDS_FROM:
                in_from[-1] = False
        if tok.text == "(":
            in_from.append(False)
        elif tok.text == ")" and len(in_from) > 1:
            in_from.pop()
        prev = word
        i += 1
    pieces.append(query[cursor:])
    return "".join(pieces)


def _time_travel(toks: list[_Token], j: int) -> tuple[tuple[str, str] | None, int]:
    """Detect ``VERSION AS OF n`` / ``TIMESTAMP AS OF 'x'`` after token j."""
    if j + 4 < len(toks):
        kind, as_, of, value = (toks[j + 1], toks[j + 2], toks[j + 3], toks[j + 4])
        if kind.word in ("version", "timestamp") and as_.word == "as" and of.word == "of":
            text = value.text.strip("'")
            return (kind.word, text), j + 4
    return None, j


def _bind_one(
    tables: Tables,
    parts: list[str],
    travel: tuple[str, str] | None,
    con: duckdb.DuckDBPyConnection,
    registered: dict[tuple[str, str], str],
) -> str | None:
    dotted = ".".join(parts)
    try:
        tn = TableName.parse(dotted)
    except InvalidName:
        if len(parts) == 1:
            return None  # a CTE, a DuckDB function or view: leave it to DuckDB
        raise
    if len(parts) == 1 and not tables.exists(tn):
        if travel is not None:
            raise tables._not_found(tn)
        return None  # probably a CTE name
    key = (tn.full_name, f"{travel[0]}={travel[1]}" if travel else "latest")
    if key in registered:
        return registered[key]
    version: int | None = None
    timestamp: str | None = None
    if travel is not None and travel[0] == "version":
        if not travel[1].isdigit():
            raise InvalidInput(f"VERSION AS OF needs an integer, got {travel[1]!r}.")
        version = int(travel[1])
    elif travel is not None:
        timestamp = travel[1]
    dataset, _ = tables.dataset(tn, version=version, timestamp=timestamp)
    alias = f"__lakebox_t{len(registered)}"
    con.register(alias, dataset)
    registered[key] = alias
    return alias
