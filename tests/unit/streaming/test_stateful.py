"""Watermarks, windowed aggregation and de-duplication, with state kept across restarts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from lakebox import streaming
from lakebox.errors import InvalidInput

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _events(rows: list[tuple[int, str, int, float]]) -> pd.DataFrame:
    """(event id, key, seconds after T0, amount)."""
    return pd.DataFrame(
        {
            "event_id": [r[0] for r in rows],
            "key": [r[1] for r in rows],
            "ts": [T0 + timedelta(seconds=r[2]) for r in rows],
            "amount": [r[3] for r in rows],
        }
    )


def _windowed(ws, name: str):  # type: ignore[no-untyped-def]
    return (
        streaming.read_delta(ws, "main.raw.ev", max_files_per_trigger=1)
        .with_watermark("ts", "10 seconds")
        .window(
            "ts",
            "1 minute",
            by="key",
            aggs={
                "n": ("event_id", "count"),
                "total": ("amount", "sum"),
                "avg": ("amount", "mean"),
                "top": ("amount", "max"),
            },
        )
        .write_delta(f"main.out.{name}", query_name=name)
    )


def test_windows_emit_after_watermark_and_drop_late_rows(ws) -> None:
    ws.tables.write(
        "main.raw.ev", _events([(1, "a", 5, 1.0), (2, "b", 20, 2.0), (3, "a", 50, 3.0)])
    )
    q = _windowed(ws, "w")
    q.run()
    assert not ws.tables.exists("main.out.w")  # window [0, 60) still open: watermark 40 s
    ws.tables.write("main.raw.ev", _events([(4, "a", 65, 4.0), (5, "a", 55, 5.0)]))
    q.run()  # the watermark is 55 s: 55 s is on time, the window is still open
    ws.tables.write("main.raw.ev", _events([(6, "b", 80, 6.0)]))
    q.run()  # watermark 70 s: window [0, 60) is final
    out = ws.tables.read("main.out.w").sort_values("key")
    assert list(out["key"]) == ["a", "b"]
    assert list(out["n"]) == [3, 1]
    assert list(out["total"]) == [9.0, 2.0]
    assert list(out["avg"]) == [3.0, 2.0]
    assert list(out["top"]) == [5.0, 2.0]
    assert out["window_start"].iloc[0] == pd.Timestamp(T0)
    assert out["window_end"].iloc[0] == pd.Timestamp(T0 + timedelta(minutes=1))
    # a row for the closed window arrives late: dropped, the window is not emitted twice
    ws.tables.write("main.raw.ev", _events([(7, "a", 30, 100.0), (8, "a", 200, 1.0)]))
    q.run()
    out = ws.tables.read("main.out.w")
    assert len(out) == 4  # + windows [60, 120) of a and b: the watermark (190 s) passed them
    assert 100.0 not in set(out["top"])
    status = ws.streams.status("w")
    assert status["watermark"].startswith("2026-01-01T00:03:10")


def test_window_state_survives_restart_in_a_new_query_object(ws) -> None:
    ws.tables.write("main.raw.ev", _events([(1, "a", 1, 1.0)]))
    _windowed(ws, "r").run()
    ws.tables.write("main.raw.ev", _events([(2, "a", 2, 2.0)]))
    _windowed(ws, "r").run()  # a fresh object: state comes from the checkpoint
    ws.tables.write("main.raw.ev", _events([(3, "a", 500, 0.0)]))
    _windowed(ws, "r").run()
    out = ws.tables.read("main.out.r")
    first = out[out["window_start"] == pd.Timestamp(T0)]
    assert list(first["n"]) == [2]
    assert list(first["total"]) == [3.0]


def test_dedup_within_watermark(ws) -> None:
    ws.tables.write("main.raw.ev", _events([(1, "a", 0, 1.0), (1, "a", 1, 1.0), (2, "a", 2, 1.0)]))
    q = (
        streaming.read_delta(ws, "main.raw.ev")
        .with_watermark("ts", "1 minute")
        .drop_duplicates("event_id")
        .write_delta("main.out.d", query_name="d")
    )
    q.run()
    ws.tables.write("main.raw.ev", _events([(2, "a", 3, 9.0), (3, "a", 4, 1.0)]))
    q.run()
    assert sorted(ws.tables.read("main.out.d")["event_id"]) == [1, 2, 3]
    # far later events move the watermark past the old keys: they are forgotten...
    ws.tables.write("main.raw.ev", _events([(4, "a", 1000, 1.0)]))
    q.run()
    state = q.checkpoint.load_state(q.checkpoint.commit_ids()[-1])
    assert sorted(state["op1"]["event_id"].to_pylist()) == [4]
    # ...and a duplicate of them is now later than the watermark, so it is dropped as late
    ws.tables.write("main.raw.ev", _events([(1, "a", 0, 1.0)]))
    q.run()
    assert sorted(ws.tables.read("main.out.d")["event_id"]) == [1, 2, 3, 4]


def test_window_needs_a_watermark_and_valid_aggs(ws) -> None:
    ws.tables.write("main.raw.ev", _events([(1, "a", 0, 1.0)]))
    stream = streaming.read_delta(ws, "main.raw.ev")
    with pytest.raises(InvalidInput, match="with_watermark"):
        stream.window("ts", "1 minute", aggs={"n": ("event_id", "count")})
    with pytest.raises(InvalidInput, match="function one of"):
        stream.with_watermark("ts", "1 s").window(
            "ts", "1 minute", aggs={"n": ("event_id", "median")}
        )
    with pytest.raises(InvalidInput, match="not understood"):
        stream.with_watermark("ts", "soon")


def test_batch_run_of_a_windowed_stream_emits_every_window(ws) -> None:
    ws.tables.write("main.raw.ev", _events([(1, "a", 5, 1.0), (2, "a", 70, 2.0)]))
    stream = (
        streaming.read_delta(ws, "main.raw.ev")
        .with_watermark("ts", "1 s")
        .window("ts", "1 minute", aggs={"n": ("event_id", "count")})
    )
    batch = stream.to_table().to_pandas()
    assert list(batch["n"]) == [1, 1]
    stream.write_delta("main.out.b", query_name="b").run()
    # the stream emits only windows the watermark closed: [0, 60)
    streamed = ws.tables.read("main.out.b")
    pd.testing.assert_frame_equal(streamed, batch.iloc[:1], check_dtype=False)
