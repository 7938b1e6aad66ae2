"""Every table operation through the Python API, and every bad input with nothing written."""

from datetime import datetime, timedelta, timezone

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from lakebox.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidName,
    NotFound,
    SchemaMismatch,
)


@pytest.fixture
def orders():
    return pd.DataFrame({"id": [1, 2, 3], "day": ["d1", "d1", "d2"], "amount": [10.0, 20.0, 30.0]})


def _versions(ws, name):
    return ws.tables.delta_table(name).version()


def test_create_from_pandas_polars_arrow_and_schema(ws, orders):
    ws.tables.create("main.s.pandas", orders)
    ws.tables.create("main.s.polars", pl.from_pandas(orders))
    ws.tables.create("main.s.arrow", pa.Table.from_pandas(orders, preserve_index=False))
    info = ws.tables.create(
        "main.s.empty",
        schema="id BIGINT, name STRING, ts TIMESTAMP",
        comment="from DDL",
        tags={"owner": "me"},
    )
    assert [c.type for c in info.columns] == ["long", "string", "timestamp_ntz"]
    assert info.comment == "from DDL" and info.tags == {"owner": "me"}
    for name in ("main.s.pandas", "main.s.polars", "main.s.arrow"):
        assert ws.tables.read(name).sort_values("id").reset_index(drop=True).equals(orders)
    assert len(ws.tables.read("main.s.empty")) == 0
    ws.tables.create("main.s.from_arrow_schema", schema=pa.schema([("x", pa.int32())]))
    assert ws.tables.get("main.s.from_arrow_schema").columns[0].type == "integer"


def test_create_refuses_duplicates_and_bad_arguments(ws, orders):
    ws.tables.create("s.t", orders)
    with pytest.raises(AlreadyExists, match="main.s.t"):
        ws.tables.create("main.s.t", orders)
    with pytest.raises(InvalidInput, match="exactly one"):
        ws.tables.create("s.u")
    with pytest.raises(InvalidInput, match="Partition column"):
        ws.tables.create("s.u", orders, partition_by=["nope"])
    assert not ws.tables.exists("s.u")
    with pytest.raises(InvalidInput, match="Cannot parse schema"):
        ws.tables.create("s.u", schema="id BIGINTEGER")
    assert not ws.tables.exists("s.u")


def test_write_append_overwrite_and_versions(ws, orders):
    assert ws.tables.write("main.sales.orders", orders, partition_by=["day"]) == 0
    assert ws.tables.write("main.sales.orders", orders.assign(id=orders.id + 3)) == 1
    assert len(ws.tables.read("main.sales.orders")) == 6
    assert ws.tables.write("main.sales.orders", orders.head(1), mode="overwrite") == 2
    assert len(ws.tables.read("main.sales.orders")) == 1
    assert ws.tables.get("main.sales.orders").partition_columns == ["day"]


def test_schema_enforcement_names_every_column_and_writes_nothing(ws, orders):
    ws.tables.write("s.t", orders)
    bad = pd.DataFrame({"id": ["x"], "day": ["d"], "amount": [1]})
    with pytest.raises(SchemaMismatch) as info:
        ws.tables.write("s.t", bad)
    message = str(info.value)
    assert "column 'id': table has long, data has string" in message
    assert "column 'amount': table has double, data has long" in message
    assert "Nothing was written" in message
    assert _versions(ws, "s.t") == 0
    with pytest.raises(SchemaMismatch, match=r"'extra' \(string\).*merge_schema=True"):
        ws.tables.write("s.t", orders.assign(extra="x"))
    assert _versions(ws, "s.t") == 0


def test_widening_missing_columns_and_schema_evolution(ws, orders):
    ws.tables.write("s.t", orders)
    narrow = pa.table({"id": pa.array([9], pa.int32()), "amount": pa.array([1.5], pa.float32())})
    ws.tables.write("s.t", narrow)  # int32→long, float→double, missing 'day' becomes null
    row = ws.tables.read("s.t", filter="id = 9")
    assert row["day"].isna().all()
    ws.tables.write("s.t", orders.assign(extra="x"), merge_schema=True)
    assert "extra" in ws.tables.read("s.t").columns
    ws.tables.write("s.t", pd.DataFrame({"other": [1]}), mode="overwrite", overwrite_schema=True)
    assert list(ws.tables.read("s.t").columns) == ["other"]
    with pytest.raises(InvalidInput, match="overwrite_schema=True needs mode='overwrite'"):
        ws.tables.write("s.t", orders, overwrite_schema=True)


