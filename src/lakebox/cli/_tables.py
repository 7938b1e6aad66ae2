"""``lakebox tables ...``."""

from __future__ import annotations

import typer
from rich.table import Table

from lakebox.cli._common import console, friendly_errors, workspace

app = typer.Typer(help="Delta tables in the catalog.", no_args_is_help=True)


@app.command("list")
@friendly_errors
def list_tables(
    catalog: str = typer.Option(None, help="Only this catalog."),
    schema: str = typer.Option(None, help="Only this schema."),
) -> None:
    """List tables."""
    tables = workspace().tables.list(catalog=catalog, schema=schema)
    out = Table("table", "comment", "created", "location", title=f"{len(tables)} table(s)")
    for t in tables:
        out.add_row(t.full_name, t.comment or "", f"{t.created_at:%Y-%m-%d %H:%M}", t.location)
    console.print(out)


@app.command()
@friendly_errors
def show(name: str) -> None:
    """Show a table's schema, version, comment and tags."""
    info = workspace().tables.get(name)
    console.print(f"[bold]{info.full_name}[/]  version {info.version}, {info.num_files} file(s)")
    console.print(f"location: {info.location}", highlight=False)
    if info.comment:
        console.print(f"comment: {info.comment}")
    if info.tags:
        console.print("tags: " + ", ".join(f"{k}={v}" for k, v in info.tags.items()))
    if info.partition_columns:
        console.print("partitioned by: " + ", ".join(info.partition_columns))
    out = Table("column", "type", "nullable", "comment", "tags")
    for c in info.columns:
        out.add_row(
            c.name,
            c.type,
            "yes" if c.nullable else "no",
            c.comment or "",
            ", ".join(f"{k}={v}" for k, v in c.tags.items()),
        )
    console.print(out)


@app.command()
@friendly_errors
def history(name: str, limit: int = typer.Option(20, help="Newest commits to show.")) -> None:
    """Show a table's commits, newest first."""
    out = Table("version", "timestamp", "operation", "parameters", title=name)
    for entry in workspace().tables.history(name, limit=limit):
        params = ", ".join(f"{k}={v}" for k, v in entry.get("operationParameters", {}).items())
        out.add_row(
            str(entry["version"]),
            f"{entry['timestamp']:%Y-%m-%d %H:%M:%S}",
            entry.get("operation", ""),
            params[:80],
        )
    console.print(out)


@app.command()
@friendly_errors
def optimize(
    name: str,
    zorder_by: list[str] = typer.Option(None, "--zorder-by", help="Z-order by these columns."),
) -> None:
    """Compact small files (and Z-order)."""
    with console.status(f"Optimizing {name}..."):
        metrics = workspace().tables.optimize(name, zorder_by=zorder_by or None)
    console.print(
        f"{metrics.get('numFilesRemoved', 0)} file(s) rewritten into "
        f"{metrics.get('numFilesAdded', 0)}."
    )


@app.command()
@friendly_errors
def vacuum(
    name: str,
    retention_hours: int = typer.Option(168, help="Keep files newer versions need for this long."),
    force: bool = typer.Option(False, help="Allow a retention under 168 hours."),
    dry_run: bool = typer.Option(False, help="Only list the files."),
) -> None:
    """Delete files that no retained version needs."""
    files = workspace().tables.vacuum(name, retention_hours, force=force, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{verb} {len(files)} file(s)")


@app.command()
@friendly_errors
def drop(name: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")) -> None:
    """Drop a table and delete its files."""
    ws = workspace()
    full = ws.tables.resolve(name).full_name
    if not yes:
        typer.confirm(f"Drop {full} and delete its files?", abort=True)
    ws.tables.drop(full)
    console.print(f"Dropped {full}.")
