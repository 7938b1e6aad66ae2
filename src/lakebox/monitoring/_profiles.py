"""What a monitor watches: profile types, granularities and custom metrics.

The names and fields follow Databricks' quality-monitor API (``snapshot``, ``time_series``,
``inference_log``, ``custom_metrics``), so a monitor's configuration round-trips through the REST
API and ``databricks-sdk`` unchanged.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any, Literal

from lakebox.errors import InvalidInput

__all__ = [
    "CustomMetric",
    "InferenceLog",
    "Profile",
    "Snapshot",
    "TimeSeries",
    "parse_granularity",
    "profile_from_dict",
]

_UNITS = {
    "minute": "minutes",
    "hour": "hours",
    "day": "days",
    "week": "weeks",
    "month": "months",
    "year": "years",
}
_GRANULARITY = re.compile(r"^\s*(\d+)\s+(minute|hour|day|week|month|year)s?\s*$", re.IGNORECASE)
PROBLEM_TYPES = ("classification", "regression")
METRIC_TYPES = ("aggregate", "derived", "drift")


def parse_granularity(text: str) -> tuple[int, str]:
    """Parse a window size such as ``"1 day"``, ``"30 minutes"`` or ``"1 week"``.

    Returns:
        ``(count, unit)`` with ``unit`` one of minute, hour, day, week, month, year.

    Example:
        >>> parse_granularity("30 minutes")
        (30, 'minute')
    """
    match = _GRANULARITY.match(str(text)) if isinstance(text, str) else None
    if not match or int(match.group(1)) <= 0:
        raise InvalidInput(
            f"Granularity {text!r} is not a window size: use '<positive number> <unit>' with "
            f"unit one of {', '.join(_UNITS)} (e.g. '1 day', '30 minutes', '1 week')."
        )
    return int(match.group(1)), match.group(2).lower()


def granularity_interval(text: str) -> str:
    """The DuckDB ``INTERVAL`` literal of a granularity (``'1 day'`` → ``INTERVAL 1 day``)."""
    count, unit = parse_granularity(text)
    return f"INTERVAL {count} {_UNITS[unit]}"


def granularity_timedelta(text: str) -> timedelta | None:
    """A fixed-length granularity as a timedelta (None for months and years)."""
    count, unit = parse_granularity(text)
    if unit in ("month", "year"):
        return None
    return timedelta(**{_UNITS[unit]: count})


def _granularities(values: Any) -> list[str]:
    if isinstance(values, str):
        values = [values]
    if not values:
        raise InvalidInput(
            "A time-series or inference-log monitor needs at least one "
            "granularity, e.g. granularities=['1 day']."
        )
    out = []
    for value in values:
        count, unit = parse_granularity(value)
        out.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return out


@dataclass(frozen=True)
class Snapshot:
    """Profile the whole table at each refresh (one window per refresh).

    Consecutive drift compares the table with its Delta version at the previous refresh.

    Example:
        >>> Snapshot().kind
        'snapshot'
    """

    kind: Literal["snapshot"] = field(default="snapshot", init=False)

    def to_api(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class TimeSeries:
    """Profile a table by time windows of ``timestamp_col``.

    Args:
        timestamp_col: the timestamp column that places a row in a window.
        granularities: window sizes, e.g. ``["1 day", "1 week"]``.

    Example:
        >>> TimeSeries("ts", ["1 day"]).granularities
        ['1 day']
    """

    timestamp_col: str
    granularities: list[str]
    kind: Literal["time_series"] = field(default="time_series", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "granularities", _granularities(self.granularities))

    def to_api(self) -> dict[str, Any]:
        return {"timestamp_col": self.timestamp_col, "granularities": list(self.granularities)}


@dataclass(frozen=True)
class InferenceLog:
    """Profile a model's inference log: inputs, predictions, labels and quality per model id.

    Args:
        timestamp_col: when each request was scored.
        granularities: window sizes, e.g. ``["1 day"]``.
        model_id_col: the model version (or id) that served the row.
        prediction_col: the prediction.
        label_col: the ground truth, once it arrives (nulls until then).
        problem_type: ``"classification"`` or ``"regression"``.
        prediction_proba_col: probability of the positive class (classification), for
            ROC AUC and log loss.

    Example:
        >>> InferenceLog("ts", ["1 day"], model_id_col="model_version",
        ...              prediction_col="prediction", label_col="churned").problem_type
        'classification'
    """

    timestamp_col: str
    granularities: list[str]
    model_id_col: str
    prediction_col: str
    label_col: str | None = None
    problem_type: str = "classification"
    prediction_proba_col: str | None = None
    kind: Literal["inference_log"] = field(default="inference_log", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "granularities", _granularities(self.granularities))
        problem = str(self.problem_type).lower().removeprefix("problem_type_")
        if problem not in PROBLEM_TYPES:
            raise InvalidInput(
                f"problem_type {self.problem_type!r} must be 'classification' or 'regression'."
            )
        object.__setattr__(self, "problem_type", problem)

    def to_api(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None and k != "kind"}
        out["problem_type"] = f"PROBLEM_TYPE_{self.problem_type.upper()}"
        return out


Profile = Snapshot | TimeSeries | InferenceLog


@dataclass(frozen=True)
class CustomMetric:
    """A metric defined by a SQL expression.

    Args:
        name: the metric's column name in the metric table.
        definition: a DuckDB SQL expression. ``aggregate``: an aggregate over the window's rows
            where ``{{input_column}}`` stands for each input column (e.g.
            ``"avg(log(1 + {{input_column}}))"``); ``derived``: an expression over other metrics
            of the same row (e.g. ``"num_nulls / count"``); ``drift``: an expression over a
            metric of the two windows compared, ``{{current_df}}.metric`` and
            ``{{base_df}}.metric`` (e.g. ``"{{current_df}}.avg - {{base_df}}.avg"``).
        input_columns: the columns it applies to; ``[":table"]`` for a table-level metric.
        type: ``"aggregate"``, ``"derived"`` or ``"drift"``.
        output_data_type: the result type (``"double"`` by default).

    Example:
        >>> CustomMetric("p_zero", "avg(CASE WHEN {{input_column}} = 0 THEN 1 ELSE 0 END)",
        ...              input_columns=["spend"]).type
        'aggregate'
    """

    name: str
    definition: str
    input_columns: list[str]
    type: str = "aggregate"
    output_data_type: str = "double"

    def __post_init__(self) -> None:
        kind = str(self.type).lower().removeprefix("custom_metric_type_")
        if kind not in METRIC_TYPES:
            raise InvalidInput(
                f"Custom metric {self.name!r}: type {self.type!r} must be one of "
                f"{', '.join(METRIC_TYPES)}."
            )
        object.__setattr__(self, "type", kind)
        if not re.match(r"^[A-Za-z_]\w*$", str(self.name)):
            raise InvalidInput(
                f"Custom metric name {self.name!r} must be an identifier (letters, digits, '_')."
            )
        if not self.input_columns:
            raise InvalidInput(
                f"Custom metric {self.name!r} needs input_columns (column names or [':table'])."
            )

    def to_api(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "definition": self.definition,
            "input_columns": list(self.input_columns),
            "output_data_type": self.output_data_type,
            "type": f"CUSTOM_METRIC_TYPE_{self.type.upper()}",
        }

    @classmethod
    def from_api(cls, data: dict[str, Any] | CustomMetric) -> CustomMetric:
        if isinstance(data, CustomMetric):
            return data
        output = data.get("output_data_type") or "double"
        return cls(
            name=data["name"],
            definition=data["definition"],
            input_columns=list(data.get("input_columns") or []),
            type=data.get("type") or "aggregate",
            output_data_type=output,
        )


def profile_from_dict(data: dict[str, Any]) -> Profile:
    """Build a profile from its API form: ``{"snapshot": {}}``, ``{"time_series": {...}}`` or
    ``{"inference_log": {...}}`` (exactly one)."""
    given = [k for k in ("snapshot", "time_series", "inference_log") if data.get(k) is not None]
    if len(given) != 1:
        raise InvalidInput(
            "A monitor needs exactly one of snapshot, time_series or "
            f"inference_log; got {given or 'none'}."
        )
    kind = given[0]
    body = dict(data[kind])
    try:
        if kind == "snapshot":
            return Snapshot()
        if kind == "time_series":
            return TimeSeries(body["timestamp_col"], body.get("granularities") or [])
        return InferenceLog(
            body["timestamp_col"],
            body.get("granularities") or [],
            model_id_col=body["model_id_col"],
            prediction_col=body["prediction_col"],
            label_col=body.get("label_col"),
            problem_type=body.get("problem_type") or "classification",
            prediction_proba_col=body.get("prediction_proba_col"),
        )
    except KeyError as exc:
        raise InvalidInput(f"{kind} is missing the field {exc.args[0]!r}.") from None
