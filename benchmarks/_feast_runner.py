"""Runs inside benchmarks/.venv-feast: Feast's side of bench_features.py.

Usage: python _feast_runner.py '<json args>'; prints one JSON line of results.
"""

import json
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would include the parent's
    from before exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def store_for(repo: Path, offline: str, tables: list[str], online_table: str | None):
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource
    from feast.types import Float64

    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        "project: bench\n"
        f"registry: {repo / 'registry.db'}\n"
        "provider: local\n"
        f"online_store:\n  type: sqlite\n  path: {repo / 'online.db'}\n"
        f"offline_store:\n  type: {offline}\n"
        "entity_key_serialization_version: 3\n"
    )
    store = FeatureStore(repo_path=str(repo))
    customer = Entity(name="customer", join_keys=["customer_id"])
    views = []
    for i, path in enumerate(tables + ([online_table] if online_table else [])):
        name = f"t{i}" if path != online_table else "online"
        views.append(
            FeatureView(
                name=name,
                entities=[customer],
                ttl=timedelta(days=3650),
                schema=[Field(name=f"{name}_f{j}", dtype=Float64) for j in range(3)],
                source=FileSource(path=path, timestamp_field="ts"),
            )
        )
    store.apply([customer, *views])
    return store, views


def historical(args):
    repo = Path(args["repo"])
    store, views = store_for(repo, args["offline"], args["tables"], None)
    entities = pd.read_parquet(args["entities"])
    features = [f"{v.name}:{v.name}_f{j}" for v in views for j in range(3)]
    start = time.perf_counter()
    df = store.get_historical_features(entity_df=entities, features=features).to_df()
    seconds = time.perf_counter() - start
    df[["row_id", *[f.split(":")[1] for f in features]]].to_parquet(args["out"])
    return {"seconds": seconds, "rows": len(df), "peak_rss_mb": peak_rss_mb()}


def online(args):
    repo = Path(args["repo"])
    store, _ = store_for(repo, "duckdb", [], args["online_table"])
    start = time.perf_counter()
    store.materialize(
        start_date=pd.Timestamp("2000-01-01", tz="UTC").to_pydatetime(),
        end_date=pd.Timestamp("2100-01-01", tz="UTC").to_pydatetime(),
    )
    materialize_s = time.perf_counter() - start
    features = [f"online:online_f{j}" for j in range(3)]
    import numpy as np

    rng = np.random.default_rng(1)  # the same key sequence as the lakebox side
    keys = [int(k) for k in rng.integers(0, args["keys"], 100_000)]
    out = {"materialize_s": materialize_s}
    for batch in (1, 100):
        times = []
        for i in range(args["iterations"]):
            rows = [{"customer_id": keys[(i * batch + j) % len(keys)]} for j in range(batch)]
            t = time.perf_counter()
            result = store.get_online_features(features=features, entity_rows=rows).to_dict()
            times.append(time.perf_counter() - t)
        times = times[args["warmup"] :]
        qs = statistics.quantiles(times, n=100)
        out[f"{batch}_keys"] = {"p50_ms": qs[49] * 1000, "p99_ms": qs[98] * 1000}
        out[f"{batch}_keys_sample"] = {k: v[:3] for k, v in result.items()}
    return out


if __name__ == "__main__":
    arguments = json.loads(sys.argv[1])
    result = historical(arguments) if arguments["mode"] == "historical" else online(arguments)
    print("RESULT " + json.dumps(result, default=str))
