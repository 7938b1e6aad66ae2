"""A lakebox monitor refresh versus Evidently's DataDriftPreset on identical data.

Both sides get the same reference and current rows (numeric and categorical columns, drift
injected into some of them) and decide drift per column with the same test and threshold:
Jensen-Shannon distance >= 0.1 over Sturges bins of both samples for numbers (categories as
they are), which is Evidently's ``jensenshannon`` stattest. lakebox's time is a whole full
refresh: DuckDB profile aggregates, every drift statistic (KS, chi-square, JS, PSI,
Wasserstein, TV, L-inf), and both metric tables committed to Delta. Evidently's time is
``Report.run`` (data already in pandas). Goal: >= 20x faster, identical decisions, and a
1M x 100 refresh <= 10 s.

Evidently 0.7 needs pandas < 3, so it runs in its own virtualenv
(``benchmarks/.venv-evidently``, created on first use).

    python benchmarks/bench_monitoring.py [--sizes 100000x20:3,1000000x100:1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from harness import Bench

import lakebox
from lakebox.monitoring import Snapshot

HERE = Path(__file__).parent
VENV = HERE / ".venv-evidently"
THRESHOLD = 0.1

EVIDENTLY_SCRIPT = r"""
import json, sys, time
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

ref_path, cur_path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
numeric, categorical = json.loads(sys.argv[4]), json.loads(sys.argv[5])
threshold = float(sys.argv[6])
ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
times, drifted = [], None
for _ in range(repeat):
    start = time.perf_counter()
    report = Report([DataDriftPreset(num_method="jensenshannon", cat_method="jensenshannon",
                                     num_threshold=threshold, cat_threshold=threshold)],
                    include_tests=True)
    snapshot = report.run(current_data=Dataset.from_pandas(cur, data_definition=definition),
                          reference_data=Dataset.from_pandas(ref, data_definition=definition))
    result = snapshot.dict()
    times.append(time.perf_counter() - start)
drifted, values = {}, {}
for metric in result["metrics"]:
    cfg = metric.get("config", {})
    if cfg.get("type", "").endswith("ValueDrift"):
        values[cfg["column"]] = metric["value"]
for test in result["tests"]:
    col = (test.get("metric_config") or {}).get("params", {}).get("column")
    if col is not None and "Drift" in (test.get("name") or "") + str(test.get("metric_config")):
        drifted[col] = test["status"] == "FAIL"
