"""Model registry pages: fast TestClient tests on a small registry, and a browser test on the
demo server (a transition request approved by a click; the API shows the new stage)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import lakebox
from lakebox.events._receiver import Receiver
from lakebox.server import create_app


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


_STATE: dict[str, str] = {}  # the registry_ws fixture's webhook id and artifact folder


@pytest.fixture(scope="module")
def registry_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A workspace whose registry holds ``churn`` (versions 1 and 2; v1 in Production with
    alias ``champion``), one model-specific and one registry-wide webhook."""
    home = tmp_path_factory.mktemp("ui-models")
    workspace = lakebox.Workspace(home / "ws")
    (home / "artifacts").mkdir()
    models = workspace.models
    models.create_model("churn", description="Who leaves next month")
    for _ in range(2):
        models.client.create_model_version("churn", source=str(home / "artifacts"))
    models.transition_stage("churn", 1, "Production", comment="first release")
    models.set_alias("churn", "champion", 1)
    models.set_tag("churn", "team", "growth", version=2)
    hook = workspace.webhooks.create(
        ["TRANSITION_REQUEST_CREATED"],
        model_name="churn",
        http_url_spec={"url": "http://127.0.0.1:9/hook"},
        description="CI hook",
    )
    workspace.webhooks.create(
        ["COMMENT_CREATED"], http_url_spec={"url": "https://ci.example.com/all"}
    )
    workspace.models.create_model("other")
    _STATE.update(hook=hook.id, artifacts=str(home / "artifacts"))
    yield workspace
    workspace.close()


@pytest.fixture(scope="module")
def client(registry_ws: Any) -> TestClient:
    return TestClient(create_app(registry_ws, token="", mount_mlflow=False))


def _csrf(client: TestClient) -> dict[str, str]:
    client.get("/ui/models")
    return {"X-CSRF-Token": client.cookies["lakebox_csrf"], "HX-Request": "true"}


def _new_version(ws: Any) -> str:
    return str(ws.models.client.create_model_version("churn", source=_STATE["artifacts"]).version)


def test_model_list_shows_latest_versions_aliases_and_pending_requests(registry_ws, client):
    version = _new_version(registry_ws)
    registry_ws.models.create_transition_request("churn", version, "Staging")
    page = client.get("/ui/models")
    assert page.status_code == 200
    row = _text(page.text.split('data-testid="model-row-churn"')[1].split("</tr>")[0])
    assert "v1 Production" in row
    assert "@champion → v1" in row
    assert f"{len(registry_ws.models.pending_requests('churn'))} pending" in row
    assert 'href="/#/models/churn"' in page.text  # the MLflow UI's model page
    other = _text(page.text.split('data-testid="model-row-other"')[1].split("</tr>")[0])
    assert "no versions" in other


def test_model_page_shows_versions_requests_activity_and_webhooks(registry_ws, client):
    version = _new_version(registry_ws)
    registry_ws.models.create_transition_request("churn", version, "Production", comment="beats v1")
    registry_ws.models.create_comment("churn", version, "holdout AUC 0.91")
    # the event went into the outbox with a delivery for the model's webhook
    page = client.get("/ui/models/churn")
    assert page.status_code == 200
    html = page.text
    assert 'href="/#/models/churn"' in html
    v1 = _text(html.split('data-testid="version-1"')[1].split("</tr>")[0])
    assert "Production" in v1 and "@champion" in v1
    assert "team=growth" in _text(html.split('data-testid="version-2"')[1].split("</tr>")[0])
    request = _text(html.split(f'data-testid="request-{version}-Production"')[1].split("</tr>")[0])
    assert "None → Production" in request and "beats v1" in request
    assert "Approve" in request and "Reject" in request
    activity = _text(html.split(f'data-testid="activity-{version}"')[1].split("</details>")[0])
    assert "holdout AUC 0.91" in activity and "requested a transition" in activity
    activity_1 = _text(html.split('data-testid="activity-1"')[1].split("</details>")[0])
    assert "moved the version: None → Production" in activity_1 and "first release" in activity_1
    hooks = html.split('data-testid="webhooks"')[1]
    assert _STATE["hook"] in hooks  # model-specific
    assert "registry-wide" in hooks and "CI hook" in hooks
    deliveries = _text(hooks.split(f'data-testid="webhook-{_STATE["hook"]}"')[1])
    assert "TRANSITION_REQUEST_CREATED" in deliveries and "PENDING" in deliveries


