"""Every engine gives the same results on the same Delta tables.

The ``local`` engine (DuckDB/Arrow) and the ``spark`` engine (a ``local[2]`` SparkSession, one
per test session) run the same point-in-time joins, latest-row selections and duplicate checks
over real Delta tables; each test compares both against the expected values, and so with each
other. Spark tests are marked ``spark``; in CI (``CI`` set) a missing pyspark or Java fails
instead of skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lakebox.engines import Engine, FeatureJoin, TableSnapshot
from lakebox.engines.local import LocalEngine


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def spark_engine() -> Iterator[Engine]:
    if not os.environ.get("CI"):
        pytest.importorskip("pyspark", reason="pip install 'lakebox[spark]' to test the engine")
    from lakebox.engines._spark_session import stop_sessions
    from lakebox.engines.spark import SparkEngine

    engine = SparkEngine(spark_master="local[2]", spark_conf={"spark.sql.shuffle.partitions": "2"})
    engine.spark  # noqa: B018 - start the JVM once, here
    yield engine
    stop_sessions()


@pytest.fixture(params=["local", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "local":
        return LocalEngine(threads=2)
    engine: Engine = request.getfixturevalue("spark_engine")
    return engine


def snapshot(path: Path, name: str, version: int | None = None) -> TableSnapshot:
    dt = DeltaTable(str(path), version=version)
    return TableSnapshot(name, str(path), dt.version(), dt.to_pyarrow_dataset())


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("engines")
    daily = root / "daily"
    # version 0: customer 1 on days 1, 3, 5 (day 5 with null spend); customer 2 on day 2
    write_deltalake(
        str(daily),
        pa.table(
            {
                "customer_id": pa.array([1, 1, 1, 2], pa.int64()),
                "ts": pa.array([t(1), t(3), t(5), t(2)], pa.timestamp("us", tz="UTC")),
                "spend": [10.0, 11.0, None, 20.0],
                "sessions": pa.array([1, 2, 3, 4], pa.int32()),
                "region": ["eu", "eu", "eu", "us"],
            }
        ),
        partition_by=["region"],
    )
    # version 1: a late row for the past (customer 1, day 4) and customer 3 from day 6
    write_deltalake(
        str(daily),
        pa.table(
            {
                "customer_id": pa.array([1, 3], pa.int64()),
                "ts": pa.array([t(4), t(6)], pa.timestamp("us", tz="UTC")),
                "spend": [14.0, 30.0],
                "sessions": pa.array([None, 6], pa.int32()),
                "region": ["eu", "us"],
            }
        ),
        mode="append",
    )
    profile = root / "profile"
    write_deltalake(
        str(profile),
        pa.table({"cid": pa.array([1, 2, 3], pa.int64()), "tier": ["gold", None, "free"]}),
    )
    return {"daily": daily, "profile": profile}


ENTITIES = pa.table(
    {
        "customer_id": pa.array([1, 1, 1, 1, 2, 2, 3, 4, None, 1], pa.int64()),
        "event_ts": pa.array(
            [t(3), t(3), t(4, 12), t(9), t(1), t(2, 6), t(7), t(7), t(7), None],
            pa.timestamp("us", tz="UTC"),
        ),
        "label": list("abcdefghij"),
    }
)


def test_point_in_time_join_ties_late_rows_nulls_and_missing_keys(engine, tables) -> None:
    daily = snapshot(tables["daily"], "main.fs.daily")
    join = FeatureJoin(
        daily,
        [("customer_id", "customer_id")],
        {"spend": "spend", "sessions": "sessions"},
        entity_timestamp="event_ts",
        feature_timestamp="ts",
    )
    out = engine.join_features(ENTITIES, [join])
    assert out.column_names == ["customer_id", "event_ts", "label", "spend", "sessions"]
    assert out.column("label").to_pylist() == list("abcdefghij")
    # a, b: ties (event at the feature time) included, duplicates both kept; c: the late day-4
    # row; d: the newest row has a null spend; e: only a future row; h: unknown; i, j: nulls
    assert out.column("spend").to_pylist() == [
        11.0, 11.0, 14.0, None, None, 20.0, 30.0, None, None, None,
    ]  # fmt: skip
    assert out.column("sessions").to_pylist() == [2, 2, None, 3, None, 4, 6, None, None, None]
    assert out.schema.field("sessions").type == pa.int32()
    if engine.name == "spark":  # Spark DataFrame in, Spark DataFrame out: the same rows
        frame = engine.join_frame(engine.to_spark(ENTITIES), [join])
        assert frame.toArrow().sort_by("label").to_pylist() == out.to_pylist()


def test_snapshot_version_hides_rows_committed_later(engine, tables) -> None:
    v0 = snapshot(tables["daily"], "main.fs.daily", version=0)
    join = FeatureJoin(v0, [("customer_id", "customer_id")], {"spend": "x"}, "event_ts", "ts")
    out = engine.join_features(ENTITIES, [join])
    assert out.column("x").to_pylist() == [11.0, 11.0, 11.0, None, None, 20.0] + [None] * 4


def test_lookback_window_and_defaults(engine, tables) -> None:
    daily = snapshot(tables["daily"], "main.fs.daily")
    join = FeatureJoin(
        daily,
        [("customer_id", "customer_id")],
        {"spend": "spend_1d", "sessions": "sessions_1d"},
        entity_timestamp="event_ts",
        feature_timestamp="ts",
        lookback=timedelta(days=1),
        defaults={"spend_1d": -1.0, "sessions_1d": 0},
    )
    out = engine.join_features(ENTITIES, [join])
    # d (day 9) is 4 days past its newest row; g (day 7) is 1 day after day 6: inside
    assert out.column("spend_1d").to_pylist() == [
        11.0, 11.0, 14.0, -1.0, -1.0, 20.0, 30.0, -1.0, -1.0, -1.0,
    ]  # fmt: skip
    assert out.column("sessions_1d").to_pylist() == [2, 2, 0, 0, 0, 4, 6, 0, 0, 0]


def test_several_joins_newest_values_and_tables_without_time(engine, tables) -> None:
    daily = snapshot(tables["daily"], "main.fs.daily")
    profile = snapshot(tables["profile"], "main.fs.profile")
    out = engine.join_features(
        ENTITIES,
        [
            FeatureJoin(
                daily, [("customer_id", "customer_id")], {"spend": "pit"}, "event_ts", "ts"
            ),
            # no entity time: the newest row per key
            FeatureJoin(daily, [("customer_id", "customer_id")], {"spend": "newest"}, None, "ts"),
            # no time at all: the one row per key, joined under another key name
            FeatureJoin(profile, [("customer_id", "cid")], {"tier": "tier"}),
        ],
    )
    assert out.column_names[-3:] == ["pit", "newest", "tier"]
    assert out.column("newest").to_pylist() == [None] * 4 + [20.0, 20.0, 30.0, None, None, None]
    assert out.column("tier").to_pylist() == ["gold"] * 4 + [None, None, "free"] + [None] * 2 + [
        "gold"
    ]


def test_date_lookup_times_and_no_joins(engine, tables) -> None:
    daily = snapshot(tables["daily"], "main.fs.daily")
    entities = pa.table(
        {"customer_id": pa.array([1, 2], pa.int64()), "day": [date(2024, 1, 4)] * 2}
    )
    join = FeatureJoin(daily, [("customer_id", "customer_id")], {"spend": "spend"}, "day", "ts")
    assert engine.join_features(entities, [join]).column("spend").to_pylist() == [14.0, 20.0]
    assert engine.join_features(entities, []).equals(entities)


def test_latest_rows_with_filter_and_duplicate_keys(engine, tables) -> None:
    daily = snapshot(tables["daily"], "main.fs.daily")
    rows = engine.latest_rows(
        daily, keys=["customer_id"], timestamp="ts", columns=["customer_id", "ts", "spend"]
    )
    got = sorted(rows.to_pylist(), key=lambda r: r["customer_id"])
    assert got == [
        {"customer_id": 1, "ts": t(5), "spend": None},
        {"customer_id": 2, "ts": t(2), "spend": 20.0},
        {"customer_id": 3, "ts": t(6), "spend": 30.0},
    ]
    assert rows.schema == pa.schema(
        [("customer_id", pa.int64()), ("ts", pa.timestamp("us", tz="UTC")), ("spend", pa.float64())]
    )
    eu = engine.latest_rows(daily, keys=["customer_id"], timestamp="ts", where="region = 'eu'")
    assert eu.column_names == ["customer_id", "ts", "spend", "sessions", "region"]
    assert eu.column("customer_id").to_pylist() == [1]
    count, examples = engine.duplicate_keys(
        pa.table({"k": [1, 1, 2, 3, 3, 3], "j": ["a"] * 6}), ["k", "j"]
    )
    assert count == 2
    assert sorted(examples, key=lambda r: r["k"]) == [{"k": 1, "j": "a"}, {"k": 3, "j": "a"}]
    assert engine.duplicate_keys(pa.table({"k": [1, 2]}), ["k"]) == (0, [])


# ----------------------------------------------------------------- Delta I/O (spark only)
@pytest.mark.spark
def test_spark_writes_are_delta_commits_every_engine_reads(spark_engine, tmp_path) -> None:
    from lakebox.engines.local import LocalEngine
    from lakebox.errors import SchemaMismatch

    location = str(tmp_path / "scores")
    first = pa.table(
        {
            "customer_id": pa.array([1, 2, 3], pa.int64()),
            "ts": pa.array([t(1), t(1), t(2)], pa.timestamp("us", tz="UTC")),
            "score": [0.1, None, 0.3],
            "day": ["d1", "d1", "d2"],
        }
    )
    assert spark_engine.write(spark_engine.to_spark(first), location, partition_by=["day"]) == 0
    second = first.slice(0, 1).set_column(2, "score", pa.array([0.9]))
    second = second.set_column(1, "ts", pa.array([t(3)], pa.timestamp("us", tz="UTC")))
    assert spark_engine.write(spark_engine.to_spark(second), location) == 1

    dt = DeltaTable(location)
    assert dt.metadata().partition_columns == ["day"]
    got = dt.to_pyarrow_table().sort_by([("customer_id", "ascending"), ("ts", "ascending")])
    assert got.column("score").to_pylist() == [0.1, 0.9, None, 0.3]
    assert got.column("day").to_pylist() == ["d1", "d1", "d1", "d2"]
    assert got.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    # the same snapshot through both engines
    snap = snapshot(tmp_path / "scores", "main.out.scores")
    for engine in (LocalEngine(threads=2), spark_engine):
        rows = engine.latest_rows(snap, keys=["customer_id"], timestamp="ts")
        assert sorted(rows.to_pylist(), key=lambda r: r["customer_id"]) == [
            {"customer_id": 1, "ts": t(3), "score": 0.9, "day": "d1"},
            {"customer_id": 2, "ts": t(1), "score": None, "day": "d1"},
            {"customer_id": 3, "ts": t(2), "score": 0.3, "day": "d2"},
        ]
    # a frame with another schema is refused before anything is committed
    bad = spark_engine.to_spark(pa.table({"customer_id": ["x"], "score": [1.0]}))
    with pytest.raises(SchemaMismatch, match="missing"):
        spark_engine.write(bad, location)
    assert DeltaTable(location).version() == 1


@pytest.mark.spark
def test_training_set_on_a_spark_workspace_equals_local(spark_engine, tmp_path) -> None:
    import lakebox
    from lakebox import FeatureLookup

    labels = pa.table(
        {
            "customer_id": pa.array([1, 1, 2, 9], pa.int64()),
            "event_ts": pa.array([t(2), t(4), t(3), t(3)], pa.timestamp("us", tz="UTC")),
            "churned": [0, 1, 0, 1],
        }
    )
    results = {}
    for name in ("local", "spark"):
        ws = lakebox.Workspace(tmp_path / name, engine=name, spark_master="local[2]")
        try:
            ws.features.create_table(
                name="main.fs.daily",
                primary_keys=["customer_id", "ts"],
                timeseries_columns="ts",
                df=pa.table(
                    {
                        "customer_id": pa.array([1, 1, 2], pa.int64()),
                        "ts": pa.array([t(1), t(3), t(3)], pa.timestamp("us", tz="UTC")),
                        "spend": [1.0, 3.0, 5.0],
                    }
                ),
            )
            assert ws.features.engine.name == name
            training = ws.features.create_training_set(
                # a Spark DataFrame is accepted wherever a DataFrame goes
                df=spark_engine.to_spark(labels) if name == "spark" else labels,
                feature_lookups=[
                    FeatureLookup(
                        "main.fs.daily",
                        "customer_id",
                        timestamp_lookup_key="event_ts",
                        default_values={"spend": 0.0},
                    )
                ],
                label="churned",
            )
            results[name] = training.load_arrow()
        finally:
            ws.close()
    assert results["spark"].equals(results["local"])
    assert results["spark"].column("spend").to_pylist() == [1.0, 3.0, 5.0, 0.0]


@pytest.mark.spark
def test_spark_scoring_commits_the_same_predictions_as_local(spark_engine, tmp_path) -> None:
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from lakebox.deploy import Predictor, resolve_model

    x = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 0.0]})
    path = tmp_path / "model"
    mlflow.sklearn.save_model(
        LinearRegression().fit(x, [1.0, 2.0, 3.0]),
        str(path),
        input_example=x.head(1),
        serialization_format="cloudpickle",
        pip_requirements=["scikit-learn"],
    )
    when = t(9)
    predict = Predictor(resolve_model(str(path)), keep_columns=["id"], scored_at=when)
    rows = pa.table({"id": np.arange(1000), "a": np.arange(1000) / 10, "b": np.arange(1000) % 2})
    expected = predict(rows)
    frame = spark_engine.to_spark(rows).repartition(3)  # several tasks, one model load each
    location = str(tmp_path / "scores")
    assert spark_engine.write(spark_engine.score(frame, predict), location) == 0
    got = DeltaTable(location).to_pyarrow_table().sort_by("id")
    assert got.column_names == expected.column_names
    assert got.column("id").equals(expected.column("id"))
    np.testing.assert_allclose(got["prediction"].to_numpy(), expected["prediction"].to_numpy())
    assert set(got.column("scored_at").to_pylist()) == {when}
