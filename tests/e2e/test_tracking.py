"""Tracking end to end: the demo's tuning step, fmin against a real `lakebox up` tracking
server (workers log over HTTP with a token), and a PreprocessedModel that predicts the same
loaded, served by an endpoint and batch-scored from a Delta table."""

from __future__ import annotations

import io
import os

import mlflow
import numpy as np
import pandas as pd
import pytest
from hyperopt import hp
from mlflow import MlflowClient
from rich.console import Console
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import lakebox
from lakebox.demo import DemoContext, _tables, _train
from lakebox.tracking import log_preprocessed_model, training_data


@pytest.fixture(autouse=True)
def _forget_active_experiment():  # type: ignore[no-untyped-def]
    """The demo step sets an experiment (MLflow keeps its id in a global and in
    MLFLOW_EXPERIMENT_ID); that id means nothing in the next test's workspace."""
    yield
    mlflow.tracking.fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


def test_demo_step_tunes_with_nested_runs_and_lineage(ws):
    out = io.StringIO()
    ctx = DemoContext(ws=ws, console=Console(file=out, width=200))
    _tables.run(ctx)
    _train.run(ctx)
    assert {"run_id", "model_uri", "model_version"} <= set(ctx.state)
    client = MlflowClient()
    parent = client.get_run(ctx.state["run_id"])
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert len(children) == _train.MAX_EVALS
    losses = [c.data.metrics["loss"] for c in children if c.info.status == "FINISHED"]
    assert parent.data.metrics["best_loss"] == pytest.approx(min(losses))
    assert {"best_C", "best_class_weight"} <= set(parent.data.params)
    version = client.get_model_version("churn", str(ctx.state["model_version"]))
    assert version.run_id == parent.info.run_id
    [read] = [d.dataset.name for d in parent.inputs.dataset_inputs]
    assert read == f"main.raw.activity@v{ctx.state['activity_version']}"
    assert len(training_data(parent.info.run_id)) == len(
        ws.tables.read("main.raw.activity", version=ctx.state["activity_version"])
    )
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/feature_importance.png", "plots/confusion_matrix.png"} <= artifacts
    text = out.getvalue()
    assert f"{_train.MAX_EVALS} trials, {_train.PARALLELISM} at a time" in text
    assert "registered model 'churn'" in text


@pytest.mark.server
def test_fmin_workers_log_to_a_tracking_server(lakebox_server, tmp_path, monkeypatch):
    server = lakebox_server(token="s3cret")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "s3cret")
    mlflow.set_tracking_uri(server.url)
    mlflow.set_registry_uri(server.url)
    try:
        with mlflow.start_run(experiment_id="0") as parent:
            best = lakebox.tuning.fmin(
                lambda p: (p["x"] - 1) ** 2,
                {"x": hp.uniform("x", -3, 3)},
                max_evals=4,
                parallelism=2,
                return_argmin=False,
            )
        client = MlflowClient(server.url)
        children = client.search_runs(["0"], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
        assert len(children) == 4
        assert all(c.info.status == "FINISHED" for c in children)
        best_loss = client.get_run(parent.info.run_id).data.metrics["best_loss"]
        assert best_loss == pytest.approx((best["x"] - 1) ** 2)
        assert best_loss == pytest.approx(min(c.data.metrics["loss"] for c in children))
    finally:
        mlflow.set_tracking_uri(None)


def test_preprocessed_model_serves_like_it_loads(ws):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"sessions": rng.normal(5, 2, 150), "spend": rng.normal(20, 5, 150)})
    X.loc[::5, "sessions"] = np.nan
    y = (X["spend"] > 20).astype(int)
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    pre = make_pipeline(SimpleImputer(), StandardScaler()).fit(X)
    clf = LogisticRegression().fit(pre.transform(X), y)
    with mlflow.start_run():
        log_preprocessed_model(
            pre, clf, input_example=X.head(3), registered_model_name="pre-served"
        )
    loaded = mlflow.pyfunc.load_model("models:/pre-served/1")
    ws.serving.create_endpoint("pre-served", [{"entity_name": "pre-served", "entity_version": "1"}])
    rows = X.head(20)
    served = ws.serving.query("pre-served", rows)["predictions"]
    np.testing.assert_array_equal(np.asarray(served), loaded.predict(rows))
    served = ws.serving.query("pre-served", rows, params={"output": "probability"})
    np.testing.assert_allclose(
        np.asarray(served["predictions"]), loaded.predict(rows, params={"output": "probability"})
    )
    ws.serving.close()
    # Batch scoring (the score_batch job task) predicts the same from a Delta table.
    ws.tables.write("main.pre.rows", rows.assign(row_id=np.arange(len(rows))))
    lakebox.deploy.score_table(
        "models:/pre-served/1",
        "main.pre.rows",
        "main.pre.scored",
        ws=ws,
        workers=1,
        feature_columns=["sessions", "spend"],
        keep_columns=["row_id"],
    )
    batch = ws.tables.read("main.pre.scored").sort_values("row_id")
    np.testing.assert_array_equal(batch["prediction"].to_numpy(), loaded.predict(rows))
