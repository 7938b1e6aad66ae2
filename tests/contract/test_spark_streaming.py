"""Streaming scoring gives the same output on both engines, exactly once on Spark.

The same stream (a Delta source, a ``map`` step, a Delta sink) runs on a ``local`` and on a
``spark`` workspace (Structured Streaming, ``foreachBatch``, the ``lakebox_delta`` source).
On Spark, a crash between the Delta commit and Spark's commit log is reproduced by removing
the batch's entry from Spark's commit log: Spark replays the batch with the same id and the
same files, and the sink recognises it from the table's application transaction.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import lakebox
from lakebox.errors import Conflict


def with_total(df: pd.DataFrame) -> pd.DataFrame:
    """The stream's transform: pandas in, pandas out (runs in Spark's Python workers)."""
    return df.assign(total=df["amount"] * df["qty"])


def events(first: int, n: int) -> pa.Table:
    ids = list(range(first, first + n))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "amount": [i * 0.5 for i in ids],
            "qty": pa.array([i % 3 for i in ids], pa.int32()),
        }
    )


@pytest.fixture(scope="session")
def spark_session_started() -> Iterator[None]:
    if not os.environ.get("CI"):
        pytest.importorskip("pyspark", reason="pip install 'lakebox[spark]' to test the engine")
    from pyspark import cloudpickle

    from lakebox.engines._spark_session import spark_session, stop_sessions

    spark_session("local[2]", conf={"spark.sql.shuffle.partitions": "2"})
    # Spark's Python workers cannot import test modules: ship with_total by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    stop_sessions()


@pytest.fixture(params=["local", pytest.param("spark", marks=pytest.mark.spark)])
def ws(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[lakebox.Workspace]:
    if request.param == "spark":
        request.getfixturevalue("spark_session_started")
    workspace = lakebox.Workspace(tmp_path / "ws", engine=request.param, spark_master="local[2]")
    workspace.tables.create("main.raw.events", events(0, 4))
    workspace.tables.write("main.raw.events", events(4, 3))
    yield workspace
    workspace.close()


def output(ws: lakebox.Workspace, table: str) -> list[dict]:
    return sorted(ws.tables.read(table, output="arrow").to_pylist(), key=lambda r: r["id"])


def expected(n: int) -> list[dict]:
    rows = events(0, n).to_pylist()
    return [{**r, "total": r["amount"] * r["qty"]} for r in rows]


def query(ws: lakebox.Workspace) -> lakebox.streaming.StreamingQuery:
    return (
        ws.streams.read_delta("main.raw.events", max_files_per_trigger=1)
        .map(with_total)
        .write_delta("main.out.totals", query_name="totals")
    )


def test_stream_scores_every_row_once_and_resumes(ws) -> None:
    status = query(ws).run()
    assert status["state"] == "STOPPED"
    assert output(ws, "main.out.totals") == expected(7)
    out = ws.tables.delta_table("main.out.totals")
    assert pa.schema(out.schema().to_arrow()).field("qty").type == pa.int32()
    version = out.version()
    # nothing new: a run commits nothing
    query(ws).run()
    assert ws.tables.delta_table("main.out.totals").version() == version
    # new commits are read once, from where the query stopped
    ws.tables.write("main.raw.events", events(7, 2))
    status = query(ws).run()
    assert output(ws, "main.out.totals") == expected(9)
    assert ws.streams.status("totals")["state"] == "STOPPED"
    assert status["last_batch_id"] is not None
    # each micro-batch is one commit carrying the query's application transaction
    history = ws.tables.delta_table("main.out.totals").history()
    batches = sorted(int(h["lakebox.batch_id"]) for h in history if "lakebox.batch_id" in h)
    assert batches == list(range(len(batches))) and len(batches) >= 3


@pytest.mark.spark
def test_spark_replayed_batch_is_not_written_twice(tmp_path, spark_session_started) -> None:
    ws = lakebox.Workspace(tmp_path / "ws", engine="spark", spark_master="local[2]")
    try:
        ws.tables.create("main.raw.events", events(0, 4))
        ws.tables.write("main.raw.events", events(4, 3))
        query(ws).run()
        assert output(ws, "main.out.totals") == expected(7)
        spark_commits = Path(ws.streams.status("totals")["checkpoint"]) / "spark" / "commits"
        last = max(int(p.name) for p in spark_commits.iterdir() if p.name.isdigit())
        dt = ws.tables.delta_table("main.out.totals")
        query_id = ws.streams.status("totals")["id"]
        assert dt.transaction_version(query_id) == last
        version = dt.version()
        # the process "died" after the Delta commit of batch `last`, before Spark logged it
        (spark_commits / str(last)).unlink()
        (spark_commits / f".{last}.crc").unlink(missing_ok=True)  # Hadoop's checksum beside it
        status = query(ws).run()
        assert (spark_commits / str(last)).exists()  # Spark ran batch `last` again ...
        assert status["last_batch_id"] == last
        assert ws.tables.delta_table("main.out.totals").version() == version  # ... no commit
        assert output(ws, "main.out.totals") == expected(7)
        # and the query goes on from there, here on a processing-time trigger
        ws.tables.write("main.raw.events", events(7, 1))
        status = query(ws).run(processing_time="0.5 seconds", max_batches=1)
        assert status["state"] == "STOPPED" and status["trigger"] == "processing_time"
        assert output(ws, "main.out.totals") == expected(8)
    finally:
        ws.close()


@pytest.mark.spark
def test_spark_commit_frame_skips_a_batch_id_it_holds(tmp_path, spark_session_started) -> None:
    from lakebox.streaming._spark import commit_frame

    ws = lakebox.Workspace(tmp_path / "ws", engine="spark", spark_master="local[2]")
    try:
        frame = ws.features.engine.frame(events(0, 3))
        args = {"query_id": "q-1", "metadata": {"lakebox.query": "q"}}
        assert commit_frame(ws, "main.out.raw", frame, batch_id=0, **args) is True
        assert commit_frame(ws, "main.out.raw", frame, batch_id=0, **args) is False
        assert commit_frame(ws, "main.out.raw", frame, batch_id=1, **args) is True
        dt = ws.tables.delta_table("main.out.raw")
        assert dt.transaction_version("q-1") == 1
        assert len(dt.to_pyarrow_table()) == 6
        # another query's batch 0 is its own
        assert commit_frame(ws, "main.out.raw", frame, batch_id=0, query_id="q-2", metadata={})
        assert len(ws.tables.delta_table("main.out.raw").to_pyarrow_table()) == 9
    finally:
        ws.close()


def test_checkpoint_of_the_other_runner_is_refused(tmp_path) -> None:
    local = lakebox.Workspace(tmp_path / "ws")
    try:
        local.tables.create("main.raw.events", events(0, 2))
        query(local).run()
    finally:
        local.close()
    spark = lakebox.Workspace(tmp_path / "ws", engine="spark", spark_master="local[2]")
    try:
        with pytest.raises(Conflict, match="local runner"):
            query(spark).run()
    finally:
        spark.close()


CHILD = """
import os, sys
import lakebox
from lakebox.streaming import _spark

