"""The workspace pages' shell: sign-in, CSRF protection, assets, home page."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from lakebox.server import create_app


@pytest.fixture
def client(ws):  # type: ignore[no-untyped-def]
    return TestClient(create_app(ws, token="s3cret", mount_mlflow=False))


def _csrf(client: TestClient) -> str:
    client.get("/ui/login")
    token = client.cookies.get("lakebox_csrf")
    assert token
    return token


def test_pages_redirect_to_login_and_api_still_answers_401(client):
    page = client.get("/ui/catalog", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login?next=/ui/catalog"
    api = client.get("/api/2.1/unity-catalog/tables", follow_redirects=False)
    assert api.status_code == 401
    assert api.json()["error_code"] == "UNAUTHENTICATED"


def test_login_sets_the_token_cookie_and_returns_to_the_page(client):
    csrf = _csrf(client)
    wrong = client.post("/ui/login", data={"token": "nope", "csrf_token": csrf})
    assert wrong.status_code == 401
    assert "not this server's token" in wrong.text
    ok = client.post(
        "/ui/login",
        data={"token": "s3cret", "csrf_token": csrf, "next": "/ui/jobs"},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/ui/jobs"
    home = client.get("/ui/")
    assert home.status_code == 200 and "Workspace" in home.text


def test_login_never_redirects_off_site(client):
    csrf = _csrf(client)
    answer = client.post(
        "/ui/login",
        data={"token": "s3cret", "csrf_token": csrf, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/ui/"


def test_posts_without_the_csrf_token_or_from_another_origin_are_refused(client):
    _csrf(client)
    missing = client.post("/ui/login", data={"token": "s3cret"}, follow_redirects=False)
    assert missing.status_code == 403 and "CSRF token" in missing.text
    forged = client.post(
        "/ui/login",
        data={"token": "s3cret", "csrf_token": client.cookies["lakebox_csrf"]},
        headers={"Origin": "http://evil.example"},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "Cross-site request refused" in forged.text
    assert "lakebox_token" not in forged.cookies


def test_assets_ship_in_the_package(client):
    for name in ("htmx.min.js", "lakebox.css", "plotly.min.js"):
        answer = client.get(f"/ui/static/{name}")
        assert answer.status_code == 200, name
        assert len(answer.content) > 1000
    assert client.get("/ui/static/..%2F_app.py").status_code == 404


def test_home_counts_what_the_workspace_holds(ws):
    ws.tables.create("main.s.t", pd.DataFrame({"id": [1, 2]}))
    client = TestClient(create_app(ws, token="", mount_mlflow=False))
    home = client.get("/ui/")
    assert home.status_code == 200
    card = home.text.split('data-testid="card-catalog"')[1].split("</a>")[0]
    assert '<span class="count">1</span>' in card


@pytest.mark.server
def test_sign_in_in_a_real_browser(page, ui_server, shot):
    # The `page` fixture signed in through the form; the token cookie is HttpOnly.
    assert page.locator("h1").inner_text() == "Workspace"
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["lakebox_token"]["httpOnly"]
    tables = int(page.locator('[data-testid="card-catalog"] .count').inner_text())
    assert tables >= 2  # the demo's main.raw.* tables
    shot(page, "home")
    # The MLflow UI is one click away and accepts the same cookie.
    assert httpx.get(ui_server.url + "/", cookies={"lakebox_token": "ui-test-token"}).is_success
