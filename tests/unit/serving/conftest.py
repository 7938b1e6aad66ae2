"""A workspace with a registered model ``churn`` whose versions predict their own number
(``DummyRegressor(constant=k)``), built once per session and copied for each test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import lakebox

FEATURES = {"sessions": 1.0, "spend": 2.0, "tickets": 3}


def log_constant_model(ws: lakebox.Workspace, value: float, name: str = "churn") -> str:
    """Register a scikit-learn model that always predicts ``value``; returns its version."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.dummy import DummyRegressor

    X = pd.DataFrame({"sessions": [1.0, 2.0], "spend": [1.0, 2.0], "tickets": [1, 2]})
    model = DummyRegressor(strategy="constant", constant=value).fit(X, [0.0, 0.0])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),
            registered_model_name=name,
            pip_requirements=["scikit-learn"],
        )
    return str(info.registered_model_version)


@pytest.fixture(scope="session")
def _serving_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import os

    # Session fixtures run before the per-test environment is saved: leave no MLflow URI
    # behind, or every later workspace would take it for the user's own.
    saved = dict(os.environ)
    home = tmp_path_factory.mktemp("serving-template") / "ws"
    ws = lakebox.Workspace(home)
    for value in (1.0, 2.0, 3.0):
        log_constant_model(ws, value)
    ws.close()
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    os.environ.update(saved)
    return home


@pytest.fixture
def sws(tmp_path: Path, _serving_template: Path):  # type: ignore[no-untyped-def]
    """A fresh workspace holding ``churn`` versions 1, 2, 3 (predicting 1.0, 2.0, 3.0)."""
    home = tmp_path / "ws"
    shutil.copytree(_serving_template, home)
    ws = lakebox.Workspace(home)
    yield ws
    ws.close()
