"""Training sets: point-in-time lookups, defaults, functions, lineage and bad input."""

from datetime import timedelta

import mlflow
import pandas as pd
import pytest

from lakebox.errors import InvalidInput, NotFound
from lakebox.features import FeatureFunction, FeatureLookup


def spend_per_session(spend: float, sessions: int) -> float:
    return spend / sessions if sessions else 0.0


@pytest.fixture
def labels():
    return pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 2, 3, 4],
            "event_ts": pd.to_datetime(
                ["2024-01-02", "2024-01-04", "2024-01-03", "2024-01-09", "2024-01-05", "2024-01-05"]
            ),
            "churned": [0, 1, 0, 1, 1, 0],
        }
    )


def test_leakage_trap_future_value_never_appears(ws):
    ws.features.create_table(
        name="main.fs.trap",
        primary_keys="id",
        timeseries_columns="ts",
        df=pd.DataFrame(
            {
                "id": [1, 1],
                "ts": pd.to_datetime(["2024-01-01 00:00:00", "2024-01-10 00:00:01"]),
                "leak": [0.0, 999.0],
            }
        ),
    )
    rows = pd.DataFrame(
        {"id": [1, 1], "t": pd.to_datetime(["2024-01-10 00:00:00", "2024-01-10 00:00:01"])}
    )
    df = ws.features.create_training_set(
        df=rows,
        feature_lookups=[FeatureLookup("main.fs.trap", "id", timestamp_lookup_key="t")],
        label=None,
    ).load_df()
    assert df["leak"].tolist() == [0.0, 999.0]  # one second before: never the future value


def test_point_in_time_with_defaults_functions_and_exclusions(ws, feature_table, labels):
    ws.functions.create("main.fs.sps", spend_per_session)
    ts = ws.features.create_training_set(
        df=labels,
        feature_lookups=[
            FeatureLookup(
                feature_table,
                "customer_id",
                timestamp_lookup_key="event_ts",
                rename_outputs={"spend_7d": "spend"},
                default_values={"sessions_7d": 0},
            ),
            FeatureFunction(
                udf_name="main.fs.sps",
                input_bindings={"spend": "spend", "sessions": "sessions_7d"},
                output_name="sps",
            ),
        ],
        label="churned",
        exclude_columns=["event_ts"],
    )
    df = ts.load_df()
    assert list(df.columns) == ["customer_id", "churned", "sessions_7d", "spend", "sps"]
    assert df["sessions_7d"].tolist() == [2, 2, 0, 3, 0, 0]  # 3 starts on day 6, 4 is unknown
    assert df["spend"].tolist()[:4] == [20.0, 20.0, 0.0, 9.0]
    assert df["spend"].isna().tolist()[4:] == [True, True]
    assert df["sps"].tolist() == [10.0, 10.0, 0.0, 3.0, 0.0, 0.0]
    assert ts.label == ["churned"]


def test_lookback_window(ws, feature_table, labels):
    df = ws.features.create_training_set(
        df=labels,
        feature_lookups=[
            FeatureLookup(
                feature_table,
                "customer_id",
                timestamp_lookup_key="event_ts",
                lookback_window=timedelta(days=1),
            )
        ],
        label="churned",
    ).load_df()
    # customer 1 on day 4: newest row is day 2 (2 days old) -> outside the window
    assert df["spend_7d"].fillna(-1).tolist() == [20.0, -1, -1, -1, -1, -1]


def test_no_timestamp_key_means_latest_value(ws, feature_table, labels):
    df = ws.features.create_training_set(
        df=labels[["customer_id"]],
        feature_lookups=[FeatureLookup(feature_table, "customer_id", feature_names=["spend_7d"])],
        label=None,
    ).load_df()
    assert df["spend_7d"].fillna(-1).tolist() == [50.0, 50.0, 9.0, 9.0, 70.0, -1]


