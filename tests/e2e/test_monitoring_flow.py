"""End to end: a churn model serves, its inputs drift and its labels turn, the monitor sees it,
an alert fires and starts a real retraining job that trains, logs and registers a new version
and requests its transition to Staging."""

from __future__ import annotations

import html
import os
import textwrap

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from lakebox.monitoring import InferenceLog

LOG = "main.serving.churn_log"
TRAIN = "main.fs.training_snapshot"
FEATURES = ["sessions", "spend", "tickets"]

RETRAIN = textwrap.dedent("""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import lakebox

    def retrain(home, table, rule=""):
        ws = lakebox.Workspace(home)
        rows = ws.sql(f"SELECT sessions, spend, tickets, churned FROM {table} "
                      "WHERE churned IS NOT NULL", output="pandas")
        model = LogisticRegression().fit(rows[["sessions", "spend", "tickets"]], rows.churned)
        with mlflow.start_run(run_name="retrain-on-drift") as run:
            mlflow.log_param("trigger_rule", rule)
            mlflow.log_metric("train_rows", len(rows))
            info = mlflow.sklearn.log_model(model, name="model", registered_model_name="churn",
                                            pip_requirements=["scikit-learn"])
        version = info.registered_model_version
        ws.models.create_transition_request("churn", version, "Staging",
                                            comment=f"retrained after drift alert: {rule}")
        print("registered churn version", version, "from run", run.info.run_id)
        ws.close()
        return int(version)
""")


def customers(n, rng, *, drift=False):
    sessions = rng.poisson(12 if not drift else 5, n).astype(float)
    spend = rng.gamma(2.0, 20.0 if not drift else 45.0, n)
    tickets = rng.poisson(1.0, n).astype(float)
    logit = -0.25 * sessions + 0.9 * tickets + 0.01 * spend + 1.0
    if drift:  # after the product change, spend protects instead of predicting churn
        logit = -0.25 * sessions + 0.9 * tickets - 0.03 * spend + 2.0
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame(
        {"sessions": sessions, "spend": spend, "tickets": tickets, "churned": churned}
    )


@pytest.fixture
def retrain_module(tmp_path, monkeypatch):
    code = tmp_path / "code"
    code.mkdir()
    (code / "retrain_tasks.py").write_text(RETRAIN)
    monkeypatch.syspath_prepend(str(code))
    current = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(code) + (os.pathsep + current if current else ""))


