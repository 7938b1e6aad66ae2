"""publish_table and lookup_online through ws.features (SQLite online store)."""

import pandas as pd
import pytest

from lakebox.errors import InvalidInput, NotFound
from lakebox.features.online import open_online_store


def test_publish_keeps_the_latest_row_per_key(ws, feature_table):
    result = ws.features.publish_table(name=feature_table)
    assert result["num_rows"] == 3 and result["table_version"] == 0
    assert result["store_uri"] == f"sqlite:///{ws.home / 'online.db'}"
    rows = ws.features.lookup_online(
        feature_table, [{"customer_id": 2}, {"customer_id": 7}, {"customer_id": 1}]
    )
    assert rows[1] is None
    assert rows[0]["customer_id"] == 2 and rows[0]["spend_7d"] == 9.0
    assert rows[2]["sessions_7d"] == 5 and rows[2]["ts"] == pd.Timestamp("2024-01-05")
    info = ws.features.get_table(name=feature_table)
    assert [s["num_rows"] for s in info.online_stores] == [3]


def test_lookup_by_tuples_and_feature_subset(ws, feature_table):
    ws.features.publish_table(name=feature_table, features=["spend_7d"])
    assert ws.features.lookup_online(feature_table, [(3,)], feature_names=["spend_7d"]) == [
        {"customer_id": 3, "spend_7d": 70.0}
    ]
    with pytest.raises(InvalidInput, match="no feature"):
        ws.features.lookup_online(feature_table, [(3,)], feature_names=["sessions_7d"])


def test_filter_condition_merge_and_overwrite(ws, feature_table, daily):
    ws.features.publish_table(name=feature_table, filter_condition="ts < '2024-01-03'")
    assert ws.features.lookup_online(feature_table, [(1,), (3,)]) == [
        {
            "customer_id": 1,
            "ts": pd.Timestamp("2024-01-02").to_pydatetime(),
            "sessions_7d": 2,
            "spend_7d": 20.0,
        },
        None,
    ]
    ws.features.write_table(name=feature_table, df=daily.assign(spend_7d=daily.spend_7d * 10))
    ws.features.publish_table(name=feature_table, filter_condition="customer_id = 3")
    got = ws.features.lookup_online(feature_table, [(1,), (3,)])
    assert [g["spend_7d"] for g in got] == [20.0, 700.0]  # merge left customer 1 alone
    ws.features.publish_table(
        name=feature_table, filter_condition="customer_id = 3", mode="overwrite"
    )
    assert ws.features.lookup_online(feature_table, [(1,), (3,)])[0] is None


def test_publish_to_another_store_uri(ws, feature_table, tmp_path):
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    ws.features.publish_table(name=feature_table, online_store=uri)
    with open_online_store(uri) as store:
        assert store.count("main.fs.daily") == 3
    assert ws.features.lookup_online(feature_table, [(1,)], online_store=uri)[0]["spend_7d"] == 50


def test_bad_publish_input_publishes_nothing(ws, feature_table):
    with pytest.raises(InvalidInput, match="mode must be 'merge' or 'overwrite'"):
        ws.features.publish_table(name=feature_table, mode="append")
    with pytest.raises(InvalidInput, match="not in 'main.fs.daily'"):
        ws.features.publish_table(name=feature_table, features=["spend"])
    with pytest.raises(InvalidInput, match="where 'nope = 1'"):
        ws.features.publish_table(name=feature_table, filter_condition="nope = 1")
    with pytest.raises(InvalidInput, match="Unknown online store"):
        ws.features.publish_table(name=feature_table, online_store="memcached://x")
    with pytest.raises(InvalidInput, match="has not been published"):
        ws.features.lookup_online(feature_table, [(1,)])
    with pytest.raises(NotFound):
        ws.features.publish_table(name="main.fs.nope")
    assert (
        not (ws.home / "online.db").exists()
        or ws.features.get_table(name=feature_table).online_stores == []
    )


def test_drop_table_removes_online_rows(ws, feature_table):
    result = ws.features.publish_table(name=feature_table)
    ws.features.drop_table(name=feature_table)
    with open_online_store(result["store_uri"]) as store:
        assert store.count("main.fs.daily") == 0
