"""Autologging with lakebox's defaults, and explicit requirements."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import Model
from sklearn.linear_model import LogisticRegression

import lakebox
from lakebox.errors import InvalidInput
from lakebox.tracking import autolog, pip_requirements


@pytest.fixture
def _autolog_off():  # type: ignore[no-untyped-def]
    yield
    mlflow.autolog(disable=True)


def _xy() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"sessions": rng.normal(5, 2, 80), "spend": rng.normal(20, 5, 80)})
    return X, (X["spend"] > 20).astype(int).to_numpy()


def _check_autologged(run_id: str) -> None:
    run = mlflow.get_run(run_id)
    assert run.data.params["max_iter"] == "300"
    assert "training_accuracy_score" in run.data.metrics
    [logged] = mlflow.search_logged_models(
        filter_string=f"source_run_id = '{run_id}'", output_format="list"
    )
    model = Model.load(logged.model_uri)
    assert model.signature is not None
    assert [c.name for c in model.signature.inputs.inputs] == ["sessions", "spend"]
    assert model.saved_input_example_info is not None
    example = model.load_input_example(mlflow.artifacts.download_artifacts(logged.model_uri))
    assert list(example.columns) == ["sessions", "spend"]


@pytest.mark.usefixtures("_autolog_off")
def test_autolog_logs_model_signature_and_input_example(ws):
    autolog()
    X, y = _xy()
    with mlflow.start_run() as run:
        LogisticRegression(max_iter=300).fit(X, y)
    _check_autologged(run.info.run_id)


@pytest.mark.usefixtures("_autolog_off")
def test_workspace_setting_turns_autolog_on(tmp_path):
    ws = lakebox.Workspace(tmp_path / "auto", settings={"mlflow": {"autolog": True}})
    X, y = _xy()
    with mlflow.start_run() as run:
        LogisticRegression(max_iter=300).fit(X, y)
    _check_autologged(run.info.run_id)
    ws.close()


def test_pip_requirements_are_pinned_to_installed_versions():
    reqs = pip_requirements("sklearn")
    assert f"scikit-learn=={metadata.version('scikit-learn')}" in reqs
    assert f"mlflow=={metadata.version('mlflow')}" in reqs
    assert pip_requirements(mlflow.sklearn) == reqs
    assert pip_requirements("sklearn", extra=["my-features==1.0"])[-1] == "my-features==1.0"
    with pytest.raises(InvalidInput, match="No default requirements for flavor 'sparkml'"):
        pip_requirements("sparkml")


def test_log_model_with_lakebox_requirements(ws):
    X, y = _xy()
    model = LogisticRegression().fit(X, y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=X.head(2),
            pip_requirements=pip_requirements("sklearn"),
        )
    text = Path(mlflow.pyfunc.get_model_dependencies(info.model_uri)).read_text().split()
    assert set(pip_requirements("sklearn")) <= set(text)
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
