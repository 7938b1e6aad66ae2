"""Schemathesis against a real `lakebox up` on loopback: every lakebox REST operation of the
OpenAPI document, with valid (positive) and invalid (negative) requests, must answer without a
5xx, with a status the document declares and a body that fits the declared schema.

The workspace is seeded (a table, a registered model with a version, a transition request and
a comment, a webhook, a job with a finished run, a serving endpoint, a monitor with a refresh).
Each operation is fuzzed against two copies of the served document: ``pinned``, where names and
ids are restricted to the seeded objects (and create bodies to valid ones) so valid requests
reach real objects, and ``free``, as served, for valid and invalid requests. Responses are
checked against the document as served. Deletes run last. Webhook URLs can only be a closed
loopback port and the event dispatcher is off: nothing leaves this machine.

Bounded: 10 requests per operation at most, derandomized, no shrinking, no deadline; about 65
operations and 560 requests, about 1.5 minutes for the file on two busy cores.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import lakebox

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.failures import FailureGroup  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.server

_spec = importlib.util.spec_from_file_location(
    "_lakebox_tests_conftest", Path(__file__).parents[1] / "conftest.py"
)
_conftest = importlib.util.module_from_spec(_spec)  # start_server/stop_server, module-scoped
sys.modules[_spec.name] = _conftest
_spec.loader.exec_module(_conftest)

TOKEN = "fuzz-token"
TABLE = "main.default.customers"
MODEL = "churn"
ENDPOINT = "churn-ep"
CLOSED_URL = "http://127.0.0.1:9/hook"  # discard port: nothing listens, nothing is sent
ROW = {"sessions": 1.0, "spend": 2.0, "tickets": 3}  # a valid query of the seeded model
# (document, mode, examples) per operation; LAKEBOX_FUZZ_SCALE=10 runs a deeper search locally.
SCALE = int(os.environ.get("LAKEBOX_FUZZ_SCALE", "1"))
RUNS = [
    ("pinned", GenerationMode.POSITIVE, 4 * SCALE),
    ("free", GenerationMode.POSITIVE, 3 * SCALE),
    ("free", GenerationMode.NEGATIVE, 3 * SCALE),
]
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def _seed(home: Path, script: Path) -> dict[str, Any]:
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.dummy import DummyRegressor

    from lakebox.monitoring import Snapshot

    home.mkdir(parents=True)
    (home / "lakebox.toml").write_text("[events]\ndispatcher = false\n")
    ws = lakebox.Workspace(home)
    frame = pd.DataFrame(
        {"sessions": [1.0, 2.0, 3.0], "spend": [1.0, 2.0, 4.0], "tickets": [1, 2, 3]}
    )
    ws.tables.create(TABLE, frame, comment="customers")
    X = frame[["sessions", "spend", "tickets"]]
    model = DummyRegressor(strategy="constant", constant=1.0).fit(X, [0.0, 0.0, 0.0])
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),
            registered_model_name=MODEL,
            pip_requirements=["scikit-learn"],
        )
    ws.models.create_transition_request(MODEL, "1", "Staging", comment="please")
    comment = ws.models.create_comment(MODEL, "1", "looks good")
    hook = ws.webhooks.create(
        ["MODEL_VERSION_CREATED"], model_name=MODEL, http_url_spec={"url": CLOSED_URL}
    )
    job_id = ws.jobs.create(
        {
            "name": "fuzz-job",
            "tasks": [{"task_key": "hello", "spark_python_task": {"python_file": str(script)}}],
        }
    )
    ws.serving.create_endpoint(
        ENDPOINT, [{"entity_name": MODEL, "entity_version": "1"}], wait=False
    )
    ws.monitors.create(TABLE, Snapshot())
    refresh = ws.monitors.refresh(TABLE)
    ws.close()
    return {
        "script": str(script),
        "comment_id": str(comment.id),
        "webhook_id": hook.id,
        "job_id": job_id,
        "refresh_id": refresh.refresh_id,
    }


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):  # type: ignore[no-untyped-def]
    saved = dict(os.environ)
    base = tmp_path_factory.mktemp("api-fuzz")
    script = base / "hello.py"
    script.write_text("print('hello from the fuzz job')\n")
    ids = _seed(base / "ws", script)
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    os.environ.update(saved)
    server = _conftest.start_server(base / "ws", token=TOKEN)
    with server.client() as http:
        run_id = http.post("/api/2.2/jobs/run-now", json={"job_id": ids["job_id"]}).json()["run_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = http.get("/api/2.2/jobs/runs/get", params={"run_id": run_id}).json()["state"]
            if state.get("result_state"):
                break
            time.sleep(0.2)
        assert state.get("result_state") == "SUCCESS", state  # the seeded run is a real one
    ids["run_id"] = run_id
    yield server, ids
    _conftest.stop_server(server)


def _documents(doc: dict[str, Any], ids: dict[str, Any]) -> tuple[dict, dict]:
    """Two copies of the server's document: ``free`` as served, and ``pinned`` with id and
    name parameters (and body fields) restricted to the seeded objects, so valid requests
    reach real objects. Responses are untouched in both: conformance is checked against what
    the server declares. In both, webhook URLs can only be a closed loopback port."""
    real = {
        "full_name": [TABLE],
        "table_name": [TABLE],
        "catalog_name": ["main"],
        "schema_name": ["default"],
        "name": [MODEL, ENDPOINT],
        "model_name": [MODEL],
        "version": ["1"],
        "stage": ["Staging", "Production"],
        "id": [ids["comment_id"], ids["webhook_id"]],
        "webhook_id": [ids["webhook_id"]],
        "job_id": [ids["job_id"]],
        "run_id": [ids["run_id"]],
        "refresh_id": [ids["refresh_id"]],
        "served_model": [f"{MODEL}-1"],
    }
    task = {"task_key": "hello", "spark_python_task": {"python_file": ids["script"]}}
    entities = [{"entity_name": MODEL, "entity_version": "1"}]
    valid = {
        "QueryEndpointInput": {"dataframe_records": [[ROW]]},
        "JobSettings": {"name": ["fuzz-made"], "tasks": [[task]]},
        "SubmitRun": {"run_name": ["fuzz-run"], "tasks": [[task]]},
        "EndpointCoreConfig": {"served_entities": [entities]},
        "CreateServingEndpoint": {"name": ["fuzz-ep"], "config": [{"served_entities": entities}]},
        "CreateWebhook": {
            "events": [["MODEL_VERSION_CREATED"]],
            "model_name": [MODEL],
            "http_url_spec": [{"url": CLOSED_URL}],
        },
        "MonitorSettings": {"snapshot": [{}], "slicing_exprs": [["tickets > 1"]]},
    }
    free = copy.deepcopy(doc)
    for model_name, model in free["components"]["schemas"].items():
        if model_name.startswith("HttpUrlSpec") and "url" in model.get("properties", {}):
            model["properties"]["url"] = {"type": "string", "enum": [CLOSED_URL]}
    pinned = copy.deepcopy(free)
    for path, operations in pinned["paths"].items():
        for operation in operations.values():
            for param in operation.get("parameters", []):
                values = real.get(param["name"])
                if param["name"] == "name" and "serving-endpoints" in path:
                    values = [ENDPOINT]
                if values is not None:
                    param["schema"] = {"enum": values}
                    param["required"] = True
    models = pinned["components"]["schemas"]
    for name in _refs(_parts(pinned, "requestBody"), models) - _refs(
        _parts(pinned, "responses"), models
    ):  # request bodies only: response schemas stay as served
        props = models[name].get("properties", {})
        for key in ("name", "version", "stage", "id", "job_id", "run_id", "model_name"):
            if key in props:
                props[key] = {"enum": real[key]}
        if name in valid:  # bodies that pass lakebox's own checks, so creates succeed
            models[name] = {
                "type": "object",
                "properties": {k: {"enum": v} for k, v in valid[name].items()},
                "required": sorted(valid[name]),
                "additionalProperties": False,
            }
    return pinned, free


def _parts(doc: dict[str, Any], key: str) -> list[Any]:
    return [op[key] for ops in doc["paths"].values() for op in ops.values() if key in op]


def _refs(node: Any, models: dict[str, Any], found: set[str] | None = None) -> set[str]:
    """Names of the component schemas ``node`` refers to, transitively."""
    found = set() if found is None else found
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in found:
                found.add(name)
                _refs(models[name], models, found)
        for value in node.values():
            _refs(value, models, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, models, found)
    return found


def _order(label: str) -> int:
    destructive = ("DELETE ", "/delete", "/cancel")
    return 1 if any(d in label for d in destructive) else 0


def _fuzz_operation(
    operation: Any, mode: GenerationMode, examples: int, call: Callable[[Any], None]
) -> list[str]:
    """Up to ``examples`` generated requests; every failing one's message (not only the first)."""
    found: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=SCALE == 1,  # CI: the same requests every run; deeper runs explore
        database=None,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        try:
            call(case)
        except (Exception, FailureGroup) as exc:  # FailureGroup is a BaseExceptionGroup
            found.append(" | ".join(str(exc).strip().splitlines()[:12]))

    with contextlib.suppress(Unsatisfiable):  # e.g. no invalid request for a bare GET
        run()
    return found


