"""ws.serving in one process: endpoints over real MLflow models, traffic split, hot swap on
stage/alias moves and config updates, load failures, inference tables, metrics."""

from __future__ import annotations

import math
import threading

import pytest
from mlflow import MlflowClient

from lakebox.errors import AlreadyExists, InvalidInput, NotFound
from lakebox.serving import LoadError

FEATURES = {"sessions": 1.0, "spend": 2.0, "tickets": 3}
ROWS = [FEATURES]


def _client(ws):
    return MlflowClient(ws.tracking_uri, ws.registry_uri)


def test_create_query_get_list_delete(sws):
    record = sws.serving.create_endpoint(
        "churn",
        [
            {
                "entity_name": "churn",
                "entity_version": "2",
                "workers": 2,
                "environment_vars": {"LAKEBOX_SERVING_TEST_VAR": "yes"},
            }
        ],
    )
    assert (record.ready, record.config_update, record.served_versions) == (
        "READY",
        "NOT_UPDATING",
        {"churn-2": "2"},
    )
    assert sws.serving.query("churn", ROWS) == {"predictions": [2.0], "served_model": "churn-2"}
    loaded = sws.serving.runtime.deployments["churn"].models["churn-2"]
    assert loaded.raw_predict is not None and loaded.matrix  # the estimator, called on a matrix
    import os

    assert os.environ["LAKEBOX_SERVING_TEST_VAR"] == "yes"
    assert [e.name for e in sws.serving.list_endpoints()] == ["churn"]
    with pytest.raises(AlreadyExists, match="already exists"):
        sws.serving.create_endpoint("churn", [{"entity_name": "churn", "entity_version": "1"}])
    with pytest.raises(InvalidInput, match="Invalid endpoint name"):
        sws.serving.create_endpoint("bad name", [{"entity_name": "churn", "entity_version": "1"}])
    with pytest.raises(InvalidInput, match="expects double"):
        sws.serving.query("churn", [{**FEATURES, "spend": "lots"}])
    sws.serving.delete_endpoint("churn")
    with pytest.raises(NotFound, match="does not exist"):
        sws.serving.get_endpoint("churn")
    with pytest.raises(NotFound, match="does not exist"):
        sws.serving.query("churn", ROWS)


def test_traffic_split_follows_the_percentages(sws):
    sws.models.transition_stage("churn", version=1, stage="Production")
    sws.models.transition_stage("churn", version=2, stage="Staging")
    sws.serving.create_endpoint(
        "split",
        [
            {"entity_name": "churn", "stage": "Production"},
            {"entity_name": "churn", "stage": "Staging"},
        ],
        traffic={"Production": 80, "Staging": 20},
    )
    n = 2000
    answers = [sws.serving.query("split", ROWS) for _ in range(n)]
    staging = sum(a["served_model"] == "churn-Staging" for a in answers)
    assert all(
        a["predictions"] == [2.0 if a["served_model"] == "churn-Staging" else 1.0] for a in answers
    )
    # binomial(n, 0.2): mean 400, sd ~17.9; 5 sd makes a false failure ~1 in 3 million
    assert abs(staging - n * 0.2) < 5 * math.sqrt(n * 0.2 * 0.8)
    direct = sws.serving.query("split", ROWS, served_model="churn-Staging")
    assert direct["served_model"] == "churn-Staging"
    with pytest.raises(NotFound, match="No served model 'nope'"):
        sws.serving.query("split", ROWS, served_model="nope")


def test_stage_and_alias_moves_swap_the_model(sws):
    sws.models.transition_stage("churn", version=1, stage="Production")
    sws.models.set_alias("churn", "champion", 1)
    sws.serving.create_endpoint(
        "moves",
        [
            {"entity_name": "churn", "stage": "Production", "name": "prod"},
            {"entity_name": "churn", "alias": "champion", "name": "champ"},
        ],
        traffic={"prod": 50, "champ": 50},
    )
    runtime = sws.serving.runtime
    runtime.poll()  # remembers where the event outbox ends
    sws.models.transition_stage(
        "churn", version=3, stage="Production", archive_existing_versions=True
    )
    sws.models.set_alias("churn", "champion", 2)
    runtime.poll()  # consumes the registry events and swaps
    assert sws.serving.query("moves", ROWS, served_model="prod")["predictions"] == [3.0]
    assert sws.serving.query("moves", ROWS, served_model="champ")["predictions"] == [2.0]
    assert sws.serving.get_endpoint("moves").served_versions == {"prod": "3", "champ": "2"}


