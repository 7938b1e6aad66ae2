"""Autologging with lakebox's defaults: input examples and signatures on."""

from __future__ import annotations

from typing import Any

__all__ = ["AUTOLOG_DEFAULTS", "autolog"]

AUTOLOG_DEFAULTS: dict[str, Any] = {
    "log_input_examples": True,
    "log_model_signatures": True,
    "log_models": True,
    "log_datasets": True,
    "silent": True,
}


def autolog(**overrides: Any) -> None:
    """Turn on ``mlflow.autolog`` for every installed flavor (scikit-learn, XGBoost,
    LightGBM, PyTorch...), with input examples and model signatures logged by default.

    Every ``fit`` then logs its params, training metrics, the model with a signature and an
    input example, in the active run or a new one. The Workspace calls this when
    ``[mlflow] autolog = true``. Arguments are ``mlflow.autolog``'s and override the
    defaults in :data:`AUTOLOG_DEFAULTS`; ``autolog(disable=True)`` turns it off.

    Autologged models go through MLflow's requirement inference (seconds per model); log
    models yourself with :func:`lakebox.tracking.pip_requirements` where that matters.

    Example:
        >>> lakebox.tracking.autolog()                                         # doctest: +SKIP
        >>> LogisticRegression().fit(X, y)   # a run with params, metrics, model, example
    """
    import mlflow

    mlflow.autolog(**{**AUTOLOG_DEFAULTS, **overrides})