def test_rest_api_fuzz(fuzz_server):  # type: ignore[no-untyped-def]
    server, ids = fuzz_server
    failures = fuzz(server, ids)
    assert not failures, "\n\n".join(failures)


def fuzz(server: Any, ids: dict[str, Any]) -> list[str]:
    """Fuzz every lakebox operation of ``server``; returns the failures found."""
    with server.client() as http:
        doc = http.get("/api/openapi.json").json()
    pinned, free = _documents(doc, ids)
    schemas = {
        "pinned": schemathesis.openapi.from_dict(pinned),
        "free": schemathesis.openapi.from_dict(free),
    }
    operations = [r.ok() for r in schemas["free"].get_all_operations()]
    operations = [op for op in operations if op.path.startswith(("/api/", "/serving-endpoints/"))]
    assert len(operations) >= 60, [op.label for op in operations]
    operations.sort(key=lambda op: _order(op.label))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    failures: list[str] = []
    statuses: dict[str, list[int]] = {}
    start = time.monotonic()
    for free_operation in operations:
        for which, mode, examples in RUNS:
            operation = schemas[which].find_operation_by_label(free_operation.label)
            assert operation is not None

            def call(case: Any) -> None:
                response = case.call(base_url=server.url, headers=headers)
                statuses.setdefault(case.operation.label, []).append(response.status_code)
                case.validate_response(response, checks=CHECKS)

            found = _fuzz_operation(operation, mode, examples, call)
            failures.extend(f"{operation.label} [{which} {mode}]: {f}" for f in found[:2])
    elapsed = time.monotonic() - start
    calls = sum(len(codes) for codes in statuses.values())
    print(f"fuzzed {len(operations)} operations with {calls} requests in {elapsed:.1f}s")
    for label, codes in statuses.items():
        print(f"  {label}: " + ", ".join(f"{c}x{codes.count(c)}" for c in sorted(set(codes))))
    succeeded = sum(1 for codes in statuses.values() if any(c < 300 for c in codes))
    print(f"{succeeded} of {len(statuses)} operations answered 2xx at least once")
    return failures


