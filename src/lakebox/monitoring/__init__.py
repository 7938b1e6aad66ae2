"""Monitoring: profile and drift metric tables, feature / label / concept drift, alerts that
start jobs, and HTML reports.

Start from ``ws.monitors`` (:class:`Monitors`)::

    from lakebox.monitoring import InferenceLog
    ws.monitors.create("main.serving.churn_log",
                       InferenceLog("ts", ["1 day"], model_id_col="model_version",
                                    prediction_col="prediction", label_col="churned"),
                       baseline_table_name="main.fs.training_snapshot")
    ws.monitors.add_alert("main.serving.churn_log", "js_distance > 0.2", job_id=retrain_job)
    ws.monitors.refresh("main.serving.churn_log")     # metric tables, alerts, report
"""

from lakebox.monitoring._api import Alert, AlertEvent, Monitors, RefreshInfo
from lakebox.monitoring._monitor import MonitorInfo
from lakebox.monitoring._profiles import (
    CustomMetric,
    InferenceLog,
    Snapshot,
    TimeSeries,
    parse_granularity,
)
from lakebox.monitoring._stats import (
    categorical_drift,
    concept_drift,
    numeric_drift,
    quality_metrics,
)

__all__ = [
    "Alert",
    "AlertEvent",
    "CustomMetric",
    "InferenceLog",
    "MonitorInfo",
    "Monitors",
    "RefreshInfo",
    "Snapshot",
    "TimeSeries",
    "categorical_drift",
    "concept_drift",
    "numeric_drift",
    "parse_granularity",
    "quality_metrics",
]
