"""Serving pages: fast TestClient tests on a workspace with a served model, and a browser
test on the demo server (send a query from the endpoint page, see a prediction)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import lakebox
from lakebox.server import create_app
from lakebox.serving import ColumnSchema
from lakebox.ui._serving_pages import sample_request

LOG_TABLE = "main.serving.ui_log"


def _text(page: str) -> str:
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", page).split()))


def _log_model(value: float) -> str:
    """Register ``ui_churn``: a scikit-learn model predicting ``value``, with an input
    example (so the page can prefill the query box)."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.dummy import DummyRegressor

    X = pd.DataFrame({"sessions": [3.0, 1.0], "spend": [25.5, 2.0], "tickets": [2, 0]})
    model = DummyRegressor(strategy="constant", constant=value).fit(X, [0.0, 0.0])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),
            input_example=X.head(1),
            registered_model_name="ui_churn",
            pip_requirements=["scikit-learn"],
        )
    return str(info.registered_model_version)


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    saved = dict(os.environ)  # module fixtures run outside the per-test environment reset
    home = tmp_path_factory.mktemp("ui-serving") / "ws"
    ws = lakebox.Workspace(home)
    for value in (1.0, 2.0):
        _log_model(value)
    ws.close()
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    os.environ.update(saved)
    return home


@pytest.fixture
def sws(tmp_path: Path, _template: Path) -> Iterator[lakebox.Workspace]:
    """A workspace with ``ui_churn`` v1 (predicts 1.0) and v2 (predicts 2.0) served 70/30
    by endpoint ``ui-ep``, requests logged to :data:`LOG_TABLE`."""
    home = tmp_path / "ws"
    shutil.copytree(_template, home)
    ws = lakebox.Workspace(home)
    ws.serving.create_endpoint(
        "ui-ep",
        [
            {"entity_name": "ui_churn", "entity_version": "1"},
            {"entity_name": "ui_churn", "entity_version": "2"},
        ],
        traffic={"1": 70, "2": 30},
        inference_table=LOG_TABLE,
    )
    yield ws
    ws.close()


@pytest.fixture
def client(sws: lakebox.Workspace) -> TestClient:
    return TestClient(create_app(sws, token="", mount_mlflow=False))


def _csrf(client: TestClient) -> dict[str, str]:
    client.get("/ui/serving")
    return {"X-CSRF-Token": client.cookies["lakebox_csrf"], "HX-Request": "true"}


# ----------------------------------------------------------------------------- pages
def test_list_shows_each_endpoint_with_state_and_traffic(client):
    page = client.get("/ui/serving")
    assert page.status_code == 200
    row = page.text.split('data-testid="endpoint-ui-ep"')[1].split("</tr>")[0]
    text = _text(row)
    assert "READY" in text
    assert "ui_churn v1" in text and "ui_churn v2" in text
    assert "ui_churn-1: 70%" in text and "ui_churn-2: 30%" in text
    assert LOG_TABLE in text
    assert 'href="/ui/serving/ui-ep"' in row


def test_endpoint_page_shows_served_models_links_and_a_sample_request(client):
    page = client.get("/ui/serving/ui-ep")
    assert page.status_code == 200
    served = page.text.split('data-testid="served-ui_churn-2"')[1].split("</tr>")[0]
    assert 'href="/ui/models/ui_churn"' in served
    assert 'href="/#/models/ui_churn/versions/2"' in served  # the MLflow UI
    assert "30%" in _text(served)
    assert "sessions: double" in _text(served)
    assert 'href="/ui/catalog/main/serving/ui_log"' in page.text
    # the query box is prefilled with the model's input example
    body = html.unescape(page.text.split('data-testid="query-body"')[1].split("</textarea>")[0])
    sample = json.loads(body.split(">", 1)[1])
    assert sample == {"dataframe_records": [{"sessions": 3.0, "spend": 25.5, "tickets": 2}]}
    assert "plotly.min.js" in page.text


