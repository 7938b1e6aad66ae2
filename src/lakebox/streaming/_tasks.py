"""The ``stream`` job task type: a long-running streaming query kept alive by the jobs
service (registered through the ``lakebox.task_types`` entry point)::

    tasks:
      - task_key: score_events
        lakebox_task:
          type: stream
          parameters: {query: "my_pipelines:score_events", processing_time: "5 seconds"}

``query`` names a function ``fn(ws) -> StreamingQuery``; the task runs it until the query is
stopped (``lakebox streams stop``), fails, or ``timeout`` seconds pass.
"""

from __future__ import annotations

import importlib
from typing import Any

from lakebox.errors import InvalidInput

__all__ = ["run_stream"]


def run_stream(
    ws: Any,
    query: str,
    trigger: str = "processing_time",
    processing_time: str | float = "1 second",
    max_batches: int | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Build the query with ``query`` (``"module:function"``) and run it; returns its final
    status (task values)."""
    from lakebox.streaming import StreamingQuery

    module_name, _, attr = str(query).partition(":")
    if not module_name or not attr:
        raise InvalidInput(
            f"query {query!r} must be 'module:function' (a function that takes "
            "the workspace and returns a StreamingQuery)."
        )
    try:
        build = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"Cannot import stream builder {query!r}: {exc}.") from None
    built = build(ws)
    if not isinstance(built, StreamingQuery):
        raise InvalidInput(
            f"{query!r} returned {type(built).__name__}, not a StreamingQuery "
            "(end the builder with .write_delta(...) or .foreach_batch(...))."
        )
    status = built.run(
        trigger,
        processing_time=processing_time if trigger == "processing_time" else None,
        max_batches=max_batches,
        timeout=timeout,
    )
    print(f"stream {built.name}: {status.get('state')} after batch {status.get('last_batch_id')}")
    return {k: v for k, v in status.items() if isinstance(v, (int, float, str)) or v is None}
