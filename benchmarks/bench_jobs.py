"""Jobs benchmark: run-now → task-start latency on a job cluster (fresh process per task) vs an
all-purpose cluster (warm pool), and the throughput of 1000 trivial tasks.

Latency is measured from just before ``ws.jobs.run_now`` to the first line of the task
function (it returns ``time.time()``), through the real path: a run row in the metadata DB,
the runner waking up, claiming the run, creating the task run and handing it to a worker.
Goal from the issue: warm pool ≤ 50 ms.

Run: ``/work/venv/bin/python benchmarks/bench_jobs.py``
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import Bench

import lakebox

sys.path.insert(0, str(Path(__file__).parent))  # bench_jobs_tasks for the workers

TASK = "bench_jobs_tasks:stamp"
REPEAT = 15
N_TASKS = 1000


def _latency(ws: lakebox.Workspace, job_id: int) -> float:
    before = time.time()
    run = ws.jobs.wait(ws.jobs.run_now(job_id), timeout=120)
    assert run.result_state == "SUCCESS", run.state_message
    return run.tasks[0].output["result"] - before


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(values) * 1000, 1),
        "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1] * 1000, 1),
        "min_ms": round(ordered[0] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def main() -> None:
    import os

    bench = Bench("jobs")
    here = str(Path(__file__).parent)
    os.environ["PYTHONPATH"] = here + os.pathsep + os.environ.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as tmp:
        ws = lakebox.Workspace(Path(tmp) / "ws")
        ws.jobs.create_cluster("warm", num_workers=2)
        ws.jobs.start_runner(poll_interval=0.5)
        time.sleep(2)  # let the pool start: it stays up between runs
        task = {"task_key": "t", "python_function_task": {"function": TASK}}
        cold = ws.jobs.create({"name": "job-cluster", "tasks": [task]})
        warm = ws.jobs.create(
            {"name": "warm-pool", "tasks": [{**task, "existing_cluster_id": "warm"}]}
        )
        for job_id in (cold, warm):  # warm-up: imports in this process, first pool use
            _latency(ws, job_id)
        cold_values = [_latency(ws, cold) for _ in range(REPEAT)]
        warm_values = [_latency(ws, warm) for _ in range(REPEAT)]
        bench.record("run_now_to_task_start/job_cluster", **_summary(cold_values), repeat=REPEAT)
        bench.record("run_now_to_task_start/warm_pool", **_summary(warm_values), repeat=REPEAT)
        bench.ratios["warm_pool/job_cluster latency"] = round(
            statistics.median(warm_values) / statistics.median(cold_values), 3
        )
        print(
            f"warm pool goal ≤ 50 ms: median {statistics.median(warm_values) * 1000:.1f} ms "
            f"({'met' if statistics.median(warm_values) <= 0.05 else 'NOT met'})"
        )

        many = ws.jobs.create(
            {
                "name": "thousand",
                "tasks": [
                    {
                        "task_key": f"t{i}",
                        "existing_cluster_id": "warm",
                        "python_function_task": {"function": "bench_jobs_tasks:noop"},
                    }
                    for i in range(N_TASKS)
                ],
            }
        )
        start = time.perf_counter()
        run = ws.jobs.wait(ws.jobs.run_now(many), timeout=600)
        elapsed = time.perf_counter() - start
        assert run.result_state == "SUCCESS" and len(run.tasks) == N_TASKS
        bench.record(
            f"{N_TASKS}_trivial_tasks/warm_pool_2_workers",
            seconds=round(elapsed, 2),
            tasks_per_second=round(N_TASKS / elapsed, 1),
        )
        chain = ws.jobs.create(
            {
                "name": "chain",
                "tasks": [
                    {
                        "task_key": f"t{i}",
                        "existing_cluster_id": "warm",
                        **({"depends_on": [{"task_key": f"t{i - 1}"}]} if i else {}),
                        "python_function_task": {"function": "bench_jobs_tasks:noop"},
                    }
                    for i in range(100)
                ],
            }
        )
        start = time.perf_counter()
        run = ws.jobs.wait(ws.jobs.run_now(chain), timeout=600)
        elapsed = time.perf_counter() - start
        assert run.result_state == "SUCCESS"
        bench.record(
            "100_task_chain/warm_pool",
            seconds=round(elapsed, 2),
            per_task_ms=round(elapsed / 100 * 1000, 1),
        )
        ws.close()
    bench.save()


if __name__ == "__main__":
    main()
