"""Just-in-time features: a model logged with a feature spec is served from request keys,
its features read from the online store."""

from __future__ import annotations

import pytest

from lakebox.errors import InvalidInput


def test_request_carries_keys_and_features_come_from_the_online_store(ws):
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from lakebox.features import FeatureLookup

    daily = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "sessions": [1, 4, 0],
            "spend": [5.0, 30.0, 0.0],
        }
    )
    ws.features.create_table(
        name="main.fs.daily", primary_keys="customer_id", timeseries_columns="ts", df=daily
    )
    labels = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "event_ts": pd.to_datetime(["2024-02-01"] * 3),
            "y": [1.0, 2.0, 3.0],
        }
    )
    training = ws.features.create_training_set(
        df=labels,
        label="y",
        exclude_columns=["customer_id", "event_ts"],
        feature_lookups=[
            FeatureLookup("main.fs.daily", "customer_id", timestamp_lookup_key="event_ts")
        ],
    )
    frame = training.load_df()
    model = LinearRegression().fit(frame[["sessions", "spend"]], frame["y"])
    with mlflow.start_run():
        ws.features.log_model(
            model,
            "model",
            flavor=mlflow.sklearn,
            training_set=training,
            registered_model_name="jit",
        )
    ws.features.publish_table(name="main.fs.daily")
    record = ws.serving.create_endpoint("jit", [{"entity_name": "jit", "entity_version": "1"}])
    assert record.ready == "READY", record.reason

    answer = ws.serving.query("jit", [{"customer_id": 2}, {"customer_id": 1}])
    expected = model.predict(pd.DataFrame({"sessions": [4, 1], "spend": [30.0, 5.0]}))
    assert answer["predictions"] == pytest.approx(list(expected))
    # a feature sent with the request wins over the online value
    given = ws.serving.query("jit", [{"customer_id": 2, "sessions": 0, "spend": 0.0}])
    assert given["predictions"] == pytest.approx(
        list(model.predict(pd.DataFrame({"sessions": [0], "spend": [0.0]})))
    )
    with pytest.raises(InvalidInput, match="No value for feature 'sessions'.*customer_id"):
        ws.serving.query("jit", [{"customer_id": 99}])
    with pytest.raises(InvalidInput, match="Lookup key"):
        ws.serving.query("jit", [{"account": 1}])
