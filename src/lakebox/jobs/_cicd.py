"""The Databricks CI/CD pattern as a ready template: a registry webhook starts a validation job
that approves a model version to Production or rejects it with a comment.

::

    job_id, hook = create_model_validation_job(
        ws, model_name="churn", holdout_table="main.fs.holdout", label_col="churned")
    ws.models.transition_stage("churn", 2, "Staging")   # → webhook → job → Production or not

The job has one built-in task, ``validate-model``, which

1. reads the model name and version from the webhook event (job parameter ``event``),
2. loads the version with MLflow and checks that it has a signature whose inputs are columns
   of the holdout Delta table,
3. scores the holdout table and computes the metric (accuracy for classification labels,
   RMSE otherwise, or the one named),
4. scores the current Production version the same way, and
5. approves (the transition request, or a Staging → Production transition) when the candidate
   is at least as good (plus ``min_improvement``), else rejects the request / comments why.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from lakebox.errors import InvalidInput

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["create_model_validation_job", "validate_model"]

LOWER_IS_BETTER = {"rmse", "mae", "log_loss"}


def _metric(name: str, y_true: Any, y_pred: Any) -> float:
    import numpy as np

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim > 1:
        y_pred = y_pred[:, -1] if name != "accuracy" else y_pred.argmax(axis=1)
    if name == "accuracy":
        return float((y_true == y_pred.round()).mean())
    if name == "rmse":
        return float(np.sqrt(((y_true - y_pred) ** 2).mean()))
    if name == "mae":
        return float(np.abs(y_true - y_pred).mean())
    raise InvalidInput(f"Unknown metric {name!r}; use accuracy, rmse or mae.")


def _score(ws: Workspace, uri: str, holdout: Any, label_col: str, metric: str) -> float:
    import mlflow

    model = mlflow.pyfunc.load_model(uri)
    signature = model.metadata.signature
    if signature is None or signature.inputs is None:
        raise InvalidInput(f"{uri} has no signature; log it with input_example= or signature=.")
    names = signature.inputs.input_names()
    missing = [n for n in names if n not in holdout.columns]
    if missing:
        raise InvalidInput(f"{uri} expects columns {missing} that the holdout table lacks.")
    prediction = model.predict(holdout[names])
    if hasattr(prediction, "to_numpy"):
        prediction = prediction.to_numpy()
    return _metric(metric, holdout[label_col].to_numpy(), prediction)


def validate_model(
    ws: Workspace,
    *,
    holdout_table: str,
    label_col: str,
    event: str = "",
    model_name: str = "",
    version: str = "",
    metric: str = "auto",
    min_improvement: float = 0.0,
    target_stage: str = "Production",
) -> dict[str, Any]:
    """The ``validate-model`` task: approve or reject a model version (see module docs).

    Returns the decision with both metrics; also sets them as task values.
    """
    from lakebox.jobs import task_values

    payload = json.loads(event) if event else {}
    name = model_name or payload.get("model_name")
    version = str(version or payload.get("version") or "")
    if not name or not version:
        raise InvalidInput(
            "validate-model needs model_name and version, or a registry "
            f"webhook event carrying them; got event {event[:200]!r}."
        )
    kind = payload.get("event", "")
    holdout = ws.tables.read(holdout_table)
    if metric == "auto":
        labels = holdout[label_col]
        metric = (
            "accuracy"
            if labels.nunique() <= 20 and (labels.dtype == bool or labels.dtype.kind in "iub")
            else "rmse"
        )
    print(
        f"validating {name} v{version} on {holdout_table} ({len(holdout)} rows), "
        f"metric {metric}, event {kind or 'none'}"
    )
    reasons: list[str] = []
    try:
        candidate = _score(ws, f"models:/{name}/{version}", holdout, label_col, metric)
    except Exception as exc:
        candidate = None
        reasons.append(f"candidate cannot be scored: {exc}")
    production = None
    production_versions: Any = ws.models.latest_versions(name, stages=["Production"])
    current = [v for v in production_versions if str(v.version) != version]
    if current and candidate is not None:
        production = _score(ws, f"models:/{name}/{current[0].version}", holdout, label_col, metric)
        better = (
            candidate <= production - min_improvement
            if metric in LOWER_IS_BETTER
            else candidate >= production + min_improvement
        )
        if not better:
            reasons.append(
                f"{metric} {candidate:.4f} is not better than Production "
                f"v{current[0].version}'s {production:.4f}"
                + (f" by {min_improvement}" if min_improvement else "")
            )
    approved = not reasons
    summary = (f"{metric} {candidate:.4f}" if candidate is not None else "not scored") + (
        f" vs Production {production:.4f}" if production is not None else ""
    )
    comment = (
        f"Validation passed: {summary}."
        if approved
        else f"Validation failed: {'; '.join(reasons)}."
    )
    print(comment)
    if kind.startswith("TRANSITION_REQUEST"):
        stage = payload.get("to_stage") or target_stage
        if approved:
            ws.models.approve_transition_request(
                name, version, stage, archive_existing_versions=True, comment=comment
            )
        else:
            ws.models.reject_transition_request(name, version, stage, comment=comment)
    elif approved:
        ws.models.transition_stage(
            name, version, target_stage, archive_existing_versions=True, comment=comment
        )
    else:
        ws.models.create_comment(name, version, comment)
    result = {
        "model_name": name,
        "version": version,
        "approved": approved,
        "metric": metric,
        "candidate": candidate,
        "production": production,
        "comment": comment,
    }
    for key in ("approved", "candidate", "production"):
        task_values.set(key, result[key])
    return result


def create_model_validation_job(
    ws: Workspace,
    *,
    model_name: str,
    holdout_table: str,
    label_col: str,
    metric: str = "auto",
    min_improvement: float = 0.0,
    events: tuple[str, ...] = ("MODEL_VERSION_TRANSITIONED_TO_STAGING",),
    cluster_id: str | None = None,
    job_name: str | None = None,
) -> tuple[int, Any]:
    """Create the validation job and the registry webhook that triggers it.

    Args:
        ws: the workspace.
        model_name: the registered model to guard.
        holdout_table: a Delta table with the model's input columns and ``label_col``.
        label_col: the true label.
        metric: ``"auto"``, ``"accuracy"``, ``"rmse"`` or ``"mae"``.
        min_improvement: how much better than Production the candidate must be.
        events: registry events that start validation, e.g. also
            ``"TRANSITION_REQUEST_TO_PRODUCTION_CREATED"``.
        cluster_id: an all-purpose cluster to validate on (loaded libraries stay warm);
            default a fresh job cluster per run.
        job_name: default ``"validate <model_name>"``.

    Returns:
        ``(job_id, webhook)``.

    Example:
        >>> job_id, hook = create_model_validation_job(                     # doctest: +SKIP
        ...     ws, model_name="churn", holdout_table="main.fs.holdout", label_col="churned")
    """
    ws.tables.get(holdout_table)  # fail now, not at the first transition
    task: dict[str, Any] = {
        "task_key": "validate",
        "lakebox_task": {
            "type": "validate-model",
            "parameters": {
                "event": "{{job.parameters.event}}",
                "holdout_table": holdout_table,
                "label_col": label_col,
                "metric": metric,
                "min_improvement": min_improvement,
            },
        },
    }
    if cluster_id:
        task["existing_cluster_id"] = cluster_id
    job_id = ws.jobs.create(
        {
            "name": job_name or f"validate {model_name}",
            "max_concurrent_runs": 1,
            "queue": {"enabled": True},
            "parameters": [{"name": "event", "default": ""}],
            "tags": {"lakebox.template": "model-validation", "model": model_name},
            "tasks": [task],
        }
    )
    hook = ws.webhooks.create(
        list(events),
        model_name=model_name,
        job_spec={"job_id": job_id},
        description=f"CI/CD: validate {model_name} with job {job_id}",
    )
    return job_id, hook
