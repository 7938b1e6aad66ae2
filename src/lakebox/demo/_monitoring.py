"""Demo step: an inference log of the churn model whose inputs drift after the product change;
a monitor finds the drift, an alert fires, and the report is written."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lakebox.demo import _data

if TYPE_CHECKING:
    from lakebox.demo import DemoContext

TITLE = "Monitor the model: drift metric tables, an alert and an HTML report"
LOG = "main.monitoring.churn_inference_log"
BASELINE = "main.monitoring.churn_training_snapshot"
FEATURES = ["sessions", "spend", "tickets"]
CUSTOMERS = 200
DAYS = 6
CHANGE_DAY = 4  # the product change: usage shifts from here on


def _scored(model: object, daily: pd.DataFrame, version: str) -> pd.DataFrame:
    X = daily[FEATURES].astype("float64")
    out = daily[["customer_id", "ts", *FEATURES]].copy()
    out["ts"] = pd.to_datetime(out["ts"]).dt.tz_localize("UTC")
    out["model_version"] = version
    out["prediction"] = model.predict(X).astype("int64")  # type: ignore[attr-defined]
    out["probability"] = model.predict_proba(X)[:, 1]  # type: ignore[attr-defined]
    return out


def run(ctx: DemoContext) -> None:
    from lakebox.monitoring import InferenceLog

    ws = ctx.ws
    ids = np.arange(1, CUSTOMERS + 1, dtype="int64")
    normal = _data.activity(ids, CHANGE_DAY, first_day=60, seed=7)
    changed = _data.activity(ids, DAYS - CHANGE_DAY, first_day=60 + CHANGE_DAY, shift=0.6, seed=7)
    model_uri, version = ctx.state.get("model_uri"), str(ctx.state.get("model_version", "1"))
    if model_uri:
        import mlflow

        model = mlflow.sklearn.load_model(model_uri)
    else:  # the step also runs alone
        from sklearn.linear_model import LogisticRegression

        y = _data.labels(normal).set_index("customer_id")["churned"]
        X = normal.groupby("customer_id")[FEATURES].mean().loc[y.index]
        model = LogisticRegression().fit(X, y)
    logged = pd.concat(
        [_scored(model, normal, version), _scored(model, changed, version)], ignore_index=True
    )
    labels = _data.labels(pd.concat([normal, changed])).set_index("customer_id")["churned"]
    logged["churned"] = logged["customer_id"].map(labels).astype("int64")
    ws.tables.write(LOG, logged, mode="overwrite", overwrite_schema=True)
    training = _scored(model, _data.activity(ids, 3, first_day=50, seed=3), version)
    training["churned"] = training["customer_id"].map(labels).astype("int64")
    ws.tables.write(
        BASELINE, training.drop(columns=["ts"]), mode="overwrite", overwrite_schema=True
    )
    ctx.say(
        f"inference log {LOG}: {len(logged)} scored rows over {DAYS} days, usage shifts "
        f"from day {CHANGE_DAY + 1}"
    )

    if any(m.table_name == LOG for m in ws.monitors.list()):
        ws.monitors.delete(LOG)
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
        baseline_table_name=BASELINE,
        columns=[*FEATURES, "prediction", "probability", "churned"],
    )
    rule = "js_distance > 0.2 AND drift_type = 'BASELINE' AND column_name = 'sessions'"
    ws.monitors.add_alert(LOG, rule)
    refresh = ws.monitors.refresh(LOG)
    drift = ws.monitors.drift_metrics(LOG).to_pandas()
    mine = drift[
        (drift.drift_type == "BASELINE")
        & drift.slice_key.isna()
        & drift.model_id.isna()
        & drift.column_name.isin(FEATURES)
    ]
    per_day = mine.groupby(mine.window_start.dt.strftime("%m-%d")).js_distance.max()
    ctx.say(
        "max Jensen-Shannon distance of the features vs training, per day: "
        + ", ".join(f"{day} {value:.2f}" for day, value in per_day.items())
    )
    for alert in refresh.alerts:
        ctx.say(f"[bold red]ALERT[/] {alert.message}")
    report = ws.monitors.report(LOG)
    ctx.say(f"report: {report}  (lakebox up serves it at /monitoring/reports/{LOG})")
    ctx.state.update(
        monitor_table=LOG, monitor_report=str(report), monitor_alerts=len(refresh.alerts)
    )
