"""Lineage: table reads inside a run are dataset inputs that reload at the version read."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest

import lakebox
from lakebox.errors import InvalidInput, NotFound
from lakebox.tracking import LakeboxTableSource, training_data

TABLE = "main.raw.activity"


def _v0() -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": [1, 2, 3], "spend": [10.0, 20.0, 30.0], "plan": ["a", "b", "a"]}
    )


def _inputs(run_id: str) -> list:
    return mlflow.get_run(run_id).inputs.dataset_inputs


def test_read_in_a_run_is_recorded_and_reloads_that_version_after_more_writes(ws):
    ws.tables.write(TABLE, _v0())
    with mlflow.start_run() as run:
        seen = ws.tables.read(TABLE)
        ws.tables.read(TABLE, columns=["spend"])  # same version again: recorded once
    ws.tables.write(TABLE, _v0().assign(customer_id=[4, 5, 6]), mode="append")
    ws.tables.write(TABLE, _v0().assign(spend=0.0), mode="overwrite")
    assert ws.tables.read(TABLE)["spend"].sum() == 0.0

    [item] = _inputs(run.info.run_id)
    dataset = item.dataset
    assert dataset.name == f"{TABLE}@v0"
    assert dataset.source_type == "lakebox_delta"
    source = json.loads(dataset.source)
    assert source["table"] == TABLE and source["version"] == 0
    assert source["location"].rstrip("/").endswith("tables/main/raw/activity")
    assert source["table_id"] == ws.tables.delta_table(TABLE).metadata().id
    assert json.loads(dataset.profile) == {
        "num_files": 1,
        "num_rows": 3,
        "size_bytes": json.loads(dataset.profile)["size_bytes"],
    }
    columns = {c["name"]: c["type"] for c in json.loads(dataset.schema)["mlflow_colspec"]}
    assert columns == {"customer_id": "long", "spend": "double", "plan": "string"}
    assert {t.key: t.value for t in item.tags} == {"mlflow.data.context": "training"}

    reloaded = training_data(run.info.run_id)
    pd.testing.assert_frame_equal(
        reloaded.sort_values("customer_id").reset_index(drop=True),
        seen.sort_values("customer_id").reset_index(drop=True),
    )
    # MLflow itself rebuilds the source through the mlflow.dataset_source entry point
    rebuilt = mlflow.data.get_source(item)
    assert isinstance(rebuilt, LakeboxTableSource) and rebuilt.version == 0
    assert len(rebuilt.load()) == 3


def test_time_travel_read_records_the_version_read(ws):
    ws.tables.write(TABLE, _v0())
    ws.tables.write(TABLE, _v0().assign(customer_id=[4, 5, 6]), mode="append")
    with mlflow.start_run() as run:
        ws.tables.read(TABLE, version=0)
    assert [i.dataset.name for i in _inputs(run.info.run_id)] == [f"{TABLE}@v0"]
    assert len(training_data(run.info.run_id)) == 3


def test_sql_inside_a_run_is_recorded_too(ws):
    ws.tables.write(TABLE, _v0())
    with mlflow.start_run() as run:
        ws.sql(f"SELECT count(*) FROM {TABLE}")
    assert [i.dataset.name for i in _inputs(run.info.run_id)] == [f"{TABLE}@v0"]


def test_no_run_no_record(ws):
    ws.tables.write(TABLE, _v0())
    ws.tables.read(TABLE)
    assert mlflow.active_run() is None
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []


def test_several_tables_and_versions_need_a_choice(ws):
    ws.tables.write(TABLE, _v0())
    ws.tables.write("main.raw.customers", pd.DataFrame({"customer_id": [1]}))
    ws.tables.write(TABLE, _v0().assign(customer_id=[4, 5, 6]), mode="append")
    with mlflow.start_run() as run:
        ws.tables.read(TABLE, version=0)
        ws.tables.read(TABLE)
        ws.tables.read("raw.customers")
    run_id = run.info.run_id
    with pytest.raises(
        InvalidInput,
        match=r"main.raw.activity@v0.*main.raw.activity@v1.*"
        r"main.raw.customers@v0.*table= and/or version=",
    ):
        training_data(run_id)
    assert len(training_data(run_id, "main.raw.customers")) == 1
    with pytest.raises(InvalidInput, match="version="):
        training_data(run_id, TABLE)
    assert len(training_data(run_id, TABLE, version=0)) == 3
    assert len(training_data(run_id, TABLE, version=1)) == 6
    with pytest.raises(NotFound, match=r"recorded no read of 'main.raw.activity' at version 7"):
        training_data(run_id, TABLE, version=7)


def test_off_switch(tmp_path):
    ws = lakebox.Workspace(tmp_path / "off", settings={"mlflow": {"lineage": False}})
    ws.tables.write(TABLE, _v0())
    with mlflow.start_run() as run:
        ws.tables.read(TABLE)
    assert _inputs(run.info.run_id) == []
    with pytest.raises(NotFound, match="recorded no read of any lakebox table"):
        training_data(run.info.run_id)
    ws.close()

    (tmp_path / "off2").mkdir()
    (tmp_path / "off2" / "lakebox.toml").write_text("[mlflow]\nlineage = false\n")
    ws = lakebox.Workspace(tmp_path / "off2")
    ws.tables.write(TABLE, _v0())
    with mlflow.start_run() as run:
        ws.tables.read(TABLE)
    assert _inputs(run.info.run_id) == []
    ws.close()


def test_dropped_table_is_a_clear_error(ws):
    ws.tables.write(TABLE, _v0())
    ws.tables.write(TABLE, _v0(), mode="append")
    with mlflow.start_run() as run:
        ws.tables.read(TABLE)
    ws.tables.drop(TABLE)
    with pytest.raises(NotFound, match=r"Table 'main.raw.activity' at version 1 .*dropped"):
        training_data(run.info.run_id)


def test_recreated_table_is_not_mistaken_for_the_one_read(ws):
    ws.tables.write(TABLE, _v0())
    with mlflow.start_run() as run:
        ws.tables.read(TABLE)
    ws.tables.drop(TABLE)
    ws.tables.write(TABLE, _v0().assign(spend=-1.0))  # a new table with a version 0 too
    with pytest.raises(NotFound, match=r"version 0 .*dropped and re-created"):
        training_data(run.info.run_id)


def test_vacuumed_version_is_a_clear_error(ws):
    ws.tables.write(TABLE, _v0())
    with mlflow.start_run() as run:
        ws.tables.read(TABLE)
    ws.tables.write(TABLE, _v0().assign(spend=1.0), mode="overwrite")
    ws.tables.vacuum(TABLE, retention_hours=0, force=True)
    with pytest.raises(NotFound, match=r"Table 'main.raw.activity' at version 0 .*vacuum"):
        training_data(run.info.run_id)


def test_unknown_run(ws):
    with pytest.raises(NotFound, match="no MLflow run 'nope'"):
        training_data("nope")
