"""``lakebox score MODEL_URI INPUT OUTPUT``: batch-score a Delta table with a progress bar."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lakebox.cli._common import console, friendly_errors, workspace

__all__ = ["score"]


@friendly_errors
def score(
    model_uri: str = typer.Argument(
        ...,
        metavar="MODEL_URI",
        help="models:/name/3, models:/name@alias, models:/name/Production, runs:/<run>/model",
    ),
    input_table: str = typer.Argument(..., metavar="INPUT", help="Delta table to score."),
    output_table: str = typer.Argument(..., metavar="OUTPUT", help="Table for predictions."),
    mode: str = typer.Option("append", help="append or overwrite the output."),
    partition_by: list[str] = typer.Option(
        None, "--partition-by", help="Partition column (repeatable) of a new output table."
    ),
    zorder_by: list[str] = typer.Option(
        None, "--zorder-by", help="Z-order the output by this column (repeatable)."
    ),
    optimize: bool = typer.Option(False, help="Compact the output's files afterwards."),
    workers: int = typer.Option(None, help="Worker processes (default: CPU count)."),
    batch_rows: int = typer.Option(250_000, help="Rows per model call (bounds memory)."),
) -> None:
    """Score every row of INPUT with MODEL_URI into OUTPUT (one Delta commit)."""
    from lakebox.deploy import score_table

    ws = workspace()
    with Progress(
        TextColumn("[bold]scoring[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(input_table, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = score_table(
            model_uri,
            input_table,
            output_table,
            ws=ws,
            mode=mode,  # type: ignore[arg-type]
            partition_by=partition_by or None,
            zorder_by=zorder_by or None,
            optimize=optimize,
            workers=workers,
            batch_rows=batch_rows,
            progress=progress,
        )
    model = (
        f"{result.model_name} v{result.model_version}" if result.model_name else result.model_uri
    )
    console.print(
        f"Scored {result.rows:,} row(s) of {result.input_table} (version "
        f"{result.input_version}) with {model} into {result.output_table} "
        f"(version {result.output_version}) in {result.seconds:.1f} s",
        highlight=False,
    )
