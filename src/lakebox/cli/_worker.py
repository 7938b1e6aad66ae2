"""``lakebox worker``: deliver webhook events outside ``lakebox up``."""

from __future__ import annotations

import signal
import threading
from typing import Any

import typer

from lakebox.cli._common import console, friendly_errors, workspace

app = typer.Typer(
    help="Deliver webhook events (the dispatcher) until stopped.", invoke_without_command=True
)


@app.callback()
@friendly_errors
def worker(
    once: bool = typer.Option(False, help="Deliver what is due now, then exit."),
    poll_interval: float = typer.Option(
        None, help="Seconds between idle polls (default \\[events] poll_interval_seconds)."
    ),
    max_attempts: int = typer.Option(
        None, help="Attempts before dead letter (default \\[events] max_attempts)."
    ),
    backoff: float = typer.Option(
        None, help="First retry delay in seconds (default \\[events] backoff_seconds)."
    ),
    backoff_max: float = typer.Option(None, help="Longest retry delay in seconds."),
    lease_seconds: float = typer.Option(
        None, help="How long a claimed delivery stays claimed by this worker."
    ),
) -> None:
    """Deliver outbox events to webhooks and job triggers, with retries, until Ctrl-C."""
    from lakebox.models import workspace_dispatcher

    ws = workspace()
    dispatcher = workspace_dispatcher(
        ws,
        poll_interval_seconds=poll_interval,
        max_attempts=max_attempts,
        backoff_seconds=backoff,
        backoff_max_seconds=backoff_max,
        lease_seconds=lease_seconds,
    )
    if once:
        total = 0
        while True:
            count = dispatcher.run_once()
            total += count
            if not count:
                break
        dispatcher.stop()
        console.print(f"{total} delivery attempt(s) made.")
        return
    stop = threading.Event()

    def _stop(*_args: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    console.print(f"lakebox worker delivering events of {ws.home} (Ctrl-C to stop)")
    from lakebox.server._run import start_background_services

    stop_services = start_background_services(ws)  # the jobs scheduler and runner
    dispatcher.run_forever(stop)
    dispatcher.stop()
    stop_services()
