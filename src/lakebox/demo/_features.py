"""Demo step: a feature table, a point-in-time training set, a model that carries its
features, score_batch and the online store."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import mlflow

from lakebox.demo import _data

if TYPE_CHECKING:
    from lakebox.demo import DemoContext

TITLE = "Feature store: point-in-time training set, feature-aware model, score_batch, online"
TABLE = "main.fs.customer_daily"
# Its own name: the serving step serves 'churn' (trained on raw columns) with raw rows.
MODEL = "churn_features"
DAILY_SQL = """
SELECT customer_id, ts,
       CAST(sum(sessions) OVER w AS BIGINT) AS sessions_7d,
       round(sum(spend) OVER w, 2)          AS spend_7d,
       CAST(sum(tickets) OVER w AS BIGINT)  AS tickets_7d
FROM main.raw.activity
WINDOW w AS (PARTITION BY customer_id ORDER BY ts
             RANGE BETWEEN INTERVAL 7 DAYS PRECEDING AND CURRENT ROW)
"""


def spend_per_session(spend: float, sessions: int) -> float:
    """Registered as a UDF: models logged with it carry this source."""
    return spend / sessions if sessions else 0.0


def run(ctx: DemoContext) -> None:
    from sklearn.linear_model import LogisticRegression

    from lakebox.errors import NotFound
    from lakebox.features import FeatureFunction, FeatureLookup

    ws = ctx.ws
    try:
        ws.features.drop_table(name=TABLE)
    except NotFound:
        ws.tables.drop(TABLE, missing_ok=True)
    daily = ws.sql(DAILY_SQL)
    ws.features.create_table(
        name=TABLE,
        primary_keys=["customer_id"],
        timeseries_columns="ts",
        df=daily,
        description="7-day usage per customer and day",
    )
    ws.functions.create(
        "main.fs.spend_per_session", "lakebox.demo._features:spend_per_session", replace=True
    )
    ctx.say(
        f"feature table {TABLE}: {daily.num_rows:,} rows keyed by customer_id + ts; "
        "UDF main.fs.spend_per_session registered with its source"
    )

    activity = ws.tables.read(
        "main.raw.activity", columns=["customer_id", "ts", "sessions", "tickets"]
    )
    labels = _data.labels(activity)  # customer_id, event_ts, churned (known after the fact)
    training_set = ws.features.create_training_set(
        df=labels,
        feature_lookups=[
            FeatureLookup(
                TABLE,
                "customer_id",
                timestamp_lookup_key="event_ts",
                lookback_window=timedelta(days=7),
                feature_names=["sessions_7d", "spend_7d", "tickets_7d"],
            ),
            FeatureFunction(
                udf_name="main.fs.spend_per_session",
                input_bindings={"spend": "spend_7d", "sessions": "sessions_7d"},
                output_name="spend_per_session",
            ),
        ],
        label="churned",
        exclude_columns=["customer_id", "event_ts"],
    )
    with mlflow.start_run(run_name="churn-features") as run:
        train = training_set.load_df()
        X, y = train.drop(columns="churned"), train["churned"]
        model = LogisticRegression(max_iter=500).fit(X, y)
        mlflow.log_metric("train_accuracy", float(model.score(X, y)))
        info = ws.features.log_model(
            model,
            "model",
            flavor=mlflow.sklearn,
            training_set=training_set,
            registered_model_name=MODEL,
        )
    ctx.say(
        f"trained on {len(train):,} point-in-time rows ({', '.join(X.columns)}); "
        f"registered '{MODEL}' version {info.registered_model_version} with its feature spec"
    )

    uri = f"models:/{MODEL}/{info.registered_model_version}"
    ids = labels[["customer_id"]].head(500)
    scored = ws.features.score_batch(model_uri=uri, df=ids)
    ctx.say(
        f"score_batch({uri}) with only customer_id: {len(scored):,} rows, "
        f"mean churn prediction {scored['prediction'].mean():.3f}"
    )
    published = ws.features.publish_table(name=TABLE)
    row = ws.features.lookup_online(TABLE, [{"customer_id": 42}])[0] or {}
    ctx.say(
        f"published {published['num_rows']:,} latest rows to the SQLite online store; "
        f"customer 42 online: sessions_7d={row.get('sessions_7d')}, "
        f"spend_7d={row.get('spend_7d')}"
    )
    ctx.state.update(
        feature_table=TABLE,
        feature_run_id=run.info.run_id,
        feature_model_uri=info.model_uri,
        feature_model_version=info.registered_model_version,
    )
