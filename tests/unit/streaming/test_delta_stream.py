"""Delta source → pipeline → Delta / foreach_batch sinks, checkpoints and restarts."""

from __future__ import annotations

import json
import threading
import time

import pandas as pd
import pyarrow as pa
import pytest

from lakebox import streaming
from lakebox.errors import Conflict, InvalidInput, NotFound, SchemaMismatch


def _rows(start: int, n: int) -> pd.DataFrame:
    return pd.DataFrame({"id": range(start, start + n), "x": [float(i) for i in range(n)]})


def double(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(y=df["x"] * 2)


def test_append_stream_reads_snapshot_then_new_commits(ws) -> None:
    ws.tables.write("main.raw.ev", _rows(0, 10))
    ws.tables.write("main.raw.ev", _rows(10, 5))
    q = (
        streaming.read_delta(ws, "main.raw.ev")
        .map(double)
        .write_delta("main.out.ev", query_name="q1")
    )
    status = q.run()
    assert status["state"] == "STOPPED"
    out = ws.tables.read("main.out.ev").sort_values("id")
    assert list(out["id"]) == list(range(15))
    assert list(out["y"]) == [2 * x for x in out["x"]]
    ws.tables.write("main.raw.ev", _rows(15, 3))
    q.run()
    out = ws.tables.read("main.out.ev")
    assert sorted(out["id"]) == list(range(18))
    # nothing new: running again adds nothing
    q.run()
    assert len(ws.tables.read("main.out.ev")) == 18
    history = ws.tables.history("main.out.ev")
    assert history[0]["lakebox.query"] == "q1"


def test_rate_limit_makes_several_batches_and_status(ws) -> None:
    for i in range(5):
        ws.tables.write("main.raw.ev", _rows(i * 10, 10))
    seen: list[tuple[int, int]] = []
    q = streaming.read_delta(ws, "main.raw.ev", max_files_per_trigger=2).foreach_batch(
        lambda df, batch_id: seen.append((batch_id, len(df))), query_name="q2"
    )
    q.run()
    assert [b for b, _ in seen] == [0, 1, 2]
    assert sum(n for _, n in seen) == 50
    status = ws.streams.status("q2")
    assert status["last_batch_id"] == 2
    assert status["state"] == "STOPPED"
    assert status["processed_rows_per_second"] > 0
    assert status["batch_duration_ms"] >= 0
    assert [s["name"] for s in ws.streams.list()] == ["q2"]


def test_once_trigger_reads_everything_in_one_batch(ws) -> None:
    for i in range(3):
        ws.tables.write("main.raw.ev", _rows(i * 10, 10))
    sizes: list[int] = []
    q = streaming.read_delta(ws, "main.raw.ev", max_files_per_trigger=1).foreach_batch(
        lambda df, _: sizes.append(len(df)), query_name="once"
    )
    q.run(trigger="once")
    assert sizes == [30]


def test_replays_a_planned_but_uncommitted_batch_exactly_once(ws) -> None:
    ws.tables.write("main.raw.ev", _rows(0, 10))
    q = streaming.read_delta(ws, "main.raw.ev").write_delta("main.out.ev", query_name="r")
    q.run()
    ws.tables.write("main.raw.ev", _rows(10, 10))
    q.run()
    # simulate a crash after the sink committed batch 1 but before commits/1 was written
    (q.checkpoint.path / "commits" / "1.json").unlink()
    q.run()
    out = ws.tables.read("main.out.ev")
    assert sorted(out["id"]) == list(range(20))
    assert json.loads((q.checkpoint.path / "commits" / "1.json").read_text())["batch_id"] == 1
    # and a crash before the sink committed: the batch is written on restart
    ws.tables.write("main.raw.ev", _rows(20, 10))
    q.run()
    ws.tables.delete("main.out.ev", "id >= 20")  # pretend batch 2 never reached the sink...
    # ...which a real sink cannot tell apart, so the transaction id still says "done":
    (q.checkpoint.path / "commits" / "2.json").unlink()
    q.run()
    assert sorted(ws.tables.read("main.out.ev")["id"]) == list(range(20))


def test_non_append_commits(ws) -> None:
    ws.tables.write("main.raw.ev", _rows(0, 10))
    q = streaming.read_delta(ws, "main.raw.ev").write_delta("main.out.ev", query_name="na")
    q.run()
    ws.tables.delete("main.raw.ev", "id < 3")
    with pytest.raises(Conflict, match="non_append='skip'"):
        q.run()
    assert ws.streams.status("na")["state"] == "FAILED"
    # skip: the rewrite commit is skipped whole, later appends still arrive
    ws.tables.write("main.raw.ev", _rows(100, 2))
    skip = streaming.read_delta(ws, "main.raw.ev", starting_version=1, non_append="skip")
    skip.write_delta("main.out.skip", query_name="skip").run()
    assert sorted(ws.tables.read("main.out.skip")["id"]) == [100, 101]
    ws.tables.optimize("main.raw.ev")  # no data change: always skipped
    ws.tables.write("main.raw.ev", _rows(200, 1))
    skip.write_delta("main.out.skip", query_name="skip").run()
    assert sorted(ws.tables.read("main.out.skip")["id"]) == [100, 101, 200]
    # ignore_deletes: commits that only remove files are skipped
    ws.tables.write("main.raw.d", _rows(0, 2))
    ws.tables.delete("main.raw.d")
    ws.tables.write("main.raw.d", _rows(5, 2))
    ignore = streaming.read_delta(ws, "main.raw.d", starting_version=0, non_append="ignore_deletes")
    ignore.write_delta("main.out.d", query_name="ignore").run()
    assert sorted(ws.tables.read("main.out.d")["id"]) == [0, 1, 5, 6]


def test_schema_change_and_dropped_source_are_clear_errors(ws) -> None:
    ws.tables.write("main.raw.ev", _rows(0, 3))
    q = streaming.read_delta(ws, "main.raw.ev").write_delta("main.out.ev", query_name="s")
    q.run()
    ws.tables.write("main.raw.ev", _rows(3, 2).assign(extra=1), merge_schema=True)
    with pytest.raises(SchemaMismatch, match="changed its schema"):
        q.run()
    ws.tables.drop("main.raw.ev")
    with pytest.raises(NotFound, match="main.raw.ev"):
        q.run()


def test_checkpoint_of_another_query_is_refused(ws) -> None:
    ws.tables.write("main.raw.a", _rows(0, 3))
    ws.tables.write("main.raw.b", _rows(0, 3))
    streaming.read_delta(ws, "main.raw.a").write_delta("main.out.a", query_name="qa").run()
    other = streaming.read_delta(ws, "main.raw.b").write_delta(
        "main.out.b", query_name="qb", checkpoint_location=str(ws.home / "checkpoints" / "qa")
    )
    with pytest.raises(InvalidInput, match="belongs to query 'qa'"):
        other.run()


def test_output_schema_mismatch_stops_with_a_clear_error(ws) -> None:
    ws.tables.write("main.raw.ev", _rows(0, 3))
    ws.tables.write("main.out.ev", pd.DataFrame({"other": ["a"]}))
    q = streaming.read_delta(ws, "main.raw.ev").write_delta("main.out.ev", query_name="m")
    with pytest.raises(SchemaMismatch, match="main.out.ev"):
        q.run()


def test_partitioned_source_carries_partition_columns(ws) -> None:
    df = _rows(0, 6).assign(day=["d1", "d2"] * 3)
    ws.tables.write("main.raw.p", df, partition_by=["day"])
    ws.tables.write("main.raw.p", _rows(6, 2).assign(day=["d3", "d1"]))
    streaming.read_delta(ws, "main.raw.p").write_delta("main.out.p", query_name="p").run()
    out = ws.tables.read("main.out.p").sort_values("id")
    assert list(out["day"]) == ["d1", "d2"] * 3 + ["d3", "d1"]


def test_stop_request_and_processing_time(ws) -> None:
    ws.tables.write("main.raw.ev", _rows(0, 3))
    q = streaming.read_delta(ws, "main.raw.ev").write_delta("main.out.ev", query_name="pt")
    status = q.run(processing_time="0.05 seconds", max_batches=1)
    assert status["last_batch_id"] == 0
    finished: list[dict] = []
    runner = threading.Thread(
        target=lambda: finished.append(q.run(processing_time=0.05, timeout=120))
    )
    runner.start()
    deadline = time.monotonic() + 60
    while ws.streams.status("pt")["state"] != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.02)
    ws.tables.write("main.raw.ev", _rows(3, 2))  # picked up by the running query
    while len(ws.tables.read("main.out.ev")) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ws.streams.stop("pt", wait=30)["state"] == "STOPPED"
    runner.join(timeout=30)
    assert finished and finished[0]["state"] == "STOPPED"
    assert len(ws.tables.read("main.out.ev")) == 5


def test_batch_and_stream_give_equal_results(ws) -> None:
    for i in range(4):
        ws.tables.write("main.raw.ev", pd.concat([_rows(i * 5, 5), _rows(i * 5, 2)]))
    stream = (
        streaming.read_delta(ws, "main.raw.ev", max_files_per_trigger=1)
        .drop_duplicates("id")
        .map(double)
    )
    batch = stream.to_table().to_pandas().sort_values("id").reset_index(drop=True)
    stream.write_delta("main.out.ev", query_name="eq").run()
    streamed = ws.tables.read("main.out.ev").sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(batch, streamed[batch.columns], check_dtype=False)
    assert list(batch["id"]) == list(range(20))


def test_unknown_query_names_suggest(ws) -> None:
    ws.tables.write("main.raw.ev", _rows(0, 1))
    streaming.read_delta(ws, "main.raw.ev").write_delta("main.o.e", query_name="scores").run()
    with pytest.raises(NotFound, match="scores"):
        ws.streams.status("score")
    assert pa is not None
