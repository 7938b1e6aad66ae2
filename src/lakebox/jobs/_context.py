"""The context of the task running in this process (set by the job worker).

This module imports nothing from lakebox: the job worker loads it by file path before any
user code, so ``lakebox.jobs.task_values`` finds the same state whether or not the user's task
imports the (heavier) ``lakebox`` package.
"""

from __future__ import annotations

import json
import os
from typing import Any

CONTEXT_FILE_ENV = "LAKEBOX_TASK_CONTEXT_FILE"
VALUES_FILE_ENV = "LAKEBOX_TASK_VALUES_FILE"

_current: dict[str, Any] | None = None
_debug_values: dict[str, Any] = {}


def current() -> dict[str, Any] | None:
    """The running task's context: ids, parameters, upstream task values; None outside a job."""
    global _current
    if _current is None and os.environ.get(CONTEXT_FILE_ENV):
        # a notebook kernel started by the worker: the context comes through a file
        with open(os.environ[CONTEXT_FILE_ENV]) as f:
            _current = json.load(f)
        _current.setdefault("values", {})
    return _current


def set_current(context: dict[str, Any] | None) -> None:
    global _current
    _current = context


def record_value(key: str, value: Any) -> None:
    """Store a task value of the running task (or of this debugging session)."""
    ctx = current()
    if ctx is None:
        _debug_values[key] = value
        return
    ctx["values"][key] = value
    if os.environ.get(VALUES_FILE_ENV):
        with open(os.environ[VALUES_FILE_ENV], "a") as f:
            f.write(json.dumps({"key": key, "value": value}) + "\n")
