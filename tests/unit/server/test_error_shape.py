"""Every error the server answers is Databricks' ``{"error_code", "message"}`` JSON, and the
OpenAPI document declares it (and no FastAPI 422)."""

from __future__ import annotations

import logging

import pytest
from fastapi import HTTPException
from starlette.testclient import TestClient

from lakebox.server import create_app

# MLflow's server refuses Host headers other than localhost (DNS-rebinding protection).
BASE = "http://localhost"


@pytest.fixture(scope="module")
def module_ws(tmp_path_factory):  # type: ignore[no-untyped-def]
    import os

    import lakebox

    saved = dict(os.environ)
    workspace = lakebox.Workspace(tmp_path_factory.mktemp("error-shape") / "ws")
    yield workspace
    workspace.close()
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    os.environ.update(saved)


@pytest.fixture(scope="module")
def client(module_ws):  # type: ignore[no-untyped-def]
    with TestClient(create_app(module_ws, token=""), base_url=BASE) as c:
        yield c


@pytest.fixture(scope="module")
def bare_app(module_ws):  # type: ignore[no-untyped-def]
    """The app without MLflow's server mounted, plus routes that fail on purpose."""
    app = create_app(module_ws, token="", mount_mlflow=False)

    @app.get("/api/2.0/test/boom")
    def boom() -> dict[str, str]:
        raise RuntimeError("secret detail /etc/passwd")

    @app.get("/api/2.0/test/teapot")
    def teapot() -> dict[str, str]:
        raise HTTPException(status_code=418, detail="I am a teapot")

    return app


def _shape(response):  # type: ignore[no-untyped-def]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    assert body["message"] and "Traceback" not in body["message"]
    return body


def test_lakebox_error_maps_to_its_status_and_code(client):  # type: ignore[no-untyped-def]
    response = client.get("/api/2.2/jobs/get", params={"job_id": 424242})
    assert response.status_code == 404
    assert _shape(response)["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_validation_errors_are_400_not_422(client):  # type: ignore[no-untyped-def]
    missing = client.get("/api/2.1/unity-catalog/schemas")
    assert missing.status_code == 400
    body = _shape(missing)
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "catalog_name" in body["message"]

    wrong_type = client.get("/api/2.2/jobs/get", params={"job_id": "abc"})
    assert wrong_type.status_code == 400 and "job_id" in _shape(wrong_type)["message"]

    not_an_object = client.post("/api/2.0/mlflow/comments/create", json=[1, 2])
    assert not_an_object.status_code == 400
    _shape(not_an_object)

    missing_field = client.post("/api/2.2/jobs/runs/cancel", json={})
    assert missing_field.status_code == 400 and "run_id" in _shape(missing_field)["message"]


def test_malformed_json_body(client):  # type: ignore[no-untyped-def]
    response = client.post(
        "/api/2.2/jobs/create",
        content=b'{"name": "x",',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    body = _shape(response)
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "malformed JSON" in body["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/2.0/unknown",
        "/api/2.1/unity-catalog/no-such-thing",
        "/api/2.0/mlflow/no-such-thing",  # MLflow's Flask answers an HTML page here
        "/api/2.2/jobs/runs/nothing",
    ],
)
def test_unknown_api_path_is_json_404(client, path):  # type: ignore[no-untyped-def]
    response = client.get(path)
    assert response.status_code == 404
    body = _shape(response)
    assert body["error_code"] == "ENDPOINT_NOT_FOUND"
    assert path in body["message"]


def test_mlflow_keeps_its_own_error_json(client):  # type: ignore[no-untyped-def]
    response = client.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": "999"})
    assert response.status_code == 404
    body = response.json()
    assert body["error_code"] == "RESOURCE_DOES_NOT_EXIST" and body["message"]


def test_wrong_method_on_a_lakebox_path_is_405(client):  # type: ignore[no-untyped-def]
    response = client.put("/api/2.1/unity-catalog/catalogs")
    assert response.status_code == 405
    assert _shape(response)["error_code"] == "METHOD_NOT_ALLOWED"
    assert "GET" in response.headers["allow"]

    delete_only = client.post("/api/2.0/mlflow/comments/delete")
    assert delete_only.status_code == 405
    assert "DELETE" in delete_only.headers["allow"]


def test_wrong_method_on_an_mlflow_path_is_json_405(client):  # type: ignore[no-untyped-def]
    response = client.get("/api/2.0/mlflow/experiments/create")
    assert response.status_code == 405
    assert _shape(response)["error_code"] == "METHOD_NOT_ALLOWED"
    assert "POST" in response.headers["allow"]


def test_without_mlflow_mounted(bare_app):  # type: ignore[no-untyped-def]
    with TestClient(bare_app, base_url=BASE) as c:
        unknown = c.get("/api/2.0/unknown")
        assert unknown.status_code == 404
        assert _shape(unknown)["error_code"] == "ENDPOINT_NOT_FOUND"
        wrong_method = c.put("/api/2.1/unity-catalog/catalogs")
        assert wrong_method.status_code == 405
        assert _shape(wrong_method)["error_code"] == "METHOD_NOT_ALLOWED"


def test_http_exception_keeps_its_status(bare_app):  # type: ignore[no-untyped-def]
    with TestClient(bare_app, base_url=BASE) as c:
        response = c.get("/api/2.0/test/teapot")
    assert response.status_code == 418
    assert _shape(response)["message"] == "I am a teapot"


def test_unexpected_exception_is_500_logged_without_details(bare_app, caplog):  # type: ignore[no-untyped-def]
    with (
        caplog.at_level(logging.ERROR, logger="lakebox.server"),
        TestClient(bare_app, base_url=BASE, raise_server_exceptions=False) as c,
    ):
        response = c.get("/api/2.0/test/boom")
    assert response.status_code == 500
    body = _shape(response)
    assert body["error_code"] == "INTERNAL_ERROR"
    assert "secret detail" not in response.text and "RuntimeError" in body["message"]
    logged = [r for r in caplog.records if r.name == "lakebox.server"]
    assert logged and logged[0].exc_info and "/api/2.0/test/boom" in logged[0].getMessage()


def test_unauthenticated_has_the_shape(module_ws):  # type: ignore[no-untyped-def]
    app = create_app(module_ws, token="s3cret", mount_mlflow=False)
    with TestClient(app, base_url=BASE) as c:
        response = c.get("/api/2.1/unity-catalog/catalogs")
    assert response.status_code == 401
    assert _shape(response)["error_code"] == "UNAUTHENTICATED"


def test_openapi_declares_bodies_answers_and_errors(client):  # type: ignore[no-untyped-def]
    doc = client.get("/api/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert set(schemas["ErrorResponse"]["required"]) == {"error_code", "message"}
    operations = [
        (method.upper(), path, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    ]
    assert len(operations) >= 60
    for method, path, op in operations:
        where = f"{method} {path}"
        responses = op["responses"]
        assert "422" not in responses, where
        ok = responses["200"]["content"]
        if path.startswith("/api/"):
            assert "$ref" in ok["application/json"]["schema"], where
        for status in ("400", "404", "500"):
            error = responses[status]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorResponse"}, where
        if "requestBody" in op:
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert "$ref" in body, where  # a pydantic model, not a free-form dict