def test_approve_reject_and_comment_through_the_page(registry_ws, client):
    approve_me, reject_me = _new_version(registry_ws), _new_version(registry_ws)
    registry_ws.models.create_transition_request("churn", approve_me, "Staging")
    registry_ws.models.create_transition_request("churn", reject_me, "Staging")
    headers = _csrf(client)

    approved = client.post(
        f"/ui/models/churn/versions/{approve_me}/requests/approve",
        data={"stage": "Staging", "comment": "ship it"},
        headers=headers,
    )
    assert approved.status_code == 200
    assert f"version {approve_me} is now in Staging" in approved.text
    assert approved.text.lstrip().startswith('<div id="model-body"')  # a fragment, not a page
    assert registry_ws.models.get_version("churn", approve_me).current_stage == "Staging"

    rejected = client.post(
        f"/ui/models/churn/versions/{reject_me}/requests/reject",
        data={"stage": "Staging", "comment": "not yet"},
        headers=headers,
    )
    assert rejected.status_code == 200 and "Rejected" in rejected.text
    assert registry_ws.models.get_version("churn", reject_me).current_stage == "None"
    assert registry_ws.models.list_transition_requests("churn", reject_me) == []
    assert f'data-testid="request-{reject_me}-Staging"' not in rejected.text

    commented = client.post(
        f"/ui/models/churn/versions/{reject_me}/comments",
        data={"comment": "retrain with March data"},
        headers=headers,
    )
    assert commented.status_code == 200 and "retrain with March data" in commented.text
    assert [c.comment for c in registry_ws.models.list_comments("churn", reject_me)] == [
        "retrain with March data"
    ]

    # approving what is no longer pending shows the error inside the body
    stale = client.post(
        f"/ui/models/churn/versions/{approve_me}/requests/approve",
        data={"stage": "Staging"},
        headers=headers,
    )
    assert stale.status_code == 409
    assert 'data-testid="model-error"' in stale.text and "No pending request" in stale.text
    empty = client.post(
        f"/ui/models/churn/versions/{reject_me}/comments", data={"comment": " "}, headers=headers
    )
    assert empty.status_code == 400 and "needs some text" in empty.text


def test_unknown_models_give_404_pages_naming_them(client):
    page = client.get("/ui/models/no-such-model")
    assert page.status_code == 404
    assert "no-such-model" in page.text and "<h1>" in page.text
    action = client.post(
        "/ui/models/no-such-model/versions/1/comments",
        data={"comment": "hi"},
        headers=_csrf(client),
    )
    assert action.status_code == 404 and "no-such-model" in action.text


def test_actions_need_the_csrf_token(registry_ws, client):
    version = _new_version(registry_ws)
    registry_ws.models.create_transition_request("churn", version, "Staging")
    fresh = TestClient(client.app)
    fresh.get("/ui/models")
    for action, data in (
        ("requests/approve", {"stage": "Staging"}),
        ("requests/reject", {"stage": "Staging"}),
        ("comments", {"comment": "sneaky"}),
    ):
        answer = fresh.post(f"/ui/models/churn/versions/{version}/{action}", data=data)
        assert answer.status_code == 403, action
        assert "CSRF token" in answer.text
    forged = fresh.post(
        f"/ui/models/churn/versions/{version}/requests/approve",
        data={"stage": "Staging", "csrf_token": fresh.cookies["lakebox_csrf"]},
        headers={"Origin": "http://evil.example"},
    )
    assert forged.status_code == 403
    assert registry_ws.models.get_version("churn", version).current_stage == "None"
    assert len(registry_ws.models.list_transition_requests("churn", version)) == 1
    assert registry_ws.models.list_comments("churn", version) == []


