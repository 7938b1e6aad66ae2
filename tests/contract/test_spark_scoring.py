"""Batch scoring, ``score_batch`` and training sets give the same results on both engines.

One workspace folder is opened twice, as ``Workspace(home, engine="local")`` and
``Workspace(home, engine="spark")`` (a ``local[2]`` session shared by the test session), over
the same feature table, feature function and registered feature-aware model. Each test runs on
both engines and checks the same expected values, computed here from the model object. Spark
tests are marked ``spark``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from sklearn.linear_model import LinearRegression

import lakebox
from lakebox.features import FeatureFunction, FeatureLookup


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=timezone.utc)


def spend_x_sessions(spend: float, sessions: int) -> float:
    return (spend or 0.0) * (sessions or 0)


# customer 1: days 1, 3 (and a late day-2 row); customer 2: day 2; customer 3: none
DAILY = pa.table(
    {
        "customer_id": pa.array([1, 1, 2, 1], pa.int64()),
        "ts": pa.array([t(1), t(3), t(2), t(2)], pa.timestamp("us", tz="UTC")),
        "spend": [1.0, 3.0, 5.0, 2.0],
        "sessions": pa.array([1, 2, 3, 4], pa.int32()),
    }
)
# what the point-in-time join gives each request row (spend, sessions; defaults 0.0 and 0)
REQUESTS = pa.table(
    {
        "request_id": pa.array(range(8), pa.int64()),
        "customer_id": pa.array([1, 1, 1, 1, 2, 2, 3, 1], pa.int64()),
        "event_ts": pa.array(
            [t(1), t(2, 6), t(3), t(9), t(1), t(4), t(5), t(1, 1)],
            pa.timestamp("us", tz="UTC"),
        ),
        "region": ["eu", "eu", "us", "us", "eu", "us", "eu", "us"],
    }
)
FEATURES = {
    "spend": [1.0, 2.0, 3.0, 3.0, 0.0, 5.0, 0.0, 1.0],
    "sessions": [1, 4, 2, 2, 0, 3, 0, 1],
}


@pytest.fixture(scope="session")
def spark_session_started() -> Iterator[None]:
    if not os.environ.get("CI"):
        pytest.importorskip("pyspark", reason="pip install 'lakebox[spark]' to test the engine")
    from lakebox.engines._spark_session import spark_session, stop_sessions

    spark_session("local[2]", conf={"spark.sql.shuffle.partitions": "2"})
    yield
    stop_sessions()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A workspace with a feature table, a feature function, a registered model (trained on
    a point-in-time training set) and a table of request rows."""
    path = tmp_path_factory.mktemp("scoring") / "ws"
    ws = lakebox.Workspace(path)
    try:
        ws.features.create_table(
            name="main.fs.daily",
            primary_keys=["customer_id", "ts"],
            timeseries_columns="ts",
            df=DAILY,
        )
        ws.functions.create("main.fs.spend_x_sessions", spend_x_sessions)
        ws.tables.create("main.raw.requests", REQUESTS, partition_by=["region"])
        training = ws.features.create_training_set(
            df=REQUESTS.append_column("target", pa.array(np.arange(8) * 1.5 + 1)),
            feature_lookups=lookups(),
            label="target",
            exclude_columns=["request_id", "customer_id", "event_ts", "region"],
        )
        train = training.load_df()
        model = LinearRegression().fit(train.drop(columns="target"), train["target"])
        with mlflow.start_run():
            ws.features.log_model(
                model,
                "model",
                flavor=mlflow.sklearn,
                training_set=training,
                registered_model_name="spend_model",
            )
        features = pd.DataFrame(FEATURES)
        features["spend_x_sessions"] = features["spend"] * features["sessions"]
        expected = model.predict(features[["spend", "sessions", "spend_x_sessions"]])
        yield {"path": path, "expected": expected, "train": train}
    finally:
        ws.close()


def lookups() -> list[Any]:
    return [
        FeatureLookup(
            "main.fs.daily",
            "customer_id",
            timestamp_lookup_key="event_ts",
            default_values={"spend": 0.0, "sessions": 0},
        ),
        FeatureFunction(
            udf_name="main.fs.spend_x_sessions",
            input_bindings={"spend": "spend", "sessions": "sessions"},
            output_name="spend_x_sessions",
        ),
    ]


@pytest.fixture(params=["local", pytest.param("spark", marks=pytest.mark.spark)])
def ws(request: pytest.FixtureRequest, home: dict[str, Any]) -> Iterator[lakebox.Workspace]:
    if request.param == "spark":
        request.getfixturevalue("spark_session_started")
    workspace = lakebox.Workspace(home["path"], engine=request.param, spark_master="local[2]")
    workspace.configure_mlflow()
    workspace.expected = home["expected"]  # type: ignore[attr-defined]
    workspace.train = home["train"]  # type: ignore[attr-defined]
    yield workspace
    workspace.close()


