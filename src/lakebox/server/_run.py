"""Running the server: bind checks, background services, uvicorn."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from lakebox.errors import PermissionDenied

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["BACKGROUND_SERVICES", "check_bind", "serve", "start_background_services"]

# Long-running services of ``lakebox up`` (main process only) and ``lakebox worker``:
# ``"module:function"`` called as ``function(ws, stop_event)`` in a daemon thread.
BACKGROUND_SERVICES = [
    "lakebox.jobs:run_scheduler",
]
# Set while background services run in the main process: parts must not start their own
# copies in server worker processes.
BACKGROUND_ENV = "LAKEBOX_BACKGROUND_SERVICES"


def start_background_services(ws: Workspace) -> Callable[[], None]:
    """Start every :data:`BACKGROUND_SERVICES` entry in a thread; returns ``stop()``."""
    import importlib
    import threading

    os.environ[BACKGROUND_ENV] = "1"
    stop_event = threading.Event()
    threads = []
    for target in BACKGROUND_SERVICES:
        module_name, _, attr = target.partition(":")
        fn = getattr(importlib.import_module(module_name), attr)
        thread = threading.Thread(target=fn, args=(ws, stop_event), name=target, daemon=True)
        thread.start()
        threads.append(thread)

    def stop() -> None:
        stop_event.set()
        for thread in threads:
            thread.join(15)

    return stop


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(info[4][0]).is_loopback
                for info in socket.getaddrinfo(host, None)
            )
        except OSError:
            return False


def check_bind(host: str, token: str) -> None:
    """Refuse to expose the server beyond this machine without a token."""
    if not token and not _is_loopback(host):
        raise PermissionDenied(
            f"Refusing to bind {host!r} without a token: anyone who can reach this address "
            "could read and change your tables and models. Set [server] token in lakebox.toml "
            "(or LAKEBOX_TOKEN), or bind 127.0.0.1."
        )


def serve(
    ws: Workspace, *, host: str | None = None, port: int | None = None, workers: int | None = None
) -> None:
    """Run ``lakebox up`` in the foreground until interrupted."""
    import uvicorn

    settings = ws.settings.server
    host = host or settings.host
    port = settings.port if port is None else port
    workers = workers or settings.workers
    token = os.environ.get("LAKEBOX_TOKEN") or settings.token
    check_bind(host, token)
    os.environ["LAKEBOX_HOME"] = str(ws.home)
    # Webhook deliveries: one dispatcher in this (main) process, not one per worker.
    dispatcher = None
    if ws.settings.events.dispatcher:
        from lakebox.models import workspace_dispatcher

        dispatcher = workspace_dispatcher(ws)
        dispatcher.start()
    stop_services = start_background_services(ws)
    try:
        uvicorn.run(
            "lakebox.server._app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            timeout_graceful_shutdown=10,
        )
    finally:
        if dispatcher is not None:
            dispatcher.stop()
        stop_services()
