"""Request bodies as MLflow's scoring server accepts them, validated against the signature.

JSON bodies carry exactly one of ``dataframe_split``, ``dataframe_records``, ``instances`` or
``inputs`` (plus optional ``params``); ``text/csv`` bodies are a CSV table with a header.
Column-based signatures are checked here, value by value, so a bad request gets a 400 that
names the column, the expected type and the offending row; the validated columns are then
built into a DataFrame directly with the signature's dtypes.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lakebox.errors import InvalidInput

__all__ = ["ColumnSchema", "ParsedInput", "parse_request"]

INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_OTHER_KEYS = ("params", "client_request_id")
_DTYPES = {
    "double": np.float64,
    "float": np.float32,
    "long": np.int64,
    "integer": np.int32,
    "boolean": np.bool_,
    "string": object,
    "binary": object,
    "datetime": object,
}


@dataclass(frozen=True)
class ParsedInput:
    """A request ready for ``predict``."""

    data: Any  # pandas DataFrame, numpy array or dict of arrays
    params: dict[str, Any] | None
    num_rows: int
    client_request_id: str | None = None


@dataclass(frozen=True)
class ColumnSchema:
    """The columns of a model's input signature: ``(name, type, required)`` in order."""

    columns: tuple[tuple[str, str, bool], ...]

    @classmethod
    def from_signature(cls, signature: Any) -> ColumnSchema | None:
        """The column schema of an MLflow signature, or None (no signature, tensors, unnamed)."""
        inputs = getattr(signature, "inputs", None)
        if inputs is None or not inputs.has_input_names() or inputs.is_tensor_spec():
            return None
        cols = []
        for spec in inputs.inputs:
            type_name = getattr(getattr(spec, "type", None), "name", None)
            if type_name not in _DTYPES:
                return None  # arrays, objects, maps: MLflow's own enforcement handles them
            cols.append((spec.name, type_name, bool(getattr(spec, "required", True))))
        return cls(tuple(cols))

    @property
    def names(self) -> list[str]:
        return [c[0] for c in self.columns]

    @property
    def numeric(self) -> bool:
        """Every column is a number: the input can be one float64 matrix."""
        return all(t in ("double", "float", "long", "integer") for _, t, _ in self.columns)

    def _checked(self, columns: dict[str, list[Any]]) -> dict[str, Any]:
        unknown = [c for c in columns if c not in {n for n, _, _ in self.columns}]
        if unknown:
            raise InvalidInput(
                f"Unexpected column(s) {unknown}: the model's signature has columns {self.names}."
            )
        out: dict[str, Any] = {}
        for name, type_name, required in self.columns:
            values = columns.get(name)
            if values is None:
                if required:
                    raise InvalidInput(
                        f"Missing column {name!r} (expected {type_name}); the model's "
                        f"signature needs columns {self.names}."
                    )
                continue
            out[name] = _column(name, type_name, values)
        return out

    def frame(self, columns: dict[str, list[Any]], num_rows: int) -> Any:
        """Check every value and build the DataFrame in signature order."""
        return self.build(columns, num_rows, False)

    def build(self, columns: dict[str, list[Any]], num_rows: int, matrix: bool) -> Any:
        """:meth:`frame`, or with ``matrix`` (numeric signature, every column given) a 2-D
        float64 array in signature order: no DataFrame on the hot path."""
        checked = self._checked(columns)
        if not matrix or len(checked) != len(self.columns):
            import pandas as pd

            return pd.DataFrame(checked, index=pd.RangeIndex(num_rows), copy=False)
        out = np.empty((num_rows, len(self.columns)), dtype=np.float64)
        for j, values in enumerate(checked.values()):
            out[:, j] = values
        return out


def _bad(name: str, type_name: str, value: Any, row: int) -> InvalidInput:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return InvalidInput(
        f"Column {name!r} expects {type_name}, got {shown} ({type(value).__name__}) in row {row}."
    )