def collect(ws: lakebox.Workspace, result: Any) -> pd.DataFrame:
    """The rows of a result, as pandas sorted by request_id; checks the engine's frame type."""
    if ws.settings.engine.name == "spark":
        from lakebox.engines.spark import is_spark_frame

        assert is_spark_frame(result)
        result = result.toArrow().to_pandas()
    else:
        assert isinstance(result, pd.DataFrame)
    return result.sort_values("request_id").reset_index(drop=True)


# ----------------------------------------------------------------------------- score_table
def test_score_table_commits_the_same_predictions_once(ws) -> None:
    from lakebox.deploy import score_table

    out = f"main.preds.spend_{ws.settings.engine.name}"
    result = score_table(
        "models:/spend_model/1", "main.raw.requests", out, ws=ws, partition_by=["region"]
    )
    assert (result.rows, result.input_version, result.model_version) == (8, 0, "1")
    dt = ws.tables.delta_table(out)
    assert dt.metadata().partition_columns == ["region"]
    got = dt.to_pandas().sort_values("request_id").reset_index(drop=True)
    assert got.columns.tolist() == [
        "request_id", "customer_id", "event_ts", "region", "spend", "sessions",
        "spend_x_sessions", "prediction", "model_name", "model_version", "scored_at",
    ]  # fmt: skip
    assert got["spend"].tolist() == FEATURES["spend"]
    assert got["sessions"].tolist() == FEATURES["sessions"]
    np.testing.assert_allclose(got["prediction"].to_numpy(), ws.expected)
    assert set(got["model_version"]) == {"1"} and set(got["model_name"]) == {"spend_model"}
    assert got["scored_at"].nunique() == 1
    # one data commit, carrying the input and model versions, whichever engine wrote it
    history = dt.history()
    data_commits = [h for h in history if h.get("operation") != "CREATE TABLE"]
    assert len(data_commits) == 1
    info = data_commits[0]
    assert info["lakebox.input_table"] == "main.raw.requests"
    assert info["lakebox.input_version"] == "0"
    assert (info["lakebox.model_name"], info["lakebox.model_version"]) == ("spend_model", "1")
    schema = pa.schema(dt.schema().to_arrow())
    assert schema.field("sessions").type == pa.int32()
    assert schema.field("scored_at").type == pa.timestamp("us", tz="UTC")

    # appending again keeps the table's schema and adds one more commit
    again = score_table("models:/spend_model/1", "main.raw.requests", out, ws=ws)
    assert again.output_version == dt.version() + 1
    assert len(DeltaTable(ws.tables.location(out)).to_pyarrow_table()) == 16


def test_score_table_overwrite_and_keep_columns(ws) -> None:
    from lakebox.deploy import score_table

    out = f"main.preds.small_{ws.settings.engine.name}"
    score_table("models:/spend_model/1", "main.raw.requests", out, ws=ws)
    result = score_table(
        "models:/spend_model/1",
        "main.raw.requests",
        out,
        ws=ws,
        mode="overwrite",
        keep_columns=["request_id"],
        result_column="score",
    )
    got = ws.tables.read(out).sort_values("request_id").reset_index(drop=True)
    assert got.columns.tolist() == [
        "request_id", "score", "model_name", "model_version", "scored_at",
    ]  # fmt: skip
    np.testing.assert_allclose(got["score"].to_numpy(), ws.expected)
    assert result.rows == 8


# ----------------------------------------------------------------------------- score_batch
def test_score_batch_returns_the_engines_frame_with_the_same_rows(ws) -> None:
    engine = ws.features.engine
    # only the keys and lookup times; the engine's own frame type goes in (Spark or Arrow)
    df = engine.frame(REQUESTS.select(["request_id", "customer_id", "event_ts"]))
    got = collect(ws, ws.features.score_batch(model_uri="models:/spend_model/1", df=df))
    assert got.columns.tolist() == [
        "request_id", "customer_id", "event_ts", "spend", "sessions", "spend_x_sessions",
        "prediction",
    ]  # fmt: skip
    assert got["spend"].tolist() == FEATURES["spend"]
    np.testing.assert_allclose(got["prediction"].to_numpy(), ws.expected)
    # pandas in: pandas out on local, a Spark DataFrame on spark; given columns win
    given = REQUESTS.select(["request_id", "customer_id", "event_ts"]).to_pandas()
    given["spend"] = 100.0
    again = collect(
        ws,
        ws.features.score_batch(model_uri="models:/spend_model/1", df=given, result_type="float"),
    )
    assert again["spend"].tolist() == [100.0] * 8
    assert again["spend_x_sessions"].tolist() == [100.0 * s for s in FEATURES["sessions"]]
    assert again["prediction"].dtype == np.float32