def test_merge_upsert_and_options(ws, orders):
    ws.tables.write("s.t", orders)
    updates = pd.DataFrame({"id": [2, 4], "day": ["d1", "d3"], "amount": [99.0, 40.0]})
    metrics = ws.tables.merge("s.t", updates, on=["id"])
    assert metrics["num_target_rows_updated"] == 1 and metrics["num_target_rows_inserted"] == 1
    got = ws.tables.read("s.t").set_index("id")["amount"].to_dict()
    assert got == {1: 10.0, 2: 99.0, 3: 30.0, 4: 40.0}
    ws.tables.merge(
        "s.t", updates.assign(amount=0.0), on="id", when_matched="ignore", when_not_matched="ignore"
    )
    assert ws.tables.read("s.t").set_index("id")["amount"].to_dict() == got
    ws.tables.merge("s.t", updates, on=["id"], when_matched="delete", when_not_matched="ignore")
    assert sorted(ws.tables.read("s.t")["id"]) == [1, 3]
    ws.tables.merge("s.t", orders.head(1), on=["id"], when_not_matched_by_source="delete")
    assert sorted(ws.tables.read("s.t")["id"]) == [1]


def test_merge_bad_input_writes_nothing(ws, orders):
    ws.tables.write("s.t", orders)
    dupes = pd.DataFrame({"id": [7, 7], "day": ["a", "b"], "amount": [1.0, 2.0]})
    with pytest.raises(InvalidInput, match=r"appear more than once.*\{'id': 7\}"):
        ws.tables.merge("s.t", dupes, on=["id"])
    with pytest.raises(InvalidInput, match=r"Merge key\(s\) \['nope'\]"):
        ws.tables.merge("s.t", orders, on=["nope"])
    with pytest.raises(SchemaMismatch):
        ws.tables.merge("s.t", orders.assign(amount="x"), on=["id"])
    with pytest.raises(InvalidInput, match="when_matched must be one of"):
        ws.tables.merge("s.t", orders, on=["id"], when_matched="upsert")
    with pytest.raises(NotFound):
        ws.tables.merge("s.missing", orders, on=["id"])
    assert _versions(ws, "s.t") == 0


def test_delete(ws, orders):
    ws.tables.write("s.t", orders)
    assert ws.tables.delete("s.t", "amount > 15") == 2
    assert list(ws.tables.read("s.t")["id"]) == [1]
    with pytest.raises(InvalidInput, match="nonexistent"):
        ws.tables.delete("s.t", "nonexistent > 3")
    assert _versions(ws, "s.t") == 1


def test_read_columns_filter_version_and_timestamp(ws, orders):
    ws.tables.write("s.t", orders)
    first_commit = ws.tables.history("s.t")[0]["timestamp"]
    ws.tables.write("s.t", orders.assign(id=orders.id + 10))
    assert list(ws.tables.read("s.t", columns=["id"]).columns) == ["id"]
    assert sorted(ws.tables.read("s.t", filter="id > 10")["id"]) == [11, 12, 13]
    assert sorted(ws.tables.read("s.t", filter=pads.field("id") < 2)["id"]) == [1]
    assert len(ws.tables.read("s.t", version=0)) == 3
    at = ws.tables.read("s.t", timestamp=first_commit + timedelta(milliseconds=1))
    assert len(at) == 3
    arrow = ws.tables.read("s.t", output="arrow")
    assert isinstance(arrow, pa.Table) and arrow.num_rows == 6