def test_a_version_that_fails_to_load_leaves_the_previous_one_serving(sws, tmp_path):
    client = _client(sws)
    broken = client.create_model_version("churn", source=str(tmp_path / "missing")).version
    sws.models.set_alias("churn", "champion", 1)
    sws.serving.create_endpoint("safe", [{"entity_name": "churn", "alias": "champion"}])
    runtime = sws.serving.runtime
    runtime.poll()
    sws.models.set_alias("churn", "champion", broken)
    runtime.poll()
    assert sws.serving.query("safe", ROWS)["predictions"] == [1.0]
    record = sws.serving.get_endpoint("safe")
    assert record.ready == "READY"
    assert f"version {broken}" in record.reason and "still serving" in record.reason

    updated = sws.serving.update_config(
        "safe", [{"entity_name": "churn", "entity_version": broken}]
    )
    assert (updated.ready, updated.config_update) == ("READY", "UPDATE_FAILED")
    assert "failed to load" in updated.reason
    assert updated.pending_config is None and updated.config.served_entities[0].alias == "champion"
    assert sws.serving.query("safe", ROWS)["predictions"] == [1.0]


def test_an_endpoint_with_nothing_to_serve_is_not_ready(sws):
    record = sws.serving.create_endpoint("empty", [{"entity_name": "churn", "stage": "Staging"}])
    assert (record.ready, record.config_update) == ("NOT_READY", "UPDATE_FAILED")
    assert "no version of model 'churn' is in stage 'Staging'" in record.reason
    with pytest.raises(LoadError, match="not ready"):
        sws.serving.query("empty", ROWS)


def test_config_update_under_concurrent_queries_fails_nothing(sws):
    sws.serving.create_endpoint("busy", [{"entity_name": "churn", "entity_version": "1"}])
    failures: list[BaseException] = []
    seen: set[float] = set()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                seen.update(sws.serving.query("busy", ROWS)["predictions"])
            except BaseException as exc:
                failures.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for version in ("2", "3", "1", "2"):
            record = sws.serving.update_config(
                "busy", [{"entity_name": "churn", "entity_version": version}]
            )
            assert record.config_update == "NOT_UPDATING"
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert seen == {1.0, 2.0, 3.0}
    assert sws.serving.query("busy", ROWS)["predictions"] == [2.0]


def test_inference_table_gets_every_request_on_close(sws):
    sws.serving.create_endpoint(
        "logged",
        [{"entity_name": "churn", "entity_version": "3"}],
        inference_table="main.serving.churn_log",
    )
    for _ in range(7):
        sws.serving.query("logged", ROWS)
    with pytest.raises(InvalidInput):
        sws.serving.query("logged", [{"sessions": 1.0}])
    sws.serving.close()  # graceful shutdown: flushes the queue
    table = sws.tables.read("main.serving.churn_log")
    assert len(table) == 8
    assert sorted(table["status_code"].tolist()) == [200] * 7 + [400]
    assert set(table["served_model_name"]) == {"churn-3"}
    assert set(table["model_version"]) == {"3"}
    ok = table[table["status_code"] == 200].iloc[0]
    assert '"predictions": [3.0]' in ok["response"] and "dataframe_records" in ok["request"]
    assert (table["execution_time_ms"] > 0).all()


def test_metrics_count_requests_errors_and_latency(sws):
    sws.serving.create_endpoint("m", [{"entity_name": "churn", "entity_version": "1"}])
    sws.serving.query("m", ROWS)
    with pytest.raises(InvalidInput):
        sws.serving.query("m", [{"x": 1}])
    with pytest.raises(NotFound):
        sws.serving.query("ghost", ROWS)
    runtime = sws.serving.runtime
    text = runtime.metrics.render(loaded=runtime.loaded())
    assert "ghost" not in text
    assert (
        'lakebox_serving_requests_total{endpoint="m",served_model="churn-1",code="200"} 1' in text
    )
    assert 'lakebox_serving_errors_total{endpoint="m",served_model="churn-1"} 1' in text
    assert (
        'lakebox_serving_request_duration_seconds_count{endpoint="m",served_model="churn-1"} 2'
        in text
    )
    assert 'le="+Inf"} 2' in text
    assert 'lakebox_serving_model_info{endpoint="m",served_model="churn-1",version="1"} 1' in text
