"""Artifacts people look at: feature importance, confusion matrix, residuals, feature
distributions and SHAP summaries, logged to the active run as PNG figures (plus the numbers).

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot, no global backend
change). For a full classifier or regressor report (metrics, ROC/PR curves, confusion matrix
and SHAP when installed), ``mlflow.models.evaluate`` already does the job; these helpers are
for the single plots it does not make or when there is no pyfunc model to evaluate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lakebox.errors import InvalidInput, MissingDependency

__all__ = [
    "log_confusion_matrix",
    "log_feature_distributions",
    "log_feature_importance",
    "log_residuals",
    "log_shap_summary",
]


def _figure(width: float = 6.0, height: float = 4.0) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _log(fig: Any, artifact_file: str) -> str:
    import mlflow

    if mlflow.active_run() is None:
        raise InvalidInput(
            f"No active MLflow run to log {artifact_file!r} to; call this "
            "inside `with mlflow.start_run():`."
        )
    mlflow.log_figure(fig, artifact_file)
    return artifact_file


def _unwrap(model: Any) -> Any:
    """The last step of a scikit-learn Pipeline, else the model itself."""
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def log_feature_importance(
    model: Any,
    feature_names: Sequence[str],
    *,
    top: int = 20,
    artifact_file: str = "plots/feature_importance.png",
) -> dict[str, float]:
    """Log a bar chart of the model's feature importances (``feature_importances_``, or the
    absolute ``coef_`` of a linear model) and the values as ``feature_importance.json``.

    Args:
        model: a fitted estimator or a Pipeline ending in one.
        feature_names: names of the columns the estimator saw, in order.
        top: how many of the most important features to plot.
        artifact_file: where in the run's artifacts the PNG goes.

    Returns:
        ``{feature: importance}``, most important first.

    Example:
        >>> log_feature_importance(forest, X.columns)                          # doctest: +SKIP
    """
    import mlflow
    import numpy as np

    estimator = _unwrap(model)
    if hasattr(estimator, "feature_importances_"):
        values = np.asarray(estimator.feature_importances_, dtype=float)
    elif hasattr(estimator, "coef_"):
        coef = np.asarray(estimator.coef_, dtype=float)
        values = np.abs(coef).mean(axis=0) if coef.ndim > 1 else np.abs(coef)
    else:
        raise InvalidInput(
            f"{type(estimator).__name__} has neither feature_importances_ nor "
            "coef_; use log_shap_summary (pip install 'lakebox[shap]') or "
            "sklearn.inspection.permutation_importance instead."
        )
    names = list(feature_names)
    if len(names) != len(values):
        raise InvalidInput(
            f"{len(names)} feature names for {len(values)} importances; pass the "
            "names of the columns the estimator was fitted on (after "
            "preprocessing, e.g. preprocessor.get_feature_names_out())."
        )
    order = np.argsort(values)[::-1]
    ranked = {names[i]: float(values[i]) for i in order}
    shown = order[:top][::-1]
    fig = _figure(6.0, 0.3 * len(shown) + 1.2)
    ax = fig.subplots()
    ax.barh([names[i] for i in shown], values[shown])
    ax.set_xlabel("importance")
    ax.set_title(f"Feature importance ({type(estimator).__name__})")
    _log(fig, artifact_file)
    mlflow.log_dict(ranked, artifact_file.rsplit(".", 1)[0] + ".json")
    return ranked


def log_confusion_matrix(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Sequence[Any] | None = None,
    normalize: str | None = None,
    artifact_file: str = "plots/confusion_matrix.png",
) -> Any:
    """Log a confusion matrix plot; returns the matrix (rows: true, columns: predicted).

    Args:
        y_true: true labels.
        y_pred: predicted labels.
        labels: label order (default: sorted union of both).
        normalize: ``None``, ``"true"``, ``"pred"`` or ``"all"`` as in scikit-learn.
        artifact_file: where in the run's artifacts the PNG goes.
    """
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    matrix = confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize)
    fig = _figure(5.0, 4.0)
    ax = fig.subplots()
    ConfusionMatrixDisplay(matrix, display_labels=labels).plot(ax=ax, colorbar=False)
    ax.set_title("Confusion matrix")
    _log(fig, artifact_file)
    return matrix


def log_residuals(
    y_true: Any, y_pred: Any, *, artifact_file: str = "plots/residuals.png"
) -> dict[str, float]:
    """Log residuals against predictions and their histogram (for regressors); returns the
    residuals' mean and standard deviation."""
    import numpy as np

    truth, pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    if truth.shape != pred.shape:
        raise InvalidInput(f"y_true has shape {truth.shape} but y_pred has {pred.shape}.")
    residuals = truth - pred
    fig = _figure(9.0, 3.5)
    scatter, hist = fig.subplots(1, 2)
    scatter.scatter(pred, residuals, s=8, alpha=0.6)
    scatter.axhline(0.0, color="grey", linewidth=1)
    scatter.set_xlabel("prediction")
    scatter.set_ylabel("residual (true - predicted)")
    hist.hist(residuals, bins=30)
    hist.set_xlabel("residual")
    fig.suptitle("Residuals")
    _log(fig, artifact_file)
    return {"mean": float(residuals.mean()), "std": float(residuals.std())}


def log_feature_distributions(
    df: Any,
    *,
    columns: Sequence[str] | None = None,
    by: str | None = None,
    artifact_file: str = "plots/feature_distributions.png",
) -> list[str]:
    """Log one histogram per numeric column (optionally split by a label column, e.g. to see
    how churners differ); returns the columns plotted."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(df)
    if by is not None and by not in frame.columns:
        raise InvalidInput(f"by={by!r} is not a column; columns are {list(frame.columns)}.")
    numeric = [c for c in frame.select_dtypes("number").columns if c != by]
    chosen = list(columns) if columns is not None else numeric
    bad = [c for c in chosen if c not in numeric]
    if bad or not chosen:
        raise InvalidInput(f"Cannot plot {bad or 'no columns'}: pick numeric columns of {numeric}.")
    ncols = min(3, len(chosen))
    nrows = int(np.ceil(len(chosen) / ncols))
    fig = _figure(4.0 * ncols, 3.0 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    groups = [(None, frame)] if by is None else list(frame.groupby(by))
    for ax, column in zip(axes, chosen, strict=False):
        for key, part in groups:
            ax.hist(
                part[column].dropna(),
                bins=30,
                alpha=0.6,
                label=None if key is None else f"{by}={key}",
            )
        ax.set_title(column)
        if by is not None:
            ax.legend(fontsize="small")
    for ax in axes[len(chosen) :]:
        ax.set_visible(False)
    _log(fig, artifact_file)
    return chosen


def log_shap_summary(
    model: Any, X: Any, *, max_rows: int = 200, artifact_file: str = "plots/shap_summary.png"
) -> Any:
    """Log a SHAP summary (beeswarm) plot of ``model`` on up to ``max_rows`` rows of ``X``.

    Needs the optional ``shap`` package: ``pip install 'lakebox[shap]'``. Returns the SHAP
    values. ``model`` is anything with ``predict``/``predict_proba`` or a tree model.
    """
    try:
        import shap
    except ImportError:
        raise MissingDependency("shap", "shap", "log_shap_summary") from None
    import pandas as pd

    sample = pd.DataFrame(X).head(max_rows)
    explainer = shap.Explainer(model, sample)
    values = explainer(sample)
    import matplotlib.pyplot as plt  # shap draws on pyplot's current figure

    shap.plots.beeswarm(values, show=False)
    fig = plt.gcf()
    try:
        _log(fig, artifact_file)
    finally:
        plt.close(fig)
    return values
