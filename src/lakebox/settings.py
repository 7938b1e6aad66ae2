"""Workspace settings: ``<LAKEBOX_HOME>/lakebox.toml``.

Every key is documented here and in ``docs/settings.md``. Unknown sections or keys are refused
with the list of valid ones, so a typo never silently does nothing.

Precedence, highest first:

1. keyword arguments to :class:`lakebox.Workspace` (e.g. ``Workspace(engine="spark")``);
2. environment variables: ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI`` (MLflow's own),
   ``LAKEBOX_TOKEN`` (server token);
3. ``lakebox.toml``;
4. the defaults below.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lakebox.errors import SettingsError, close_matches

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["SETTINGS_FILE", "Settings", "default_settings_text", "load_settings"]

SETTINGS_FILE = "lakebox.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StorageSettings(_Section):
    """Where Delta tables live."""

    root: str = Field(
        "tables",
        description="Folder (relative to the workspace) or a URI "
        "delta-rs accepts (s3://, gs://, az://, abfss://) holding Delta tables.",
    )
    options: dict[str, str] = Field(
        default_factory=dict,
        description="delta-rs storage options (credentials, endpoint) for an object-store root.",
    )


class MetadataSettings(_Section):
    """The metadata database (catalog comments and tags, webhooks, jobs, the event outbox)."""

    url: str = Field(
        "",
        description="SQLAlchemy URL; empty means sqlite:///<home>/lakebox.db. "
        "PostgreSQL: postgresql+psycopg://user:pw@host/db.",
    )


class MlflowSettings(_Section):
    """How the workspace points MLflow."""

    tracking_uri: str = Field(
        "",
        description="Empty means sqlite:///<home>/mlflow.db, unless "
        "MLFLOW_TRACKING_URI is set in the environment.",
    )
    registry_uri: str = Field("", description="Empty means the tracking URI.")
    artifact_root: str = Field("", description="Empty means <home>/mlartifacts.")
    lineage: bool = Field(
        True,
        description="Record every table read inside an active MLflow "
        "run as a dataset input of that run.",
    )
    autolog: bool = Field(
        False,
        description="Turn on mlflow.autolog (with input examples and signatures) when the "
        "workspace opens; see lakebox.tracking.autolog.",
    )


class EngineSettings(_Section):
    """The engine for data-heavy operations."""

    name: Literal["local", "spark"] = Field("local", description="local (DuckDB/Arrow) or spark.")
    threads: int = Field(0, ge=0, description="Threads for the local engine; 0 means all cores.")
    spark_master: str = Field("local[2]", description="Spark master URL or sc:// Spark Connect.")
    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description="Extra Spark settings for the session the spark engine starts, e.g. "
        '{ "spark.executor.memory" = "4g" }.',
    )


class ServerSettings(_Section):
    """``lakebox up``."""

    host: str = Field(
        "127.0.0.1", description="Address to bind. A non-loopback address requires a token."
    )
    port: int = Field(8080, ge=0, le=65535, description="TCP port.")
    token: str = Field(
        "",
        description="Bearer token required on every request except /health; "
        "LAKEBOX_TOKEN in the environment overrides it.",
    )
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes.")


class EventsSettings(_Section):
    """Webhook delivery (the event dispatcher in ``lakebox up`` and ``lakebox worker``)."""

    dispatcher: bool = Field(
        True,
        description="Run the dispatcher inside `lakebox up`; turn "
        "off when a separate `lakebox worker` delivers.",
    )
    max_attempts: int = Field(8, ge=1, description="Attempts before a delivery is dead-lettered.")
    backoff_seconds: float = Field(
        1.0,
        gt=0,
        description="Delay after the first failed attempt; doubles after each further failure.",
    )
    backoff_max_seconds: float = Field(300.0, gt=0, description="Longest delay between attempts.")
    poll_interval_seconds: float = Field(
        0.1, gt=0, description="How often the outbox is checked when idle."
    )
    timeout_seconds: float = Field(10.0, gt=0, description="HTTP timeout of one delivery.")


class Settings(_Section):
    """All settings of one workspace."""

    storage: StorageSettings = Field(default_factory=StorageSettings)
    metadata: MetadataSettings = Field(default_factory=MetadataSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    events: EventsSettings = Field(default_factory=EventsSettings)


def _valid_keys(model: type[BaseModel]) -> list[str]:
    return sorted(model.model_fields)


def _explain(error: ValidationError, source: str) -> SettingsError:
    problems = []
    for item in error.errors():
        loc = [str(p) for p in item["loc"]]
        dotted = ".".join(loc)
        if item["type"] == "extra_forbidden":
            parent: type[BaseModel] = Settings
            for part in loc[:-1]:
                parent = parent.model_fields[part].annotation  # type: ignore[assignment]
            valid = _valid_keys(parent)
            where = f"section [{'.'.join(loc[:-1])}]" if len(loc) > 1 else "the top level"
            problems.append(
                f"unknown key {dotted!r} in {where}.{close_matches(loc[-1], valid)} "
                f"Valid keys: {', '.join(valid)}"
            )
        else:
            problems.append(f"{dotted}: {item['msg']} (got {item.get('input')!r})")
    return SettingsError(f"Invalid settings in {source}: " + "; ".join(problems))


def load_settings(home: Path, overrides: dict[str, dict[str, Any]] | None = None) -> Settings:
    """Read ``lakebox.toml`` in ``home`` (if any) and apply ``overrides`` per section."""
    path = home / SETTINGS_FILE
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(
                f"{path} is not valid TOML: {exc}. Fix the file or delete it "
                "to get the defaults back."
            ) from None
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update(values)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, str(path)) from None


def default_settings_text() -> str:
    """A commented ``lakebox.toml`` with every key at its default."""
    lines = ["# lakebox workspace settings. Every key is optional; shown with its default.", ""]
    for section, field in Settings.model_fields.items():
        model: type[BaseModel] = field.annotation  # type: ignore[assignment]
        lines.append(f"# {model.__doc__}")
        lines.append(f"[{section}]")
        for key, sub in model.model_fields.items():
            default = sub.get_default(call_default_factory=True)
            value = _toml_value(default)
            lines.append(f"# {sub.description}")
            lines.append(f"# {key} = {value}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return (
            "{}" if not value else "{ " + ", ".join(f'{k} = "{v}"' for k, v in value.items()) + " }"
        )
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
