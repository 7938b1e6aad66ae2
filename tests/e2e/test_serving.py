"""Serving through `lakebox up` (a real process on loopback): the real databricks-sdk, every
bad input as a precise 4xx, the traffic split, metrics and readiness, and a stage move plus
config updates under concurrent load with zero failed requests."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import threading
from pathlib import Path

import httpx
import pytest

import lakebox

pytestmark = pytest.mark.server
ROW = {"sessions": 1.0, "spend": 2.0, "tickets": 3}
_spec = importlib.util.spec_from_file_location(
    "_lakebox_tests_conftest", Path(__file__).parents[1] / "conftest.py"
)
_conftest = importlib.util.module_from_spec(_spec)  # start_server/stop_server, module-scoped
sys.modules[_spec.name] = _conftest
_spec.loader.exec_module(_conftest)


def _log_constant(ws, value):
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.dummy import DummyRegressor

    X = pd.DataFrame({"sessions": [1.0, 2.0], "spend": [1.0, 2.0], "tickets": [1, 2]})
    model = DummyRegressor(strategy="constant", constant=value).fit(X, [0.0, 0.0])
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),
            registered_model_name="churn",
            pip_requirements=["scikit-learn"],
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    saved = dict(os.environ)
    home = tmp_path_factory.mktemp("serving-e2e") / "ws"
    ws = lakebox.Workspace(home)
    for value in (1.0, 2.0, 3.0):
        _log_constant(ws, value)
    ws.models.transition_stage("churn", version=1, stage="Production")
    ws.models.transition_stage("churn", version=2, stage="Staging")
    ws.close()
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    os.environ.update(saved)
    srv = _conftest.start_server(
        home, token="tok", extra_env={"LAKEBOX_SERVING_MAX_BODY_BYTES": "20000"}
    )
    yield srv
    _conftest.stop_server(srv)


def test_databricks_sdk_create_get_query_update_delete(server):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.errors import NotFound
    from databricks.sdk.service.serving import (
        EndpointCoreConfigInput,
        EndpointStateConfigUpdate,
        EndpointStateReady,
        Route,
        ServedEntityInput,
        TrafficConfig,
    )

    w = WorkspaceClient(host=server.url, token="tok")
    created = w.serving_endpoints.create(
        name="sdk",
        config=EndpointCoreConfigInput(
            name="sdk",
            served_entities=[
                ServedEntityInput(entity_name="churn", entity_version="Production", name="prod"),
                ServedEntityInput(entity_name="churn", entity_version="Staging", name="stg"),
            ],
            traffic_config=TrafficConfig(
                routes=[
                    Route(served_model_name="prod", traffic_percentage=70),
                    Route(served_model_name="stg", traffic_percentage=30),
                ]
            ),
        ),
    ).result()
    assert created.name == "sdk"
    assert created.state.ready == EndpointStateReady.READY
    assert created.state.config_update == EndpointStateConfigUpdate.NOT_UPDATING
    got = w.serving_endpoints.get("sdk")
    assert [e.name for e in got.config.served_entities] == ["prod", "stg"]
    assert {
        r.served_model_name: r.traffic_percentage for r in got.config.traffic_config.routes
    } == {"prod": 70, "stg": 30}
    answer = w.serving_endpoints.query(name="sdk", dataframe_records=[ROW, ROW])
    assert answer.served_model_name in ("prod", "stg")
    assert answer.predictions == [1.0, 1.0] if answer.served_model_name == "prod" else [2.0, 2.0]
    assert "sdk" in [e.name for e in w.serving_endpoints.list()]
    updated = w.serving_endpoints.update_config(
        name="sdk", served_entities=[ServedEntityInput(entity_name="churn", entity_version="3")]
    ).result()
    assert updated.config.served_entities[0].entity_version == "3"
    assert w.serving_endpoints.query(name="sdk", dataframe_records=[ROW]).predictions == [3.0]
    w.serving_endpoints.delete("sdk")
    with pytest.raises(NotFound):
        w.serving_endpoints.get("sdk")


def _wait_ready(client, name):
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = client.get(f"/api/2.0/serving-endpoints/{name}").json()["state"]
        if state["config_update"] != "IN_PROGRESS":
            return state
        time.sleep(0.1)
    raise AssertionError(f"{name} never finished loading")


def _create(client, name, config):
    response = client.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
    assert response.status_code == 200, response.text
    return _wait_ready(client, name)


def test_bad_input_is_a_precise_4xx_never_500(server):
    client = server.client()
    _create(
        client, "strict", {"served_entities": [{"entity_name": "churn", "entity_version": "1"}]}
    )
    url = "/serving-endpoints/strict/invocations"
    cases = [
        (b"{", "application/json", 400, "Malformed JSON"),
        (b'{"dataframe_records": [], "instances": []}', "application/json", 400, "exactly one"),
        (b"{}", "application/json", 400, "it has none"),
        (b'{"dataframe_records": []}', "application/json", 400, "empty"),
        (
            json.dumps({"dataframe_records": [{**ROW, "sessions": "many"}]}).encode(),
            "application/json",
            400,
            "Column 'sessions' expects double",
        ),
        (
            json.dumps({"dataframe_records": [{"sessions": 1.0, "spend": 1.0}]}).encode(),
            "application/json",
            400,
            "Missing column 'tickets' (expected long)",
        ),
        (
            json.dumps({"dataframe_records": [{**ROW, "extra": 1}]}).encode(),
            "application/json",
            400,
            "Unexpected column(s) ['extra']",
        ),
        (b"sessions,spend\n1.0,2.0\n", "text/csv", 400, "Missing column 'tickets'"),
        (b"x" * 30000, "application/json", 413, "limit is 20000 bytes"),
        (b"<a/>", "application/xml", 400, "Unsupported Content-Type"),
    ]
    for body, content_type, status, message in cases:
        response = client.post(url, content=body, headers={"content-type": content_type})
        assert response.status_code == status, (body[:40], response.text)
        assert message in response.json()["message"], response.text
    unknown = client.post("/serving-endpoints/nope/invocations", json={"dataframe_records": [ROW]})
    assert unknown.status_code == 404 and "'nope' does not exist" in unknown.json()["message"]
    wrong_served = client.post(
        "/serving-endpoints/strict/served-models/nope/invocations",
        json={"dataframe_records": [ROW]},
    )
    assert wrong_served.status_code == 404 and "No served model 'nope'" in wrong_served.text
    direct = client.post(
        "/serving-endpoints/strict/served-models/churn-1/invocations",
        content=b"sessions,spend,tickets\n1.0,2.0,3\n",
        headers={"content-type": "text/csv"},
    )
    assert direct.status_code == 200 and direct.json() == {"predictions": [1.0]}
    assert direct.headers["served-model-name"] == "churn-1"
    no_token = httpx.post(f"{server.url}{url}", json={"dataframe_records": [ROW]})
    assert no_token.status_code == 401
    # a model that cannot load: NOT_READY with the reason, invocations a 409 naming it
    state = _create(
        client, "hopeless", {"served_entities": [{"entity_name": "churn", "entity_version": "99"}]}
    )
    assert state["ready"] == "NOT_READY" and "99" in state["reason"]
    failed = client.post(
        "/serving-endpoints/hopeless/invocations", json={"dataframe_records": [ROW]}
    )
    assert failed.status_code == 409 and "not ready" in failed.json()["message"]
    bad_config = client.post(
        "/api/2.0/serving-endpoints",
        json={
            "name": "x",
            "config": {
                "served_entities": [{"entity_name": "churn", "entity_version": "1"}],
                "traffic_config": {
                    "routes": [{"served_model_name": "churn-1", "traffic_percentage": 50}]
                },
            },
        },
    )
    assert bad_config.status_code == 400 and "sum to 100" in bad_config.json()["message"]
    metrics = client.get("/metrics").text
    assert (
        'lakebox_serving_requests_total{endpoint="strict",served_model="churn-1",code="400"}'
        in (metrics)
    )
    assert "lakebox_serving_request_duration_seconds_bucket" in metrics


def test_traffic_split_is_statistically_right(server):
    client = server.client()
    _create(
        client,
        "split",
        {
            "served_entities": [
                {"entity_name": "churn", "entity_version": "1", "name": "a"},
                {"entity_name": "churn", "entity_version": "2", "name": "b"},
            ],
            "traffic_config": {
                "routes": [
                    {"served_model_name": "a", "traffic_percentage": 75},
                    {"served_model_name": "b", "traffic_percentage": 25},
                ]
            },
        },
    )
    n = 800
    served = [
        client.post(
            "/serving-endpoints/split/invocations", json={"dataframe_records": [ROW]}
        ).headers["served-model-name"]
        for _ in range(n)
    ]
    b = served.count("b")
    assert served.count("a") + b == n
    assert abs(b - n * 0.25) < 5 * math.sqrt(n * 0.25 * 0.75)  # 5 sd of binomial(800, 0.25)
    assert client.get("/ready").json()["ready"] in (True, False)


def test_stage_move_and_config_updates_under_load_fail_nothing(server):
    client = server.client()
    _create(client, "live", {"served_entities": [{"entity_name": "churn", "stage": "Production"}]})
    results: list[tuple[int, float | None]] = []
    stop = threading.Event()

    def hammer() -> None:
        with server.client() as c:
            while not stop.is_set():
                r = c.post("/serving-endpoints/live/invocations", json={"dataframe_records": [ROW]})
                results.append((r.status_code, r.json().get("predictions", [None])[0]))

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        ws = lakebox.Workspace(server.home)
        ws.models.transition_stage(
            "churn", version=3, stage="Production", archive_existing_versions=True
        )
        _wait_for(lambda: results and results[-1][1] == 3.0)
        for version in ("2", "1"):
            r = client.put(
                "/api/2.0/serving-endpoints/live/config",
                json={"served_entities": [{"entity_name": "churn", "entity_version": version}]},
            )
            assert r.status_code == 200
            assert r.json()["state"]["config_update"] == "IN_PROGRESS" or r.json()["pending_config"]
            _wait_ready(client, "live")
            _wait_for(lambda v=float(version): results[-1][1] == v)
        ws.close()
    finally:
        stop.set()
        for t in threads:
            t.join()
    statuses = {s for s, _ in results}
    assert statuses == {200}, [r for r in results if r[0] != 200][:5]
    seen = [p for _, p in results]
    assert {1.0, 3.0, 2.0} <= set(seen)
    assert len(results) > 50


def _wait_for(condition, timeout=30.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_inference_table_is_complete_after_graceful_shutdown(tmp_path):
    saved = dict(os.environ)
    home = tmp_path / "ws"
    ws = lakebox.Workspace(home)
    _log_constant(ws, 7.0)
    ws.close()
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    os.environ.update(saved)
    srv = _conftest.start_server(home)
    try:
        client = srv.client()
        _create(
            client,
            "logged",
            {
                "served_entities": [{"entity_name": "churn", "entity_version": "1"}],
                "auto_capture_config": {
                    "catalog_name": "main",
                    "schema_name": "serving",
                    "table_name_prefix": "churn",
                },
            },
        )
        for i in range(25):
            r = client.post(
                "/serving-endpoints/logged/invocations",
                json={"dataframe_records": [ROW], "client_request_id": f"r{i}"},
            )
            assert r.status_code == 200
        assert client.post("/serving-endpoints/logged/invocations", content=b"{").status_code == 400
    finally:
        _conftest.stop_server(srv)  # SIGTERM: uvicorn's graceful shutdown flushes the queue
    ws = lakebox.Workspace(home)
    table = ws.tables.read("main.serving.churn_payload")
    ws.close()
    assert len(table) == 26
    assert sorted(table["client_request_id"].dropna()) == sorted(f"r{i}" for i in range(25))
    assert set(table["model_version"]) == {"1"}
    assert (table["status_code"] == 400).sum() == 1
