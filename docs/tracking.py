"""Experiment tracking with lakebox: lineage, autologging, parallel tuning with nested runs, a
pyfunc that carries its preprocessing, plots, and fast ``log_model``. A runnable tour.

Run it with ``python docs/tracking.py`` (uses ``$LAKEBOX_HOME`` or ``./.lakebox``); then
``lakebox up`` and open the MLflow UI to look at the runs.

Optuna instead of Hyperopt
--------------------------
Optuna's MLflow callback gives the same picture (one run per trial) without lakebox::

    import optuna
    from optuna.integration.mlflow import MLflowCallback   # pip install optuna-integration

    callback = MLflowCallback(tracking_uri=ws.tracking_uri, metric_name="log_loss",
                              create_experiment=False, mlflow_kwargs={"nested": True})
    with mlflow.start_run(run_name="optuna-search"):
        study = optuna.create_study(direction="minimize")
        study.optimize(lambda t: objective({"C": t.suggest_float("C", 1e-2, 10, log=True),
                                            "class_weight": None}),
                       n_trials=16, n_jobs=2, callbacks=[callback])
        mlflow.log_params({f"best_{k}": v for k, v in study.best_params.items()})
        mlflow.log_metric("best_loss", study.best_value)

``n_jobs`` runs Optuna's trials in threads of one process (fine when the objective releases
the GIL, as scikit-learn mostly does); ``lakebox.tuning.fmin`` runs them in processes.
"""

import mlflow
import numpy as np
import pandas as pd
from hyperopt import hp
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import lakebox
import lakebox.tracking
import lakebox.tuning

ws = lakebox.Workspace()
mlflow.set_experiment("docs-tracking")
TABLE = "main.docs.customers"
ws.tables.drop(TABLE, missing_ok=True)

rng = np.random.default_rng(0)
n = 400
customers = pd.DataFrame(
    {
        "customer_id": np.arange(n),
        "sessions": rng.poisson(5, n).astype(float),
        "spend": rng.gamma(2.0, 10.0, n).round(2),
        "plan": rng.choice(["basic", "plus", "pro"], n),
    }
)
customers.loc[::9, "sessions"] = np.nan  # missing values, for the imputer
customers["churned"] = ((customers["spend"] < 15) & (customers["plan"] != "pro")).astype(int)
ws.tables.write(TABLE, customers)

# --- 1. Lineage: a table read inside a run is recorded with its Delta version -------------
with mlflow.start_run(run_name="lineage") as run:
    train = ws.tables.read(TABLE)
ws.tables.write(TABLE, customers.assign(customer_id=customers["customer_id"] + n))  # v1
reads = [d.dataset.name for d in mlflow.get_run(run.info.run_id).inputs.dataset_inputs]
again = lakebox.tracking.training_data(run.info.run_id)  # exactly version 0, not the latest
print(
    f"lineage: run read {reads}; reloaded {len(again)} rows (table now has "
    f"{len(ws.tables.read(TABLE))})"
)

X = train[["sessions", "spend", "plan"]]
y = train["churned"]
numeric = X[["sessions", "spend"]].fillna(0.0)

# --- 2. Autologging: params, metrics, model, signature and input example, automatically ----
lakebox.tracking.autolog()  # or [mlflow] autolog = true in lakebox.toml
with mlflow.start_run(run_name="autolog") as run:
    RandomForestClassifier(n_estimators=20, random_state=0).fit(numeric, y)
lakebox.tracking.autolog(disable=True)
[logged] = mlflow.search_logged_models(
    filter_string=f"source_run_id = '{run.info.run_id}'", output_format="list"
)
autologged = mlflow.models.Model.load(logged.model_uri)
print(
    f"autolog: {len(mlflow.get_run(run.info.run_id).data.params)} params, signature "
    f"{autologged.signature is not None}, input example "
    f"{autologged.saved_input_example_info is not None}"
)


# --- 3. Parallel tuning: each trial a nested run under one parent --------------------------
# The objective is pickled and run in worker processes (like Hyperopt's SparkTrials): give
# it plain data, not a Workspace or an open connection. No `if __name__ == "__main__"` needed.
def objective(params):
    if params["C"] > 5:
        raise ValueError("C above 5 is not allowed")  # recorded as a FAILED trial
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=params["C"], class_weight=params["weight"])
    )
    return -cross_val_score(model, numeric, y, cv=3, scoring="neg_log_loss").mean()


space = {"C": hp.loguniform("C", -4, 2.5), "weight": hp.choice("weight", [None, "balanced"])}
with mlflow.start_run(run_name="tuning") as parent:
    best = lakebox.tuning.fmin(
        objective,
        space,
        algo="tpe",
        max_evals=8,
        parallelism=2,
        rstate=np.random.default_rng(1),
        return_argmin=False,
    )
children = mlflow.search_runs(
    filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'", output_format="list"
)
best_loss = mlflow.get_run(parent.info.run_id).data.metrics["best_loss"]
assert best_loss == min(c.data.metrics["loss"] for c in children if "loss" in c.data.metrics)
print(
    f"tuning: {len(children)} nested runs, "
    f"{sum(c.info.status == 'FAILED' for c in children)} failed; best C={best['C']:.3f}"
)

# --- 4. A pyfunc that carries its preprocessing and a lookup file --------------------------
plans = pd.DataFrame({"plan": ["basic", "plus", "pro"], "price": [5.0, 12.0, 30.0]})
preprocessor = ColumnTransformer(
    [
        (
            "num",
            make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
            ["sessions", "spend", "price"],
        ),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
    ]
)
joined = X.merge(plans, on="plan", how="left")
clf = LogisticRegression(C=best["C"], max_iter=500).fit(preprocessor.fit_transform(joined), y)
with mlflow.start_run(run_name="pyfunc") as run:
    info = lakebox.tracking.log_preprocessed_model(
        preprocessor,
        clf,
        input_example=X.head(5),
        lookups={"plans": (plans, ["plan"])},
        registered_model_name="docs_churn_pyfunc",
    )
    # --- 5. Plots people look at ----------------------------------------------------------
    names = list(preprocessor.get_feature_names_out())
    lakebox.tracking.log_feature_importance(clf, names)
    lakebox.tracking.log_confusion_matrix(y, clf.predict(preprocessor.transform(joined)))
    lakebox.tracking.log_feature_distributions(
        train[["sessions", "spend", "churned"]], by="churned"
    )
    # SHAP: lakebox.tracking.log_shap_summary(model, X) after pip install 'lakebox[shap]'.
    # A full report (metrics, ROC/PR curves, confusion matrix) is MLflow's own job:
    #   mlflow.models.evaluate(info.model_uri, train, targets="churned", model_type="classifier")

loaded = mlflow.pyfunc.load_model(info.model_uri)
same = np.array_equal(
    loaded.predict(X), (clf.predict_proba(preprocessor.transform(joined))[:, 1] >= 0.5).astype(int)
)
cautious = loaded.predict(X, params={"threshold": 0.3}).sum()
print(
    f"pyfunc: loaded model predicts like the fitted objects: {same}; "
    f"{cautious} flagged at threshold 0.3; registered version {info.registered_model_version}"
)
print(
    "artifacts:",
    sorted(a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "plots")),
)

# --- 6. Fast log_model: explicit requirements skip MLflow's seconds-long inference ---------
with mlflow.start_run(run_name="fast-log"):
    mlflow.sklearn.log_model(
        clf, name="model", pip_requirements=lakebox.tracking.pip_requirements("sklearn")
    )
print("requirements:", lakebox.tracking.pip_requirements("sklearn")[:2])
