"""Real-time serving: a runnable tour.

Run it with ``python docs/serving.py`` (uses ``$LAKEBOX_HOME`` or ``./.lakebox``). The same
endpoints are served by ``lakebox up`` at ``/serving-endpoints/<name>/invocations``.
"""

import mlflow
import pandas as pd
from fastapi.testclient import TestClient
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

import lakebox
from lakebox.errors import InvalidInput
from lakebox.server import create_app

ws = lakebox.Workspace()
for endpoint in ws.serving.list_endpoints():
    ws.serving.delete_endpoint(endpoint.name)

# Two versions of a registered scikit-learn model, one in Production and one in Staging.
X = pd.DataFrame({"sessions": [1.0, 8.0, 2.0, 9.0], "spend": [5.0, 80.0, 3.0, 95.0]})
y = [1, 0, 1, 0]
versions = []
for c in (1.0, 0.1):
    model = LogisticRegression(C=c).fit(X, y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),  # requests are checked against it
            registered_model_name="docs_churn",
            pip_requirements=["scikit-learn"],  # skips ~3 s of requirement inference
        )
    versions.append(info.registered_model_version)
ws.models.transition_stage("docs_churn", versions[0], "Production", archive_existing_versions=True)
ws.models.transition_stage("docs_churn", versions[1], "Staging", archive_existing_versions=True)

# One endpoint serving both stages, 90% / 10%, logging every request to a Delta table.
endpoint = ws.serving.create_endpoint(
    "docs-churn",
    served_entities=[
        {"entity_name": "docs_churn", "stage": "Production"},
        {"entity_name": "docs_churn", "stage": "Staging"},
    ],
    traffic={"Production": 90, "Staging": 10},
    inference_table="main.docs.churn_log",
)
assert endpoint.ready == "READY", endpoint.reason
print(endpoint.served_versions)  # {'docs_churn-Production': '1', 'docs_churn-Staging': '2'}

# Query in this process (the same code path as the HTTP route).
answer = ws.serving.query("docs-churn", [{"sessions": 2.0, "spend": 4.0}])
print(answer)  # {'predictions': [1], 'served_model': 'docs_churn-Production'}
staging = ws.serving.query(
    "docs-churn", [{"sessions": 2.0, "spend": 4.0}], served_model="docs_churn-Staging"
)
assert staging["served_model"] == "docs_churn-Staging"

# Bad input names the column and the expected type.
try:
    ws.serving.query("docs-churn", [{"sessions": "two", "spend": 4.0}])
except InvalidInput as exc:
    print(exc)  # Column 'sessions' expects double, got 'two' (str) in row 0.

# Over HTTP, as `lakebox up` serves it (here in-process, without the MLflow UI).
with TestClient(create_app(ws, mount_mlflow=False)) as client:
    response = client.post(
        "/serving-endpoints/docs-churn/invocations",
        json={"dataframe_split": {"columns": ["sessions", "spend"], "data": [[9.0, 90.0]]}},
    )
    assert response.status_code == 200
    print(response.headers["served-model-name"], response.json())
    csv = client.post(
        "/serving-endpoints/docs-churn/invocations",
        content=b"sessions,spend\n1.0,2.0\n",
        headers={"content-type": "text/csv"},
    )
    assert csv.status_code == 200
    state = client.get("/api/2.0/serving-endpoints/docs-churn").json()["state"]
    assert state == {"ready": "READY", "config_update": "NOT_UPDATING"}
    assert "lakebox_serving_requests_total" in client.get("/metrics").text

# A new config is loaded beside the old one and swapped in without failing a request.
updated = ws.serving.update_config(
    "docs-churn", [{"entity_name": "docs_churn", "entity_version": versions[1]}]
)
assert updated.config_update == "NOT_UPDATING"
assert ws.serving.query("docs-churn", [{"sessions": 2.0, "spend": 4.0}])["served_model"] == (
    f"docs_churn-{versions[1]}"
)

ws.close()  # flushes the inference table
log = lakebox.Workspace().tables.read("main.docs.churn_log")
print(log[["served_model_name", "model_version", "status_code"]].tail())