def test_query_box_calls_the_live_endpoint(client, sws):
    headers = _csrf(client)
    body = json.dumps({"dataframe_records": [{"sessions": 1.0, "spend": 2.0, "tickets": 3}]})
    seen = set()
    for _ in range(12):
        answer = client.post("/ui/serving/ui-ep/query", data={"body": body}, headers=headers)
        assert answer.status_code == 200
        assert answer.headers["HX-Trigger"] == "serving-queried"
        shown = json.loads(
            html.unescape(answer.text.split('data-testid="answer-json">')[1].split("</pre>")[0])
        )
        model = re.search(r'data-testid="answer-served-model">([^<]+)<', answer.text)
        assert model is not None
        seen.add(model.group(1))
        expected = {"ui_churn-1": 1.0, "ui_churn-2": 2.0}[model.group(1)]
        assert shown == {"predictions": [expected]}
    # the runtime counted them like any REST invocation
    counted = sws.serving.runtime.metrics.summary("ui-ep")
    assert sum(m["requests"] for m in counted.values()) == 12
    assert seen <= {"ui_churn-1", "ui_churn-2"}


def test_query_box_shows_the_endpoints_error_for_bad_input(client):
    headers = _csrf(client)
    bad = client.post(
        "/ui/serving/ui-ep/query",
        data={"body": json.dumps({"dataframe_records": [{"sessions": "three"}]})},
        headers=headers,
    )
    assert bad.status_code == 200
    assert 'data-status="400"' in bad.text
    assert "Column 'sessions' expects double" in html.unescape(bad.text)
    broken = client.post("/ui/serving/ui-ep/query", data={"body": "{not json"}, headers=headers)
    assert 'data-status="400"' in broken.text


def test_query_needs_the_csrf_token(client):
    client.get("/ui/serving")
    refused = client.post("/ui/serving/ui-ep/query", data={"body": "{}"})
    assert refused.status_code == 403
    assert "CSRF token" in refused.text


def test_unknown_endpoint_is_a_404_naming_it(client):
    page = client.get("/ui/serving/nope-ep")
    assert page.status_code == 404
    assert "nope-ep" in html.unescape(page.text) and "ui-ep" in html.unescape(page.text)
    headers = _csrf(client)
    query = client.post("/ui/serving/nope-ep/query", data={"body": "{}"}, headers=headers)
    assert query.status_code == 404
    assert "nope-ep" in html.unescape(query.text)
    assert client.get("/ui/serving/nope-ep/charts").status_code == 404


def test_charts_count_requests_and_latency_from_the_inference_table(client, sws):
    headers = _csrf(client)
    body = json.dumps({"dataframe_records": [{"sessions": 1.0, "spend": 2.0, "tickets": 3}]})
    for _ in range(5):
        client.post("/ui/serving/ui-ep/query", data={"body": body}, headers=headers)
    sws.serving.runtime.logger.flush()
    charts = client.get("/ui/serving/ui-ep/charts")
    assert charts.status_code == 200
    assert "5 request(s)" in _text(charts.text)
    figures = re.findall(r"var (requests|latency) = (\{.*\});", charts.text)
    data = {name: json.loads(doc) for name, doc in figures}
    per_model = {t["name"]: sum(t["y"]) for t in data["requests"]["data"] if t["type"] == "bar"}
    assert sum(per_model.values()) == 5
    assert set(per_model) <= {"ui_churn-1", "ui_churn-2"}
    p50, p99 = data["latency"]["data"]
    assert p50["name"] == "p50" and p99["name"] == "p99"
    assert all(a <= b for a, b in zip(p50["y"], p99["y"], strict=True))
    # this process's own counters are shown beside them
    assert 'data-testid="process-metrics"' in charts.text


def test_an_endpoint_without_inference_table_charts_this_process_only(client, sws):
    sws.serving.create_endpoint("ui-plain", [{"entity_name": "ui_churn", "entity_version": "2"}])
    page = client.get("/ui/serving/ui-plain")
    assert "requests are not logged" in page.text
    charts = client.get("/ui/serving/ui-plain/charts")
    assert "chart-requests" not in charts.text
    assert "No request to this endpoint since the server started" in charts.text
    headers = _csrf(client)
    body = json.dumps({"inputs": [[1.0, 2.0, 3]]})
    answer = client.post("/ui/serving/ui-plain/query", data={"body": body}, headers=headers)
    assert 'data-status="200"' in answer.text
    charts = client.get("/ui/serving/ui-plain/charts")
    row = charts.text.split('data-testid="process-metrics"')[1].split("</tr>")[1]
    assert "ui_churn-2" in row and "<td>1</td>" in row


