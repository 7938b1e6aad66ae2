"""Demo step: tune a churn model on a Delta table — parallel trials as nested MLflow runs, the
table version recorded on the run (lineage), plots, and a fast log + register."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import mlflow

from lakebox.demo import _data

if TYPE_CHECKING:
    import pandas as pd

    from lakebox.demo import DemoContext

TITLE = "Tune a model on a Delta table: parallel trials as nested MLflow runs, with lineage"
FEATURES = ["sessions", "spend", "tickets"]
MAX_EVALS = 8
PARALLELISM = 2


def run(ctx: DemoContext) -> None:
    from hyperopt import hp

    import lakebox.tuning
    from lakebox.tracking import log_confusion_matrix, log_feature_importance, pip_requirements

    def make_model(params: dict[str, Any]) -> Any:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(
            StandardScaler(),
            LogisticRegression(
                C=float(params["C"]), class_weight=params["class_weight"], max_iter=500
            ),
        )

    def objective(params: dict[str, Any], *, X: pd.DataFrame, y: pd.Series) -> float:
        """Cross-validated log loss of one point, in a worker process inside its trial run.
        Defined here so that it is pickled by value: workers need not import lakebox."""
        from sklearn.model_selection import cross_val_score

        scores = cross_val_score(make_model(params), X, y, cv=3, scoring="neg_log_loss")
        mlflow.log_metric("cv_log_loss_std", float(scores.std()))
        return float(-scores.mean())

    ws = ctx.ws
    mlflow.set_experiment("lakebox-demo")
    space = {
        "C": hp.loguniform("C", -4, 2),
        "class_weight": hp.choice("class_weight", [None, "balanced"]),
    }
    with mlflow.start_run(run_name="churn-tuning") as run:
        daily = ws.tables.read("main.raw.activity", version=ctx.state.get("activity_version"))
        y = _data.labels(daily).set_index("customer_id")["churned"]
        X = daily.groupby("customer_id")[FEATURES].mean().astype("float64").loc[y.index]
        best = lakebox.tuning.fmin(
            functools.partial(objective, X=X, y=y),
            space,
            max_evals=MAX_EVALS,
            parallelism=PARALLELISM,
            return_argmin=False,
        )
        model = make_model(best).fit(X, y)
        accuracy = float(model.score(X, y))
        mlflow.log_metric("train_accuracy", accuracy)
        log_feature_importance(model, FEATURES)
        log_confusion_matrix(y, model.predict(X), labels=[0, 1])
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=X.head(3),
            registered_model_name="churn",
            pip_requirements=pip_requirements("sklearn"),
        )
    parent = mlflow.get_run(run.info.run_id)
    children = mlflow.search_runs(
        [run.info.experiment_id],
        output_format="list",
        filter_string=f"tags.`mlflow.parentRunId` = '{run.info.run_id}'",
    )
    failed = sum(1 for c in children if c.info.status != "FINISHED")
    inputs = parent.inputs.dataset_inputs if parent.inputs else []
    lineage = ", ".join(d.dataset.name for d in inputs) or "none"
    ctx.say(
        f"run {run.info.run_id[:8]} read {lineage} (lineage: "
        "lakebox.tracking.training_data(run_id) reloads exactly that version)"
    )
    ctx.say(
        f"{len(children)} trials, {PARALLELISM} at a time, each a nested run"
        f"{f' ({failed} failed)' if failed else ''}; best C={best['C']:.3g}, "
        f"class_weight={best['class_weight']}, cv log loss "
        f"{parent.data.metrics['best_loss']:.3f}"
    )
    ctx.say(
        f"final model: train accuracy {accuracy:.3f}; feature importance and confusion "
        f"matrix logged; registered model 'churn' version {info.registered_model_version}"
    )
    ctx.state.update(
        run_id=run.info.run_id,
        model_uri=info.model_uri,
        model_version=info.registered_model_version,
    )
