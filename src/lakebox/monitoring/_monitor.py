"""A monitor's configuration and its Databricks API form."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from lakebox.errors import InvalidInput
from lakebox.monitoring._profiles import (
    CustomMetric,
    InferenceLog,
    Profile,
    Snapshot,
    TimeSeries,
    profile_from_dict,
)

__all__ = ["DEFAULT_DRIFT_SAMPLE_ROWS", "MonitorInfo", "metric_table_names"]

DEFAULT_DRIFT_SAMPLE_ROWS = 20_000


def metric_table_names(table_name: str, output_schema_name: str | None) -> tuple[str, str]:
    """``(<table>_profile_metrics, <table>_drift_metrics)``, next to the table or in
    ``output_schema_name`` (``catalog.schema``)."""
    catalog, schema, name = table_name.split(".")
    if output_schema_name:
        catalog, schema = output_schema_name.split(".", 1)
    prefix = f"{catalog}.{schema}.{name}"
    return f"{prefix}_profile_metrics", f"{prefix}_drift_metrics"


@dataclass(frozen=True)
class MonitorInfo:
    """A monitor: what it watches and how.

    Attributes:
        table_name: the monitored table (``catalog.schema.table``).
        profile: :class:`Snapshot`, :class:`TimeSeries` or :class:`InferenceLog`.
        baseline_table_name: a table with the same columns to compare against (BASELINE drift).
        slicing_exprs: SQL expressions; each of their values is profiled as its own slice.
        custom_metrics: :class:`CustomMetric` definitions.
        output_schema_name: ``catalog.schema`` for the metric tables (default: the table's).
        columns: the columns to profile (default: every numeric, string or boolean column).
        drift_sample_rows: per-side row cap for KS and Wasserstein (None: every row).
        schedule: ``{"quartz_cron_expression": ..., "timezone_id": ...}`` refresh schedule.
        status, monitor_version, refresh_job_id: kept by lakebox.
    """

    table_name: str
    profile: Profile
    baseline_table_name: str | None = None
    slicing_exprs: list[str] = field(default_factory=list)
    custom_metrics: list[CustomMetric] = field(default_factory=list)
    output_schema_name: str | None = None
    columns: list[str] | None = None
    drift_sample_rows: int | None = DEFAULT_DRIFT_SAMPLE_ROWS
    schedule: dict[str, Any] | None = None
    assets_dir: str | None = None
    status: str = "MONITOR_STATUS_ACTIVE"
    monitor_version: int = 1
    refresh_job_id: int | None = None
    latest_failure: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.profile, (Snapshot, TimeSeries, InferenceLog)):
            raise InvalidInput(
                "profile must be Snapshot(), TimeSeries(...) or InferenceLog(...), "
                f"got {self.profile!r}."
            )
        object.__setattr__(self, "slicing_exprs", [str(e) for e in self.slicing_exprs or []])
        object.__setattr__(
            self, "custom_metrics", [CustomMetric.from_api(m) for m in self.custom_metrics or []]
        )
        names = [m.name for m in self.custom_metrics]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise InvalidInput(f"Custom metric names must be unique; repeated: {sorted(dupes)}.")
        if self.drift_sample_rows is not None and int(self.drift_sample_rows) < 100:
            raise InvalidInput(
                f"drift_sample_rows={self.drift_sample_rows} is too small; use "
                "at least 100, or None for every row."
            )
        if self.output_schema_name is not None and self.output_schema_name.count(".") != 1:
            raise InvalidInput(
                f"output_schema_name {self.output_schema_name!r} must be 'catalog.schema'."
            )

    @property
    def profile_metrics_table_name(self) -> str:
        return metric_table_names(self.table_name, self.output_schema_name)[0]

    @property
    def drift_metrics_table_name(self) -> str:
        return metric_table_names(self.table_name, self.output_schema_name)[1]

    def with_changes(self, **changes: Any) -> MonitorInfo:
        return replace(self, **changes)

    def config_hash(self) -> str:
        """Changes whenever a setting that shapes the metric tables changes."""
        api = self.to_api()
        keep = {
            k: api.get(k)
            for k in (
                "snapshot",
                "time_series",
                "inference_log",
                "baseline_table_name",
                "slicing_exprs",
                "custom_metrics",
                "output_schema_name",
            )
        }
        keep["columns"], keep["drift_sample_rows"] = self.columns, self.drift_sample_rows
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]

    def to_api(self) -> dict[str, Any]:
        """The monitor as Databricks' ``MonitorInfo`` JSON."""
        profile_key = {
            "snapshot": "snapshot",
            "time_series": "time_series",
            "inference_log": "inference_log",
        }[self.profile.kind]
        out: dict[str, Any] = {
            "table_name": self.table_name,
            "status": self.status,
            "monitor_version": self.monitor_version,
            "profile_metrics_table_name": self.profile_metrics_table_name,
            "drift_metrics_table_name": self.drift_metrics_table_name,
            "output_schema_name": self.output_schema_name
            or ".".join(self.table_name.split(".")[:2]),
            profile_key: self.profile.to_api(),
            "slicing_exprs": list(self.slicing_exprs),
            "custom_metrics": [m.to_api() for m in self.custom_metrics],
            "assets_dir": self.assets_dir,
            "baseline_table_name": self.baseline_table_name,
            "schedule": self.schedule,
            "latest_monitor_failure_msg": self.latest_failure,
            "dashboard_id": f"lakebox-report:{self.table_name}",
            # lakebox extensions (ignored by databricks-sdk)
            "columns": self.columns,
            "drift_sample_rows": self.drift_sample_rows,
            "refresh_job_id": self.refresh_job_id,
        }
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_api(cls, table_name: str, data: dict[str, Any]) -> MonitorInfo:
        """Build from Databricks' create/update JSON (or :meth:`to_api` output)."""
        output_schema = data.get("output_schema_name")
        if output_schema == ".".join(table_name.split(".")[:2]):
            output_schema = None
        return cls(
            table_name=table_name,
            profile=profile_from_dict(data),
            baseline_table_name=data.get("baseline_table_name"),
            slicing_exprs=list(data.get("slicing_exprs") or []),
            custom_metrics=[CustomMetric.from_api(m) for m in data.get("custom_metrics") or []],
            output_schema_name=output_schema,
            columns=data.get("columns"),
            drift_sample_rows=data.get("drift_sample_rows", DEFAULT_DRIFT_SAMPLE_ROWS),
            schedule=data.get("schedule"),
            assets_dir=data.get("assets_dir"),
            status=data.get("status") or "MONITOR_STATUS_ACTIVE",
            monitor_version=int(data.get("monitor_version") or 1),
            refresh_job_id=data.get("refresh_job_id"),
            latest_failure=data.get("latest_monitor_failure_msg"),
        )
