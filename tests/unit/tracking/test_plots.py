"""Plot helpers log real PNG figures (and numbers) to the active run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lakebox.errors import InvalidInput, MissingDependency
from lakebox.tracking import (
    log_confusion_matrix,
    log_feature_distributions,
    log_feature_importance,
    log_residuals,
    log_shap_summary,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _xy() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(1)
    X = pd.DataFrame(
        {
            "sessions": rng.normal(5, 2, 120),
            "spend": rng.normal(20, 5, 120),
            "tickets": rng.poisson(1, 120).astype(float),
        }
    )
    return X, ((X["spend"] + 3 * X["tickets"]) > 23).astype(int).to_numpy()


def _artifact(run_id: str, path: str) -> bytes:
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)).read_bytes()


def test_classifier_plots(ws):
    X, y = _xy()
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    linear = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    with mlflow.start_run() as run:
        ranked = log_feature_importance(forest, X.columns)
        coef = log_feature_importance(linear, X.columns, artifact_file="plots/coef.png")
        matrix = log_confusion_matrix(y, forest.predict(X), labels=[0, 1])
        plotted = log_feature_distributions(X.assign(churned=y), by="churned")
    run_id = run.info.run_id
    for path in (
        "plots/feature_importance.png",
        "plots/coef.png",
        "plots/confusion_matrix.png",
        "plots/feature_distributions.png",
    ):
        assert _artifact(run_id, path).startswith(PNG)
    assert list(ranked) == sorted(ranked, key=ranked.get, reverse=True)
    assert sum(ranked.values()) == pytest.approx(1.0)
    assert json.loads(_artifact(run_id, "plots/feature_importance.json")) == ranked
    assert set(coef) == set(X.columns)
    assert matrix.sum() == len(y) and matrix.shape == (2, 2)
    assert plotted == ["sessions", "spend", "tickets"]


def test_residuals(ws):
    X, _ = _xy()
    target = X["spend"] * 2 + np.random.default_rng(0).normal(0, 1, len(X))
    reg = LinearRegression().fit(X, target)
    with mlflow.start_run() as run:
        stats = log_residuals(target, reg.predict(X))
    assert _artifact(run.info.run_id, "plots/residuals.png").startswith(PNG)
    assert abs(stats["mean"]) < 1e-6 and 0.5 < stats["std"] < 1.5


def test_bad_input(ws):
    X, y = _xy()
    forest = RandomForestClassifier(n_estimators=5).fit(X, y)
    with pytest.raises(InvalidInput, match="No active MLflow run"):
        log_confusion_matrix(y, y)
    with mlflow.start_run():
        with pytest.raises(InvalidInput, match="2 feature names for 3 importances"):
            log_feature_importance(forest, ["a", "b"])
        with pytest.raises(InvalidInput, match="neither feature_importances_ nor coef_"):
            log_feature_importance(StandardScaler().fit(X), X.columns)
        with pytest.raises(InvalidInput, match="shape"):
            log_residuals([1.0, 2.0], [1.0])
        with pytest.raises(InvalidInput, match="by='label' is not a column"):
            log_feature_distributions(X, by="label")


@pytest.mark.skipif(importlib.util.find_spec("shap") is not None, reason="shap is installed")
def test_shap_needs_the_extra(ws):
    X, y = _xy()
    with mlflow.start_run(), pytest.raises(MissingDependency, match=r"lakebox\[shap\]"):
        log_shap_summary(LogisticRegression().fit(X, y), X)