def test_training_set_is_pinned_to_table_versions(ws, feature_table, labels, daily):
    ts = ws.features.create_training_set(
        df=labels,
        feature_lookups=[
            FeatureLookup(feature_table, "customer_id", timestamp_lookup_key="event_ts")
        ],
        label="churned",
    )
    before = ts.load_df()
    ws.features.write_table(name=feature_table, df=daily.assign(spend_7d=-1.0))
    pd.testing.assert_frame_equal(ts.load_df(), before)
    assert ts.feature_spec.table_versions == {"main.fs.daily": 0}


def test_loading_inside_a_run_records_the_table_versions(ws, feature_table, labels):
    ts = ws.features.create_training_set(
        df=labels,
        feature_lookups=[
            FeatureLookup(feature_table, "customer_id", timestamp_lookup_key="event_ts")
        ],
        label="churned",
    )
    with mlflow.start_run() as run:
        ts.load_df()
    names = [d.dataset.name for d in mlflow.get_run(run.info.run_id).inputs.dataset_inputs]
    assert names == ["main.fs.daily@v0"]


# ------------------------------------------------------------------ bad input
def test_lookup_key_missing_from_df(ws, feature_table, labels):
    with pytest.raises(InvalidInput, match=r"Lookup key 'cust_id'.*Did you mean 'customer_id'"):
        ws.features.create_training_set(
            df=labels, feature_lookups=[FeatureLookup(feature_table, "cust_id")], label="churned"
        )


def test_feature_not_in_table(ws, feature_table, labels):
    with pytest.raises(InvalidInput, match=r"Feature 'spend_7' is not in.*Did you mean 'spend_7d'"):
        ws.features.create_training_set(
            df=labels,
            feature_lookups=[
                FeatureLookup(feature_table, "customer_id", feature_names=["spend_7"])
            ],
            label="churned",
        )


def test_timestamp_column_of_the_wrong_type(ws, feature_table, labels):
    bad = labels.assign(event_ts=labels["event_ts"].astype(str))
    with pytest.raises(InvalidInput, match=r"timestamp_lookup_key 'event_ts' has type string"):
        ws.features.create_training_set(
            df=bad,
            feature_lookups=[
                FeatureLookup(feature_table, "customer_id", timestamp_lookup_key="event_ts")
            ],
            label="churned",
        )


def test_unknown_function_and_table(ws, feature_table, labels):
    with pytest.raises(NotFound, match="Function 'main.fs.nope' does not exist"):
        ws.features.create_training_set(
            df=labels,
            feature_lookups=[FeatureFunction(udf_name="main.fs.nope", input_bindings={})],
            label="churned",
        )
    with pytest.raises(NotFound, match="Feature table 'main.fs.dialy' does not exist"):
        ws.features.create_training_set(
            df=labels,
            feature_lookups=[FeatureLookup("main.fs.dialy", "customer_id")],
            label="churned",
        )


def test_clashes_labels_and_bindings(ws, feature_table, labels):
    with pytest.raises(InvalidInput, match="clashes"):
        ws.features.create_training_set(
            df=labels.assign(spend_7d=1.0),
            feature_lookups=[FeatureLookup(feature_table, "customer_id")],
            label="churned",
        )
    with pytest.raises(InvalidInput, match=r"Label column\(s\) \['label'\]"):
        ws.features.create_training_set(df=labels, feature_lookups=[], label="label")
    ws.functions.create("main.fs.sps", spend_per_session)
    with pytest.raises(InvalidInput, match=r"Parameter\(s\) \['sessions'\].*not bound"):
        ws.features.create_training_set(
            df=labels,
            feature_lookups=[
                FeatureFunction(udf_name="main.fs.sps", input_bindings={"spend": "churned"})
            ],
            label=None,
        )
    with pytest.raises(InvalidInput, match="lookback_window but no timestamp_lookup_key"):
        ws.features.create_training_set(
            df=labels,
            feature_lookups=[
                FeatureLookup(feature_table, "customer_id", lookback_window=timedelta(days=1))
            ],
            label=None,
        )