# Requests that answered 500 (or were accepted and failed later) before the fix at their cause.
EDGE_CASES = [
    # comment ids are integers: int('\xa0...') raised ValueError (found by the fuzz run)
    ("PATCH", "/api/2.0/mlflow/comments/update", {"id": "\xa0x", "comment": "c"}, 400),
    ("DELETE", "/api/2.0/mlflow/comments/delete?id=%C2%B2", None, 400),
    # a version beyond SQLite's 64-bit integers, and a Unicode digit that int() refuses
    (
        "POST",
        "/api/2.0/mlflow/databricks/model-versions/transition-stage",
        {"name": MODEL, "version": "9" * 23, "stage": "Staging"},
        400,
    ),
    ("GET", "/api/2.0/mlflow/transition-requests/list?name=churn&version=%C2%B2", None, 400),
    # webhook job targets are job ids (the dispatcher int()s them)
    (
        "POST",
        "/api/2.0/mlflow/registry-webhooks/create",
        {"events": ["MODEL_VERSION_CREATED"], "job_spec": {"job_id": "\u00b2"}},
        400,
    ),
    # serving: a Unicode-digit or 23-digit version was stored and failed only when loading
    (
        "POST",
        "/api/2.0/serving-endpoints",
        {
            "name": "edge-ep",
            "config": {
                "served_entities": [{"name": "a", "entity_name": MODEL, "entity_version": "9" * 23}]
            },
        },
        400,
    ),
    # page tokens and ids: Unicode digits passed str.isdigit() and broke int()
    ("GET", "/api/2.1/unity-catalog/tables?page_token=%C2%B2", None, 400),
    ("GET", "/api/2.2/jobs/runs/list?page_token=%C2%B2", None, 400),
    ("GET", f"/api/2.2/jobs/get?job_id={2**64}", None, 400),
    ("GET", f"/api/2.2/jobs/runs/list?offset={2**64}", None, 400),
    (
        "GET",
        f"/api/2.1/unity-catalog/tables/{TABLE}/monitor/refreshes/{2**64}",
        None,
        400,
    ),
    # malformed JSON and wrong body types
    ("POST", "/api/2.2/jobs/create", b'{"name": ', 400),
    ("POST", "/api/2.2/jobs/run-now", [1, 2], 400),
    ("POST", "/api/2.1/unity-catalog/tables/x/monitor", {"custom_metrics": [{"name": 1}]}, 400),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), EDGE_CASES)
def test_edge_inputs_answer_4xx_with_the_error_shape(fuzz_server, method, path, body, status):  # type: ignore[no-untyped-def]
    server, _ = fuzz_server
    with server.client() as http:
        if isinstance(body, bytes):
            response = http.request(
                method, path, content=body, headers={"content-type": "application/json"}
            )
        elif body is None:
            response = http.request(method, path)
        else:
            response = http.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error_code", "message"}
