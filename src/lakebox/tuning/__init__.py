"""Hyperparameter search: Hyperopt's ``fmin`` with trials in parallel worker processes, each
trial a nested MLflow run under one parent run (what SparkTrials gives on Databricks).

Example:
    >>> from hyperopt import hp
    >>> import lakebox.tuning
    >>> best = lakebox.tuning.fmin(objective, {"C": hp.loguniform("C", -4, 2)},  # doctest: +SKIP
    ...                            max_evals=32, parallelism=2)
"""

from lakebox.tuning._fmin import ALGORITHMS, fmin

__all__ = ["ALGORITHMS", "fmin"]
