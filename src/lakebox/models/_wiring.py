"""Wiring the event bus to a workspace: webhooks that know the registry and the job runner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakebox.events import Dispatcher, DispatcherConfig, Webhooks

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["job_runner", "workspace_dispatcher", "workspace_webhooks"]


def job_runner(ws: Workspace) -> Any:
    """``(job_id, job_parameters) -> run_id`` through ``ws.jobs``, or ``None`` without jobs."""
    if not hasattr(type(ws), "jobs"):
        return None

    def run(job_id: str, parameters: dict[str, str]) -> Any:
        chosen: Any = int(job_id) if str(job_id).isdigit() else job_id
        return ws.jobs.run_now(chosen, job_parameters=parameters, trigger="WEBHOOK")

    return run


def workspace_webhooks(ws: Workspace) -> Webhooks:
    """``ws.webhooks``: model names are checked against the workspace registry."""
    return Webhooks(
        ws.metadata,
        model_exists=lambda name: ws.models.exists(name),
        job_runner=lambda: job_runner(ws),
    )


def workspace_dispatcher(ws: Workspace, **overrides: Any) -> Dispatcher:
    """A dispatcher for ``ws`` configured by ``[events]`` in ``lakebox.toml`` (``overrides``
    replace single settings, e.g. ``poll_interval_seconds=0.01``)."""
    settings = ws.settings.events
    values: dict[str, Any] = {
        "max_attempts": settings.max_attempts,
        "backoff_seconds": settings.backoff_seconds,
        "backoff_max_seconds": settings.backoff_max_seconds,
        "poll_interval_seconds": settings.poll_interval_seconds,
        "timeout_seconds": settings.timeout_seconds,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Dispatcher(ws.metadata, config=DispatcherConfig(**values), job_runner=job_runner(ws))