real = _spark.commit_frame

def commit_then_die(*args, **kwargs):
    done = real(*args, **kwargs)
    if kwargs["batch_id"] == 1:
        os._exit(9)  # dies after the Delta commit of batch 1, before Spark logs the batch
    return done

_spark.commit_frame = commit_then_die

def with_total(df):
    return df.assign(total=df["amount"] * df["qty"])

ws = lakebox.Workspace(sys.argv[1], engine="spark", spark_master="local[2]")
(ws.streams.read_delta("main.raw.events", max_files_per_trigger=1)
 .map(with_total).write_delta("main.out.totals", query_name="totals").run())
"""


@pytest.mark.spark
def test_spark_stream_killed_after_a_commit_restarts_exactly_once(
    tmp_path, spark_session_started
) -> None:
    import signal
    import subprocess

    home = tmp_path / "ws"
    ws = lakebox.Workspace(home, engine="spark", spark_master="local[2]")
    try:
        ws.tables.create("main.raw.events", events(0, 2))
        ws.tables.write("main.raw.events", events(2, 2))
        ws.tables.write("main.raw.events", events(4, 2))
        script = tmp_path / "child.py"
        script.write_text(CHILD)
        env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
        child = subprocess.Popen(
            [sys.executable, str(script), str(home)],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _, err = child.communicate(timeout=480)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)  # the child's JVM, if it outlived it
        assert child.returncode == 9, err.decode()[-3000:]
        # batches 0 and 1 are in the table; Spark logged only batch 0 as done
        assert output(ws, "main.out.totals") == expected(4)
        version = ws.tables.delta_table("main.out.totals").version()
        spark_commits = home / "checkpoints" / "totals" / "spark" / "commits"
        assert sorted(p.name for p in spark_commits.iterdir() if p.name.isdigit()) == ["0"]
        # restart here: Spark replays batch 1 (skipped by the sink), then runs batch 2
        status = query(ws).run()
        assert status["last_batch_id"] == 2
        assert output(ws, "main.out.totals") == expected(6)
        history = ws.tables.delta_table("main.out.totals").history()
        assert ws.tables.delta_table("main.out.totals").version() == version + 1
        batches = sorted(int(h["lakebox.batch_id"]) for h in history if "lakebox.batch_id" in h)
        assert batches == [0, 1, 2]
    finally:
        ws.close()


@pytest.mark.spark
def test_spark_query_stops_on_request(tmp_path, spark_session_started) -> None:
    import threading
    import time

    ws = lakebox.Workspace(tmp_path / "ws", engine="spark", spark_master="local[2]")
    try:
        ws.tables.create("main.raw.events", events(0, 3))
        results: list = []
        runner = threading.Thread(
            target=lambda: results.append(query(ws).run(processing_time="0.5 seconds"))
        )
        runner.start()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            status = query(ws).status()
            if status.get("last_batch_id") is not None or not runner.is_alive():
                break
            time.sleep(0.2)
        assert status.get("last_batch_id") == 0 and status["state"] == "RUNNING"
        assert status["engine"] == "spark"
        stopped = ws.streams.stop("totals", wait=120)
        runner.join(timeout=120)
        assert not runner.is_alive()
        assert stopped["state"] == "STOPPED" and results[0]["state"] == "STOPPED"
        assert output(ws, "main.out.totals") == expected(3)
    finally:
        ws.close()
