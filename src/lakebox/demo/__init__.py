"""``lakebox demo``: the churn story of TOUR.md on generated data, narrated.

Each capability adds one step module to :data:`STEPS`; a step is ``run(ctx)`` and may leave
results in ``ctx.state`` for later steps.
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["DemoContext", "STEPS", "run_demo"]

STEPS = [
    "lakebox.demo._tables",
    "lakebox.demo._train",
    "lakebox.demo._registry",
    "lakebox.demo._features",
    "lakebox.demo._serving",
    "lakebox.demo._monitoring",
    "lakebox.demo._batch_stream",
    "lakebox.demo._jobs",
]


@dataclass
class DemoContext:
    """What every demo step gets."""

    ws: Workspace
    console: Console
    state: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str) -> None:
        self.console.print(f"  {text}", highlight=False)


def run_demo(ws: Workspace, console: Console | None = None) -> DemoContext:
    """Run every demo step against ``ws``; returns the context (tests inspect ``state``)."""
    console = console or Console()
    # MLflow's per-file download bars would drown the narration.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    ctx = DemoContext(ws=ws, console=console)
    console.rule(f"[bold]lakebox demo[/] — workspace {ws.home}")
    started = time.perf_counter()
    for number, module_name in enumerate(STEPS, start=1):
        module = importlib.import_module(module_name)
        console.print(f"\n[bold cyan]{number}. {module.TITLE}[/]")
        step_started = time.perf_counter()
        module.run(ctx)
        ctx.say(f"[dim]({time.perf_counter() - step_started:.1f} s)[/]")
    console.rule(f"done in {time.perf_counter() - started:.0f} s")
    console.print(
        "Next: [bold]lakebox up[/] and open http://127.0.0.1:8080 for the MLflow UI; "
        "[bold]lakebox tables list[/] for the tables."
    )
    return ctx
