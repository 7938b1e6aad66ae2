"""Experiment tracking on MLflow: table lineage, autologging, a pyfunc carrying its
preprocessing, explicit requirements for fast ``log_model``, and plots worth looking at.

Example:
    >>> import lakebox.tracking
    >>> with mlflow.start_run() as run:                                  # doctest: +SKIP
    ...     df = ws.tables.read("main.raw.activity")    # recorded as a dataset input
    >>> lakebox.tracking.training_data(run.info.run_id)                  # doctest: +SKIP
"""

from typing import Any

from lakebox.tracking._autolog import AUTOLOG_DEFAULTS, autolog
from lakebox.tracking._lineage import (
    LakeboxTableDataset,
    LakeboxTableSource,
    log_table_read,
    table_reads,
    training_data,
)
from lakebox.tracking._plots import (
    log_confusion_matrix,
    log_feature_distributions,
    log_feature_importance,
    log_residuals,
    log_shap_summary,
)
from lakebox.tracking._requirements import pip_requirements

__all__ = [
    "AUTOLOG_DEFAULTS",
    "LakeboxTableDataset",
    "LakeboxTableSource",
    "PreprocessedModel",
    "autolog",
    "log_confusion_matrix",
    "log_feature_distributions",
    "log_feature_importance",
    "log_preprocessed_model",
    "log_residuals",
    "log_shap_summary",
    "log_table_read",
    "pip_requirements",
    "table_reads",
    "training_data",
]


def __getattr__(name: str) -> Any:
    # The pyfunc helpers import mlflow.pyfunc, which must not happen while MLflow itself
    # imports this package through the mlflow.dataset_source entry point (an import cycle
    # that MLflow only warns about, dropping the lakebox source).
    if name in ("PreprocessedModel", "log_preprocessed_model"):
        from lakebox.tracking import _pyfunc

        return getattr(_pyfunc, name)
    raise AttributeError(f"module 'lakebox.tracking' has no attribute {name!r}")
