"""Task values: small JSON values one task sets and later tasks of the same run read.

Like ``dbutils.jobs.taskValues``::

    from lakebox.jobs import task_values

    task_values.set("auc", 0.91)                        # in task "train"
    auc = task_values.get("train", "auc", default=0.0)  # in a later task

Values also resolve in task parameters as ``{{tasks.train.values.auc}}``. Outside a job run,
``set`` keeps the value in this process and ``get`` returns ``debug_value``.
"""

from __future__ import annotations

import json
from typing import Any

from lakebox.errors import InvalidInput, NotFound
from lakebox.jobs import _context

__all__ = ["get", "set"]

MAX_VALUE_BYTES = 48 * 1024  # Databricks' limit per value


def set(key: str, value: Any) -> None:
    """Set a task value of the running task.

    Args:
        key: the value's name (unique within the task).
        value: any JSON-serializable value, at most 48 KiB once encoded.

    Example:
        >>> task_values.set("rows", 1200)                 # doctest: +SKIP
    """
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"Task value key must be a non-empty string, got {key!r}.")
    try:
        encoded = json.dumps(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"Task value {key!r} must be JSON-serializable, got "
            f"{type(value).__name__}; convert it (e.g. float(x), str(x))."
        ) from None
    if len(encoded) > MAX_VALUE_BYTES:
        raise InvalidInput(
            f"Task value {key!r} is {len(encoded)} bytes encoded; the limit is "
            f"{MAX_VALUE_BYTES}. Store large results in a table and pass its name."
        )
    _context.record_value(key, json.loads(encoded))


def get(task_key: str, key: str, *, default: Any = None, debug_value: Any = None) -> Any:
    """Read a value set by an upstream task of the same run.

    Args:
        task_key: the task that set it.
        key: the value's name.
        default: returned when the upstream task ran but did not set ``key``.
        debug_value: returned outside a job run.

    Raises:
        NotFound: ``task_key`` is not an upstream task of the running task, or it did not set
            ``key`` and no ``default`` was given.
    """
    ctx = _context.current()
    if ctx is None:
        return debug_value
    upstream = ctx.get("upstream_values") or {}
    if task_key not in upstream:
        if task_key == ctx.get("task_key"):
            return ctx["values"].get(key, default)
        raise NotFound(
            f"Task {task_key!r} is not upstream of task {ctx.get('task_key')!r}; "
            f"task values come from: {sorted(upstream) or 'no upstream tasks'}."
        )
    values = upstream[task_key]
    if key not in values:
        if default is not None:
            return default
        raise NotFound(
            f"Task {task_key!r} set no value {key!r} (it set {sorted(values)}); "
            "pass default= to allow that."
        )
    return values[key]
