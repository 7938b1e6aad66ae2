"""The local engine: point-in-time joins, latest rows and duplicate checks on DuckDB."""

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from lakebox.engines import FeatureJoin, TableSnapshot, get_engine
from lakebox.errors import InvalidInput


def d(day, hour=0):
    return datetime(2024, 1, day, hour)


@pytest.fixture
def engine():
    return get_engine("local")


@pytest.fixture
def features():
    table = pa.table(
        {"k": [1, 1, 1, 2], "ts": [d(1), d(3), d(5), d(2)], "x": [10.0, 11.0, None, 20.0]}
    )
    return TableSnapshot("main.fs.f", "", 0, ds.dataset(table))


def test_point_in_time_never_uses_future_rows_and_keeps_every_row(engine, features):
    entities = pa.table(
        {
            "id": [1, 1, 1, 2, 3, None],
            "t": [d(2), d(3), d(4, 12), d(1), d(9), d(9)],
            "label": list("abcdef"),
        }
    )
    join = FeatureJoin(features, [("id", "k")], {"x": "x"}, "t", "ts")
    out = engine.join_features(entities, [join])
    assert out.column_names == ["id", "t", "label", "x"]
    # ties (t == ts) are included; customer 2 at day 1 has only a future row; 3 and None miss
    assert out.column("x").to_pylist() == [10.0, 11.0, 11.0, None, None, None]
    assert out.column("label").to_pylist() == list("abcdef")


def test_newest_row_with_a_null_value_is_not_replaced_by_an_older_one(engine, features):
    entities = pa.table({"id": [1], "t": [d(6)]})
    out = engine.join_features(
        entities, [FeatureJoin(features, [("id", "k")], {"x": "x"}, "t", "ts")]
    )
    assert out.column("x").to_pylist() == [None]


def test_lookback_window_and_defaults(engine, features):
    entities = pa.table({"id": [1, 1, 2], "t": [d(3, 12), d(4, 12), d(9)]})
    join = FeatureJoin(
        features, [("id", "k")], {"x": "x"}, "t", "ts", timedelta(days=1), {"x": -1.0}
    )
    out = engine.join_features(entities, [join])
    assert out.column("x").to_pylist() == [11.0, -1.0, -1.0]


def test_latest_value_without_lookup_time_and_plain_join(engine, features):
    entities = pa.table({"id": [2, 1, 7]})
    latest = FeatureJoin(features, [("id", "k")], {"x": "latest_x"}, None, "ts")
    out = engine.join_features(entities, [latest])
    assert out.column("latest_x").to_pylist() == [20.0, None, None]  # newest row of 1 is null
    plain = TableSnapshot("p", "", 0, ds.dataset(pa.table({"k": [1, 2], "y": ["a", "b"]})))
    out = engine.join_features(entities, [FeatureJoin(plain, [("id", "k")], {"y": "y"})])
    assert out.column("y").to_pylist() == ["b", "a", None]


def test_timezone_aware_lookup_times_compare_in_utc(engine, features):
    utc = pa.timestamp("us", tz="UTC")
    entities = pa.table(
        {
            "id": pa.array([1, 1]),
            "t": pa.array(
                [
                    datetime(2024, 1, 3, tzinfo=timezone.utc),
                    datetime(2024, 1, 2, 23, tzinfo=timezone.utc),
                ],
                utc,
            ),
        }
    )
    out = engine.join_features(
        entities, [FeatureJoin(features, [("id", "k")], {"x": "x"}, "t", "ts")]
    )
    assert out.column("x").to_pylist() == [11.0, 10.0]


def test_several_joins_and_composite_keys(engine):
    a = TableSnapshot(
        "a", "", 0, ds.dataset(pa.table({"k1": [1, 1], "k2": ["x", "y"], "v": [1, 2]}))
    )
    b = TableSnapshot("b", "", 0, ds.dataset(pa.table({"k": [1], "ts": [d(1)], "w": [5]})))
    entities = pa.table({"a": [1, 1, 2], "b": ["y", "x", "x"], "t": [d(2), d(2), d(2)]})
    out = engine.join_features(
        entities,
        [
            FeatureJoin(a, [("a", "k1"), ("b", "k2")], {"v": "v"}),
            FeatureJoin(b, [("a", "k")], {"w": "w"}, "t", "ts"),
        ],
    )
    assert out.column("v").to_pylist() == [2, 1, None]
    assert out.column("w").to_pylist() == [5, 5, None]


def test_latest_rows_and_filter(engine, features):
    out = engine.latest_rows(features, keys=["k"], timestamp="ts").sort_by("k")
    assert out.column("ts").to_pylist() == [d(5), d(2)]
    out = engine.latest_rows(features, keys=["k"], timestamp="ts", where="ts < '2024-01-04'")
    assert sorted(out.column("x").to_pylist()) == [11.0, 20.0]
    with pytest.raises(InvalidInput, match="nope"):
        engine.latest_rows(features, keys=["k"], timestamp="ts", where="nope > 1")


def test_duplicate_keys(engine):
    data = pa.table({"k": [1, 1, 2, 3, 3, 3], "t": [1, 1, 1, 1, 2, 2]})
    count, examples = engine.duplicate_keys(data, ["k", "t"])
    assert count == 2 and sorted(e["k"] for e in examples) == [1, 3]
    assert len(engine.duplicate_keys(data, ["k", "t"], limit=1)[1]) == 1
    assert engine.duplicate_keys(pa.table({"k": [1, 2]}), ["k"]) == (0, [])


def test_unknown_engine():
    with pytest.raises(InvalidInput, match="Unknown engine 'duckdb'"):
        get_engine("duckdb")


def test_engine_is_cached_per_options():
    assert get_engine("local") is get_engine("local")
    assert get_engine("local", threads=1).threads == 1