def test_read_bad_input(ws, orders):
    ws.tables.write("main.sales.orders", orders)
    with pytest.raises(NotFound) as info:
        ws.tables.read("main.sales.ordrs")
    assert "Did you mean 'main.sales.orders'?" in str(info.value)
    with pytest.raises(NotFound, match="latest version is 0"):
        ws.tables.read("main.sales.orders", version=5)
    with pytest.raises(NotFound, match="no version at or before"):
        ws.tables.read("main.sales.orders", timestamp=datetime(2000, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(InvalidInput, match="not an ISO date"):
        ws.tables.read("main.sales.orders", timestamp="yesterday")
    with pytest.raises(InvalidInput, match=r"Unknown column\(s\) \['nope'\]"):
        ws.tables.read("main.sales.orders", columns=["nope"])
    with pytest.raises(InvalidInput, match="Invalid filter"):
        ws.tables.read("main.sales.orders", filter="nope >")
    with pytest.raises(InvalidName):
        ws.tables.read("main/../../etc")


def test_history_restore_optimize_vacuum(ws, orders):
    ws.tables.write("s.t", orders)
    for i in range(3):
        ws.tables.write("s.t", orders.assign(id=orders.id + 10 * (i + 1)))
    history = ws.tables.history("s.t")
    assert [h["version"] for h in history] == [3, 2, 1, 0]
    assert history[-1]["operation"] == "WRITE"
    assert ws.tables.restore("s.t", 0) == 4
    assert len(ws.tables.read("s.t")) == 3
    with pytest.raises(NotFound):
        ws.tables.restore("s.t", 42)
    ws.tables.write("s.t", orders)
    metrics = ws.tables.optimize("s.t", zorder_by=["amount"])
    assert metrics["numFilesAdded"] >= 1
    with pytest.raises(InvalidInput, match="Z-order"):
        ws.tables.optimize("s.t", zorder_by=["missing"])
    with pytest.raises(InvalidInput, match="Refusing to vacuum"):
        ws.tables.vacuum("s.t", 0)
    files_before = ws.tables.get("s.t").num_files
    dry = ws.tables.vacuum("s.t", 0, force=True, dry_run=True)
    assert dry
    deleted = ws.tables.vacuum("s.t", 0, force=True)
    assert sorted(deleted) == sorted(dry)
    assert ws.tables.get("s.t").num_files == files_before
    assert len(ws.tables.read("s.t")) == 6


def test_comments_tags_and_listing(ws, orders):
    ws.tables.write("main.sales.orders", orders)
    ws.tables.write("other.crm.people", orders)
    ws.tables.set_comment("main.sales.orders", "All orders")
    ws.tables.set_comment("main.sales.orders", "Order amount", column="amount")
    ws.tables.set_tags("main.sales.orders", {"pii": "no", "team": "x"})
    ws.tables.set_tags("main.sales.orders", {"unit": "EUR"}, column="amount")
    ws.tables.unset_tags("main.sales.orders", ["team"])
    info = ws.tables.get("main.sales.orders")
    assert info.comment == "All orders" and info.tags == {"pii": "no"}
    amount = next(c for c in info.columns if c.name == "amount")
    assert amount.comment == "Order amount" and amount.tags == {"unit": "EUR"}
    with pytest.raises(NotFound, match="no column 'amout'.*Did you mean 'amount'"):
        ws.tables.set_comment("main.sales.orders", "x", column="amout")
    assert ws.tables.list_catalogs() == ["main", "other"]
    assert ws.tables.list_schemas("main") == ["sales"]
    assert [t.full_name for t in ws.tables.list()] == ["main.sales.orders", "other.crm.people"]
    assert [t.full_name for t in ws.tables.list(catalog="other")] == ["other.crm.people"]


def test_drop_removes_rows_and_files(ws, orders):
    ws.tables.write("s.t", orders)
    ws.tables.set_tags("s.t", {"a": "b"})
    location = ws.tables.location("s.t")
    ws.tables.drop("s.t")
    assert not ws.tables.exists("s.t")
    import os

    assert not os.path.exists(location)
    with pytest.raises(NotFound):
        ws.tables.drop("s.t")
    ws.tables.drop("s.t", missing_ok=True)
    ws.tables.write("s.t", orders.head(1))  # the name can be reused
    assert ws.tables.get("s.t").tags == {}


def test_non_dataframe_input(ws):
    with pytest.raises(InvalidInput, match="pandas or polars DataFrame"):
        ws.tables.write("s.t", [1, 2, 3])
    with pytest.raises(InvalidInput, match="to_frame"):
        ws.tables.write("s.t", pd.Series([1, 2]))
    assert not ws.tables.exists("s.t")
