"""The registry lifecycle and webhooks through `lakebox up` (real processes on loopback): the
real `databricks-sdk` client, the stock MLflow REST client and the MLflow UI's ajax API, with
webhooks delivered by the dispatcher inside `lakebox up` to a real HTTP receiver."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

import lakebox
from lakebox.events._receiver import Receiver

pytestmark = pytest.mark.server
SECRET = "rest-secret"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    ws = lakebox.Workspace(tmp_path / "ws")
    client = MlflowClient(tracking_uri=ws.tracking_uri, registry_uri=ws.registry_uri)
    client.create_registered_model("churn")
    (tmp_path / "model").mkdir()
    for _ in range(2):
        client.create_model_version("churn", source=str(tmp_path / "model"))
    ws.close()
    return tmp_path / "ws"


def _events(calls: list[dict]) -> list[str]:
    return [c["body"]["event"] for c in calls]


def test_databricks_sdk_webhooks_requests_comments(lakebox_server, home):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.errors import DatabricksError
    from databricks.sdk.service.ml import (
        ActivityType,
        HttpUrlSpec,
        RegistryWebhookEvent,
        RegistryWebhookStatus,
    )

    server = lakebox_server(home=home, token="tok")
    w = WorkspaceClient(host=server.url, token="tok")
    E = RegistryWebhookEvent
    with Receiver(secret=SECRET) as receiver:
        created = w.model_registry.create_webhook(
            events=[
                E.MODEL_VERSION_TRANSITIONED_STAGE,
                E.MODEL_VERSION_TRANSITIONED_TO_STAGING,
                E.TRANSITION_REQUEST_CREATED,
                E.COMMENT_CREATED,
            ],
            model_name="churn",
            description="ci",
            http_url_spec=HttpUrlSpec(
                url=receiver.url, secret=SECRET, authorization="Bearer receiver-token"
            ),
        )
        hook = created.webhook
        assert hook.status == RegistryWebhookStatus.ACTIVE and hook.model_name == "churn"
        assert hook.http_url_spec.url == receiver.url
        assert [h.id for h in w.model_registry.list_webhooks(model_name="churn")] == [hook.id]
        assert list(w.model_registry.list_webhooks(model_name="other")) == []

        tested = w.model_registry.test_registry_webhook(id=hook.id, event=E.COMMENT_CREATED)
        assert tested.status_code == 200
        assert receiver.wait_for(1)[0]["body"]["event"] == "COMMENT_CREATED"

        moved = w.model_registry.transition_stage(
            name="churn",
            version="1",
            stage="Staging",
            archive_existing_versions=False,
            comment="passes offline checks",
        )
        assert moved.model_version_databricks.current_stage == "Staging"

        request = w.model_registry.create_transition_request(
            name="churn", version="1", stage="Production", comment="ship it"
        ).request
        assert request.to_stage == "Production" and request.comment == "ship it"
        pending = list(w.model_registry.list_transition_requests(name="churn", version="1"))
        assert [p.to_stage for p in pending] == ["Production"]
        approved = w.model_registry.approve_transition_request(
            name="churn", version="1", stage="Production", archive_existing_versions=True
        )
        assert approved.activity.activity_type == ActivityType.APPROVED_REQUEST
        assert list(w.model_registry.list_transition_requests(name="churn", version="1")) == []

        w.model_registry.create_transition_request(name="churn", version="2", stage="Staging")
        rejected = w.model_registry.reject_transition_request(
            name="churn", version="2", stage="Staging", comment="not yet"
        )
        assert rejected.activity.activity_type == ActivityType.REJECTED_REQUEST

        comment = w.model_registry.create_comment(
            name="churn", version="1", comment="looks good"
        ).comment
        assert comment.comment == "looks good" and comment.id

        # test + (STAGE, TO_STAGING) + TRANSITION_REQUEST_CREATED + STAGE (Production)
        # + TRANSITION_REQUEST_CREATED + COMMENT_CREATED
        calls = receiver.wait_for(7, timeout=30)
        assert _events(calls)[1:] == [
            "MODEL_VERSION_TRANSITIONED_STAGE",
            "MODEL_VERSION_TRANSITIONED_TO_STAGING",
            "TRANSITION_REQUEST_CREATED",
            "MODEL_VERSION_TRANSITIONED_STAGE",
            "TRANSITION_REQUEST_CREATED",
            "COMMENT_CREATED",
        ]
        assert all(c["valid"] for c in calls)
        assert all(c["authorization"] == "Bearer receiver-token" for c in calls)
        staged = calls[1]["body"]
        assert staged["webhook_id"] == hook.id and staged["model_name"] == "churn"
        assert (staged["version"], staged["from_stage"], staged["to_stage"]) == (
            "1",
            "None",
            "Staging",
        )
        assert staged["comment"] == "passes offline checks" and staged["event_timestamp"] > 0
        assert calls[-1]["body"]["comment"] == "looks good"

        updated = w.model_registry.update_webhook(id=hook.id, status=RegistryWebhookStatus.DISABLED)
        assert updated.webhook.status == RegistryWebhookStatus.DISABLED
        w.model_registry.create_comment(name="churn", version="1", comment="muted")
        ws = lakebox.Workspace(home)
        assert len(ws.webhooks.deliveries(webhook_id=hook.id)) == 6  # nothing new queued

        # bad input: clear 4xx, nothing changed
        with pytest.raises(DatabricksError, match="registry-wide"):
            w.model_registry.create_webhook(
                events=[E.REGISTERED_MODEL_CREATED],
                model_name="churn",
                http_url_spec=HttpUrlSpec(url=receiver.url),
            )
        with pytest.raises(DatabricksError, match="Invalid webhook URL"):
            w.model_registry.create_webhook(
                events=[E.COMMENT_CREATED], http_url_spec=HttpUrlSpec(url="ftp://x")
            )
        with pytest.raises(DatabricksError, match="Invalid stage 'Prod'"):
            w.model_registry.transition_stage(
                name="churn", version="2", stage="Prod", archive_existing_versions=False
            )
        with pytest.raises(DatabricksError, match="churnn"):
            w.model_registry.transition_stage(
                name="churnn", version="1", stage="Staging", archive_existing_versions=False
            )
        with pytest.raises(DatabricksError, match="No pending request"):
            w.model_registry.approve_transition_request(
                name="churn", version="2", stage="Production", archive_existing_versions=False
            )
        with server.client() as http:
            bad_event = http.post(
                "/api/2.0/mlflow/registry-webhooks/create",
                json={"events": ["MODEL_VERSION_MOVED"], "http_url_spec": {"url": receiver.url}},
            )
            assert bad_event.status_code == 400
            assert bad_event.json()["error_code"] == "INVALID_PARAMETER_VALUE"
            missing = http.post(
                "/api/2.0/mlflow/databricks/model-versions/transition-stage",
                json={"name": "churn", "version": "9", "stage": "Staging"},
            )
            assert missing.status_code == 404
            log = http.get("/api/2.0/lakebox/webhooks/deliveries").json()["deliveries"]
            assert {d["status"] for d in log} == {"SUCCEEDED"}
        assert len(list(w.model_registry.list_webhooks())) == 1
        assert ws.models.get_version("churn", 2).current_stage == "None"
        w.model_registry.delete_webhook(id=hook.id)
        assert list(w.model_registry.list_webhooks()) == []


def test_stock_mlflow_rest_and_ui_api_fire_webhooks(lakebox_server, home):
    """Changes through MLflow's own REST API (the stock client) and the UI's ajax API, served
    by two `lakebox up` worker processes, all produce events."""
    server = lakebox_server(home=home, token="tok", workers=2)
    ws = lakebox.Workspace(home)
    events = [
        "REGISTERED_MODEL_CREATED",
        "MODEL_VERSION_TAG_SET",
        "MODEL_VERSION_ALIAS_SET",
        "MODEL_VERSION_ALIAS_DELETED",
        "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
    ]
    with Receiver(secret=SECRET) as receiver:
        ws.webhooks.create(events, http_url_spec={"url": receiver.url, "secret": SECRET})
        import os

        os.environ["MLFLOW_TRACKING_TOKEN"] = "tok"
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        client.create_registered_model("from-rest")
        for i in range(4):  # several requests, spread over both worker processes
            client.set_model_version_tag("churn", "2", f"k{i}", "v")
        client.set_registered_model_alias("churn", "champion", "2")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            client.transition_model_version_stage("churn", "2", "Production")
        with server.client() as http:  # what the MLflow UI sends
            response = http.request(
                "DELETE",
                "/ajax-api/2.0/mlflow/registered-models/alias",
                json={"name": "churn", "alias": "champion"},
            )
            assert response.status_code == 200, response.text
        calls = receiver.wait_for(8, timeout=30)
    assert _events(calls) == ["REGISTERED_MODEL_CREATED"] + ["MODEL_VERSION_TAG_SET"] * 4 + [
        "MODEL_VERSION_ALIAS_SET",
        "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
        "MODEL_VERSION_ALIAS_DELETED",
    ]
    assert [c["body"]["tags"][0]["key"] for c in calls[1:5]] == ["k0", "k1", "k2", "k3"]
    assert calls[5]["body"]["alias"] == "champion" and calls[5]["body"]["version"] == "2"
    assert calls[7]["body"]["version"] == "2"
    assert all(c["valid"] for c in calls)
    time.sleep(0.3)
    assert len(receiver.received) == 8
