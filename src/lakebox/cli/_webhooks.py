"""``lakebox webhooks ...``."""

from __future__ import annotations

from datetime import datetime, timezone

import typer
from rich.table import Table

from lakebox.cli._common import console, friendly_errors, workspace

app = typer.Typer(help="Registry webhooks and their delivery log.", no_args_is_help=True)


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@app.command()
@friendly_errors
def create(
    events: list[str] = typer.Option(..., "--event", "-e", help="Event name (repeatable)."),
    url: str = typer.Option(None, help="HTTP(S) URL to POST events to."),
    job_id: str = typer.Option(None, help="Job to run for each event (instead of a URL)."),
    model: str = typer.Option(None, help="Only this model (default: registry-wide)."),
    secret: str = typer.Option(None, help="HMAC secret for X-Databricks-Signature."),
    authorization: str = typer.Option(None, help="Authorization header sent with each call."),
    no_ssl_verify: bool = typer.Option(False, help="Do not verify the receiver's certificate."),
    description: str = typer.Option(None, help="Free text."),
    status: str = typer.Option("ACTIVE", help="ACTIVE, TEST_MODE or DISABLED."),
) -> None:
    """Create a webhook."""
    http = None
    if url is not None:
        http = {
            "url": url,
            "secret": secret,
            "authorization": authorization,
            "enable_ssl_verification": not no_ssl_verify,
        }
    job = {"job_id": job_id} if job_id is not None else None
    hook = workspace().webhooks.create(
        events,
        model_name=model,
        http_url_spec=http,
        job_spec=job,
        description=description,
        status=status,
    )
    console.print(
        f"Created webhook [bold]{hook.id}[/] ({hook.status}) for {', '.join(hook.events)}",
        highlight=False,
    )


@app.command("list")
@friendly_errors
def list_webhooks(model: str = typer.Option(None, help="Only webhooks of this model.")) -> None:
    """List webhooks."""
    hooks = workspace().webhooks.list(model_name=model)
    out = Table(title=f"{len(hooks)} webhook(s)")
    out.add_column("id", min_width=32, no_wrap=True)
    for name in ("status", "model", "events", "target"):
        out.add_column(name)
    for h in hooks:
        target = h.url if h.url is not None else f"job {h.job_id}"
        out.add_row(h.id, h.status, h.model_name or "(registry-wide)", ", ".join(h.events), target)
    console.print(out)


@app.command()
@friendly_errors
def update(
    webhook_id: str,
    events: list[str] = typer.Option(None, "--event", "-e", help="Replace the events."),
    url: str = typer.Option(None, help="New URL."),
    status: str = typer.Option(None, help="ACTIVE, TEST_MODE or DISABLED."),
    description: str = typer.Option(None, help="New description."),
) -> None:
    """Change a webhook."""
    hook = workspace().webhooks.update(
        webhook_id,
        events=events or None,
        http_url_spec={"url": url} if url else None,
        status=status,
        description=description,
    )
    console.print(f"Updated webhook {hook.id}: {hook.status}, {', '.join(hook.events)}")


@app.command()
@friendly_errors
def delete(webhook_id: str) -> None:
    """Delete a webhook."""
    workspace().webhooks.delete(webhook_id)
    console.print(f"Deleted webhook {webhook_id}")


@app.command()
@friendly_errors
def test(webhook_id: str, event: str = typer.Option(None, help="Event to simulate.")) -> None:
    """Send a test event now and show the receiver's answer."""
    result = workspace().webhooks.test(webhook_id, event=event)
    console.print(f"status {result['status_code']}: {result['body'][:500]}", highlight=False)


@app.command()
@friendly_errors
def deliveries(
    webhook_id: str = typer.Option(None, "--webhook", help="Only this webhook."),
    status: str = typer.Option(None, help="PENDING, SUCCEEDED, DEAD or SKIPPED."),
    limit: int = typer.Option(50, help="Newest deliveries to show."),
) -> None:
    """The delivery log: each event sent to each webhook, attempts and last error."""
    found = workspace().webhooks.deliveries(webhook_id=webhook_id, status=status, limit=limit)
    out = Table(title=f"{len(found)} delivery(ies)")
    for name, width in (
        ("id", 4),
        ("status", 9),
        ("attempts", 3),
        ("event", 0),
        ("model", 0),
        ("webhook", 0),
        ("last error", 0),
        ("created", 0),
    ):
        out.add_column(name, min_width=width or None, no_wrap=bool(width), overflow="fold")
    for d in found:
        model = f"{d.model_name} v{d.version}" if d.version else (d.model_name or "")
        out.add_row(
            str(d.id),
            d.status,
            str(d.attempts),
            d.event,
            model,
            d.webhook_id[:12],
            (d.last_error or "")[:60],
            _when(d.created_at),
        )
    console.print(out)
