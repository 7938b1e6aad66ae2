"""``lakebox models ...``: the registry lifecycle."""

from __future__ import annotations

from datetime import datetime, timezone

import typer
from rich.table import Table

from lakebox.cli._common import console, friendly_errors, workspace

app = typer.Typer(
    help="Registered models: versions, stages, aliases, transition requests.", no_args_is_help=True
)


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")


@app.command("list")
@friendly_errors
def list_models() -> None:
    """List registered models."""
    models = workspace().models.list()
    out = Table(
        "name", "aliases", "latest versions", "description", title=f"{len(models)} model(s)"
    )
    for m in models:
        latest = ", ".join(f"v{v.version} {v.current_stage}" for v in m.latest_versions or [])
        aliases = ", ".join(f"@{a}=v{v}" for a, v in (m.aliases or {}).items())
        out.add_row(m.name, aliases, latest, m.description or "")
    console.print(out)


@app.command()
@friendly_errors
def register(model_uri: str, name: str) -> None:
    """Register a logged model (runs:/<run_id>/model) as a new version."""
    mv = workspace().models.register(model_uri, name)
    console.print(f"Registered {name} version {mv.version}")


@app.command()
@friendly_errors
def versions(name: str) -> None:
    """List the versions of a model."""
    models = workspace().models
    found = models.versions(name)
    aliases: dict[str, list[str]] = {}
    for alias_name, version in (models.get_model(name).aliases or {}).items():
        aliases.setdefault(str(version), []).append(f"@{alias_name}")
    out = Table("version", "stage", "aliases", "run", "created", "description", title=name)
    for v in found:
        out.add_row(
            str(v.version),
            v.current_stage,
            ", ".join(aliases.get(str(v.version), [])),
            (v.run_id or "")[:12],
            _when(v.creation_timestamp),
            v.description or "",
        )
    console.print(out)


@app.command()
@friendly_errors
def transition(
    name: str,
    version: str,
    stage: str,
    archive_existing: bool = typer.Option(
        False, "--archive-existing", help="Archive versions already there."
    ),
    comment: str = typer.Option(None, help="Why."),
) -> None:
    """Move a version to None, Staging, Production or Archived."""
    mv = workspace().models.transition_stage(
        name, version, stage, archive_existing_versions=archive_existing, comment=comment
    )
    console.print(f"{name} version {mv.version} is now in {mv.current_stage}")


@app.command()
@friendly_errors
def archive(name: str, version: str) -> None:
    """Archive a version."""
    workspace().models.archive(name, version)
    console.print(f"{name} version {version} archived")


@app.command()
@friendly_errors
def alias(
    name: str,
    alias_name: str,
    version: str = typer.Argument(None),
    delete: bool = typer.Option(False, help="Remove the alias."),
) -> None:
    """Point NAME@ALIAS at VERSION (or --delete it)."""
    models = workspace().models
    if delete:
        models.delete_alias(name, alias_name)
        console.print(f"Deleted {name}@{alias_name}")
        return
    if version is None:
        console.print(
            f"{name}@{alias_name} -> version {models.get_alias(name, alias_name).version}"
        )
        return
    models.set_alias(name, alias_name, version)
    console.print(f"{name}@{alias_name} -> version {version}")


@app.command()
@friendly_errors
def tag(
    name: str,
    key: str,
    value: str,
    version: str = typer.Option(None, help="Tag this version instead of the model."),
) -> None:
    """Set a tag on a model or a version."""
    workspace().models.set_tag(name, key, value, version=version)
    console.print(f"Tagged {name}{f' version {version}' if version else ''}: {key}={value}")


@app.command()
@friendly_errors
def describe(
    name: str, description: str, version: str = typer.Option(None, help="Describe this version.")
) -> None:
    """Set the description of a model or a version."""
    workspace().models.set_description(name, description, version=version)
    console.print("Description updated")


@app.command()
@friendly_errors
def request(
    name: str, version: str, stage: str, comment: str = typer.Option(None, help="Why.")
) -> None:
    """Request a stage transition."""
    activity = workspace().models.create_transition_request(name, version, stage, comment=comment)
    console.print(f"Requested {name} version {version} -> {stage} (request {activity.id})")


@app.command()
@friendly_errors
def requests(name: str, version: str) -> None:
    """List pending transition requests of a version."""
    found = workspace().models.list_transition_requests(name, version)
    out = Table(
        "id", "to stage", "by", "comment", "created", title=f"{len(found)} pending request(s)"
    )
    for a in found:
        out.add_row(
            str(a.id), a.to_stage or "", a.user_id, a.comment or "", _when(a.creation_timestamp)
        )
    console.print(out)


@app.command()
@friendly_errors
def approve(
    name: str,
    version: str,
    stage: str,
    archive_existing: bool = typer.Option(False, "--archive-existing"),
    comment: str = typer.Option(None),
) -> None:
    """Approve a pending request (performs the transition)."""
    workspace().models.approve_transition_request(
        name, version, stage, archive_existing_versions=archive_existing, comment=comment
    )
    console.print(f"Approved: {name} version {version} is now in {stage}")


@app.command()
@friendly_errors
def reject(name: str, version: str, stage: str, comment: str = typer.Option(None)) -> None:
    """Reject a pending request."""
    workspace().models.reject_transition_request(name, version, stage, comment=comment)
    console.print(f"Rejected the request to move {name} version {version} to {stage}")


@app.command()
@friendly_errors
def cancel(name: str, version: str, stage: str) -> None:
    """Cancel your pending request."""
    workspace().models.cancel_transition_request(name, version, stage)
    console.print(f"Cancelled the request to move {name} version {version} to {stage}")


@app.command()
@friendly_errors
def comment(name: str, version: str, text: str) -> None:
    """Comment on a version."""
    activity = workspace().models.create_comment(name, version, text)
    console.print(f"Comment {activity.id} added")


@app.command()
@friendly_errors
def history(name: str, version: str) -> None:
    """Requests, transitions and comments of a version."""
    out = Table("when", "activity", "by", "from", "to", "comment", title=f"{name} v{version}")
    for a in workspace().models.activities(name, version):
        out.add_row(
            _when(a.creation_timestamp),
            a.activity_type,
            a.user_id,
            a.from_stage or "",
            a.to_stage or "",
            a.comment or "",
        )
    console.print(out)


@app.command("delete")
@friendly_errors
def delete_cmd(
    name: str,
    version: str = typer.Argument(None),
    yes: bool = typer.Option(False, "--yes", help="Do not ask."),
) -> None:
    """Delete a version, or the whole model when no version is given."""
    what = f"{name} version {version}" if version else f"model {name} and all its versions"
    if not yes and not typer.confirm(f"Delete {what}?"):
        raise typer.Exit(1)
    models = workspace().models
    if version:
        models.delete_version(name, version)
    else:
        models.delete_model(name)
    console.print(f"Deleted {what}")
