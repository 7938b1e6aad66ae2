"""The ``lakebox`` command line."""

from __future__ import annotations

import importlib
from pathlib import Path

import typer
from rich.table import Table

from lakebox._version import __version__
from lakebox.cli._common import console, friendly_errors, state, workspace

__all__ = ["app", "main"]

app = typer.Typer(
    help="lakebox: the Databricks ML lifecycle on open parts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Sub-command groups: (name, module with a Typer ``app``).
SUBCOMMANDS = [
    ("tables", "lakebox.cli._tables"),
    ("models", "lakebox.cli._models"),
    ("webhooks", "lakebox.cli._webhooks"),
    ("worker", "lakebox.cli._worker"),
    ("serving", "lakebox.cli._serving"),
    ("features", "lakebox.cli._features"),
    ("monitors", "lakebox.cli._monitors"),
    ("jobs", "lakebox.cli._jobs"),
    ("streams", "lakebox.cli._streams"),
]
for _name, _module in SUBCOMMANDS:
    app.add_typer(importlib.import_module(_module).app, name=_name)
app.command("score")(importlib.import_module("lakebox.cli._score").score)


@app.callback()
def _root(
    home: Path = typer.Option(
        None, "--home", envvar="LAKEBOX_HOME", help="Workspace folder (default ./.lakebox)."
    ),
) -> None:
    state.clear()  # one workspace per invocation (tests invoke the app many times)
    state["home"] = home


@app.command()
@friendly_errors
def init() -> None:
    """Create the workspace folder and its lakebox.toml."""
    ws = workspace()
    console.print(f"Workspace ready at [bold]{ws.home}[/]; settings in {ws.home / 'lakebox.toml'}")


@app.command()
def version() -> None:
    """Print the lakebox version."""
    console.print(f"lakebox {__version__}")


@app.command()
@friendly_errors
def sql(query: str, limit: int = typer.Option(100, help="Rows to print.")) -> None:
    """Run SQL over the catalog's tables (DuckDB); `name VERSION AS OF n` time-travels."""
    result = workspace().sql(query)
    out = Table(*result.column_names)
    for row in result.slice(0, limit).to_pylist():
        out.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(out)
    if result.num_rows > limit:
        console.print(f"... {result.num_rows - limit} more row(s)")


@app.command()
@friendly_errors
def up(
    host: str = typer.Option(None, help="Address to bind (default [server] host)."),
    port: int = typer.Option(None, help="Port (default [server] port)."),
    workers: int = typer.Option(None, help="Worker processes (default [server] workers)."),
) -> None:
    """Serve the REST API, the MLflow UI and tracking server."""
    from lakebox.server import serve

    ws = workspace()
    shown_host = host or ws.settings.server.host
    shown_port = ws.settings.server.port if port is None else port
    console.print(f"lakebox {__version__} serving {ws.home} at http://{shown_host}:{shown_port}")
    serve(ws, host=host, port=port, workers=workers)


@app.command()
@friendly_errors
def demo() -> None:
    """Run the end-to-end story on generated data, narrated."""
    from lakebox.demo import run_demo

    run_demo(workspace(), console)


def main() -> None:
    """Entry point of the ``lakebox`` script."""
    app()
