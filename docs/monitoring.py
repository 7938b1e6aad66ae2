"""Monitoring a model's inference log: a runnable tour.

Run it with ``python docs/monitoring.py`` (uses ``$LAKEBOX_HOME`` or ``./.lakebox``).
"""

import numpy as np
import pandas as pd

import lakebox
from lakebox.errors import InvalidInput
from lakebox.monitoring import CustomMetric, InferenceLog

ws = lakebox.Workspace()
LOG, BASE = "main.docs.churn_log", "main.docs.churn_training"
for name in (LOG, BASE):
    if any(m.table_name == name for m in ws.monitors.list()):
        ws.monitors.delete(name, drop_metric_tables=True)
    ws.tables.drop(name, missing_ok=True)

# An inference log: four days of scored requests; on day 4 usage drops (feature drift).
rng = np.random.default_rng(0)
frames = []
for day in range(4):
    n = 300
    sessions = rng.poisson(3 if day == 3 else 10, n).astype(float)
    proba = 1 / (1 + np.exp(0.4 * sessions - 2))
    frames.append(
        pd.DataFrame(
            {
                "ts": pd.Timestamp("2026-03-01", tz="UTC")
                + pd.Timedelta(days=day)
                + pd.to_timedelta(rng.integers(0, 86400, n), unit="s"),
                "sessions": sessions,
                "plan": rng.choice(["basic", "pro"], n),
                "model_version": "1",
                "probability": proba,
                "prediction": (proba > 0.5).astype("int64"),
                "churned": (rng.random(n) < proba).astype("int64"),
            }
        )
    )
log = pd.concat(frames, ignore_index=True)
ws.tables.write(LOG, log)
ws.tables.write(BASE, frames[0].drop(columns=["ts"]))  # what the model was trained on

# A monitor: daily windows, a baseline, a slice per plan and one custom metric.
ws.monitors.create(
    LOG,
    InferenceLog(
        "ts",
        ["1 day"],
        model_id_col="model_version",
        prediction_col="prediction",
        label_col="churned",
        prediction_proba_col="probability",
    ),
    baseline_table_name=BASE,
    slicing_exprs=["plan"],
    custom_metrics=[
        CustomMetric(
            "share_idle",
            "avg(CASE WHEN {{input_column}} < 2 THEN 1 ELSE 0 END)",
            input_columns=["sessions"],
        )
    ],
)
# Alerts are SQL conditions over the metric tables (job_id= would start a job).
ws.monitors.add_alert(
    LOG, "js_distance > 0.2 AND drift_type = 'BASELINE' AND column_name = 'sessions'"
)

refresh = ws.monitors.refresh(LOG)  # full the first time, incremental afterwards
print(refresh.message)
assert [a.rule for a in refresh.alerts]  # the drop in sessions fired the alert

drift = ws.monitors.drift_metrics(LOG).to_pandas()
sessions = drift[
    (drift.column_name == "sessions") & (drift.drift_type == "BASELINE") & drift.slice_key.isna()
].sort_values("window_start")
print(sessions[["window_start", "ks_pvalue", "js_distance", "population_stability_index"]])
assert sessions.js_distance.iloc[-1] > 0.2 > sessions.js_distance.iloc[0]

profile = ws.monitors.profile_metrics(LOG).to_pandas()
quality = profile[
    (profile.column_name == ":table") & profile.slice_key.isna() & (profile.log_type == "INPUT")
]
print(quality[["window_start", "count", "accuracy_score", "f1_score", "roc_auc"]])

# Only new windows are recomputed on the next refresh.
assert "0 window(s)" in ws.monitors.refresh(LOG).message

# Bad input names the problem.
try:
    ws.monitors.update(LOG, slicing_exprs=["no_such_column > 1"])
except InvalidInput as exc:
    print("refused:", exc)

print("report:", ws.monitors.report(LOG))
