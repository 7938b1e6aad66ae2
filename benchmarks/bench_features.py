"""Feature store benchmark: lakebox vs Feast, same data, measured in the same run.

* Training set (point-in-time join): N entity rows x 3 feature tables of M rows each, through
  lakebox (DuckDB ASOF join over Delta) and Feast's ``file`` and ``duckdb`` offline stores.
  Each build runs in a fresh process; time and peak RSS are measured there. Feature values are
  compared row by row; entity rows each side dropped are counted.
* Online lookups: 1 and 100 keys, p50/p99, lakebox SQLite online store vs Feast's SQLite
  online store (after ``materialize``).

Feast runs in its own virtualenv, ``benchmarks/.venv-feast`` (created here:
``pip install 'feast[duckdb]'``).

Usage::

    python benchmarks/bench_features.py                       # 1M entities x 3 x 10M rows
    python benchmarks/bench_features.py --entities 100000 --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from harness import Bench

HERE = Path(__file__).parent
VENV = HERE / ".venv-feast"
FEAST_PY = VENV / "bin" / "python"
BASE = pd.Timestamp("2026-01-01", tz="UTC")
DAYS = 90


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would include the parent's
    from before exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def ensure_feast() -> None:
    if FEAST_PY.exists():
        return
    print("creating", VENV, "with feast[duckdb] ...")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(FEAST_PY), "-m", "pip", "install", "-q", "feast[duckdb]"], check=True)


def generate(data: Path, *, entities: int, rows: int, keys: int, seed: int = 0) -> dict:
    """Three feature tables, an online table (one row per key) and entity rows, as Parquet."""
    rng = np.random.default_rng(seed)
    data.mkdir(parents=True, exist_ok=True)
    span = DAYS * 86_400
    tables = []
    for i in range(3):
        path = data / f"t{i}.parquet"
        tables.append(str(path))
        if path.exists():
            continue
        combo = np.unique(
            rng.integers(0, keys, rows, dtype=np.int64) * span
            + rng.integers(0, span, rows, dtype=np.int64)
        )
        rng.shuffle(combo)  # late rows: files are not in time order
        ts = (BASE.value // 1000 + (combo % span) * 1_000_000).astype("int64")
        columns = {
            "customer_id": pa.array(combo // span),
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        }
        for j in range(3):
            columns[f"t{i}_f{j}"] = pa.array(rng.normal(size=len(combo)))
        pq.write_table(pa.table(columns), path, row_group_size=1_000_000)
    online = data / "online.parquet"
    if not online.exists():
        ids = np.arange(keys, dtype=np.int64)
        columns = {
            "customer_id": pa.array(ids),
            "ts": pa.array(
                BASE.value // 1000 + rng.integers(0, span, keys) * 1_000_000,
                pa.timestamp("us", tz="UTC"),
            ),
        }
        for j in range(3):
            columns[f"online_f{j}"] = pa.array(rng.normal(size=keys))
        pq.write_table(pa.table(columns), online)
    entity_path = data / "entities.parquet"
    if not entity_path.exists():
        # 5% unknown keys and times from 5 days before the first feature row: misses to keep
        ts = BASE.value // 1000 + rng.integers(-5 * 86_400, span, entities) * 1_000_000
        pq.write_table(
            pa.table(
                {
                    "customer_id": pa.array(
                        rng.integers(0, int(keys * 1.05), entities, dtype=np.int64)
                    ),
                    "event_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
                    "row_id": pa.array(np.arange(entities, dtype=np.int64)),
                }
            ),
            entity_path,
        )
    return {"tables": tables, "online": str(online), "entities": str(entity_path)}


# ----------------------------------------------------------------- lakebox side
def lakebox_setup(home: Path, files: dict) -> None:
    import lakebox

    ws = lakebox.Workspace(home)
    for i, path in enumerate(files["tables"]):
        if not ws.tables.exists(f"main.bench.t{i}"):
            ws.features.create_table(
                name=f"main.bench.t{i}",
                primary_keys="customer_id",
                timeseries_columns="ts",
                df=pq.read_table(path),
            )
    if not ws.tables.exists("main.bench.online"):
        ws.features.create_table(
            name="main.bench.online", primary_keys="customer_id", df=pq.read_table(files["online"])
        )
    ws.close()


def lakebox_child(home: str, entities: str, out: str) -> None:
    """Runs in a fresh process: build the training set, report time and peak RSS."""
    import lakebox
    from lakebox.features import FeatureLookup

    ws = lakebox.Workspace(home)
    df = pq.read_table(entities)
    start = time.perf_counter()
    training_set = ws.features.create_training_set(
        df=df,
        label=None,
        feature_lookups=[
            FeatureLookup(f"main.bench.t{i}", "customer_id", timestamp_lookup_key="event_timestamp")
            for i in range(3)
        ],
    )
    result = training_set.load_df()
    seconds = time.perf_counter() - start
    result[["row_id", *[c for c in result.columns if "_f" in c]]].to_parquet(out)
    print(
        "RESULT "
        + json.dumps({"seconds": seconds, "rows": len(result), "peak_rss_mb": peak_rss_mb()})
    )


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_child(cmd: list[str], timeout: float, *, max_rss_mb: float = 8_000) -> dict:
    """Run one measured build in a fresh process; kill it past ``timeout`` or ``max_rss_mb``
    (the machine is shared: an out-of-memory peer must not take others down)."""
    out_path = Path(f"/tmp/bench-features-{time.time_ns()}.log")
    with open(out_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
        start = time.monotonic()
        while proc.poll() is None:
            if time.monotonic() - start > timeout:
                proc.kill()
                proc.wait()
                return {"error": f"timeout after {timeout:.0f} s"}
            if _rss_mb(proc.pid) > max_rss_mb:
                proc.kill()
                proc.wait()
                return {"error": f"killed: resident memory above {max_rss_mb:.0f} MB"}
            time.sleep(0.2)
    text = out_path.read_text()
    out_path.unlink()
    for line in text.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": f"exit {proc.returncode}: {text[-1500:]}"}


def compare(ours: Path, theirs: Path, entities: int) -> dict:
    a = pd.read_parquet(ours).set_index("row_id").sort_index()
    b = pd.read_parquet(theirs).set_index("row_id").sort_index()
    common = a.index.intersection(b.index)
    a_c, b_c = a.loc[common, sorted(a.columns)], b.loc[common, sorted(a.columns)]
    same = np.isclose(a_c.to_numpy(float), b_c.to_numpy(float), equal_nan=True)
    return {
        "lakebox_rows": len(a),
        "peer_rows": len(b),
        "entity_rows": entities,
        "peer_dropped_rows": entities - len(b),
        "compared_rows": len(common),
        "mismatched_values": int((~same).sum()),
        "lakebox_rows_with_a_miss": int(a.isna().any(axis=1).sum()),
    }


def lakebox_online(home: Path, keys: int, iterations: int, warmup: int) -> dict:
    import lakebox

    ws = lakebox.Workspace(home)
    start = time.perf_counter()
    ws.features.publish_table(name="main.bench.online", mode="overwrite")
    out: dict = {"publish_s": time.perf_counter() - start}
    rng = np.random.default_rng(1)
    ids = [int(k) for k in rng.integers(0, keys, 100_000)]
    for batch in (1, 100):
        times = []
        for i in range(iterations):
            rows = [{"customer_id": ids[(i * batch + j) % len(ids)]} for j in range(batch)]
            t = time.perf_counter()
            ws.features.lookup_online("main.bench.online", rows)
            times.append(time.perf_counter() - t)
        qs = statistics.quantiles(times[warmup:], n=100)
        out[f"{batch}_keys"] = {"p50_ms": qs[49] * 1000, "p99_ms": qs[98] * 1000}
    ws.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--online-keys", type=int, default=100_000)
    parser.add_argument("--iterations", type=int, default=2_000)
    parser.add_argument("--timeout", type=float, default=1_800)
    parser.add_argument("--max-rss-mb", type=float, default=8_000)
    parser.add_argument("--stores", default="duckdb,file")
    parser.add_argument("--work", default=str(HERE / "data-features"))
    parser.add_argument("--child", nargs=3, metavar=("HOME", "ENTITIES", "OUT"))
    args = parser.parse_args()
    if args.child:
        lakebox_child(*args.child)
        return

    ensure_feast()
    work = Path(args.work) / f"e{args.entities}-r{args.rows}-k{args.keys}"
    bench = Bench("features")
    bench.record(
        "sizes", entities=args.entities, rows_per_table=args.rows, tables=3, keys=args.keys
    )
    t = time.perf_counter()
    files = generate(work / "data", entities=args.entities, rows=args.rows, keys=args.keys)
    print(f"data ready in {time.perf_counter() - t:.1f} s")
    home = work / "lakebox"
    t = time.perf_counter()
    lakebox_setup(home, files)
    print(f"lakebox feature tables ready in {time.perf_counter() - t:.1f} s")

    ours_out = work / "lakebox_out.parquet"
    ours = run_child(
        [sys.executable, __file__, "--child", str(home), files["entities"], str(ours_out)],
        args.timeout,
        max_rss_mb=args.max_rss_mb,
    )
    bench.record("training_set/lakebox", **ours)
    if "seconds" in ours:
        bench.record(
            "training_set/lakebox_throughput",
            entity_rows_per_s=round(args.entities / ours["seconds"]),
        )
    for offline in [s for s in args.stores.split(",") if s]:
        out = work / f"feast_{offline}_out.parquet"
        repo = work / f"feast_{offline}"
        shutil.rmtree(repo, ignore_errors=True)
        peer = run_child(
            [
                str(FEAST_PY),
                str(HERE / "_feast_runner.py"),
                json.dumps(
                    {
                        "mode": "historical",
                        "repo": str(repo),
                        "offline": offline,
                        "tables": files["tables"],
                        "entities": files["entities"],
                        "out": str(out),
                    }
                ),
            ],
            args.timeout,
            max_rss_mb=args.max_rss_mb,
        )
        bench.record(f"training_set/feast_{offline}", **peer)
        if "seconds" in peer and "seconds" in ours:
            bench.ratio(
                f"training_set_vs_feast_{offline}",
                {"median_s": ours["seconds"]},
                {"median_s": peer["seconds"]},
            )
            bench.record(f"values_vs_feast_{offline}", **compare(ours_out, out, args.entities))

    # online lookups
    ours_online = lakebox_online(home, args.keys, args.iterations, warmup=100)
    bench.record("online/lakebox_sqlite", **ours_online)
    repo = work / "feast_online"
    shutil.rmtree(repo, ignore_errors=True)
    peer_online = run_child(
        [
            str(FEAST_PY),
            str(HERE / "_feast_runner.py"),
            json.dumps(
                {
                    "mode": "online",
                    "repo": str(repo),
                    "online_table": files["online"],
                    "keys": args.keys,
                    "iterations": args.iterations,
                    "warmup": 100,
                }
            ),
        ],
        args.timeout,
    )
    bench.record(
        "online/feast_sqlite", **{k: v for k, v in peer_online.items() if not k.endswith("_sample")}
    )
    for batch in ("1_keys", "100_keys"):
        if batch in peer_online:
            for q in ("p50_ms", "p99_ms"):
                bench.ratio(
                    f"online_{batch}_{q}",
                    {"median_s": ours_online[batch][q]},
                    {"median_s": peer_online[batch][q]},
                )
    bench.save()


if __name__ == "__main__":
    main()
