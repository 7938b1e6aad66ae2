"""The lakebox feature store: a runnable tutorial.

Run it with ``python docs/feature_store.py`` (uses ``$LAKEBOX_HOME`` or ``./.lakebox``).
Names follow Databricks' ``FeatureEngineeringClient``: if you know ``fe.create_table``,
``FeatureLookup`` and ``fe.score_batch``, you know this.
"""

from datetime import timedelta

import mlflow
import pandas as pd
from sklearn.linear_model import LogisticRegression

import lakebox
from lakebox import FeatureFunction, FeatureLookup
from lakebox.features import FeatureSpec

ws = lakebox.Workspace()
if ws.tables.exists("main.docs_fs.customer_daily"):  # from an earlier run of this script
    ws.features.drop_table(name="main.docs_fs.customer_daily")

# 1. A feature table: a Delta table plus its keys. With a timeseries column, rows are unique
#    per (customer_id, ts) and lookups are point-in-time.
daily = pd.DataFrame(
    {
        "customer_id": [1, 1, 1, 2, 2, 3],
        "ts": pd.to_datetime(
            ["2026-01-01", "2026-01-03", "2026-01-08", "2026-01-02", "2026-01-06", "2026-01-05"]
        ),
        "sessions_7d": [3, 5, 1, 0, 4, 9],
        "spend_7d": [30.0, 55.0, 4.0, 0.0, 38.0, 120.0],
    }
)
ws.features.create_table(
    name="main.docs_fs.customer_daily",
    primary_keys=["customer_id"],
    timeseries_columns="ts",
    df=daily,
    description="7-day usage per customer and day",
)
ws.features.set_feature_table_tag(name="main.docs_fs.customer_daily", key="team", value="growth")
# New rows are merged on the primary key (mode="overwrite" replaces the table).
ws.features.write_table(
    name="main.docs_fs.customer_daily",
    df=daily.tail(1).assign(sessions_7d=10),
    mode="merge",
)


# 2. A Python UDF in the catalog. Its source and signature are stored, so models carry it.
def spend_per_session(spend: float, sessions: int) -> float:
    return spend / sessions if sessions else 0.0


ws.functions.create("main.docs_fs.spend_per_session", spend_per_session, replace=True)

# 3. A training set. Labels arrive with the time they were known; each row gets the newest
#    feature row at or before that time (never a later one), within the lookback window.
labels = pd.DataFrame(
    {
        "customer_id": [1, 1, 2, 3, 4],
        "event_ts": pd.to_datetime(
            ["2026-01-02", "2026-01-07", "2026-01-05", "2026-01-04", "2026-01-05"]
        ),
        "churned": [0, 1, 0, 1, 0],
    }
)
training_set = ws.features.create_training_set(
    df=labels,
    feature_lookups=[
        FeatureLookup(
            "main.docs_fs.customer_daily",
            "customer_id",
            timestamp_lookup_key="event_ts",
            lookback_window=timedelta(days=7),
            default_values={"sessions_7d": 0, "spend_7d": 0.0},
        ),
        FeatureFunction(
            udf_name="main.docs_fs.spend_per_session",
            input_bindings={"spend": "spend_7d", "sessions": "sessions_7d"},
            output_name="spend_per_session",
        ),
    ],
    label="churned",
    exclude_columns=["customer_id", "event_ts"],
)
train = training_set.load_df()
print(train)
# Customer 3's first row is on Jan 5, after its label time: no leakage, the default is used.
assert train["spend_7d"].tolist() == [30.0, 55.0, 0.0, 0.0, 0.0]

# 4. A model that carries its features: the feature spec is stored inside the MLflow model.
with mlflow.start_run():
    model = LogisticRegression().fit(train.drop(columns="churned"), train["churned"])
    info = ws.features.log_model(
        model,
        "model",
        flavor=mlflow.sklearn,
        training_set=training_set,
        registered_model_name="docs_churn",
    )
version = info.registered_model_version

# 5. Batch scoring with only the keys (and times): features are joined for you. Columns
#    already in the DataFrame override looked-up values.
scored = ws.features.score_batch(
    model_uri=f"models:/docs_churn/{version}", df=pd.DataFrame({"customer_id": [1, 2, 3]})
)
what_if = ws.features.score_batch(
    model_uri=f"models:/docs_churn/{version}",
    df=pd.DataFrame({"customer_id": [1, 1], "spend_7d": [0.0, 500.0]}),
)
assert what_if["spend_7d"].tolist() == [0.0, 500.0]
print(scored[["customer_id", "spend_7d", "sessions_7d", "prediction"]])

# 6. The online store: the newest row per key, for low-latency lookups.
published = ws.features.publish_table(name="main.docs_fs.customer_daily")  # SQLite by default
print(f"published {published['num_rows']} rows to {published['store_uri']}")
print(ws.features.lookup_online("main.docs_fs.customer_daily", [{"customer_id": 1}]))
# Redis works the same with online_store="redis://127.0.0.1:6379/0" (pip install 'lakebox[redis]').

# 7. What serving does: load the spec from the model and compute a request's features online.
spec = FeatureSpec.load(f"models:/docs_churn/{version}")
request = spec.lookup_online(ws, [{"customer_id": 1}, {"customer_id": 99}])
print(request[spec.model_columns])
print(mlflow.pyfunc.load_model(f"models:/docs_churn/{version}").predict(request))

info = ws.features.get_table(name="main.docs_fs.customer_daily")
print(
    f"{info.name}: keys {info.primary_keys}, features {info.features}, tags {info.tags}, "
    f"used by {[(m['name'], m['version']) for m in info.models]}"
)
