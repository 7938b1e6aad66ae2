"""Fixtures shared by every test: an isolated workspace and a real `lakebox up` server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

# Environment variables MLflow and lakebox set process-wide; restored after every test.
_ENV_KEYS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "LAKEBOX_HOME",
    "LAKEBOX_TOKEN",
    "_MLFLOW_SERVER_ARTIFACT_ROOT",
    "_MLFLOW_SERVER_FILE_STORE",
    "_MLFLOW_SERVER_REGISTRY_STORE",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_EXPERIMENT_NAME",
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in _ENV_KEYS}
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    yield
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run()
    # mlflow.set_experiment keeps the experiment in a module global as well as the environment.
    import mlflow.tracking.fluent as fluent

    fluent._active_experiment_id = None
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def ws(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh workspace in a temporary folder."""
    import lakebox

    workspace = lakebox.Workspace(tmp_path / "ws")
    yield workspace
    workspace.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A `lakebox up` process on a loopback port."""

    url: str
    home: Path
    process: subprocess.Popen[bytes]
    token: str | None

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def start_server(
    home: Path,
    *,
    token: str | None = None,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
    timeout: float = 60,
) -> Server:
    """Start `lakebox up` as a real process and wait until /health answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in _ENV_KEYS}
    env.update(LAKEBOX_HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true", **(extra_env or {}))
    if token:
        env["LAKEBOX_TOKEN"] = token
    log = open(home.parent / f"server-{port}.log", "wb")  # noqa: SIM115 - closed with process
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lakebox",
            "up",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"lakebox up exited with {process.returncode}: "
                + (home.parent / f"server-{port}.log").read_text()[-3000:]
            )
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return Server(url, home, process, token)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("lakebox up did not become healthy in time")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture
def lakebox_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Factory: ``lakebox_server(token=None, workers=1)`` starts a server on a fresh workspace
    (or ``home=``) and stops it after the test."""
    started: list[Server] = []

    def factory(*, home: Path | None = None, **kwargs: object) -> Server:
        server = start_server(home or tmp_path / "ws", **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield factory
    for server in started:
        stop_server(server)


@pytest.fixture(scope="session")
def lakebox_session_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Server]]:
    """Like :func:`lakebox_server`, for servers shared by a whole test session (``home=``
    is required: a session-scoped workspace, e.g. one the demo populated)."""
    started: list[Server] = []

    def factory(*, home: Path, **kwargs: object) -> Server:
        server = start_server(home, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield factory
    for server in started:
        stop_server(server)


def _postgres_bin() -> Path | None:
    import glob

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on a free loopback port (Debian's postgresql package).

    PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` user.
    Skipped locally when PostgreSQL is not installed; in CI (``CI`` set) that is a failure.
    """
    import shutil

    bindir = _postgres_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run installs Debian's postgresql")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    import tempfile

    # Not under pytest's tmp dir: that is private to root and the postgres user must enter it.
    base = Path(tempfile.mkdtemp(prefix="lakebox-pg-"))
    data = base / "data"
    port = free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "lakebox",
            "--auth=trust",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-l",
            str(data.parent / "pg.log"),
            "-o",
            f"-p {port} -k {data.parent} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://lakebox@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port (persistence off), for the session.

    Skips when redis-server is missing, except under CI (``CI`` set), where it fails."""
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; CI must run the Redis tests")
        pytest.skip("redis-server is not installed")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