print(json.dumps({"times": times, "drifted": drifted, "values": values}))
"""


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "evidently", "pandas<3"], check=True
        )
    return python


def make(rows: int, cols: int, seed: int, drifted: bool) -> tuple[pa.Table, list[str], list[str]]:
    """``cols`` columns, 70% numeric, 30% categorical; in the current data a fifth of each kind
    drifts, by amounts from well below to well above the threshold."""
    rng = np.random.default_rng(seed)
    n_cat = max(1, int(cols * 0.3))
    n_num = cols - n_cat
    data: dict[str, pa.Array] = {}
    numeric, categorical = [], []
    for i in range(n_num):
        name = f"num_{i}"
        shift = 0.0
        if drifted and i % 5 == 0:
            shift = [0.02, 0.1, 0.3, 0.8, 1.5][(i // 5) % 5]
        kind = i % 3
        if kind == 0:
            values = rng.normal(shift, 1.0, rows)
        elif kind == 1:
            values = rng.gamma(2.0, 1.0 + shift, rows)
        else:
            values = rng.integers(0, 1000, rows).astype(np.float64) + shift * 200
        data[name] = pa.array(values)
        numeric.append(name)
    for i in range(n_cat):
        name = f"cat_{i}"
        k = 4 + i % 6
        p = np.linspace(1.0, 2.0, k)
        if drifted and i % 5 == 0:
            tilt = [0.05, 0.5, 1.5, 3.0, 6.0][(i // 5) % 5]
            p = p * np.linspace(1.0, 1.0 + tilt, k)
        p = p / p.sum()
        idx = rng.choice(k, size=rows, p=p)
        labels = np.array([f"v{j}" for j in range(k)])
        data[name] = pa.array(labels[idx])
        categorical.append(name)
    return pa.table(data), numeric, categorical


def run_size(
    bench: Bench, rows: int, cols: int, repeat: int, python: Path, peer_timeout: float
) -> dict:
    tag = f"{rows // 1000}k x {cols}"
    ref, numeric, categorical = make(rows, cols, seed=1, drifted=False)
    cur, _, _ = make(rows, cols, seed=2, drifted=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-monitoring-"))
    pq.write_table(ref, tmp / "ref.parquet")
    pq.write_table(cur, tmp / "cur.parquet")

    ws = lakebox.Workspace(tmp / "ws", settings={"mlflow": {"lineage": False}})
    ws.tables.write("main.bench.reference", ref)
    ws.tables.write("main.bench.current", cur)
    ws.monitors.create("main.bench.current", Snapshot(), baseline_table_name="main.bench.reference")
    lb = bench.measure(
        f"refresh/lakebox {tag}",
        lambda: ws.monitors.refresh("main.bench.current", full=True),
        repeat=repeat,
        warmup=1,
    )
    drift = ws.monitors.drift_metrics("main.bench.current").to_pylist()
    ours = {
        r["column_name"]: r["js_distance"]
        for r in drift
        if r["drift_type"] == "BASELINE" and r["slice_key"] is None and r["column_name"] != ":table"
    }

    started = time.perf_counter()
    decisions_ours = {c: v is not None and v >= THRESHOLD for c, v in ours.items()}
    result = {
        "tag": tag,
        "lakebox_s": lb["median_s"],
        "columns": len(ours),
        "drifted": sum(decisions_ours.values()),
    }
    if peer_timeout <= 0:  # lakebox only
        result.update(evidently_s=None, speedup=None, differing=None, max_abs=None)
        ws.close()
        return result
    try:
        out = subprocess.run(
            [
                str(python),
                "-c",
                EVIDENTLY_SCRIPT,
                str(tmp / "ref.parquet"),
                str(tmp / "cur.parquet"),
                str(repeat),
                json.dumps(numeric),
                json.dumps(categorical),
                str(THRESHOLD),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=peer_timeout,
        )
    except subprocess.TimeoutExpired:
        bench.record(f"report/evidently {tag}", timed_out_after_s=peer_timeout)
        result.update(
            evidently_s=None, speedup=peer_timeout / lb["median_s"], differing=None, max_abs=None
        )
        ws.close()
        return result
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    evid = json.loads(out.stdout.strip().splitlines()[-1])
    times = sorted(evid["times"])
    peer = {
        "median_s": times[len(times) // 2],
        "min_s": times[0],
        "max_s": times[-1],
        "repeat": repeat,
    }
    bench.results[f"report/evidently {tag}"] = peer
    print(
        f"{'report/evidently ' + tag:<40} median {peer['median_s'] * 1000:9.2f} ms "
        f"(wall incl. start-up {time.perf_counter() - started:.1f} s)"
    )
    ratio = bench.ratio(tag, lb, peer)
    theirs = evid["drifted"]
    differing = sorted(c for c in decisions_ours if decisions_ours[c] != theirs.get(c))
    max_abs = max(abs(ours[c] - float(evid["values"][c])) for c in ours if c in evid["values"])
    bench.record(
        f"decisions {tag}",
        columns=len(ours),
        drifted_lakebox=sum(decisions_ours.values()),
        drifted_evidently=sum(bool(v) for v in theirs.values()),
        differing=len(differing),
        max_js_abs_diff=f"{max_abs:.2e}",
    )
    if differing:
        print("columns with different decisions:", differing)
    ws.close()
    result.update(
        evidently_s=peer["median_s"], speedup=1 / ratio, differing=len(differing), max_abs=max_abs
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--sizes",
        default="100000x20:3,100000x100:1,1000000x100:1",
        help="ROWSxCOLUMNS[:REPEAT],...",
    )
    parser.add_argument(
        "--peer-timeout",
        type=float,
        default=1800,
        help="Give up on Evidently after this many seconds per size.",
    )
    args = parser.parse_args()
    python = ensure_venv()
    bench = Bench("monitoring")
    rows = []
    for size in args.sizes.split(","):
        shape, _, repeat = size.partition(":")
        n, c = (int(v) for v in shape.split("x"))
        rows.append(run_size(bench, n, c, int(repeat or 1), python, args.peer_timeout))
    bench.save()
    print(
        "\n| data (reference vs current) | lakebox refresh | Evidently report | speed-up | "
        "columns drifted | decisions differing | max JS diff |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if r["speedup"] is None:
            print(
                f"| {r['tag']} (each side) | {r['lakebox_s']:.2f} s | not run | | "
                f"{r['drifted']}/{r['columns']} | | |"
            )
            continue
        if r["evidently_s"] is None:
            print(
                f"| {r['tag']} (each side) | {r['lakebox_s']:.2f} s | did not finish in "
                f"{args.peer_timeout:.0f} s | > {r['speedup']:.0f}x | "
                f"{r['drifted']}/{r['columns']} | n/a | n/a |"
            )
            continue
        print(
            f"| {r['tag']} (each side) | {r['lakebox_s']:.2f} s | {r['evidently_s']:.2f} s | "
            f"{r['speedup']:.1f}x | {r['drifted']}/{r['columns']} | {r['differing']} | "
            f"{r['max_abs']:.1e} |"
        )


if __name__ == "__main__":
    main()
