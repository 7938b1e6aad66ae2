"""The auto-loader-like file source: new JSON / CSV / Parquet files, bad files set aside."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakebox import streaming
from lakebox.errors import NotFound


def _json(folder: Path, name: str, rows: list[dict]) -> None:
    tmp = folder / f".{name}"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.rename(folder / name)  # complete files only: dot-files are ignored


def test_json_files_arrive_and_bad_ones_are_quarantined(ws, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    _json(landing, "a.json", [{"id": 1, "v": 1.5}, {"id": 2, "v": 2.5}])
    q = streaming.read_files(ws, landing, format="json").write_delta(
        "main.raw.landed", query_name="files"
    )
    q.run()
    _json(landing, "b.json", [{"id": 3, "v": 3.5}])
    (landing / "broken.json").write_text('{"id": 4, "v": \n not json')
    _json(landing, "wrong.json", [{"id": "x", "v": "y"}])
    _json(landing, "c.json", [{"id": 5, "v": 5.5}])
    q.run()
    out = ws.tables.read("main.raw.landed").sort_values("id")
    assert list(out["id"]) == [1, 2, 3, 5]
    bad = landing / "_bad_records"
    assert sorted(p.name for p in bad.iterdir()) == [
        "broken.json",
        "broken.json.reason.txt",
        "wrong.json",
        "wrong.json.reason.txt",
    ]
    assert "broken.json" in (bad / "broken.json.reason.txt").read_text()
    assert not (landing / "broken.json").exists()
    assert ws.streams.status("files")["bad_files"] == 2
    q.run()  # nothing new
    assert len(ws.tables.read("main.raw.landed")) == 4


def test_csv_and_parquet_with_a_schema(ws, tmp_path: Path) -> None:
    landing = tmp_path / "csv"
    landing.mkdir()
    (landing / "1.csv").write_text("id,name\n1,a\n2,b\n")
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    got = []
    streaming.read_files(ws, landing, format="csv", schema=schema).foreach_batch(
        lambda df, b: got.extend(df["name"]), query_name="csv"
    ).run()
    assert got == ["a", "b"]
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    pq.write_table(pa.table({"id": [1, 2]}), pq_dir / "1.parquet")
    pq.write_table(pa.table({"other": [1]}), pq_dir / "2.parquet")
    streaming.read_files(ws, pq_dir, format="parquet", max_files_per_trigger=1).write_delta(
        "main.raw.pq", query_name="pq"
    ).run()
    assert sorted(ws.tables.read("main.raw.pq")["id"]) == [1, 2]
    reason = (pq_dir / "_bad_records" / "2.parquet.reason.txt").read_text()
    assert "missing column(s) ['id']" in reason


def test_missing_folder(ws, tmp_path: Path) -> None:
    q = streaming.read_files(ws, tmp_path / "nope", format="json").foreach_batch(
        print, query_name="nope"
    )
    with pytest.raises(NotFound, match="does not exist"):
        q.run()
