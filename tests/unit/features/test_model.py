"""Models that carry their features: log_model stores the spec; score_batch joins features for
registered versions, aliases and stages."""

import json
import warnings
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LinearRegression

import lakebox
from lakebox.errors import InvalidInput
from lakebox.features import FeatureFunction, FeatureLookup, FeatureSpec


def spend_per_session(spend: float, sessions: int) -> float:
    return spend / sessions if sessions else 0.0


@pytest.fixture(scope="module")
def module_ws(tmp_path_factory, daily_data):
    """One workspace with a registered feature-aware model, shared by this module's tests
    (logging a model is the slow part)."""
    workspace = lakebox.Workspace(tmp_path_factory.mktemp("model") / "ws")
    workspace.features.create_table(
        name="main.fs.daily", primary_keys=["customer_id"], timeseries_columns=["ts"], df=daily_data
    )
    workspace.functions.create("main.fs.sps", spend_per_session)
    labels = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 2, 3],
            "event_ts": pd.to_datetime(
                ["2024-01-02", "2024-01-06", "2024-01-02", "2024-01-05", "2024-01-07"]
            ),
            "target": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    ts = workspace.features.create_training_set(
        df=labels,
        feature_lookups=[
            FeatureLookup(
                "main.fs.daily",
                "customer_id",
                timestamp_lookup_key="event_ts",
                default_values={"sessions_7d": 0, "spend_7d": 0.0},
            ),
            FeatureFunction(
                udf_name="main.fs.sps",
                input_bindings={"spend": "spend_7d", "sessions": "sessions_7d"},
                output_name="spend_per_session",
            ),
        ],
        label="target",
        exclude_columns=["customer_id", "event_ts"],
    )
    with mlflow.start_run() as run:
        train = ts.load_df()
        model = LinearRegression().fit(train.drop(columns="target"), train["target"])
        info = workspace.features.log_model(
            model, "model", flavor=mlflow.sklearn, training_set=ts, registered_model_name="churn"
        )
    client = MlflowClient()
    client.set_registered_model_alias("churn", "champion", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage("churn", "1", "Production")
    workspace.logged = {"info": info, "model": model, "train": train, "run": run}
    yield workspace
    workspace.close()


@pytest.fixture
def ws(module_ws):
    module_ws.configure_mlflow()
    return module_ws


@pytest.fixture
def logged(ws):
    return ws.logged


def test_spec_is_stored_inside_the_model(ws, logged):
    path = Path(mlflow.artifacts.download_artifacts(logged["info"].model_uri))
    spec = json.loads((path / "artifacts" / "feature_spec.json").read_text())
    assert spec["table_versions"] == {"main.fs.daily": 0}
    assert spec["functions"][0]["function"]["source"].startswith("def spend_per_session")
    assert spec["model_columns"] == ["sessions_7d", "spend_7d", "spend_per_session"]
    loaded = FeatureSpec.load("models:/churn/1")
    assert loaded.feature_tables == ["main.fs.daily"] and loaded.label == ["target"]
    reqs = (path / "requirements.txt").read_text()
    assert "lakebox" in reqs and "scikit-learn==" in reqs


def test_model_usage_and_lineage_are_recorded(ws, logged):
    models = ws.features.get_table(name="main.fs.daily").models
    assert [(m["name"], m["version"], m["table_version"]) for m in models] == [("churn", "1", 0)]
    run = mlflow.get_run(logged["run"].info.run_id)
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == {"main.fs.daily@v0"}


@pytest.mark.parametrize(
    "uri", ["models:/churn/1", "models:/churn@champion", "models:/churn/Production"]
)
def test_score_batch_with_registry_uris(ws, logged, uri):
    rows = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 9],
            "event_ts": pd.to_datetime(["2024-01-02", "2024-01-05", "2024-01-07", "2024-01-07"]),
        }
    )
    out = ws.features.score_batch(model_uri=uri, df=rows)
    assert list(out.columns) == [
        "customer_id",
        "event_ts",
        "sessions_7d",
        "spend_7d",
        "spend_per_session",
        "prediction",
    ]
    expected = logged["model"].predict(logged["train"].drop(columns="target").iloc[[0, 3, 4]])
    assert out["prediction"].iloc[:3].tolist() == pytest.approx(expected.tolist())
    assert out["sessions_7d"].tolist()[3] == 0  # unknown customer: the lookup's default


def test_columns_in_df_override_looked_up_values(ws, logged):
    rows = pd.DataFrame(
        {
            "customer_id": [1, 1],
            "spend_7d": [100.0, 0.0],
            "event_ts": pd.to_datetime(["2024-01-06", "2024-01-06"]),
        }
    )
    out = ws.features.score_batch(model_uri="models:/churn/1", df=rows, result_type="float")
    assert out["spend_7d"].tolist() == [100.0, 0.0]
    assert out["sessions_7d"].tolist() == [5, 5]  # looked up (day 5 row)
    assert out["spend_per_session"].tolist() == [20.0, 0.0]
    assert str(out["prediction"].dtype) == "float32"
    # without timestamps: the newest values
    latest = ws.features.score_batch(
        model_uri="models:/churn/1", df=pd.DataFrame({"customer_id": [2]})
    )
    assert latest["spend_7d"].tolist() == [9.0]


def test_score_batch_bad_input(ws, logged):
    with pytest.raises(InvalidInput, match=r"Lookup key column\(s\) \['customer_id'\]"):
        ws.features.score_batch(model_uri="models:/churn/1", df=pd.DataFrame({"id": [1]}))
    with pytest.raises(InvalidInput, match="result_type"):
        ws.features.score_batch(
            model_uri="models:/churn/1",
            df=pd.DataFrame({"customer_id": [1]}),
            result_type="decimal",
        )


def test_model_without_features_is_refused(ws):
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            LinearRegression().fit([[0], [1]], [0, 1]), name="m", pip_requirements=["scikit-learn"]
        )
    with pytest.raises(InvalidInput, match="not logged with ws.features.log_model"):
        ws.features.score_batch(model_uri=info.model_uri, df=pd.DataFrame({"x": [1]}))


def test_serving_path_spec_from_model_uri_and_online_lookup(ws, logged):
    ws.features.publish_table(name="main.fs.daily")
    spec = FeatureSpec.load("models:/churn@champion")
    features = spec.lookup_online(ws, [{"customer_id": 1}, {"customer_id": 42}])
    assert features["spend_7d"].tolist() == [50.0, 0.0]  # newest row; default for a miss
    assert features["spend_per_session"].tolist() == [10.0, 0.0]
    model = mlflow.pyfunc.load_model("models:/churn@champion")
    online = model.predict(features)
    offline = ws.features.score_batch(
        model_uri="models:/churn@champion", df=pd.DataFrame({"customer_id": [1, 42]})
    )
    assert list(online) == pytest.approx(offline["prediction"].tolist())