def _column(name: str, type_name: str, values: list[Any]) -> Any:
    if type_name in ("double", "float"):
        for row, v in enumerate(values):
            if type(v) is float or type(v) is int:
                continue
            if v is None:
                continue  # missing value -> NaN, as pandas and MLflow treat it
            raise _bad(name, type_name, v, row)
        return np.array([math.nan if v is None else v for v in values], dtype=_DTYPES[type_name])
    if type_name in ("long", "integer"):
        for row, v in enumerate(values):
            if type(v) is not int:
                raise _bad(name, type_name, v, row)
        try:
            return np.array(values, dtype=_DTYPES[type_name])
        except OverflowError:
            raise InvalidInput(f"Column {name!r} ({type_name}) has a value out of range.") from None
    if type_name == "boolean":
        for row, v in enumerate(values):
            if type(v) is not bool:
                raise _bad(name, type_name, v, row)
        return np.array(values, dtype=np.bool_)
    if type_name == "string":
        for row, v in enumerate(values):
            if not isinstance(v, str):
                raise _bad(name, type_name, v, row)
    if type_name == "datetime":
        import pandas as pd

        try:
            return pd.to_datetime(pd.Series(values))
        except (ValueError, TypeError):
            raise InvalidInput(
                f"Column {name!r} expects datetime values (ISO 8601 strings)."
            ) from None
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def parse_request(
    body: bytes, content_type: str, schema: ColumnSchema | None, *, matrix: bool = False
) -> ParsedInput:
    """Turn a request body into model input: a DataFrame in signature order, or with
    ``matrix`` and a numeric signature a float64 array (for estimators called directly).

    Raises:
        InvalidInput: malformed JSON or CSV, no or several input keys, empty input, wrong
            columns or value types.
    """
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("text/csv", "application/csv"):
        return ParsedInput(_csv(body, schema, matrix), None, _rows(body))
    if media and media not in ("application/json", "text/json") and not media.endswith("+json"):
        raise InvalidInput(
            f"Unsupported Content-Type {content_type!r}: send application/json or text/csv."
        )
    if not body.strip():
        raise InvalidInput(
            "Empty request body: send JSON with one of " + ", ".join(INPUT_KEYS) + "."
        )
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Malformed JSON in the request body: {exc}.") from None
    if not isinstance(doc, dict):
        raise InvalidInput(
            f"The request body must be a JSON object with one of {', '.join(INPUT_KEYS)}; "
            f"got a JSON {type(doc).__name__}."
        )
    keys = [k for k in INPUT_KEYS if k in doc]
    unknown = [k for k in doc if k not in INPUT_KEYS and k not in _OTHER_KEYS]
    if unknown:
        raise InvalidInput(
            f"Unknown field(s) {unknown} in the request body; valid fields: "
            f"{', '.join(INPUT_KEYS + _OTHER_KEYS)}."
        )
    if len(keys) != 1:
        raise InvalidInput(
            "The request body must have exactly one of "
            + ", ".join(INPUT_KEYS)
            + (f"; it has {len(keys)}: {keys}." if keys else "; it has none.")
        )
    params = doc.get("params")
    if params is not None and not isinstance(params, dict):
        raise InvalidInput(f"params must be a JSON object, got {type(params).__name__}.")
    key = keys[0]
    data, num_rows = _PARSERS[key](doc[key], schema, matrix)
    client_id = doc.get("client_request_id")
    return ParsedInput(data, params, num_rows, None if client_id is None else str(client_id))


def _rows(body: bytes) -> int:
    return max(body.count(b"\n") - 1, 0) or 1


def _records(value: Any, schema: ColumnSchema | None, matrix: bool = False) -> tuple[Any, int]:
    if not isinstance(value, list):
        raise InvalidInput(
            f"dataframe_records must be a list of row objects, got {type(value).__name__}."
        )
    if not value:
        raise InvalidInput("dataframe_records is empty: send at least one row.")
    for i, row in enumerate(value):
        if not isinstance(row, dict):
            raise InvalidInput(
                f"dataframe_records[{i}] must be an object mapping column to value, got "
                f"{type(row).__name__}."
            )
    if schema is None:
        import pandas as pd

        return pd.DataFrame.from_records(value), len(value)
    names = set()
    for row in value:
        names.update(row)
    columns = {n: [row.get(n) for row in value] for n in names}
    for name, type_name, required in schema.columns:
        if name in columns and required:
            for i, v in enumerate(columns[name]):
                if v is None and name not in value[i]:
                    raise InvalidInput(
                        f"Row {i} of dataframe_records lacks column {name!r} (expected "
                        f"{type_name})."
                    )
    return schema.build(columns, len(value), matrix), len(value)


