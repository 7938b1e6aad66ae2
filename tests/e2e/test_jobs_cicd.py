"""The Databricks CI/CD pattern end to end: registry webhooks start the validation job
template, which approves a better version to Production and rejects a worse one with a
comment (real MLflow registry, dispatcher, job runner and worker processes)."""

from __future__ import annotations

import time

import mlflow
import numpy as np
import pandas as pd
import pytest

from lakebox.jobs import create_model_validation_job

FEATURES = ["x1", "x2"]


def _data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    df["label"] = ((df.x1 + 0.5 * df.x2 + rng.normal(scale=0.3, size=n)) > 0).astype("int64")
    return df


def _register(train: pd.DataFrame, *, shuffle: bool = False) -> str:
    from sklearn.linear_model import LogisticRegression

    from lakebox.tracking import pip_requirements

    y = train["label"].sample(frac=1, random_state=1).to_numpy() if shuffle else train["label"]
    model = LogisticRegression().fit(train[FEATURES], y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=train[FEATURES].head(3),
            registered_model_name="churn",
            pip_requirements=pip_requirements("sklearn"),
        )
    return str(info.registered_model_version)


def _runs_done(ws, job_id: int, count: int, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = ws.jobs.list_runs(job_id, limit=0)
        if len(runs) >= count and all(r.done for r in runs):
            return sorted(runs, key=lambda r: r.run_id)
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish {count} run(s)")


@pytest.mark.slow
def test_webhook_triggers_validation_that_approves_or_rejects(ws):
    from lakebox.models import workspace_dispatcher

    mlflow.set_experiment("cicd")
    ws.tables.write("main.fs.holdout", _data(400, seed=2))
    train = _data(600, seed=1)
    v1 = _register(train)
    ws.models.transition_stage("churn", v1, "Production")
    ws.jobs.create_cluster("validators", num_workers=1)
    job_id, hook = create_model_validation_job(
        ws,
        model_name="churn",
        holdout_table="main.fs.holdout",
        label_col="label",
        events=(
            "MODEL_VERSION_TRANSITIONED_TO_STAGING",
            "TRANSITION_REQUEST_TO_PRODUCTION_CREATED",
        ),
        cluster_id="validators",
    )
    assert str(job_id) in str(hook.to_json())
    dispatcher = workspace_dispatcher(ws, poll_interval_seconds=0.05)
    dispatcher.start()
    try:
        # a worse version moved to Staging is rejected with a comment and stays in Staging
        v2 = _register(train, shuffle=True)
        ws.models.transition_stage("churn", v2, "Staging")
        (first,) = _runs_done(ws, job_id, 1)
        assert first.trigger == "WEBHOOK" and first.result_state == "SUCCESS"
        decision = first.task("validate").output
        assert decision["values"]["approved"] is False
        assert decision["result"]["production"] > decision["result"]["candidate"]
        assert ws.models.get_version("churn", v2).current_stage == "Staging"
        comments = [a.comment for a in ws.models.list_comments("churn", v2)]
        assert any(c.startswith("Validation failed: accuracy") for c in comments), (
            comments,
            decision,
        )

        # a request to move an as-good version to Production is approved
        v3 = _register(train)  # as good as Production: approved (ties pass)
        ws.models.create_transition_request("churn", v3, "Production")
        second = _runs_done(ws, job_id, 2)[-1]
        assert second.task("validate").output["values"]["approved"] is True
        assert ws.models.get_version("churn", v3).current_stage == "Production"
        assert ws.models.get_version("churn", v1).current_stage == "Archived"
    finally:
        dispatcher.stop()
