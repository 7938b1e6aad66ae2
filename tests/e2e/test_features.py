"""The feature store end to end: the `lakebox features` CLI, publishing to a real Redis and
serving-style lookups from a registered model's feature spec."""

import os
import subprocess
import sys

import mlflow
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import lakebox
from lakebox.cli import app
from lakebox.features import FeatureLookup, FeatureSpec

DAILY = pd.DataFrame(
    {
        "customer_id": [1, 1, 2, 3],
        "ts": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-02", "2024-01-02"]),
        "sessions": [1, 4, 0, 2],
        "spend": [5.0, 30.0, 0.0, 8.0],
    }
)


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "ws"
    ws = lakebox.Workspace(home)
    ws.features.create_table(
        name="main.fs.daily",
        primary_keys="customer_id",
        timeseries_columns="ts",
        df=DAILY,
        description="usage per day",
    )
    ws.features.set_feature_table_tag(name="main.fs.daily", key="team", value="growth")
    ws.close()
    return home


def invoke(home, *args, ok=True):
    result = CliRunner().invoke(app, ["--home", str(home), "features", *args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_cli_list_show_publish(home, redis_url):
    out = invoke(home, "list").output
    assert "main.fs.daily" in out and "customer_id, ts" in out
    out = invoke(home, "publish", "main.fs.daily").output
    assert "Published 3 row(s) of main.fs.daily (version 0)" in out
    out = invoke(
        home,
        "publish",
        "main.fs.daily",
        "--online-store",
        redis_url,
        "--filter",
        "customer_id < 3",
        "--mode",
        "overwrite",
    ).output
    assert f"Published 2 row(s) of main.fs.daily (version 0) to {redis_url}" in out
    out = invoke(home, "show", "main.fs.daily").output
    assert "usage per day" in out and "team=growth" in out and "features: sessions, spend" in out
    assert "published online" in out and "redis://" in out


def test_cli_errors_are_one_line(home):
    result = invoke(home, "publish", "main.fs.daily", "--mode", "append", ok=False)
    assert result.exit_code == 1 and "mode must be 'merge' or 'overwrite'" in result.output
    result = invoke(home, "show", "main.fs.dialy", ok=False)
    assert result.exit_code == 1 and "Did you mean 'main.fs.daily'" in result.output
    assert "Traceback" not in result.output


def test_real_script(home):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "_MLFLOW"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    out = subprocess.run(
        [sys.executable, "-m", "lakebox", "--home", str(home), "features", "list"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    assert "main.fs.daily" in out


def test_model_served_from_redis(home, redis_url):
    ws = lakebox.Workspace(home)
    labels = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "event_ts": pd.to_datetime(["2024-01-02", "2024-01-04", "2024-01-03", "2024-01-03"]),
            "churned": [1, 0, 1, 0],
        }
    )
    ts = ws.features.create_training_set(
        df=labels,
        label="churned",
        exclude_columns=["customer_id", "event_ts"],
        feature_lookups=[
            FeatureLookup("main.fs.daily", "customer_id", timestamp_lookup_key="event_ts")
        ],
    )
    train = ts.load_df()
    model = LogisticRegression().fit(train[["sessions", "spend"]], train["churned"])
    with mlflow.start_run():
        ws.features.log_model(
            model, "model", flavor=mlflow.sklearn, training_set=ts, registered_model_name="churn"
        )
    ws.features.publish_table(name="main.fs.daily", online_store=redis_url)
    assert ws.features.lookup_online("main.fs.daily", [{"customer_id": 1}]) == [
        {
            "customer_id": 1,
            "ts": pd.Timestamp("2024-01-03").to_pydatetime(),
            "sessions": 4,
            "spend": 30.0,
        }
    ]
    spec = FeatureSpec.load("models:/churn/1")
    features = spec.lookup_online(ws, pd.DataFrame({"customer_id": [1, 2, 9]}))
    assert features["spend"].tolist()[:2] == [30.0, 0.0] and pd.isna(features["spend"][2])
    batch = ws.features.score_batch(
        model_uri="models:/churn/1", df=pd.DataFrame({"customer_id": [1, 2]})
    )
    online = mlflow.pyfunc.load_model("models:/churn/1").predict(features.iloc[:2])
    assert list(online) == batch["prediction"].tolist()
    ws.close()
