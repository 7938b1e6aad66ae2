"""``lakebox features ...``."""

from __future__ import annotations

import typer
from rich.table import Table

from lakebox.cli._common import console, friendly_errors, workspace

app = typer.Typer(help="Feature tables and the online store.", no_args_is_help=True)


@app.command("list")
@friendly_errors
def list_tables() -> None:
    """List feature tables."""
    tables = workspace().features.list_tables()
    out = Table(
        "feature table",
        "primary keys",
        "timeseries",
        "updated",
        title=f"{len(tables)} feature table(s)",
    )
    for t in tables:
        updated = f"{t.updated_at:%Y-%m-%d %H:%M}" if t.updated_at else ""
        out.add_row(t.name, ", ".join(t.primary_keys), ", ".join(t.timeseries_columns), updated)
    console.print(out)


@app.command()
@friendly_errors
def show(name: str) -> None:
    """Show a feature table: keys, features, tags, models using it, online copies."""
    t = workspace().features.get_table(name=name)
    console.print(f"[bold]{t.name}[/]  version {t.version}")
    if t.description:
        console.print(f"description: {t.description}")
    console.print(f"primary keys: {', '.join(t.primary_keys)}")
    if t.timeseries_columns:
        console.print(f"timeseries column: {', '.join(t.timeseries_columns)}")
    console.print(f"features: {', '.join(t.features)}")
    if t.tags:
        console.print("tags: " + ", ".join(f"{k}={v}" for k, v in t.tags.items()))
    if t.models:
        models = Table("model", "version", "table version", "model uri", title="used by")
        for m in t.models:
            models.add_row(
                m["name"] or "", m["version"] or "", str(m["table_version"]), m["model_uri"]
            )
        console.print(models)
    if t.online_stores:
        online = Table(
            "store", "rows", "table version", "mode", "published", title="published online"
        )
        for s in t.online_stores:
            online.add_row(
                s["store_uri"],
                str(s["num_rows"]),
                str(s["table_version"]),
                s["mode"],
                f"{s['published_at']:%Y-%m-%d %H:%M}",
            )
        console.print(online)


@app.command()
@friendly_errors
def publish(
    name: str,
    online_store: str = typer.Option(
        "sqlite", "--online-store", help="sqlite, sqlite:///path or redis://host:port/db"
    ),
    mode: str = typer.Option("merge", help="merge or overwrite"),
    filter_condition: str = typer.Option(
        None, "--filter", help="SQL predicate choosing rows to publish."
    ),
) -> None:
    """Publish the newest row per key of a feature table to an online store."""
    with console.status(f"Publishing {name}..."):
        result = workspace().features.publish_table(
            name=name, online_store=online_store, mode=mode, filter_condition=filter_condition
        )
    console.print(
        f"Published {result['num_rows']:,} row(s) of {result['name']} "
        f"(version {result['table_version']}) to {result['store_uri']}.",
        highlight=False,
    )
