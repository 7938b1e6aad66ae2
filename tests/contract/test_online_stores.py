"""One suite every online store passes: SQLite (embedded) and Redis (a real redis-server on a
free loopback port, started here with persistence off)."""

from datetime import date, datetime

import pyarrow as pa
import pytest

from lakebox.errors import InvalidInput
from lakebox.features.online import OnlineStore, open_online_store


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = open_online_store(f"sqlite:///{tmp_path / 'online.db'}")
    else:
        url = request.getfixturevalue("redis_url")
        s = open_online_store(url)
        s._client.flushdb()
    yield s
    s.close()


ROWS = pa.table(
    {
        "customer_id": pa.array([1, 2, 3], pa.int64()),
        "region": ["eu", "us", "eu"],
        "spend": [1.5, None, 3.25],
        "sessions": pa.array([1, 2, None], pa.int64()),
        "ts": pa.array([datetime(2024, 1, 1, 12), datetime(2024, 1, 2), None], pa.timestamp("us")),
        "day": pa.array([date(2024, 1, 1), None, date(2024, 1, 3)], pa.date32()),
        "active": [True, False, None],
    }
)


def test_is_an_online_store(store):
    assert isinstance(store, OnlineStore) and store.uri


def test_write_then_read_in_key_order_with_misses(store):
    assert store.write("main.fs.t", ROWS, keys=["customer_id"]) == 3
    got = store.read("main.fs.t", [{"customer_id": 3}, {"customer_id": 99}, (1,)])
    assert got[1] is None
    assert got[0] == {
        "region": "eu",
        "spend": 3.25,
        "sessions": None,
        "ts": None,
        "day": date(2024, 1, 3),
        "active": None,
    }
    assert got[2]["ts"] == datetime(2024, 1, 1, 12) and got[2]["spend"] == 1.5
    assert store.count("main.fs.t") == 3


def test_keys_of_other_numeric_types_match(store):
    import numpy as np

    store.write("main.fs.t", ROWS, keys=["customer_id"])
    assert store.read("main.fs.t", [(np.int32(2),), (2.0,)], features=["region"]) == [
        {"region": "us"},
        {"region": "us"},
    ]


def test_merge_upserts_and_overwrite_replaces(store):
    store.write("main.fs.t", ROWS, keys=["customer_id"])
    store.write(
        "main.fs.t",
        ROWS.slice(0, 1).set_column(1, "region", pa.array(["apac"])),
        keys=["customer_id"],
        mode="merge",
    )
    assert [r["region"] for r in store.read("main.fs.t", [(1,), (2,)])] == ["apac", "us"]
    store.write("main.fs.t", ROWS.slice(2, 1), keys=["customer_id"], mode="overwrite")
    assert store.read("main.fs.t", [(1,), (3,)])[0] is None
    assert store.count("main.fs.t") == 1


def test_overwrite_may_change_the_layout_and_readers_notice(store):
    store.write("main.fs.t", ROWS, keys=["customer_id"])
    assert store.read("main.fs.t", [(1,)])[0]["region"] == "eu"  # layout now cached
    other = pa.table({"customer_id": pa.array([1], pa.int64()), "score": [0.9]})
    store.write("main.fs.t", other, keys=["customer_id"], mode="overwrite")
    assert store.read("main.fs.t", [(1,)]) == [{"score": 0.9}]
    with pytest.raises(InvalidInput, match="mode='overwrite'"):
        store.write("main.fs.t", ROWS, keys=["customer_id"], mode="merge")


def test_composite_and_string_keys(store):
    rows = pa.table({"a": ["x", "x", "y"], "b": pa.array([1, 2, 1], pa.int64()), "v": [1, 2, 3]})
    store.write("main.fs.c", rows, keys=["a", "b"])
    assert store.read("main.fs.c", [{"a": "x", "b": 2}, {"a": "y", "b": 1}, ("y", 2)]) == [
        {"v": 2},
        {"v": 3},
        None,
    ]


def test_large_batches(store):
    n = 5_000
    rows = pa.table({"id": pa.array(range(n), pa.int64()), "v": pa.array(range(n), pa.float64())})
    store.write("main.fs.big", rows, keys=["id"])
    got = store.read("main.fs.big", [(i,) for i in range(0, n + 100, 7)])
    assert [None if g is None else g["v"] for g in got] == [
        float(i) if i < n else None for i in range(0, n + 100, 7)
    ]


def test_tables_are_separate_and_drop(store):
    store.write("main.fs.a", ROWS, keys=["customer_id"])
    store.write("main.fs.b", ROWS.slice(0, 1), keys=["customer_id"])
    assert store.count("main.fs.b") == 1
    store.drop("main.fs.a")
    store.drop("main.fs.never")
    assert store.count("main.fs.a") == 0 and store.layout("main.fs.a") is None
    with pytest.raises(InvalidInput, match="publish it first"):
        store.read("main.fs.a", [(1,)])
    assert store.read("main.fs.b", [(1,)])[0]["region"] == "eu"


def test_bad_input(store):
    store.write("main.fs.t", ROWS, keys=["customer_id"])
    with pytest.raises(InvalidInput, match="mode must be 'merge' or 'overwrite'"):
        store.write("main.fs.t", ROWS, keys=["customer_id"], mode="append")
    with pytest.raises(InvalidInput, match="not in the rows"):
        store.write("main.fs.t", ROWS, keys=["id"])
    with pytest.raises(InvalidInput, match="needs the columns"):
        store.read("main.fs.t", [{"id": 1}])
    with pytest.raises(InvalidInput, match="no feature"):
        store.read("main.fs.t", [(1,)], features=["nope"])
    assert store.read("main.fs.t", [(2,)])[0]["region"] == "us"  # untouched


def test_unknown_store_uri():
    with pytest.raises(InvalidInput, match="Unknown online store"):
        open_online_store("cassandra://x")