def _split(value: Any, schema: ColumnSchema | None, matrix: bool = False) -> tuple[Any, int]:
    if not isinstance(value, dict):
        raise InvalidInput(
            "dataframe_split must be an object with 'columns' and 'data', got "
            f"{type(value).__name__}."
        )
    extra = [k for k in value if k not in ("columns", "data", "index")]
    if extra:
        raise InvalidInput(
            f"dataframe_split has unknown field(s) {extra}; use 'columns', 'data' and "
            "optionally 'index'."
        )
    data = value.get("data")
    if not isinstance(data, list) or not data:
        raise InvalidInput("dataframe_split.data must be a non-empty list of rows.")
    cols = value.get("columns")
    if cols is None and schema is not None:
        cols = schema.names
    if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
        raise InvalidInput("dataframe_split.columns must be a list of column names.")
    if len(set(cols)) != len(cols):
        raise InvalidInput(f"dataframe_split.columns repeats a column name: {cols}.")
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(cols):
            raise InvalidInput(
                f"dataframe_split.data[{i}] must be a list of {len(cols)} value(s), one per "
                f"column {cols}; got {row!r:.60}."
            )
    if schema is None:
        import pandas as pd

        return pd.DataFrame(data, columns=cols), len(data)
    columns = {c: [row[j] for row in data] for j, c in enumerate(cols)}
    return schema.build(columns, len(data), matrix), len(data)


def _instances(value: Any, schema: ColumnSchema | None, matrix: bool = False) -> tuple[Any, int]:
    if not isinstance(value, list):
        if isinstance(value, dict):
            return _columns_input(value, schema, "instances", matrix)
        raise InvalidInput(f"instances must be a list, got {type(value).__name__}.")
    if not value:
        raise InvalidInput("instances is empty: send at least one instance.")
    if all(isinstance(v, dict) for v in value):
        return _records(value, schema, matrix)
    if schema is not None:
        width = len(schema.columns)
        for i, row in enumerate(value):
            if not isinstance(row, list) or len(row) != width:
                raise InvalidInput(
                    f"instances[{i}] must be an object or a list of {width} value(s) in the "
                    f"order {schema.names}; got {row!r:.60}."
                )
        return _split({"columns": schema.names, "data": value}, schema, matrix)
    try:
        return np.asarray(value), len(value)
    except ValueError as exc:
        raise InvalidInput(f"instances is not a rectangular array: {exc}.") from None


def _columns_input(
    value: dict[str, Any], schema: ColumnSchema | None, key: str, matrix: bool = False
) -> tuple[Any, int]:
    if not value:
        raise InvalidInput(f"{key} is empty: send at least one column.")
    lengths = {k: len(v) if isinstance(v, list) else -1 for k, v in value.items()}
    if -1 in lengths.values() or len(set(lengths.values())) != 1:
        raise InvalidInput(
            f"{key} as an object must map each column to a list of values of equal length; "
            f"got lengths {lengths}."
        )
    num_rows = next(iter(lengths.values()))
    if num_rows == 0:
        raise InvalidInput(f"{key} has no rows.")
    if schema is None:
        import pandas as pd

        return pd.DataFrame(value), num_rows
    return schema.build(value, num_rows, matrix), num_rows


def _inputs(value: Any, schema: ColumnSchema | None, matrix: bool = False) -> tuple[Any, int]:
    if isinstance(value, dict):
        return _columns_input(value, schema, "inputs", matrix)
    return _instances(value, schema, matrix)


_PARSERS = {
    "dataframe_records": _records,
    "dataframe_split": _split,
    "instances": _instances,
    "inputs": _inputs,
}


def _csv(body: bytes, schema: ColumnSchema | None, matrix: bool = False) -> Any:
    import pandas as pd

    if not body.strip():
        raise InvalidInput("Empty CSV body: send a header line and at least one row.")
    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Malformed CSV in the request body: {exc}.") from None
    if frame.empty:
        raise InvalidInput("The CSV body has a header but no rows.")
    if schema is None:
        return frame
    columns = {c: frame[c].tolist() for c in frame.columns}
    for name, type_name, _ in schema.columns:
        if type_name in ("double", "float") and name in columns:
            columns[name] = [
                None if isinstance(v, float) and math.isnan(v) else v for v in columns[name]
            ]
    return schema.build(columns, len(frame), matrix)
