"""Fixtures for the workspace pages: a demo-populated workspace served by a real `lakebox up`
with a token, and headless Chromium (Debian's, driven by Playwright) signed in to it.

Screenshots go to ``test-artifacts/ui/`` at the repository root (kept by CI as artifacts).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

UI_TOKEN = "ui-test-token"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace populated by ``lakebox demo`` (run once per test session)."""
    home = tmp_path_factory.mktemp("ui") / "ws"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "_MLFLOW"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", COLUMNS="200")
    env.pop("LAKEBOX_HOME", None)
    result = subprocess.run(
        [sys.executable, "-m", "lakebox", "--home", str(home), "demo"],
        cwd=home.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return home


@pytest.fixture(scope="session")
def ui_server(demo_home: Path, lakebox_session_server: Callable[..., Any]) -> Any:
    """``lakebox up`` on the demo workspace, with a token (so pages need signing in)."""
    return lakebox_session_server(home=demo_home, token=UI_TOKEN)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium from the machine (no Playwright browser download).

    One per test: Playwright's sync API keeps an asyncio loop running in this thread while it
    is started, and code under test that calls ``asyncio.run`` must not see it afterwards."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Chromium is missing: apt-get install -y chromium (see .ci/run)."
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, ui_server: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (new profile, no cookies) signed in through the login form.

    A screenshot of the last page is saved as ``test-artifacts/ui/<test>.png``.
    """
    context = browser.new_context(base_url=ui_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    tab.goto("/ui/")
    tab.fill("input[name=token]", UI_TOKEN)
    tab.click("button[type=submit]")
    tab.wait_for_url("**/ui/")
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture
def shot() -> Callable[[Any, str], None]:
    """``shot(page, name)`` saves a named screenshot under ``test-artifacts/ui/``."""

    def save(page: Any, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return save