# ----------------------------------------------------------------------------- browser
@pytest.mark.server
def test_approve_a_transition_request_in_a_browser(page, ui_server, shot):
    api = ui_server.client()
    churn = api.get("/api/2.0/mlflow/model-versions/get", params={"name": "churn", "version": "1"})
    assert churn.status_code == 200, churn.text
    source = churn.json()["model_version"]
    name = f"ui-approve-{uuid.uuid4().hex[:6]}"
    assert api.post("/api/2.0/mlflow/registered-models/create", json={"name": name}).is_success
    created = api.post(
        "/api/2.0/mlflow/model-versions/create",
        json={
            "name": name,
            "source": source["source"],
            "run_id": source["run_id"],
            "model_id": source["source"].removeprefix("models:/"),
        },
    )
    assert created.status_code == 200, created.text
    requested = api.post(
        "/api/2.0/mlflow/transition-requests/create",
        json={"name": name, "version": "1", "stage": "Staging", "comment": "ready for QA"},
    )
    assert requested.status_code == 200, requested.text

    with Receiver(secret="ui-secret") as receiver:
        hook = api.post(
            "/api/2.0/mlflow/registry-webhooks/create",
            json={
                "model_name": name,
                "events": ["MODEL_VERSION_TRANSITIONED_STAGE"],
                "http_url_spec": {"url": receiver.url, "secret": "ui-secret"},
                "description": "UI test receiver",
            },
        )
        assert hook.status_code == 200, hook.text
        try:
            _approve_in_the_page(page, api, name, source, receiver, shot)
        finally:
            api.request(
                "DELETE",
                "/api/2.0/mlflow/registry-webhooks/delete",
                json={"id": hook.json()["webhook"]["id"]},
            )


def _approve_in_the_page(
    page: Any, api: Any, name: str, source: dict[str, Any], receiver: Any, shot: Any
) -> None:
    page.goto("/ui/models")
    assert page.locator('[data-testid="model-row-churn"]').count() == 1
    page.click(f'[data-testid="model-row-{name}"] a >> text={name}')
    page.wait_for_url(f"**/ui/models/{name}")
    request = page.locator('[data-testid="request-1-Staging"]')
    assert "ready for QA" in request.inner_text()
    run_link = page.locator('[data-testid="run-link-1"]').get_attribute("href")
    assert run_link and run_link.startswith("/#/experiments/")
    assert run_link.endswith(f"/runs/{source['run_id']}")
    shot(page, "models-request")

    request.locator('[data-testid="decision-comment"]').fill("QA passed")
    request.locator('[data-testid="approve"]').click()
    page.wait_for_selector('[data-testid="model-notice"]')
    assert "now in Staging" in page.locator('[data-testid="model-notice"]').inner_text()
    assert page.locator('[data-testid="request-1-Staging"]').count() == 0
    assert page.get_attribute('[data-testid="version-1"]', "data-stage") == "Staging"

    # the API agrees: the version moved, the request is closed, the comment is recorded
    version = api.get("/api/2.0/mlflow/model-versions/get", params={"name": name, "version": "1"})
    assert version.json()["model_version"]["current_stage"] == "Staging"
    pending = api.get(
        "/api/2.0/mlflow/transition-requests/list", params={"name": name, "version": "1"}
    )
    assert pending.json().get("requests", []) == []

    # the server's dispatcher delivered the signed event; the page lists the delivery
    calls = receiver.wait_for(1, timeout=60)
    assert calls and calls[0]["valid"] and calls[0]["body"]["to_stage"] == "Staging"
    deliveries = page.locator('[data-testid="webhooks"] [data-testid="delivery"]')
    deadline = time.monotonic() + 30
    text = ""
    while "SUCCEEDED" not in text and time.monotonic() < deadline:
        page.reload()  # the delivery is marked done just after the receiver answered
        text = deliveries.first.inner_text() if deliveries.count() else ""
        if "SUCCEEDED" not in text:
            page.wait_for_timeout(300)
    assert "MODEL_VERSION_TRANSITIONED_STAGE" in text
    assert "SUCCEEDED" in text and "200" in text

    page.fill('[data-testid="comment-input-1"]', "deployed to the QA endpoint")
    page.click('[data-testid="comment-submit-1"]')
    page.wait_for_selector('[data-testid="activity-1"] >> text=deployed to the QA endpoint')
    assert "QA passed" in page.locator('[data-testid="activity-1"]').inner_text()
    shot(page, "models-approved")

    page.goto("/ui/models/churn")
    assert page.locator('[data-testid="versions"] tbody tr').count() >= 2
    shot(page, "models-churn")
