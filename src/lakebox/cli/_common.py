"""Shared CLI plumbing: the workspace option, the console, error reporting."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from lakebox.errors import LakeboxError

__all__ = ["console", "err_console", "friendly_errors", "state", "workspace"]

console = Console()
err_console = Console(stderr=True)
state: dict[str, Any] = {"home": None}
F = TypeVar("F", bound=Callable[..., Any])


def workspace() -> Any:
    """The workspace chosen by ``--home`` / ``LAKEBOX_HOME`` / ``./.lakebox``."""
    from lakebox.workspace import Workspace

    if "ws" not in state:
        state["ws"] = Workspace(state["home"])
    return state["ws"]


def friendly_errors(fn: F) -> F:
    """Print lakebox errors as one red line and exit 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LakeboxError as exc:
            err_console.print(f"[bold red]Error:[/] {exc.message}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]
