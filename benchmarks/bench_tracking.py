"""Time to log + register a small scikit-learn model: lakebox's explicit requirements versus
MLflow's default (requirement inference, which loads the model in a subprocess).

Goal: lakebox's path well under a second. Also records the wall time of a small parallel
search (``lakebox.tuning.fmin``, 8 trials, parallelism 2), which is mostly worker start-up.

    python benchmarks/bench_tracking.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time

import mlflow
import numpy as np
import pandas as pd
from harness import Bench
from hyperopt import hp
from sklearn.linear_model import LogisticRegression

import lakebox
import lakebox.tuning
from lakebox.tracking import pip_requirements

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def objective(point: dict[str, float]) -> float:
    return (point["x"] - 3.0) ** 2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"sessions": rng.normal(5, 2, 500), "spend": rng.normal(20, 5, 500)})
    y = (X["spend"] > 20).astype(int)
    model = LogisticRegression().fit(X, y)
    counter = itertools.count()

    with tempfile.TemporaryDirectory(prefix="lakebox-bench-tracking-") as home:
        lakebox.Workspace(home)
        mlflow.set_experiment("bench-tracking")
        requirements = pip_requirements("sklearn")

        def log_and_register(reqs: list[str] | None, **kwargs: object) -> None:
            with mlflow.start_run():
                mlflow.sklearn.log_model(
                    model,
                    name="model",
                    pip_requirements=reqs,
                    registered_model_name=f"bench-{next(counter) % 3}",
                    **{"input_example": X.head(3), **kwargs},
                )

        bench = Bench("tracking")
        ours = bench.measure(
            "log+register/lakebox requirements",
            lambda: log_and_register(requirements),
            repeat=args.repeat,
        )
        # MLflow also loads the model to check the input example serves: the rest of the time
        bench.measure(
            "log+register/lakebox reqs, no input example",
            lambda: log_and_register(requirements, input_example=None),
            repeat=args.repeat,
        )
        peer = bench.measure(
            "log+register/mlflow inference",
            lambda: log_and_register(None),
            repeat=max(2, args.repeat // 2),
        )
        bench.ratio("log+register", ours, peer)

        started = time.perf_counter()
        lakebox.tuning.fmin(objective, {"x": hp.uniform("x", -10, 10)}, max_evals=8, parallelism=2)
        bench.record("fmin/8 trials, parallelism 2", wall_s=round(time.perf_counter() - started, 2))
        bench.save()


if __name__ == "__main__":
    main()
