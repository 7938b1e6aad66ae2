"""`lakebox up` as a real process: UC-shaped table routes, auth, and the stock MLflow client."""

import os
import subprocess
import sys

import httpx
import pandas as pd
import pytest

import lakebox

pytestmark = pytest.mark.server


@pytest.fixture
def home(tmp_path):
    ws = lakebox.Workspace(tmp_path / "ws")
    ws.tables.write(
        "main.sales.orders", pd.DataFrame({"id": [1, 2], "amount": [1.5, 2.5]}), partition_by=["id"]
    )
    ws.tables.set_comment("main.sales.orders", "All orders")
    ws.tables.set_comment("main.sales.orders", "In EUR", column="amount")
    ws.tables.write("main.crm.people", pd.DataFrame({"name": ["a"]}))
    ws.close()
    return tmp_path / "ws"


def test_health_and_unity_catalog_tables(lakebox_server, home):
    server = lakebox_server(home=home)
    with server.client() as http:
        assert http.get("/health").json()["status"] == "OK"
        tables = http.get(
            "/api/2.1/unity-catalog/tables", params={"catalog_name": "main", "schema_name": "sales"}
        ).json()
        assert [t["full_name"] for t in tables["tables"]] == ["main.sales.orders"]
        everything = http.get("/api/2.1/unity-catalog/tables").json()["tables"]
        assert len(everything) == 2
        page = http.get("/api/2.1/unity-catalog/tables", params={"max_results": 1}).json()
        assert len(page["tables"]) == 1 and page["next_page_token"] == "1"
        table = http.get("/api/2.1/unity-catalog/tables/main.sales.orders").json()
        assert table["data_source_format"] == "DELTA" and table["comment"] == "All orders"
        columns = {c["name"]: c for c in table["columns"]}
        assert columns["amount"]["type_name"] == "DOUBLE"
        assert columns["amount"]["comment"] == "In EUR"
        assert columns["id"]["partition_index"] == 0
        missing = http.get("/api/2.1/unity-catalog/tables/main.sales.ordrs")
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        assert "main.sales.orders" in missing.json()["message"]
        bad = http.get("/api/2.1/unity-catalog/tables/a..b")
        assert bad.status_code == 400 and "catalog.schema.table" in bad.json()["message"]
        assert http.get("/api/2.1/unity-catalog/catalogs").json()["catalogs"][0]["name"] == "main"
        assert http.delete("/api/2.1/unity-catalog/tables/main.crm.people").status_code == 200
        assert len(http.get("/api/2.1/unity-catalog/tables").json()["tables"]) == 1


def test_databricks_sdk_reads_tables(lakebox_server, home):
    from databricks.sdk import WorkspaceClient

    server = lakebox_server(home=home, token="secret-token")
    w = WorkspaceClient(host=server.url, token="secret-token")
    table = w.tables.get("main.sales.orders")
    assert table.full_name == "main.sales.orders"
    assert [c.name for c in table.columns] == ["id", "amount"]
    assert {t.full_name for t in w.tables.list(catalog_name="main", schema_name="sales")} == {
        "main.sales.orders"
    }


_MLFLOW_CLIENT = """
import sys, mlflow, numpy as np
from sklearn.linear_model import LinearRegression
mlflow.set_experiment("through-server")
with mlflow.start_run() as run:
    mlflow.log_param("alpha", 0.5)
    mlflow.log_metric("rmse", 0.25)
    model = LinearRegression().fit(np.array([[1.0], [2.0]]), [1.0, 2.0])
    info = mlflow.sklearn.log_model(model, name="model", registered_model_name="served",
                                    pip_requirements=["scikit-learn"])
prediction = float(mlflow.pyfunc.load_model("models:/served/1").predict(np.array([[3.0]]))[0])
print("RESULT", run.info.run_id, info.registered_model_version, prediction)
"""


def test_stock_mlflow_client_through_the_server(lakebox_server, home, tmp_path):
    server = lakebox_server(home=home, token="tok")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "_MLFLOW"))}
    env.update(
        MLFLOW_TRACKING_URI=server.url, MLFLOW_TRACKING_TOKEN="tok", MLFLOW_DISABLE_TELEMETRY="true"
    )
    result = subprocess.run(
        [sys.executable, "-c", _MLFLOW_CLIENT],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT"))
    _, run_id, version, prediction = line.split()
    assert version == "1" and float(prediction) == pytest.approx(3.0)
    # The run and the model are in the workspace's own MLflow store.
    from mlflow import MlflowClient

    ws = lakebox.Workspace(home)
    client = MlflowClient(ws.tracking_uri, ws.registry_uri)
    run = client.get_run(run_id)
    assert run.data.params == {"alpha": "0.5"} and run.data.metrics["rmse"] == 0.25
    assert client.get_model_version("served", "1").run_id == run_id
    # The MLflow UI is served at / too.
    with server.client() as http:
        assert "<html" in http.get("/").text.lower()


def test_token_auth(lakebox_server, home):
    server = lakebox_server(home=home, token="s3cret")
    assert httpx.get(f"{server.url}/health").status_code == 200
    denied = httpx.get(f"{server.url}/api/2.1/unity-catalog/tables")
    assert denied.status_code == 401 and "Bearer" in denied.json()["message"]
    wrong = httpx.get(
        f"{server.url}/api/2.1/unity-catalog/tables", headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    assert httpx.get(f"{server.url}/ajax-api/2.0/mlflow/experiments/search").status_code == 401
    with server.client() as http:
        assert http.get("/api/2.1/unity-catalog/tables").status_code == 200
    # A browser opens /?token=... once and then rides on the cookie.
    browser = httpx.Client(base_url=server.url)
    assert browser.get("/", params={"token": "s3cret"}).status_code == 200
    assert browser.get("/api/2.1/unity-catalog/tables").status_code == 200


def test_non_loopback_bind_without_token_is_refused(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LAKEBOX_TOKEN"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lakebox",
            "--home",
            str(tmp_path / "ws"),
            "up",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Refusing to bind '0.0.0.0' without a token" in result.stderr
