"""Reliability: a stream scoring 100k rows that arrive out of order in many small commits,
its process SIGKILLed 20 times at random moments and restarted each time. The output must be
exactly the expected output: every row once, none lost, none duplicated."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

ROWS = 100_000
COMMITS = 200
DUPLICATES = 2_000  # rows sent a second time in a later commit: dropped by drop_duplicates
KILLS = 20

STREAM_SCRIPT = textwrap.dedent("""
    import os
    import sys

    import lakebox
    from lakebox import deploy, streaming
    import mlflow.pyfunc, mlflow.sklearn, sklearn.linear_model  # noqa: E401 - preload


    def run(home, trigger):
        ws = lakebox.Workspace(home)
        score = deploy.predictor("models:/kill/1", ws=ws, feature_columns=["a", "b"])
        query = (streaming.read_delta(ws, "main.raw.events", max_files_per_trigger=4)
                 .drop_duplicates("id")
                 .map(score, arrow=True)
                 .write_delta("main.preds.events", query_name="kill"))
        query.run(trigger=trigger,
                  processing_time=0.01 if trigger == "processing_time" else None)


    if sys.argv[2] == "zygote":
        # Pay the imports once: each "run" forks a fresh stream process (nothing of lakebox
        # has run yet in this parent) and reports its pid; the test SIGKILLs it.
        for line in sys.stdin:
            pid = os.fork()
            if pid == 0:
                sys.stdin.close()
                run(sys.argv[1], line.strip())
                os._exit(0)
            print(pid, flush=True)
            _, code = os.waitpid(pid, 0)
            print(f"reaped {code}", flush=True)
    else:
        run(sys.argv[1], sys.argv[2])
""")


def _input(rng: np.random.Generator) -> list[pd.DataFrame]:
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ids = rng.permutation(ROWS)  # out of order: ids and event times shuffled across commits
    frame = pd.DataFrame(
        {
            "id": ids.astype("int64"),
            "ts": [t0 + timedelta(seconds=int(s)) for s in rng.permutation(ROWS)],
            "a": rng.normal(size=ROWS),
            "b": rng.normal(size=ROWS),
        }
    )
    size = ROWS // COMMITS
    chunks = [frame.iloc[i * size : (i + 1) * size] for i in range(COMMITS)]
    again = frame.sample(DUPLICATES, random_state=1)
    per = DUPLICATES // (COMMITS // 2)
    for i in range(COMMITS // 2):
        part = again.iloc[i * per : (i + 1) * per]
        target = COMMITS // 2 + i
        chunks[target] = pd.concat([chunks[target], part]).sample(frac=1, random_state=i)
    return chunks


def test_stream_survives_20_sigkills_with_exact_output(ws, tmp_path: Path) -> None:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    train = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    model = LogisticRegression().fit(train, (train.a - train.b > 0).astype(int))
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name="kill",
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    chunks = _input(rng)
    ws.tables.write("main.raw.events", chunks[0])

    def writer() -> None:  # the rest arrives while the stream runs and is killed
        for chunk in chunks[1:]:
            ws.tables.write("main.raw.events", chunk)
            time.sleep(0.05)

    arrivals = threading.Thread(target=writer)
    arrivals.start()
    script = tmp_path / "stream.py"
    script.write_text(STREAM_SCRIPT)
    status_file = ws.home / "checkpoints" / "kill" / "status.json"
    kill_rng = random.Random(11)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    started = time.monotonic()
    zygote = subprocess.Popen(
        [sys.executable, str(script), str(ws.home), "zygote"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert zygote.stdin is not None and zygote.stdout is not None
    try:
        for _ in range(KILLS):
            zygote.stdin.write("processing_time\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            # wait until this process runs batches, then kill it at a random moment
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if status_file.exists() and f'"pid": {pid},' in status_file.read_text():
                    break
                time.sleep(0.01)
            time.sleep(kill_rng.uniform(0.0, 1.0))
            os.kill(pid, signal.SIGKILL)
            assert zygote.stdout.readline().split() == ["reaped", str(signal.SIGKILL)]
        arrivals.join()
        zygote.stdin.write("available_now\n")  # a last run to completion
        zygote.stdin.flush()
        zygote.stdout.readline()
        assert zygote.stdout.readline().split() == ["reaped", "0"]
    finally:
        zygote.kill()
        zygote.wait()
    elapsed = time.monotonic() - started

    out = ws.tables.read("main.preds.events")
    assert len(out) == ROWS, f"{len(out)} rows after {KILLS} kills in {elapsed:.0f} s"
    assert out["id"].is_unique
    everything = pd.concat(chunks).drop_duplicates("id").set_index("id").sort_index()
    expected = model.predict(everything[["a", "b"]])
    got = out.set_index("id").sort_index()
    assert (got.index == everything.index).all()
    np.testing.assert_array_equal(got["prediction"].to_numpy(), expected)
    np.testing.assert_array_equal(got["a"].to_numpy(), everything["a"].to_numpy())
    assert set(got["model_version"]) == {"1"}
    # one Delta commit per batch, each carrying its batch id exactly once
    batch_ids = [
        h.get("lakebox.batch_id")
        for h in ws.tables.history("main.preds.events")
        if h.get("lakebox.batch_id") is not None
    ]
    assert len(batch_ids) == len(set(batch_ids))
