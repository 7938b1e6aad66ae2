"""lakebox table operations versus the same calls on plain delta-rs.

lakebox adds name resolution, a catalog row, schema checks and (for merge) a duplicate-key check
on top of delta-rs; this measures what that costs. Goal: every ratio <= 1.1.

    python benchmarks/bench_tables.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from harness import Bench

import lakebox


def make(rows: int, start: int = 0, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "id": np.arange(start, start + rows, dtype="int64"),
            "customer_id": rng.integers(0, 100_000, rows),
            "amount": rng.gamma(2.0, 10.0, rows),
            "day": pa.array(rng.choice([f"2026-01-{d:02d}" for d in range(1, 29)], rows)),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows, repeat = args.rows, args.repeat
    base = make(rows)
    batch = make(rows // 10, start=rows, seed=1)
    small = make(1_000, start=10 * rows, seed=2)
    # Half the merge rows update existing ids, half insert new ones.
    upsert = pa.concat_tables(
        [make(rows // 20, start=0, seed=3), make(rows // 20, start=20 * rows, seed=4)]
    )

    tmp = Path(tempfile.mkdtemp(prefix="bench-tables-"))
    ws = lakebox.Workspace(tmp / "ws", settings={"mlflow": {"lineage": False}})
    raw_root = tmp / "raw"
    name = "main.bench.t"
    lb_path = Path(ws.tables.location(name))
    raw_path = raw_root / "t"
    bench = Bench("tables")
    bench.record("sizes", rows=rows, append_rows=batch.num_rows, merge_rows=upsert.num_rows)

    def reset_lb() -> None:
        ws.tables.drop(name, missing_ok=True)

    def reset_raw() -> None:
        shutil.rmtree(raw_path, ignore_errors=True)

    print(f"\n-- create: write {rows:,} rows to a new table")
    lb = bench.measure(
        "create/lakebox", lambda: ws.tables.write(name, base), setup=reset_lb, repeat=repeat
    )
    raw = bench.measure(
        "create/deltalake", lambda: write_deltalake(raw_path, base), setup=reset_raw, repeat=repeat
    )
    bench.ratio("create", lb, raw)

    # Templates with one version each, copied before every timed call.
    reset_lb()
    ws.tables.write(name, base)
    reset_raw()
    write_deltalake(raw_path, base)
    lb_template, raw_template = tmp / "lb_template", tmp / "raw_template"
    shutil.copytree(lb_path, lb_template)
    shutil.copytree(raw_path, raw_template)

    def restore_lb() -> None:
        shutil.rmtree(lb_path)
        shutil.copytree(lb_template, lb_path)

    def restore_raw() -> None:
        shutil.rmtree(raw_path)
        shutil.copytree(raw_template, raw_path)

    print(f"\n-- append {batch.num_rows:,} rows")
    lb = bench.measure(
        "append/lakebox", lambda: ws.tables.write(name, batch), setup=restore_lb, repeat=repeat
    )
    raw = bench.measure(
        "append/deltalake",
        lambda: write_deltalake(raw_path, batch, mode="append"),
        setup=restore_raw,
        repeat=repeat,
    )
    bench.ratio("append", lb, raw)

    print("\n-- append 1,000 rows (per-call overhead)")
    lb = bench.measure(
        "append_small/lakebox",
        lambda: ws.tables.write(name, small),
        setup=restore_lb,
        repeat=repeat * 4,
    )
    raw = bench.measure(
        "append_small/deltalake",
        lambda: write_deltalake(raw_path, small, mode="append"),
        setup=restore_raw,
        repeat=repeat * 4,
    )
    bench.ratio("append_small", lb, raw)

    print(f"\n-- merge {upsert.num_rows:,} rows (half updates, half inserts) on id")

    def raw_merge() -> None:
        (
            DeltaTable(raw_path)
            .merge(upsert, 't."id" = s."id"', source_alias="s", target_alias="t")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )

    lb = bench.measure(
        "merge/lakebox",
        lambda: ws.tables.merge(name, upsert, on=["id"]),
        setup=restore_lb,
        repeat=repeat,
    )
    raw = bench.measure("merge/deltalake", raw_merge, setup=restore_raw, repeat=repeat)
    bench.ratio("merge", lb, raw)

    print("\n-- time travel: read version 0 of a two-version table")
    restore_lb()
    ws.tables.write(name, batch)
    restore_raw()
    write_deltalake(raw_path, batch, mode="append")
    lb = bench.measure(
        "read_v0/lakebox", lambda: ws.tables.read(name, version=0, output="arrow"), repeat=repeat
    )
    raw = bench.measure(
        "read_v0/deltalake",
        lambda: DeltaTable(raw_path, version=0).to_pyarrow_table(),
        repeat=repeat,
    )
    bench.ratio("read_v0", lb, raw)
    lb = bench.measure(
        "read_latest_1col/lakebox",
        lambda: ws.tables.read(name, columns=["amount"], output="arrow"),
        repeat=repeat,
    )
    raw = bench.measure(
        "read_latest_1col/deltalake",
        lambda: DeltaTable(raw_path).to_pyarrow_table(columns=["amount"]),
        repeat=repeat,
    )
    bench.ratio("read_latest_1col", lb, raw)

    bench.save()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
