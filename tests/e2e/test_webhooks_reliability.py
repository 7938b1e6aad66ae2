"""Reliability of webhook delivery with real processes on loopback: the dispatcher (``lakebox
worker``) is SIGKILLed at random points while 200 registry events are generated; the receiver
must end with all 200 (de-duplicated by event id), all signed correctly, in order. A receiver
answering 500 sees retries and then a dead-lettered delivery."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

import lakebox

pytestmark = pytest.mark.slow
SECRET = "kill-test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_receiver(tmp_path: Path, *, status: int = 200, delay: float = 0.0):
    port = free_port()
    out = tmp_path / f"received-{port}.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lakebox.events._receiver",
            "--port",
            str(port),
            "--out",
            str(out),
            "--secret",
            SECRET,
            "--status",
            str(status),
            "--delay",
            str(delay),
        ]
    )
    url = f"http://127.0.0.1:{port}/hook"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.post(url, content=b"{}", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    out.write_text("")  # drop the readiness probe
    return proc, url, out


def _read(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def _worker(home: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "LAKEBOX_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.Popen(
        [sys.executable, "-m", "lakebox", "worker", "--poll-interval", "0.01", *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _model(ws: lakebox.Workspace, tmp_path: Path, name: str) -> MlflowClient:
    client = MlflowClient(tracking_uri=ws.tracking_uri, registry_uri=ws.registry_uri)
    client.create_registered_model(name)
    (tmp_path / "artifacts").mkdir(exist_ok=True)
    client.create_model_version(name, source=str(tmp_path / "artifacts"))
    return client


def test_sigkilled_dispatcher_delivers_every_event_once_deduplicated(tmp_path):
    ws = lakebox.Workspace(tmp_path / "ws")
    client = _model(ws, tmp_path, "killme")
    receiver, url, out = _start_receiver(tmp_path, delay=0.002)
    hook = ws.webhooks.create(
        ["MODEL_VERSION_TAG_SET"], model_name="killme", http_url_spec={"url": url, "secret": SECRET}
    )
    rng = random.Random(7)
    done = threading.Event()

    def generate() -> None:
        for i in range(200):  # the stock MLflow client: events come from the plugin store
            client.set_model_version_tag("killme", "1", f"k{i}", str(i))
        done.set()

    producer = threading.Thread(target=generate)
    worker = _worker(ws.home)
    kills = 0
    try:
        producer.start()
        while kills < 5:
            time.sleep(rng.uniform(0.3, 1.0))
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kills += 1
            worker = _worker(ws.home)
        producer.join(timeout=60)
        assert done.is_set()
        deadline = time.monotonic() + 45
        ids: set[str] = set()
        while time.monotonic() < deadline:
            ids = {r["event_id"] for r in _read(out)}
            if len(ids) >= 200:
                break
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        receiver.terminate()
        receiver.wait()
    calls = _read(out)
    assert kills == 5
    assert len({c["event_id"] for c in calls}) == 200
    assert all(c["valid"] for c in calls), "every signature must verify"
    assert {c["body"]["webhook_id"] for c in calls} == {hook.id}
    # In order per webhook: first arrivals follow the order the tags were set.
    first_seen: list[str] = []
    for c in calls:
        if c["body"]["tags"][0]["key"] not in first_seen:
            first_seen.append(c["body"]["tags"][0]["key"])
    assert first_seen == [f"k{i}" for i in range(200)]
    assert ws.webhooks.counts() == {"SUCCEEDED": 200}


def test_failing_receiver_gets_retries_then_dead_letter(tmp_path):
    ws = lakebox.Workspace(tmp_path / "ws")
    client = _model(ws, tmp_path, "broken")
    receiver, url, out = _start_receiver(tmp_path, status=500)
    ws.webhooks.create(
        ["MODEL_VERSION_TRANSITIONED_STAGE"], http_url_spec={"url": url, "secret": SECRET}
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage("broken", "1", "Staging")
    worker = _worker(ws.home, "--max-attempts", "4", "--backoff", "0.05")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not ws.webhooks.deliveries(status="DEAD"):
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=20)
        receiver.terminate()
        receiver.wait()
    calls = _read(out)
    assert len(calls) == 4 and len({c["event_id"] for c in calls}) == 1
    assert [c["attempt"] for c in calls] == ["1", "2", "3", "4"]
    assert all(c["valid"] for c in calls)
    (dead,) = ws.webhooks.deliveries()
    assert dead.status == "DEAD" and dead.attempts == 4
    assert dead.last_status_code == 500 and "HTTP 500" in (dead.last_error or "")
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(calls)]
    # exponential backoff: attempt n+1 comes no sooner than 0.05 * 2**(n-1) s after attempt n
    assert all(gap >= 0.05 * 2**i - 0.005 for i, gap in enumerate(gaps)), gaps
    assert len(ws.webhooks.attempts(dead.id)) == 4
