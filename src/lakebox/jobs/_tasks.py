"""Task types: the registry of built-in (``lakebox_task``) types and how a task becomes a
request for a worker process.

A built-in task type is a name bound to an importable ``"module:function"`` that is called as
``function(ws, **parameters)`` in the worker. Later parts of lakebox register theirs::

    from lakebox.jobs import register_task_type
    register_task_type("score-batch", "lakebox.features._tasks:score_batch_task",
                       description="Score a Delta table with a registered model")

Packages outside lakebox can do the same through the ``lakebox.task_types`` entry-point group
(``name = "module:function"``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from lakebox.errors import InvalidInput

__all__ = ["TaskType", "build_request", "register_task_type", "substitute", "task_types"]


@dataclass(frozen=True)
class TaskType:
    """A named built-in task type."""

    name: str
    target: str
    description: str = ""


_REGISTRY: dict[str, TaskType] = {}
_entry_points_loaded = False


def register_task_type(name: str, target: str, *, description: str = "") -> TaskType:
    """Register (or replace) a built-in task type usable as ``lakebox_task: {type: name}``.

    Args:
        name: the type's name, e.g. ``"validate-model"``.
        target: ``"module:function"``; the function is called as ``fn(ws, **parameters)``.
        description: one line shown by ``lakebox jobs task-types``.

    Example:
        >>> register_task_type("optimize-table", "lakebox.jobs._builtin:optimize_table").name
        'optimize-table'
    """
    if not isinstance(name, str) or not re.match(r"^[A-Za-z][\w\-.]*$", name):
        raise InvalidInput(
            f"Task type name {name!r} must start with a letter and hold only "
            "letters, digits, '_', '-' or '.'."
        )
    if not isinstance(target, str) or ":" not in target:
        raise InvalidInput(f"Task type {name!r}: target {target!r} must be 'module:function'.")
    task_type = TaskType(name, target, description)
    _REGISTRY[name] = task_type
    return task_type


def task_types() -> dict[str, TaskType]:
    """Every registered task type, including those from ``lakebox.task_types`` entry points."""
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        for ep in entry_points(group="lakebox.task_types"):
            _REGISTRY.setdefault(ep.name, TaskType(ep.name, ep.value, f"from {ep.module}"))
    return dict(_REGISTRY)


register_task_type(
    "optimize-table",
    "lakebox.jobs._builtin:optimize_table",
    description="Compact (and Z-order) a Delta table: {name, zorder_by}",
)
register_task_type(
    "vacuum-table",
    "lakebox.jobs._builtin:vacuum_table",
    description="Delete files older versions no longer need: {name, retention_hours}",
)
register_task_type(
    "sleep", "lakebox.jobs._builtin:sleep", description="Wait some seconds: {seconds}"
)
register_task_type(
    "validate-model",
    "lakebox.jobs._cicd:validate_model",
    description="Score a model version on a holdout table vs Production; approve or reject",
)
register_task_type(
    "run-job",
    "lakebox.jobs._builtin:run_job",
    description="Run another job and wait for it: {job_id, job_parameters}",
)


# ----------------------------------------------------------------------------- references
_REFERENCE = re.compile(r"\{\{\s*([\w.\-]+)\s*\}\}")


def substitute(value: Any, refs: dict[str, Any]) -> Any:
    """Replace ``{{job.parameters.x}}``-style references in strings, recursively.

    A string that is exactly one reference takes the referenced value with its type (so
    ``"{{tasks.train.values.auc}}"`` becomes a float); references inside longer strings are
    formatted as text.
    """
    if isinstance(value, dict):
        return {k: substitute(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, refs) for v in value]
    if not isinstance(value, str) or "{{" not in value:
        return value

    def lookup(name: str) -> Any:
        if name not in refs:
            known = ", ".join(sorted(k for k in refs if not k.startswith("tasks.")))
            raise InvalidInput(
                f"Unknown reference {{{{{name}}}}}. Known: {known}, and "
                "tasks.<task_key>.values.<name> of upstream tasks."
            )
        return refs[name]

    whole = _REFERENCE.fullmatch(value.strip())
    if whole:
        return lookup(whole.group(1))
    return _REFERENCE.sub(
        lambda m: v if isinstance(v := lookup(m.group(1)), str) else json.dumps(v), value
    )


def reference_values(
    *,
    job_id: int | None,
    run_id: int,
    task_key: str,
    parameters: dict[str, Any],
    trigger: str | None,
    upstream_values: dict[str, dict[str, Any]],
    start_time: int | None,
) -> dict[str, Any]:
    refs: dict[str, Any] = {
        "job.id": str(job_id or ""),
        "job.run_id": str(run_id),
        "task.name": task_key,
        "job.trigger.type": trigger or "",
        "job.start_time.ms": str(start_time or ""),
    }
    for name, value in parameters.items():
        refs[f"job.parameters.{name}"] = value
    for key, values in upstream_values.items():
        for name, value in values.items():
            refs[f"tasks.{key}.values.{name}"] = value
    return refs


# ----------------------------------------------------------------------------- requests
def build_request(
    task: dict[str, Any], *, refs: dict[str, Any], parameters: dict[str, Any]
) -> dict[str, Any]:
    """The worker request (kind, target, params) of a validated task, references resolved."""
    if task.get("python_function_task"):
        body = task["python_function_task"]
        return {
            "kind": "python_function",
            "target": body["function"],
            "params": substitute(body.get("parameters") or {}, refs),
        }
    if task.get("lakebox_task"):
        body = task["lakebox_task"]
        registered = task_types()
        if body["type"] not in registered:
            raise InvalidInput(f"Task type {body['type']!r} is not registered in this process.")
        return {
            "kind": "builtin",
            "target": registered[body["type"]].target,
            "params": substitute(body.get("parameters") or {}, refs),
        }
    if task.get("spark_python_task"):
        body = task["spark_python_task"]
        return {
            "kind": "python_file",
            "target": body["python_file"],
            "params": [str(p) for p in substitute(body.get("parameters") or [], refs)],
        }
    if task.get("notebook_task"):
        body = task["notebook_task"]
        params = {**parameters, **substitute(body.get("base_parameters") or {}, refs)}
        path = body["notebook_path"]
        kind = "notebook_ipynb" if path.endswith(".ipynb") else "notebook_py"
        return {"kind": kind, "target": path, "params": params}
    if task.get("sql_task"):
        body = task["sql_task"]
        query = body.get("query")
        if not isinstance(query, str):
            query = Path(body["file"]["path"]).read_text()
        sql_refs = {
            **refs,
            **{k: v for k, v in substitute(body.get("parameters") or {}, refs).items()},
        }
        return {"kind": "sql", "target": substitute(query, sql_refs), "params": None}
    raise InvalidInput(f"Task {task.get('task_key')!r} has no task type lakebox can run.")


def evaluate_condition(body: dict[str, Any], refs: dict[str, Any]) -> bool:
    """Evaluate a ``condition_task`` (numbers compare as numbers, else as strings)."""
    left, right = str(substitute(body["left"], refs)), str(substitute(body["right"], refs))
    a: Any
    b: Any
    try:
        a, b = float(left), float(right)
    except ValueError:
        a, b = left, right
    op = body["op"]
    if op == "EQUAL_TO":
        return bool(a == b)
    if op == "NOT_EQUAL":
        return bool(a != b)
    if op == "GREATER_THAN":
        return bool(a > b)
    if op == "GREATER_THAN_OR_EQUAL":
        return bool(a >= b)
    if op == "LESS_THAN":
        return bool(a < b)
    return bool(a <= b)