def test_drift_alert_starts_retraining_job(ws, retrain_module):
    rng = np.random.default_rng(42)
    train = customers(3000, rng)
    model = LogisticRegression().fit(train[FEATURES], train.churned)
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model, name="model", registered_model_name="churn", pip_requirements=["scikit-learn"]
        )
    train["prediction"] = model.predict(train[FEATURES])
    train["proba"] = model.predict_proba(train[FEATURES])[:, 1]
    train["model_version"] = "1"
    ws.tables.write(TRAIN, train)

    days = []
    for day in range(6):
        batch = customers(800, rng, drift=day >= 4)
        batch["ts"] = (
            pd.Timestamp("2026-03-01", tz="UTC")
            + pd.Timedelta(days=day)
            + pd.to_timedelta(rng.integers(0, 86400, len(batch)), unit="s")
        )
        batch["model_version"] = "1"
        batch["prediction"] = model.predict(batch[FEATURES])
        batch["proba"] = model.predict_proba(batch[FEATURES])[:, 1]
        days.append(batch)
    ws.tables.write(LOG, pd.concat(days[:4], ignore_index=True))

    job_id = ws.jobs.create(
        {
            "name": "retrain churn",
            "parameters": [
                {"name": "monitor_table", "default": ""},
                {"name": "alert_rule", "default": ""},
                {"name": "refresh_id", "default": ""},
            ],
            "tasks": [
                {
                    "task_key": "retrain",
                    "python_function_task": {
                        "function": "retrain_tasks:retrain",
                        "parameters": {
                            "home": str(ws.home),
                            "table": "{{job.parameters.monitor_table}}",
                            "rule": "{{job.parameters.alert_rule}}",
                        },
                    },
                }
            ],
        }
    )
    ws.monitors.create(
        LOG,
        InferenceLog(
            "ts",
            ["1 day"],
            model_id_col="model_version",
            prediction_col="prediction",
            label_col="churned",
            prediction_proba_col="proba",
        ),
        baseline_table_name=TRAIN,
    )
    feature_rule = (
        "js_distance > 0.2 AND drift_type = 'BASELINE' AND column_name IN "
        "('sessions', 'spend', 'tickets')"
    )
    ws.monitors.add_alert(LOG, feature_rule, job_id=job_id)
    # Alerts are events too: a registry-wide webhook on MONITOR_ALERT_TRIGGERED gets them.
    hook = ws.webhooks.create(
        ["MONITOR_ALERT_TRIGGERED"], http_url_spec={"url": "http://127.0.0.1:9/alerts"}
    )
    ws.monitors.add_alert(
        LOG, "f1_score_delta < -0.05 AND drift_type = 'BASELINE' AND model_id IS NULL"
    )

    quiet = ws.monitors.refresh(LOG)
    assert quiet.alerts == []  # four normal days: no alert, no job run
    assert ws.jobs.list_runs(job_id=job_id) == [] if hasattr(ws.jobs, "list_runs") else True

    ws.tables.write(LOG, pd.concat(days[4:], ignore_index=True))
    drifted = ws.monitors.refresh(LOG)
    assert drifted.mode == "incremental"
    fired = {a.rule: a for a in drifted.alerts}
    assert set(fired) == {
        feature_rule,
        "f1_score_delta < -0.05 AND drift_type = 'BASELINE' AND model_id IS NULL",
    }
    feature_alert = fired[feature_rule]
    assert {m["column_name"] for m in feature_alert.matches} >= {"sessions", "spend"}
    assert {m["window_start"][:10] for m in feature_alert.matches} == {"2026-03-05", "2026-03-06"}

    # concept drift: the input -> label test flags spend in the drifted windows
    drift = ws.monitors.drift_metrics(LOG).to_pandas()
    spend = drift[
        (drift.column_name == "spend")
        & (drift.drift_type == "BASELINE")
        & drift.slice_key.isna()
        & drift.model_id.isna()
    ].sort_values("window_start")
    assert (spend.concept_chi_squared_pvalue.iloc[-2:] < 1e-6).all()
    assert (spend.concept_chi_squared_pvalue.iloc[:4] > 1e-3).all()
    # label drift (churned) and prediction drift: two-sample chi-square on their values
    for column in ("churned", "prediction"):
        rows = drift[
            (drift.column_name == column)
            & (drift.drift_type == "BASELINE")
            & drift.slice_key.isna()
            & drift.model_id.isna()
        ].sort_values("window_start")
        assert rows.chi_squared_pvalue.notna().all()
    pred = drift[
        (drift.column_name == "prediction")
        & (drift.drift_type == "BASELINE")
        & drift.slice_key.isna()
        & drift.model_id.isna()
    ].sort_values("window_start")
    assert pred.chi_squared_pvalue.iloc[-1] < 1e-3 < pred.chi_squared_pvalue.iloc[0]

    queued = ws.webhooks.deliveries(webhook_id=hook.id)
    assert {d.event for d in queued} == {"MONITOR_ALERT_TRIGGERED"}
    assert feature_alert.event_id in {d.event_id for d in queued}

    run = ws.jobs.wait(feature_alert.job_run_id, timeout=300)
    assert run.result_state == "SUCCESS", run.state_message
    versions = sorted(int(v.version) for v in ws.models.versions("churn"))
    assert versions == [1, 2]
    requests = ws.models.list_transition_requests("churn", 2)
    assert [r.to_stage for r in requests] == ["Staging"]
    history = ws.monitors.alert_history(LOG)
    assert {e.job_run_id for e in history} == {feature_alert.job_run_id, None}

    report = ws.monitors.report(LOG)
    text = report.read_text()
    assert "alert-history" in text and html.escape(feature_rule.split(" AND")[0]) in text
