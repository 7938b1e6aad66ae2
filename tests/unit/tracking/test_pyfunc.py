"""PreprocessedModel: preprocessing and lookups travel with the model; loading predicts the same."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import Model
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lakebox.errors import InvalidInput
from lakebox.tracking import log_preprocessed_model

PLANS = pd.DataFrame({"plan": ["basic", "pro", "team"], "price": [5.0, 15.0, 40.0]})


def _data(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "sessions": rng.poisson(5, n).astype(float),
            "spend": rng.gamma(2.0, 10.0, n),
            "plan": rng.choice(["basic", "pro", "team"], n),
        }
    )
    X.loc[::7, "sessions"] = np.nan  # imputation has work to do
    X.loc[::11, "plan"] = None
    y = ((X["spend"] > 20) ^ (X["plan"] == "team")).astype(int).to_numpy()
    return X, y


def _fit(X: pd.DataFrame, y: np.ndarray, estimator):  # type: ignore[no-untyped-def]
    pre = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                ["sessions", "spend", "price"],
            ),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                ["plan"],
            ),
        ]
    )
    joined = X.merge(PLANS, on="plan", how="left")
    features = pre.fit_transform(joined)
    return pre, estimator.fit(features, y), joined


def test_loaded_model_predicts_like_the_fitted_objects(ws):
    X, y = _data()
    pre, clf, joined = _fit(X, y, LogisticRegression(max_iter=500))
    with mlflow.start_run():
        info = log_preprocessed_model(
            pre,
            clf,
            input_example=X.head(5),
            lookups={"plans": (PLANS, ["plan"])},
            registered_model_name="churn-pre",
        )
    proba = clf.predict_proba(pre.transform(joined))[:, 1]

    loaded = mlflow.pyfunc.load_model(info.model_uri)
    np.testing.assert_array_equal(loaded.predict(X), (proba >= 0.5).astype(int))
    np.testing.assert_allclose(loaded.predict(X, params={"output": "probability"}), proba)
    np.testing.assert_array_equal(
        loaded.predict(X, params={"threshold": 0.2}), (proba >= 0.2).astype(int)
    )
    # the registered version is the same artifact
    by_name = mlflow.pyfunc.load_model("models:/churn-pre/1")
    np.testing.assert_array_equal(by_name.predict(X), loaded.predict(X))

    # unseen category and all-missing values go through imputation and one-hot "ignore"
    odd = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "sessions": [np.nan, 3.0],
            "spend": [np.nan, 12.0],
            "plan": ["enterprise", None],
        }
    )
    assert loaded.predict(odd).shape == (2,)


def test_signature_params_input_example_and_requirements(ws):
    X, y = _data()
    pre, clf, _ = _fit(X, y, LogisticRegression(max_iter=500))
    with mlflow.start_run():
        info = log_preprocessed_model(
            pre,
            clf,
            input_example=X.head(3),
            lookups={"plans": (PLANS, ["plan"])},
            params={"threshold": 0.4},
        )
    model = Model.load(info.model_uri)
    assert [c.name for c in model.signature.inputs.inputs] == list(X.columns)
    params = {p.name: p.default for p in model.signature.params.params}
    assert params == {"threshold": 0.4, "output": "label"}
    pd.testing.assert_frame_equal(
        model.load_input_example(mlflow.artifacts.download_artifacts(info.model_uri)).reset_index(
            drop=True
        ),
        X.head(3).reset_index(drop=True),
        check_dtype=False,
    )
    requirements = mlflow.pyfunc.get_model_dependencies(info.model_uri)
    text = Path(requirements).read_text()
    assert "scikit-learn==" in text and "mlflow==" in text
    # the model file carries no fitted objects: they are artifacts
    assert set(model.flavors["python_function"]["artifacts"]) == {
        "preprocessor",
        "estimator",
        "plans",
    }


def test_regressor_ignores_classification_params(ws):
    X, _ = _data()
    target = X["spend"].fillna(0).to_numpy() * 2
    pre, reg, joined = _fit(X, target, LinearRegression())
    with mlflow.start_run():
        info = log_preprocessed_model(
            pre, reg, input_example=X.head(3), lookups={"plans": (PLANS, ["plan"])}
        )
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    np.testing.assert_allclose(
        loaded.predict(X, params={"threshold": 0.9}), reg.predict(pre.transform(joined))
    )


def test_bad_input(ws):
    X, y = _data()
    pre, clf, _ = _fit(X, y, LogisticRegression(max_iter=500))
    with mlflow.start_run():
        with pytest.raises(InvalidInput, match="input_example"):
            log_preprocessed_model(pre, clf, input_example=X.head(0))
        with pytest.raises(InvalidInput, match=r"Lookup 'plans' has no key column\(s\) \['tier'\]"):
            log_preprocessed_model(
                pre, clf, input_example=X.head(3), lookups={"plans": (PLANS, ["tier"])}
            )
        info = log_preprocessed_model(
            pre, clf, input_example=X.head(3), lookups={"plans": (PLANS, ["plan"])}
        )
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    with pytest.raises(Exception, match="output='score' is not one of"):
        loaded.predict(X, params={"output": "score"})
