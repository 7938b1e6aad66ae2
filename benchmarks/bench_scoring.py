"""Batch and streaming scoring benchmark.

Batch: score a Delta table of ``--rows`` rows into a predictions Delta table with
``lakebox.deploy.score_table`` versus

* a plain script: deltalake → pandas chunks → pyfunc predict → ``write_deltalake`` per chunk;
* predict only: the same model's ``predict`` over the same rows already in memory (the floor).

Each variant runs in a fresh process (model load included); peak memory is the sampled
resident memory of the whole process tree (lakebox's worker processes included).

Streaming: a Delta table grown by many small commits, scored by a stream (available_now,
one commit per batch) with a simple model: rows/s and batch latency.

Usage::

    python benchmarks/bench_scoring.py --rows 10000000 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from harness import Bench  # noqa: E402

FEATURES = [f"f{i}" for i in range(8)]
BATCH_ROWS = 250_000
FILE_ROWS = 500_000


# ----------------------------------------------------------------------------- set-up
def setup(home: Path, rows: int) -> None:
    """Workspace with a registered model and an input table of ``rows`` rows (cached)."""
    marker = home / f"ready-{rows}"
    if marker.exists():
        return
    shutil.rmtree(home, ignore_errors=True)
    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    import lakebox

    ws = lakebox.Workspace(home)
    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.normal(size=(20_000, len(FEATURES))), columns=FEATURES)
    label = (train.f0 + train.f1 * train.f2 > 0).astype(int)
    gbm = HistGradientBoostingClassifier(max_iter=20, max_depth=5).fit(train, label)
    linear = LogisticRegression().fit(train, label)
    for name, model in (("bench_gbm", gbm), ("bench_linear", linear)):
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=name,
                input_example=train.head(2),
                serialization_format="cloudpickle",
                pip_requirements=["scikit-learn"],
            )
    for start in range(0, rows, FILE_ROWS):
        n = min(FILE_ROWS, rows - start)
        chunk = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
        chunk.insert(0, "id", np.arange(start, start + n, dtype="int64"))
        ws.tables.write("main.bench.input", chunk)
    ws.close()
    marker.touch()


# ----------------------------------------------------------------------------- variants
def run_lakebox(home: Path, workers: int) -> float:
    import lakebox
    from lakebox import deploy

    ws = lakebox.Workspace(home)
    started = time.perf_counter()
    deploy.score_table(
        "models:/bench_gbm/1",
        "main.bench.input",
        "main.bench.out_lakebox",
        ws=ws,
        mode="overwrite",
        workers=workers,
        batch_rows=BATCH_ROWS,
    )
    return time.perf_counter() - started


def run_script(home: Path) -> float:
    """What one would write by hand with the same libraries."""
    import mlflow
    import pandas as pd
    from deltalake import DeltaTable, write_deltalake

    import lakebox

    ws = lakebox.Workspace(home)  # only to point MLflow at the workspace
    source = ws.tables.location("main.bench.input")
    target = ws.tables.location("main.bench.out_script")
    shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    model = mlflow.pyfunc.load_model("models:/bench_gbm/1")
    dataset = DeltaTable(source).to_pyarrow_dataset()
    for batch in dataset.to_batches(batch_size=BATCH_ROWS):
        frame = batch.to_pandas()
        frame["prediction"] = model.predict(frame[FEATURES])
        frame["model_name"] = "bench_gbm"
        frame["model_version"] = "1"
        frame["scored_at"] = pd.Timestamp.now(tz="UTC")
        write_deltalake(target, frame, mode="append")
    return time.perf_counter() - started


def run_predict(home: Path) -> float:
    """Predict only: rows already in memory as pandas, the model already loaded."""
    import mlflow
    from deltalake import DeltaTable

    import lakebox

    ws = lakebox.Workspace(home)
    model = mlflow.pyfunc.load_model("models:/bench_gbm/1")
    frame = DeltaTable(ws.tables.location("main.bench.input")).to_pandas()[FEATURES]
    started = time.perf_counter()
    for start in range(0, len(frame), BATCH_ROWS):
        model.predict(frame.iloc[start : start + BATCH_ROWS])
    return time.perf_counter() - started


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(variant: str, home: Path, workers: int) -> dict[str, float]:
    """Run a variant in a fresh process; its time and the peak memory of its process tree."""
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--variant",
            variant,
            "--home",
            str(home),
            "--workers",
            str(workers),
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"variant {variant} failed")
    seconds = json.loads(out.decode().strip().splitlines()[-1])["seconds"]
    return {"seconds": seconds, "peak_mb": round(peak / 2**20)}


# ----------------------------------------------------------------------------- streaming
def bench_stream(home: Path, commits: int, rows_per_commit: int) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    import lakebox
    from lakebox import deploy, streaming

    ws = lakebox.Workspace(home)
    ws.tables.drop("main.bench.events", missing_ok=True)
    ws.tables.drop("main.bench.events_scored", missing_ok=True)
    shutil.rmtree(streaming.checkpoint_root(ws) / "bench_stream", ignore_errors=True)
    rng = np.random.default_rng(1)
    for i in range(commits):
        chunk = pd.DataFrame(rng.normal(size=(rows_per_commit, len(FEATURES))), columns=FEATURES)
        chunk.insert(0, "id", np.arange(i * rows_per_commit, (i + 1) * rows_per_commit))
        ws.tables.write("main.bench.events", chunk)
    score = deploy.predictor("models:/bench_linear/1", ws=ws)
    score.load()
    query = (
        streaming.read_delta(ws, "main.bench.events", max_files_per_trigger=1)
        .map(score, arrow=True)
        .write_delta("main.bench.events_scored", query_name="bench_stream")
    )
    started = time.perf_counter()
    query.run(trigger="available_now")
    elapsed = time.perf_counter() - started
    durations = [query.checkpoint.commit(b)["duration_s"] for b in query.checkpoint.commit_ids()]
    total = commits * rows_per_commit
    assert len(ws.tables.read("main.bench.events_scored", columns=["id"])) == total
    return {
        "rows": total,
        "batches": len(durations),
        "seconds": round(elapsed, 2),
        "rows_per_s": round(total / elapsed),
        "batch_latency_median_ms": round(statistics.median(durations) * 1000, 1),
        "batch_latency_max_ms": round(max(durations) * 1000, 1),
    }


# ----------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stream-commits", type=int, default=40)
    parser.add_argument("--stream-rows", type=int, default=50_000)
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--variant", choices=["lakebox", "script", "predict"])
    args = parser.parse_args()
    if args.variant:
        fn = {
            "lakebox": lambda: run_lakebox(args.home, args.workers),
            "script": lambda: run_script(args.home),
            "predict": lambda: run_predict(args.home),
        }[args.variant]
        print(json.dumps({"seconds": fn()}))
        return
    home = args.home or HERE / "data-scoring"
    setup(home, args.rows)
    bench = Bench("scoring")
    results = {}
    for variant in ("predict", "script", "lakebox"):
        results[variant] = measure(variant, home, args.workers)
        r = results[variant]
        bench.record(
            f"batch/{variant}",
            rows=args.rows,
            seconds=round(r["seconds"], 2),
            rows_per_s=round(args.rows / r["seconds"]),
            peak_mb=r["peak_mb"],
        )
        bench.results[f"batch/{variant}"]["median_s"] = r["seconds"]
    speedup = results["script"]["seconds"] / results["lakebox"]["seconds"]
    over_predict = results["lakebox"]["seconds"] / results["predict"]["seconds"]
    bench.ratio(
        "batch lakebox / plain script",
        bench.results["batch/lakebox"],
        bench.results["batch/script"],
    )
    bench.ratio(
        "batch lakebox / predict only",
        bench.results["batch/lakebox"],
        bench.results["batch/predict"],
    )
    print(
        f"lakebox is {speedup:.2f}x the plain script (goal >= 1.5) and "
        f"{over_predict:.2f}x predict-only (goal <= 1.3)"
    )
    stream = bench_stream(home, args.stream_commits, args.stream_rows)
    bench.record("stream/linear", **stream)
    bench.save()


if __name__ == "__main__":
    main()