def test_training_set_load_df_is_the_engines_frame(ws) -> None:
    engine = ws.features.engine
    labels = REQUESTS.append_column("target", pa.array(np.arange(8) * 1.5 + 1))
    df = engine.frame(labels)
    if ws.settings.engine.name == "spark":
        df = df.repartition(3)  # rows in no fixed order: the join must not depend on it
    training = ws.features.create_training_set(
        df=df,
        feature_lookups=lookups(),
        label="target",
        exclude_columns=["customer_id", "event_ts", "region"],
    )
    got = collect(ws, training.load_df())
    assert got.columns.tolist() == [
        "request_id", "target", "spend", "sessions", "spend_x_sessions",
    ]  # fmt: skip
    assert got["sessions"].tolist() == FEATURES["sessions"]
    expected = ws.train.assign(request_id=range(8))[got.columns.tolist()]
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    # load_arrow keeps the input's row order on every engine (a repartitioned Spark
    # DataFrame has none: compare by request_id there)
    arrow = training.load_arrow()
    if ws.settings.engine.name == "spark":
        arrow = arrow.sort_by("request_id")
    assert arrow.column("request_id").to_pylist() == list(range(8))
    assert arrow.column("spend").to_pylist() == FEATURES["spend"]


@pytest.mark.spark
def test_spark_conf_setting_reaches_the_engine(tmp_path, spark_session_started) -> None:
    (tmp_path / "lakebox.toml").write_text(
        '[engine]\nname = "spark"\nspark_master = "local[2]"\n'
        'spark_conf = { "spark.sql.shuffle.partitions" = "3" }\n'
    )
    ws = lakebox.Workspace(tmp_path)
    try:
        assert ws.settings.engine.spark_conf == {"spark.sql.shuffle.partitions": "3"}
        engine = ws.features.engine
        assert engine.name == "spark"
        assert engine.conf == {"spark.sql.shuffle.partitions": "3"}
    finally:
        ws.close()


# ----------------------------------------------------------------------------- streaming
def test_stream_scores_with_features_joined_on_the_engine(ws) -> None:
    from lakebox.deploy import predictor

    name = ws.settings.engine.name
    score = predictor("models:/spend_model/1", ws=ws, keep_columns=["request_id"])
    status = (
        ws.streams.read_delta("main.raw.requests")
        .map(score)
        .write_delta(f"main.preds.stream_{name}", query_name=f"score_{name}")
        .run()
    )
    assert status["state"] == "STOPPED"
    got = ws.tables.read(f"main.preds.stream_{name}").sort_values("request_id")
    assert got.columns.tolist() == [
        "request_id", "prediction", "model_name", "model_version", "scored_at",
    ]  # fmt: skip
    np.testing.assert_allclose(got["prediction"].to_numpy(), ws.expected)
    assert set(got["model_version"]) == {"1"}


@pytest.mark.spark
def test_spark_executors_load_a_shipped_model_copy(tmp_path, spark_session_started) -> None:
    """On a cluster the executors cannot read the driver's model folder: the engine ships it
    (SparkContext.addFile) and the predictor loads that copy. Deleting the driver's folder
    reproduces a remote executor on one machine."""
    import shutil

    import mlflow.sklearn

    from lakebox.deploy import ModelRef, Predictor
    from lakebox.engines.spark import SparkEngine

    x = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 0.0]})
    path = tmp_path / "model"
    mlflow.sklearn.save_model(
        LinearRegression().fit(x, [1.0, 2.0, 4.0]),
        str(path),
        input_example=x.head(1),
        serialization_format="cloudpickle",
        pip_requirements=["scikit-learn"],
    )
    rows = pa.table({"id": np.arange(50), "a": np.arange(50) / 10, "b": np.arange(50) % 2.0})
    ref = ModelRef(str(path), None, None, str(path))
    expected = Predictor(ref, keep_columns=["id"], scored_at=t(9))(rows)
    engine = SparkEngine(spark_master="local[2]")
    engine.ship(str(path))
    shutil.rmtree(path)
    predict = Predictor(ref, keep_columns=["id"], scored_at=t(9))
    got = engine.score(engine.to_spark(rows).repartition(2), predict).toArrow().sort_by("id")
    np.testing.assert_allclose(got["prediction"].to_numpy(), expected["prediction"].to_numpy())
