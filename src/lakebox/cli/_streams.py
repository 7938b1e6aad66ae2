"""``lakebox streams list|status|stop|reset``: the streaming queries of the workspace."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from lakebox.cli._common import console, friendly_errors, workspace

app = typer.Typer(help="Streaming queries: progress, stop, reset.", no_args_is_help=True)


def _rate(value: object) -> str:
    return "" if value is None else f"{value:,.0f}"


@app.command("list")
@friendly_errors
def list_streams() -> None:
    """List the queries that have a checkpoint in this workspace."""
    rows = workspace().streams.list()
    out = Table(
        "query",
        "state",
        "last batch",
        "input rows/s",
        "processed rows/s",
        "batch ms",
        "watermark",
        title=f"{len(rows)} stream(s)",
    )
    for s in rows:
        out.add_row(
            str(s.get("name")),
            str(s.get("state")),
            "" if s.get("last_batch_id") is None else str(s["last_batch_id"]),
            _rate(s.get("input_rows_per_second")),
            _rate(s.get("processed_rows_per_second")),
            "" if s.get("batch_duration_ms") is None else f"{s['batch_duration_ms']:.0f}",
            str(s.get("watermark") or ""),
        )
    console.print(out)


@app.command()
@friendly_errors
def status(name: str, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show a query's latest progress."""
    info = workspace().streams.status(name)
    if as_json:
        console.print_json(json.dumps(info, default=str))
        return
    for key in (
        "name",
        "id",
        "state",
        "trigger",
        "last_batch_id",
        "input_rows",
        "input_rows_per_second",
        "processed_rows_per_second",
        "batch_duration_ms",
        "watermark",
        "bad_files",
        "updated_at",
        "message",
        "checkpoint",
    ):
        console.print(f"[bold]{key}[/]: {info.get(key)}", highlight=False)


@app.command()
@friendly_errors
def stop(
    name: str, wait: float = typer.Option(10.0, help="Seconds to wait for it to stop.")
) -> None:
    """Ask a running query to stop after its current batch."""
    info = workspace().streams.stop(name, wait=wait)
    console.print(f"Query {name}: {info['state']}")


@app.command()
@friendly_errors
def reset(name: str) -> None:
    """Delete a query's checkpoint so that it starts over."""
    workspace().streams.reset(name)
    console.print(f"Query {name}: checkpoint deleted")
