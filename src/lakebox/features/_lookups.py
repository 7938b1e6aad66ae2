"""``FeatureLookup`` and ``FeatureFunction``: what a training set or model joins and computes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from lakebox.errors import InvalidInput

__all__ = ["FeatureFunction", "FeatureLookup"]


def _names(value: str | Sequence[str] | None, what: str) -> list[str] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else list(value)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise InvalidInput(
            f"{what} must be a column name or a non-empty list of names, got {value!r}."
        )
    return names


@dataclass(init=False)
class FeatureLookup:
    """Features to join from one feature table, matched on ``lookup_key``.

    Args:
        table_name: the feature table, ``catalog.schema.table``.
        lookup_key: column(s) of the input DataFrame matched to the table's primary keys (in
            the order of the primary keys, without the timeseries column).
        feature_names: columns to take; default all except keys and timeseries column.
        rename_outputs: feature name -> output column name.
        timestamp_lookup_key: column of the input DataFrame with each row's lookup time; the
            newest feature row at or before it is used (point-in-time). Without it, the
            newest row per key.
        lookback_window: ignore feature rows older than the lookup time minus this.
        default_values: feature (or output) name -> value used when the result is null.

    Example:
        >>> from datetime import timedelta
        >>> FeatureLookup("main.fs.customer_daily", "customer_id",
        ...               timestamp_lookup_key="event_ts", lookback_window=timedelta(days=7))
        FeatureLookup(table_name='main.fs.customer_daily', lookup_key=['customer_id'], ...)
    """

    table_name: str
    lookup_key: list[str]
    feature_names: list[str] | None
    rename_outputs: dict[str, str]
    timestamp_lookup_key: str | None
    lookback_window: timedelta | None
    default_values: dict[str, Any]

    def __init__(
        self,
        table_name: str,
        lookup_key: str | Sequence[str],
        *,
        feature_names: str | Sequence[str] | None = None,
        rename_outputs: Mapping[str, str] | None = None,
        timestamp_lookup_key: str | None = None,
        lookback_window: timedelta | None = None,
        default_values: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(table_name, str) or not table_name:
            raise InvalidInput(f"FeatureLookup needs a table name, got {table_name!r}.")
        self.table_name = table_name
        self.lookup_key = _names(lookup_key, "lookup_key") or []
        self.feature_names = _names(feature_names, "feature_names")
        self.rename_outputs = dict(rename_outputs or {})
        self.timestamp_lookup_key = timestamp_lookup_key
        if lookback_window is not None and (
            not isinstance(lookback_window, timedelta) or lookback_window < timedelta(0)
        ):
            raise InvalidInput(
                f"lookback_window must be a non-negative datetime.timedelta, "
                f"got {lookback_window!r}."
            )
        self.lookback_window = lookback_window
        self.default_values = dict(default_values or {})

    def __repr__(self) -> str:
        return f"FeatureLookup(table_name={self.table_name!r}, lookup_key={self.lookup_key!r}, ...)"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (stored in the feature spec)."""
        return {
            "table_name": self.table_name,
            "lookup_key": self.lookup_key,
            "feature_names": self.feature_names,
            "rename_outputs": self.rename_outputs,
            "timestamp_lookup_key": self.timestamp_lookup_key,
            "lookback_window_seconds": (
                None if self.lookback_window is None else self.lookback_window.total_seconds()
            ),
            "default_values": self.default_values,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureLookup:
        seconds = data.get("lookback_window_seconds")
        return cls(
            data["table_name"],
            data["lookup_key"],
            feature_names=data.get("feature_names"),
            rename_outputs=data.get("rename_outputs"),
            timestamp_lookup_key=data.get("timestamp_lookup_key"),
            lookback_window=None if seconds is None else timedelta(seconds=seconds),
            default_values=data.get("default_values"),
        )


@dataclass
class FeatureFunction:
    """A Python UDF from ``ws.functions`` computed on each row, after the lookups.

    Args:
        udf_name: the function, ``catalog.schema.function``.
        input_bindings: UDF parameter -> column (of the input or of a looked-up feature).
        output_name: the output column; defaults to the function's short name.

    Example:
        >>> FeatureFunction(udf_name="main.fs.spend_per_session",
        ...                 input_bindings={"spend": "spend_7d", "sessions": "sessions_7d"},
        ...                 output_name="spend_per_session")
        FeatureFunction(udf_name='main.fs.spend_per_session', ...)
    """

    udf_name: str
    input_bindings: dict[str, str] = field(default_factory=dict)
    output_name: str | None = None

    def __init__(
        self,
        *,
        udf_name: str,
        input_bindings: Mapping[str, str] | None = None,
        output_name: str | None = None,
    ) -> None:
        if not isinstance(udf_name, str) or not udf_name:
            raise InvalidInput(f"FeatureFunction needs udf_name, got {udf_name!r}.")
        self.udf_name = udf_name
        self.input_bindings = dict(input_bindings or {})
        self.output_name = output_name or udf_name.split(".")[-1]

    def __repr__(self) -> str:
        return f"FeatureFunction(udf_name={self.udf_name!r}, ...)"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (stored in the feature spec)."""
        return {
            "udf_name": self.udf_name,
            "input_bindings": self.input_bindings,
            "output_name": self.output_name,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureFunction:
        return cls(
            udf_name=data["udf_name"],
            input_bindings=data.get("input_bindings"),
            output_name=data.get("output_name"),
        )
