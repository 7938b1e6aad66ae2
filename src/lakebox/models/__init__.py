"""The model registry lifecycle over MLflow: stages, aliases, transition requests, comments,
and the wiring of webhooks to a workspace."""

from lakebox.models._registry import STAGES, Activity, ModelRegistry, canonical_stage
from lakebox.models._wiring import job_runner, workspace_dispatcher, workspace_webhooks

__all__ = [
    "Activity",
    "ModelRegistry",
    "STAGES",
    "canonical_stage",
    "job_runner",
    "workspace_dispatcher",
    "workspace_webhooks",
]
