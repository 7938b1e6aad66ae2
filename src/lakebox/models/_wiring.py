"""Wiring the event bus to a workspace: webhooks that know the registry and the job runner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakebox.events import Dispatcher, DispatcherConfig, Webhooks

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["job_runner", "serving_guard", "workspace_dispatcher", "workspace_webhooks"]


def job_runner(ws: Workspace) -> Any:
    """``(job_id, job_parameters) -> run_id`` through ``ws.jobs``, or ``None`` without jobs."""
    if not hasattr(type(ws), "jobs"):
        return None

    def run(job_id: str, parameters: dict[str, str]) -> Any:
        text = str(job_id)
        chosen: Any = int(text) if text.isascii() and text.isdigit() else job_id
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


def serving_guard(ws: Workspace) -> Any:
    """A delete guard refusing to delete a model or version a serving endpoint serves: pinned
    by version, or currently resolved through its stage or alias."""

    def guard(name: str, version: str | None) -> str | None:
        if not hasattr(type(ws), "serving"):
            return None
        for record in ws.serving.list_endpoints():
            for cfg in (record.config, record.pending_config):
                for entity in cfg.served_entities if cfg is not None else ():
                    if entity.entity_name != name:
                        continue
                    if version is None or version in _served_versions(ws, record, entity):
                        return (
                            f"serving endpoint {record.name!r} serves it (served entity "
                            f"{entity.name!r}); update or delete the endpoint first"
                        )
        return None

    return guard


def _served_versions(ws: Workspace, record: Any, entity: Any) -> set[str]:
    versions = {
        str(v) for v in (record.served_versions.get(entity.name), entity.entity_version) if v
    }
    from lakebox.errors import NotFound

    try:
        if entity.alias:
            versions.add(str(ws.models.get_alias(entity.entity_name, entity.alias).version))
        if entity.stage:
            for mv in ws.models.latest_versions(entity.entity_name, stages=[entity.stage]):
                versions.add(str(mv.version))
    except NotFound:
        pass
    return versions
