"""Feature tables: create, write (merge / overwrite), read, get, tags, list, drop, and the
bad inputs that must write nothing."""

import pandas as pd
import pytest

from lakebox.errors import AlreadyExists, InvalidInput, NotFound, SchemaMismatch


def test_create_get_and_read(ws, feature_table, daily):
    info = ws.features.get_table(name=feature_table)
    assert info.primary_keys == ["customer_id", "ts"]
    assert info.timeseries_columns == info.timestamp_keys == ["ts"]
    assert info.features == ["sessions_7d", "spend_7d"]
    assert info.description == "daily usage" and info.version == 0
    assert [t.name for t in ws.features.list_tables()] == ["main.fs.daily"]
    assert ws.tables.exists("main.fs.daily")  # a plain Delta table in the catalog too
    back = ws.features.read_table(name=feature_table).sort_values(["customer_id", "ts"])
    assert back["spend_7d"].tolist() == daily["spend_7d"].tolist()


def test_timestamp_keys_is_accepted_as_the_older_name(ws, daily):
    info = ws.features.create_table(
        name="main.fs.old", primary_keys="customer_id", timestamp_keys="ts", df=daily
    )
    assert info.timeseries_columns == ["ts"] and info.primary_keys == ["customer_id", "ts"]
    with pytest.raises(InvalidInput, match="disagree"):
        ws.features.create_table(
            name="main.fs.old2",
            primary_keys="customer_id",
            timestamp_keys="ts",
            timeseries_columns="spend_7d",
            df=daily,
        )


def test_create_from_schema_then_write(ws):
    ws.features.create_table(
        name="main.fs.plain",
        primary_keys=["id"],
        schema="id BIGINT, score DOUBLE",
        tags={"team": "growth"},
    )
    ws.features.write_table(
        name="main.fs.plain", df=pd.DataFrame({"id": [1, 2], "score": [0.1, 0.2]})
    )
    version = ws.features.write_table(
        name="main.fs.plain", df=pd.DataFrame({"id": [2, 3], "score": [0.5, 0.7]})
    )
    back = ws.features.read_table(name="main.fs.plain").sort_values("id")
    assert back["score"].tolist() == [0.1, 0.5, 0.7] and version == 2
    ws.features.write_table(
        name="main.fs.plain", df=pd.DataFrame({"id": [9], "score": [1.0]}), mode="overwrite"
    )
    assert ws.features.read_table(name="main.fs.plain")["id"].tolist() == [9]
    assert ws.features.read_table(name="main.fs.plain", version=1)["id"].tolist() == [1, 2]
    assert ws.features.get_table(name="main.fs.plain").tags == {"team": "growth"}


def test_tags(ws, feature_table):
    ws.features.set_feature_table_tag(name=feature_table, key="owner", value="ana")
    assert ws.features.get_table(name=feature_table).tags == {"owner": "ana"}
    ws.features.delete_feature_table_tag(name=feature_table, key="owner")
    ws.features.delete_feature_table_tag(name=feature_table, key="never-set")
    assert ws.features.get_table(name=feature_table).tags == {}


def test_drop(ws, feature_table):
    ws.features.drop_table(name=feature_table)
    assert ws.features.list_tables() == [] and not ws.tables.exists(feature_table)
    with pytest.raises(NotFound, match="does not exist"):
        ws.features.get_table(name=feature_table)


def test_plain_table_is_not_a_feature_table(ws):
    ws.tables.write("main.raw.x", pd.DataFrame({"a": [1]}))
    with pytest.raises(NotFound, match="plain table"):
        ws.features.get_table(name="main.raw.x")
    with pytest.raises(AlreadyExists):
        ws.features.create_table(name="main.raw.x", primary_keys="a", df=pd.DataFrame({"a": [2]}))
    assert ws.tables.read("main.raw.x")["a"].tolist() == [1]


# ------------------------------------------------------------------ bad input writes nothing
def test_duplicate_keys_on_create_list_examples_and_write_nothing(ws, daily):
    dupes = pd.concat([daily, daily.iloc[[0, 3]]])
    with pytest.raises(InvalidInput, match=r"2 key\(s\).*customer_id.*Nothing was written"):
        ws.features.create_table(
            name="main.fs.d", primary_keys="customer_id", timeseries_columns="ts", df=dupes
        )
    assert not ws.tables.exists("main.fs.d") and ws.features.list_tables() == []


def test_duplicate_keys_on_write_write_nothing(ws, feature_table, daily):
    with pytest.raises(InvalidInput, match="occur more than once"):
        ws.features.write_table(name=feature_table, df=pd.concat([daily, daily]))
    assert ws.features.get_table(name=feature_table).version == 0


def test_null_keys_are_refused(ws, daily):
    bad = daily.astype({"customer_id": "Int64"})
    bad.loc[0, "customer_id"] = None
    with pytest.raises(InvalidInput, match="contain nulls"):
        ws.features.create_table(
            name="main.fs.n", primary_keys="customer_id", df=bad, timeseries_columns="ts"
        )
    assert not ws.tables.exists("main.fs.n")


def test_timeseries_column_of_the_wrong_type(ws, daily):
    with pytest.raises(InvalidInput, match=r"Timeseries column 'spend_7d'.*double.*timestamp"):
        ws.features.create_table(
            name="main.fs.t", primary_keys="customer_id", timeseries_columns="spend_7d", df=daily
        )
    assert not ws.tables.exists("main.fs.t")


def test_missing_key_column(ws, daily):
    with pytest.raises(InvalidInput, match=r"Key column\(s\) \['user_id'\]"):
        ws.features.create_table(name="main.fs.k", primary_keys="user_id", df=daily)
    assert not ws.tables.exists("main.fs.k")


def test_writing_columns_not_in_the_schema(ws, feature_table, daily):
    with pytest.raises(SchemaMismatch, match=r"\['tickets'\].*Nothing was written"):
        ws.features.write_table(name=feature_table, df=daily.assign(tickets=1))
    with pytest.raises(SchemaMismatch):
        ws.features.write_table(name=feature_table, df=daily.assign(spend_7d="x"))
    assert ws.features.get_table(name=feature_table).version == 0


def test_bad_mode(ws, feature_table, daily):
    with pytest.raises(InvalidInput, match="mode must be 'merge' or 'overwrite', got 'append'"):
        ws.features.write_table(name=feature_table, df=daily, mode="append")
    assert ws.features.get_table(name=feature_table).version == 0