def test_sample_request_falls_back_to_the_signature():
    schema = ColumnSchema((("age", "long", True), ("plan", "string", True), ("x", "double", True)))
    model = SimpleNamespace(
        feature_spec=None, pyfunc=SimpleNamespace(input_example=None), schema=schema
    )
    assert sample_request(model) == {  # type: ignore[arg-type]
        "dataframe_records": [{"age": 1, "plan": "a", "x": 1.0}]
    }
    bare = SimpleNamespace(
        feature_spec=None, pyfunc=SimpleNamespace(input_example=None), schema=None
    )
    assert sample_request(bare) is None  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- browser
def _served_count(ui_server: Any) -> int:
    with ui_server.client() as api:
        metrics = api.get("/metrics").text
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in metrics.splitlines()
        if line.startswith('lakebox_serving_requests_total{endpoint="churn"')
        and 'code="200"' in line
    )


@pytest.mark.server
def test_send_a_query_from_the_endpoint_page(page, ui_server, shot):
    # the demo's endpoint is live in `lakebox up` (loaded at start-up)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with ui_server.client() as api:
            if api.get("/ready").status_code == 200:
                break
        time.sleep(0.5)
    before = _served_count(ui_server)
    page.goto("/ui/serving")
    page.click('[data-testid="endpoint-churn"] a')
    page.wait_for_url("**/ui/serving/churn")
    assert "READY" in page.inner_text('[data-testid="endpoint-state"]')
    sample = json.loads(page.input_value('[data-testid="query-body"]'))
    assert set(sample["dataframe_records"][0]) == {"sessions", "spend", "tickets"}
    page.fill(
        '[data-testid="query-body"]',
        json.dumps({"dataframe_records": [{"sessions": 3.0, "spend": 25.0, "tickets": 2.0}]}),
    )
    page.click('[data-testid="query-send"]')
    answer = page.wait_for_selector('[data-testid="answer"][data-status="200"]')
    assert answer is not None
    shown = json.loads(page.inner_text('[data-testid="answer-json"]'))
    assert len(shown["predictions"]) == 1 and shown["predictions"][0] in (0, 1)
    served = page.inner_text('[data-testid="answer-served-model"]')
    assert served in ("churn-Production", "churn-Staging")
    # the server answered it through the endpoint (its metrics count the request)
    assert _served_count(ui_server) == before + 1
    # the charts drawn from the inference table (plotly renders SVG)
    page.wait_for_selector('[data-testid="chart-requests"] .main-svg')
    page.wait_for_selector('[data-testid="chart-latency"] .main-svg')
    page.wait_for_timeout(2500)  # the charts reload after the query: let them settle
    page.wait_for_selector('[data-testid="chart-requests"] .main-svg')
    shot(page, "serving-endpoint")
    page.goto("/ui/serving")
    shot(page, "serving-list")
    assert httpx.get(ui_server.url + "/ui/serving", follow_redirects=False).status_code == 303


@pytest.mark.server
def test_feature_lookup_endpoint_page_and_its_prefilled_query(page, ui_server, shot):
    # an endpoint of our own serving the demo's feature-aware model (it looks features up
    # in the online store by customer_id)
    name = f"ui-features-{uuid.uuid4().hex[:8]}"
    with ui_server.client() as api:
        created = api.post(
            "/api/2.0/serving-endpoints",
            json={
                "name": name,
                "config": {
                    "served_entities": [{"entity_name": "churn_features", "entity_version": "1"}]
                },
            },
        )
        assert created.status_code == 200, created.text
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                state = api.get(f"/api/2.0/serving-endpoints/{name}").json()["state"]
                if state["ready"] == "READY" or state["config_update"] == "UPDATE_FAILED":
                    break
                time.sleep(0.5)
            assert state["ready"] == "READY", state
            page.goto(f"/ui/serving/{name}")
            lookups = page.inner_text('[data-testid="lookups"]')
            assert "main.fs.customer_daily" in lookups and "customer_id" in lookups
            assert "sessions_7d" in lookups and "published" in lookups
            assert "main.fs.spend_per_session" in lookups
            # the sample request carries only the lookup key, with a key from the table
            sample = json.loads(page.input_value('[data-testid="query-body"]'))
            assert list(sample["dataframe_records"][0]) == ["customer_id"]
            page.click('[data-testid="query-send"]')
            page.wait_for_selector('[data-testid="answer"][data-status="200"]')
            shown = json.loads(page.inner_text('[data-testid="answer-json"]'))
            assert shown["predictions"][0] in (0, 1)
            shot(page, "serving-feature-endpoint")
        finally:
            api.delete(f"/api/2.0/serving-endpoints/{name}")
