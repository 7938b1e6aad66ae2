"""Registry events and webhooks.

1. Event-to-delivery latency at 100 events/s: events are written to the outbox (the same
   write the registry-store plugin makes) paced at 100/s; `lakebox worker` (a separate
   process) delivers them to a receiver process on loopback. Latency = receiver arrival -
   event timestamp. Measured with the default poll interval (0.1 s) and with 0.01 s; then
   once more with the events made by the stock MLflow client (set_model_version_tag through
   the plugin), which paces itself at whatever rate MLflow's store sustains (<= 100/s).
2. Transition overhead: `transition_model_version_stage` on plain MLflow (its SQLAlchemy
   store on SQLite) versus the same call through lakebox's plugin (outbox events) and versus
   `ws.models.transition_stage` (validation, events, activity record).

Run: python benchmarks/bench_registry.py
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from harness import Bench

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
warnings.simplefilter("ignore", FutureWarning)

from mlflow import MlflowClient  # noqa: E402

import lakebox  # noqa: E402

RATE = 100  # events per second
EVENTS = 500


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_receiver(out: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    """The signed-webhook receiver process on a free loopback port, writing calls to ``out``."""
    port = _free_port()
    receiver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lakebox.events._receiver",
            "--port",
            str(port),
            "--out",
            str(out),
            "--secret",
            "s",
        ]
    )
    return receiver, port, out


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _model(client: MlflowClient, source: Path, name: str, versions: int = 1) -> None:
    client.create_registered_model(name)
    for _ in range(versions):
        client.create_model_version(name, source=str(source))


def _wait_lines(out: Path, count: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = out.read_text().splitlines() if out.exists() else []
        if len(lines) >= count:
            break
        time.sleep(0.05)
    return [json.loads(line) for line in out.read_text().splitlines()]


def latency(bench: Bench, root: Path, poll: float, *, source: str) -> None:
    """``source="outbox"``: events written straight to the outbox (the write the plugin does)
    at 100/s; ``source="mlflow"``: tags set with the stock MLflow client, as fast as it goes
    up to 100/s."""
    ws = lakebox.Workspace(root / f"lat-{source}-{poll}")
    client = MlflowClient(tracking_uri=ws.tracking_uri, registry_uri=ws.registry_uri)
    _model(client, root, "bench")
    receiver, port, out = _start_receiver(root / f"received-{source}-{poll}.jsonl")
    env = {**os.environ, "LAKEBOX_HOME": str(ws.home)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "lakebox", "worker", "--poll-interval", str(poll)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    ws.webhooks.create(
        ["MODEL_VERSION_TAG_SET"],
        http_url_spec={"url": f"http://127.0.0.1:{port}/hook", "secret": "s"},
    )
    time.sleep(1)
    client.set_model_version_tag("bench", "1", "warmup", "v")  # both processes are up
    _wait_lines(out, 1, 120)
    outbox = ws.models.outbox
    start = time.perf_counter()
    for i in range(EVENTS):
        due = start + i / RATE
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        if source == "outbox":
            outbox.emit(
                "MODEL_VERSION_TAG_SET",
                model_name="bench",
                version="1",
                tags=[{"key": f"k{i}", "value": "v"}],
            )
        else:
            client.set_model_version_tag("bench", "1", f"k{i}", "v")
    produced_in = time.perf_counter() - start
    calls = _wait_lines(out, EVENTS + 1, 120)[1:]
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)
    receiver.terminate()
    receiver.wait()
    latencies = [(c["at"] * 1000 - c["body"]["event_timestamp"]) for c in calls]
    bench.record(
        f"latency {source} poll={poll}s",
        events=len(calls),
        offered_rate=RATE,
        achieved_rate=round(EVENTS / produced_in, 1),
        p50_ms=round(statistics.median(latencies), 1),
        p99_ms=round(_percentile(latencies, 99), 1),
        max_ms=round(max(latencies), 1),
        all_signatures_valid=all(c["valid"] for c in calls),
    )


def capacity(bench: Bench, root: Path) -> None:
    """How many deliveries per second one `lakebox worker` sustains to one webhook (events
    queued first, then drained), to a receiver process on loopback."""
    ws = lakebox.Workspace(root / "capacity")
    receiver, port, out = _start_receiver(root / "received-capacity.jsonl")
    ws.webhooks.create(
        ["COMMENT_CREATED"], http_url_spec={"url": f"http://127.0.0.1:{port}/hook", "secret": "s"}
    )
    outbox = ws.models.outbox
    for i in range(EVENTS):
        outbox.emit("COMMENT_CREATED", model_name="bench", comment=str(i))
    time.sleep(1)
    env = {**os.environ, "LAKEBOX_HOME": str(ws.home)}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lakebox", "worker", "--once"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - start
    calls = _wait_lines(out, EVENTS, 30)
    receiver.terminate()
    receiver.wait()
    bench.record(
        "worker capacity (incl. ~process start)",
        events=len(calls),
        seconds=round(elapsed, 2),
        deliveries_per_s=round(len(calls) / elapsed, 1),
    )


def transition_overhead(bench: Bench, root: Path) -> None:
    plain_db = root / "plain.db"
    plain = MlflowClient(tracking_uri=f"sqlite:///{plain_db}", registry_uri=f"sqlite:///{plain_db}")
    _model(plain, root, "plain", versions=2)
    ws = lakebox.Workspace(root / "overhead")
    stock = MlflowClient(tracking_uri=ws.tracking_uri, registry_uri=ws.registry_uri)
    _model(stock, root, "plugin", versions=2)
    _model(stock, root, "api", versions=2)
    stages = iter(["Staging", "Production"] * 1000)

    r_plain = bench.measure(
        "transition/plain mlflow",
        lambda: plain.transition_model_version_stage("plain", "1", next(stages)),
        repeat=40,
        warmup=3,
    )
    r_plugin = bench.measure(
        "transition/stock client via lakebox plugin",
        lambda: stock.transition_model_version_stage("plugin", "1", next(stages)),
        repeat=40,
        warmup=3,
    )
    r_api = bench.measure(
        "transition/ws.models.transition_stage",
        lambda: ws.models.transition_stage("api", 1, next(stages)),
        repeat=40,
        warmup=3,
    )
    bench.ratio("transition (stock client, plugin)", r_plugin, r_plain)
    bench.ratio("transition (ws.models)", r_api, r_plain)


def main() -> None:
    bench = Bench("registry")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench.record("machine load", loadavg_1m=os.getloadavg()[0], cores=os.cpu_count())
        transition_overhead(bench, root)
        capacity(bench, root)
        latency(bench, root, 0.1, source="outbox")
        latency(bench, root, 0.01, source="outbox")
        latency(bench, root, 0.01, source="mlflow")
    bench.save()


if __name__ == "__main__":
    main()
