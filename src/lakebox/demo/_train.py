"""Demo step: train a model on a Delta table, with the table version recorded on the run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mlflow

from lakebox.demo import _data

if TYPE_CHECKING:
    from lakebox.demo import DemoContext

TITLE = "Train on a Delta table, tracked in MLflow with lineage"
FEATURES = ["sessions", "spend", "tickets"]


def run(ctx: DemoContext) -> None:
    from sklearn.linear_model import LogisticRegression

    ws = ctx.ws
    mlflow.set_experiment("lakebox-demo")
    with mlflow.start_run(run_name="churn-baseline") as run:
        daily = ws.tables.read("main.raw.activity", version=ctx.state.get("activity_version"))
        y = _data.labels(daily).set_index("customer_id")["churned"]
        X = daily.groupby("customer_id")[FEATURES].mean().loc[y.index]
        model = LogisticRegression(max_iter=500).fit(X, y)
        accuracy = float(model.score(X, y))
        mlflow.log_params({"model": "LogisticRegression", "features": ",".join(FEATURES)})
        mlflow.log_metric("train_accuracy", accuracy)
        info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(3),
                                        registered_model_name="churn",
                                        pip_requirements=["scikit-learn", "pandas"])
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    lineage = ", ".join(f"{d.dataset.name}" for d in inputs) or "none"
    ctx.say(f"run {run.info.run_id[:8]}: train accuracy {accuracy:.3f}; read {lineage}")
    ctx.say(f"registered model 'churn' version {info.registered_model_version}")
    ctx.state.update(run_id=run.info.run_id, model_uri=info.model_uri,
                     model_version=info.registered_model_version)
