"""Deployment: batch scoring of Delta tables with MLflow models.

Example:
    >>> import lakebox
    >>> result = lakebox.deploy.score_table(
    ...     "models:/churn/Production", "main.raw.customers", "main.preds.churn_daily",
    ...     partition_by=["day"], zorder_by=["customer_id"], ws=ws)     # doctest: +SKIP
    >>> result.rows, result.output_version                              # doctest: +SKIP
    (1000, 1)

Streams that score use :func:`predictor` as their transform (see :mod:`lakebox.streaming`).
"""

from lakebox.deploy._batch import ScoreResult, score_table
from lakebox.deploy._model import ModelRef, Predictor, predictor, resolve_model

__all__ = ["ModelRef", "Predictor", "ScoreResult", "predictor", "resolve_model", "score_table"]
