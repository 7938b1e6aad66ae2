"""Job definitions: parse Python dicts, YAML or Databricks Jobs 2.1/2.2 JSON and validate them.

A job is kept in Databricks' ``JobSettings`` JSON shape, so what ``ws.jobs.get`` returns is
what ``/api/2.2/jobs/get`` serves and what ``databricks-sdk`` reads. Validation happens before
anything is stored: cycles, unknown task keys, bad cron, unknown clusters, functions that do
not import and parameters of the wrong type raise :class:`~lakebox.errors.InvalidInput`.

lakebox adds two task types to Databricks' set: ``python_function_task``
(``{"function": "module:function", "parameters": {...}}``) and ``lakebox_task``
(``{"type": "<registered name>", "parameters": {...}}``, see :mod:`lakebox.jobs._tasks`).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import os
import re
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lakebox.errors import InvalidInput, NotFound, close_matches
from lakebox.jobs._cron import QuartzCron

__all__ = [
    "RUN_IF",
    "TASK_TYPES",
    "load_job_spec",
    "resolve_function",
    "task_type",
    "validate_job_settings",
]

RUN_IF = (
    "ALL_SUCCESS",
    "AT_LEAST_ONE_SUCCESS",
    "NONE_FAILED",
    "ALL_DONE",
    "AT_LEAST_ONE_FAILED",
    "ALL_FAILED",
)
TASK_TYPES = (
    "python_function_task",
    "spark_python_task",
    "notebook_task",
    "sql_task",
    "lakebox_task",
    "condition_task",
)
CONDITION_OPS = (
    "EQUAL_TO",
    "NOT_EQUAL",
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUAL",
    "LESS_THAN",
    "LESS_THAN_OR_EQUAL",
)
_TASK_KEY = re.compile(r"^[\w\-.]{1,100}$")
# Databricks fields accepted and kept but not acted on by lakebox.
_JOB_KEYS = {
    "name",
    "tasks",
    "job_clusters",
    "parameters",
    "schedule",
    "trigger",
    "max_concurrent_runs",
    "timeout_seconds",
    "queue",
    "webhook_notifications",
    "email_notifications",
    "notification_settings",
    "tags",
    "description",
    "format",
    "edit_mode",
    "deployment",
    "environments",
    "git_source",
    "health",
    "run_as",
    "budget_policy_id",
    "performance_target",
    "usage_policy_id",
}
_TASK_KEYS = {
    "task_key",
    "description",
    "depends_on",
    "run_if",
    "max_retries",
    "min_retry_interval_millis",
    "retry_on_timeout",
    "timeout_seconds",
    "job_cluster_key",
    "existing_cluster_id",
    "new_cluster",
    "environment_key",
    "libraries",
    "email_notifications",
    "webhook_notifications",
    "notification_settings",
    "health",
    "disable_auto_optimization",
    *TASK_TYPES,
}
_SIMPLE_TYPES = (bool, int, float, str, list, dict)


def _fail(message: str) -> InvalidInput:
    return InvalidInput(f"Invalid job definition: {message}")


# ----------------------------------------------------------------------------- loading
def load_job_spec(source: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """Read a job definition from a dict, a YAML/JSON file or a YAML/JSON string.

    Accepts plain ``JobSettings`` (``{"name": ..., "tasks": [...]}``), the output of
    ``jobs get`` (``{"job_id": ..., "settings": {...}}``) and a bundle-style
    ``{"resources": {"jobs": {"<key>": {...}}}}`` holding exactly one job. Relative file paths
    in tasks are resolved against the definition file's folder.

    Example:
        >>> load_job_spec("name: nightly\\ntasks: [{task_key: a, sql_task: {query: 'SELECT 1'}}]")
        {'name': 'nightly', 'tasks': [{'task_key': 'a', 'sql_task': {'query': 'SELECT 1'}}]}
    """
    base: Path | None = None
    if isinstance(source, Mapping):
        data: Any = copy.deepcopy(dict(source))
    else:
        text = str(source)
        path = Path(text).expanduser()
        is_file = (
            "\n" not in text
            and len(text) < 4096
            and path.suffix.lower() in (".yaml", ".yml", ".json")
        )
        if is_file:
            if not path.is_file():
                raise NotFound(f"Job definition file {str(path)!r} does not exist.")
            text = path.read_text()
            base = path.resolve().parent
        data = _parse_text(text)
    if not isinstance(data, dict):
        raise _fail(f"expected a mapping with 'name' and 'tasks', got {type(data).__name__}.")
    if "settings" in data and "tasks" not in data:
        data = data["settings"]
    if "resources" in data and "tasks" not in data:
        jobs = (data.get("resources") or {}).get("jobs") or {}
        if len(jobs) != 1:
            raise _fail(
                f"a bundle file must hold exactly one job under resources.jobs, found {len(jobs)}."
            )
        data = next(iter(jobs.values()))
    if base is not None:
        _resolve_paths(data, base)
    return data


def _parse_text(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        try:
            return json.loads(text)
        except ValueError:
            raise _fail(f"cannot parse it as YAML or JSON: {exc}") from None


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    for task in data.get("tasks") or []:
        if not isinstance(task, dict):
            continue
        for kind, field in (
            ("spark_python_task", "python_file"),
            ("notebook_task", "notebook_path"),
        ):
            spec = task.get(kind)
            if isinstance(spec, dict) and isinstance(spec.get(field), str):
                path = Path(spec[field]).expanduser()
                if not path.is_absolute() and "://" not in spec[field]:
                    spec[field] = str((base / path).resolve())
        sql = task.get("sql_task")
        if isinstance(sql, dict) and isinstance(sql.get("file"), dict):
            path = Path(str(sql["file"].get("path", ""))).expanduser()
            if not path.is_absolute():
                sql["file"]["path"] = str((base / path).resolve())


# ----------------------------------------------------------------------------- helpers
def task_type(task: Mapping[str, Any]) -> str:
    """Which of :data:`TASK_TYPES` a (validated) task is."""
    for kind in TASK_TYPES:
        if task.get(kind) is not None:
            return kind
    raise _fail(
        f"task {task.get('task_key')!r} has no task type; give one of {', '.join(TASK_TYPES)}."
    )


def resolve_function(target: str, *, what: str = "function") -> Callable[..., Any]:
    """Import ``"package.module:function"`` (or ``package.module.function``)."""
    if not isinstance(target, str) or not target.strip():
        raise _fail(f"{what} must be 'module:function', got {target!r}.")
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise _fail(f"{what} {target!r} must be 'module:function', e.g. 'mypkg.tasks:train'.")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise _fail(
            f"{what} {target!r} cannot be imported: module {module_name!r} failed with "
            f"{type(exc).__name__}: {exc}. Check that it is installed or on "
            "PYTHONPATH where the job runs."
        ) from None
    fn: Any = module
    for part in attr.split("."):
        if not hasattr(fn, part):
            names = [n for n in dir(module) if not n.startswith("_")]
            raise _fail(
                f"{what} {target!r}: module {module_name!r} has no attribute "
                f"{part!r}.{close_matches(part, names)}"
            )
        fn = getattr(fn, part)
    if not callable(fn):
        raise _fail(f"{what} {target!r} is a {type(fn).__name__}, not a callable.")
    return fn


def _is_reference(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _check_value_type(value: Any, annotation: Any) -> bool:
    """False only when ``value`` clearly does not fit a simple ``annotation``."""
    if annotation is inspect.Parameter.empty or annotation is Any or _is_reference(value):
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        return any(_check_value_type(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    target = origin or annotation
    if target not in _SIMPLE_TYPES:
        return True  # not something a JSON value can be checked against
    if target is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if target is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, target)


def check_call(fn: Callable[..., Any], params: Mapping[str, Any], *, what: str) -> None:
    """Check that ``fn(**params)`` binds and that literal values fit simple annotations."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(**params)
    except TypeError as exc:
        names = [p for p in signature.parameters if p not in ("ws", "workspace")]
        raise _fail(
            f"{what}: parameters {sorted(params)} do not fit the signature "
            f"{signature}: {exc}. Expected parameters: {names}."
        ) from None
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {
            name: p.annotation
            for name, p in signature.parameters.items()
            if not isinstance(p.annotation, str)
        }
    for name, value in params.items():
        annotation = hints.get(name, inspect.Parameter.empty)
        if not _check_value_type(value, annotation):
            shown = getattr(annotation, "__name__", str(annotation))
            raise _fail(
                f"{what}: parameter {name!r} must be {shown}, got {type(value).__name__} {value!r}."
            )


def _require(
    value: Any, types: type | tuple[type, ...], where: str, *, minimum: int | None = None
) -> None:
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise _fail(f"{where} must be {_type_names(types)}, got bool {value!r}.")
    if not isinstance(value, types):
        raise _fail(f"{where} must be {_type_names(types)}, got {type(value).__name__} {value!r}.")
    number: Any = value
    if minimum is not None and number < minimum:
        raise _fail(f"{where} must be >= {minimum}, got {value!r}.")


def _type_names(types: type | tuple[type, ...]) -> str:
    items = types if isinstance(types, tuple) else (types,)
    return " or ".join(
        {
            "int": "an integer",
            "str": "a string",
            "bool": "true/false",
            "dict": "a mapping",
            "list": "a list",
            "float": "a number",
        }.get(t.__name__, t.__name__)
        for t in items
    )


def _unknown_keys(given: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in given:
        if key not in allowed:
            hint = close_matches(key, allowed) or " Allowed: " + ", ".join(sorted(allowed))
            raise _fail(f"unknown field {key!r} in {where}.{hint}")


# ----------------------------------------------------------------------------- validation
def validate_job_settings(
    settings: Mapping[str, Any],
    *,
    cluster_exists: Callable[[str], bool] | None = None,
    task_types: Mapping[str, Any] | None = None,
    check_imports: bool = True,
) -> dict[str, Any]:
    """Validate a job definition and return it normalized (defaults filled in).

    Args:
        settings: Databricks ``JobSettings`` JSON as a dict.
        cluster_exists: tells whether an all-purpose cluster id exists.
        task_types: registered ``lakebox_task`` types (name → :class:`TaskType`).
        check_imports: import ``python_function_task`` functions and check their parameters.

    Raises:
        InvalidInput: with a message naming the task, the bad value and the fix.
    """
    if not isinstance(settings, Mapping):
        raise _fail(f"expected a mapping, got {type(settings).__name__}.")
    job = copy.deepcopy(dict(settings))
    _unknown_keys(job, _JOB_KEYS, "the job")
    job["name"] = job.get("name") or "Untitled"
    _require(job["name"], str, "name")
    job["max_concurrent_runs"] = job.get("max_concurrent_runs", 1)
    _require(job["max_concurrent_runs"], int, "max_concurrent_runs", minimum=1)
    job["timeout_seconds"] = job.get("timeout_seconds", 0)
    _require(job["timeout_seconds"], int, "timeout_seconds", minimum=0)
    _validate_parameters(job)
    clusters = _validate_job_clusters(job)
    _validate_schedule(job)
    _validate_trigger(job)
    _validate_notifications(job.get("webhook_notifications"), "webhook_notifications")
    if job.get("queue") is not None:
        _require(job["queue"], dict, "queue")
        _require(job["queue"].get("enabled", False), bool, "queue.enabled")
    tasks = job.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise _fail("'tasks' must be a non-empty list of tasks, each with a 'task_key'.")
    keys: list[str] = []
    for index, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise _fail(f"tasks[{index}] must be a mapping, got {type(task).__name__}.")
        key = task.get("task_key")
        if not isinstance(key, str) or not _TASK_KEY.match(key):
            raise _fail(
                f"tasks[{index}].task_key {key!r} must be 1-100 letters, digits, '_', '-' or '.'."
            )
        if key in keys:
            raise _fail(f"task_key {key!r} is used by more than one task; keys must be unique.")
        keys.append(key)
    for task in tasks:
        _validate_task(
            task,
            keys,
            clusters,
            cluster_exists=cluster_exists,
            task_types=task_types or {},
            check_imports=check_imports,
        )
    _check_cycles(tasks)
    return job


def _validate_parameters(job: dict[str, Any]) -> None:
    params = job.get("parameters")
    if params is None:
        return
    if isinstance(params, dict):  # shorthand {name: default}
        params = [{"name": k, "default": v} for k, v in params.items()]
    _require(params, list, "parameters")
    seen: set[str] = set()
    for p in params:
        if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not p["name"]:
            raise _fail(f"each job parameter needs a 'name' and a 'default', got {p!r}.")
        if p["name"] in seen:
            raise _fail(f"job parameter {p['name']!r} is defined twice.")
        seen.add(p["name"])
        default = p.get("default", "")
        if not isinstance(default, (str, int, float, bool)) or default is None:
            raise _fail(
                f"job parameter {p['name']!r}: default must be a string (or number), "
                f"got {type(default).__name__} {default!r}."
            )
        p["default"] = default if isinstance(default, str) else json.dumps(default)
    job["parameters"] = params


def _validate_job_clusters(job: dict[str, Any]) -> set[str]:
    clusters = job.get("job_clusters") or []
    _require(clusters, list, "job_clusters")
    keys: set[str] = set()
    for c in clusters:
        if not isinstance(c, dict) or not isinstance(c.get("job_cluster_key"), str):
            raise _fail(
                f"each job cluster needs a 'job_cluster_key' and a 'new_cluster', got {c!r}."
            )
        _validate_new_cluster(c.get("new_cluster") or {}, f"job cluster {c['job_cluster_key']!r}")
        keys.add(c["job_cluster_key"])
    return keys


def _validate_new_cluster(spec: Any, where: str) -> None:
    _require(spec, dict, f"{where}: new_cluster")
    env = spec.get("spark_env_vars") or {}
    _require(env, dict, f"{where}: spark_env_vars")
    for k, v in env.items():
        if not isinstance(v, str):
            raise _fail(f"{where}: spark_env_vars[{k!r}] must be a string, got {v!r}.")


def _validate_schedule(job: dict[str, Any]) -> None:
    schedule = job.get("schedule")
    if schedule is None:
        return
    _require(schedule, dict, "schedule")
    expression = schedule.get("quartz_cron_expression")
    if not isinstance(expression, str):
        raise _fail("schedule.quartz_cron_expression is required, e.g. '0 0 6 * * ?'.")
    QuartzCron(expression, schedule.get("timezone_id") or "UTC")
    schedule.setdefault("timezone_id", "UTC")
    _pause_status(schedule, "schedule")


def _pause_status(spec: dict[str, Any], where: str) -> None:
    spec.setdefault("pause_status", "UNPAUSED")
    if spec["pause_status"] not in ("PAUSED", "UNPAUSED"):
        raise _fail(
            f"{where}.pause_status must be PAUSED or UNPAUSED, got {spec['pause_status']!r}."
        )


def _validate_trigger(job: dict[str, Any]) -> None:
    trigger = job.get("trigger")
    if trigger is None:
        return
    _require(trigger, dict, "trigger")
    _pause_status(trigger, "trigger")
    kinds = [k for k in ("file_arrival", "table_update", "table", "periodic") if trigger.get(k)]
    if len(kinds) != 1:
        raise _fail(
            "trigger needs exactly one of file_arrival {url} or table_update "
            f"{{table_names}}, got {sorted(trigger)}."
        )
    if "table" in trigger:  # older name of table_update
        trigger["table_update"] = trigger.pop("table")
    if trigger.get("periodic"):
        raise _fail("trigger.periodic is not supported; use schedule.quartz_cron_expression.")
    if trigger.get("file_arrival"):
        spec = trigger["file_arrival"]
        _require(spec, dict, "trigger.file_arrival")
        if not isinstance(spec.get("url"), str) or not spec["url"]:
            raise _fail("trigger.file_arrival.url must be a folder path, e.g. '/data/incoming/'.")
        for field in ("min_time_between_triggers_seconds", "wait_after_last_change_seconds"):
            _require(spec.get(field, 0), int, f"trigger.file_arrival.{field}", minimum=0)
    if trigger.get("table_update"):
        from lakebox.catalog import TableName

        spec = trigger["table_update"]
        _require(spec, dict, "trigger.table_update")
        names = spec.get("table_names")
        if not isinstance(names, list) or not names:
            raise _fail("trigger.table_update.table_names must be a non-empty list of tables.")
        spec["table_names"] = [TableName.parse(n).full_name for n in names]
        spec.setdefault("condition", "ANY_UPDATED")
        if spec["condition"] not in ("ANY_UPDATED", "ALL_UPDATED"):
            raise _fail(
                "trigger.table_update.condition must be ANY_UPDATED or ALL_UPDATED, "
                f"got {spec['condition']!r}."
            )
        _require(
            spec.get("min_time_between_triggers_seconds", 0),
            int,
            "trigger.table_update.min_time_between_triggers_seconds",
            minimum=0,
        )


def _validate_notifications(spec: Any, where: str) -> None:
    if spec is None:
        return
    _require(spec, dict, where)
    allowed = {
        "on_start",
        "on_success",
        "on_failure",
        "on_duration_warning_threshold_exceeded",
        "on_streaming_backlog_exceeded",
    }
    _unknown_keys(spec, allowed, where)
    for event, targets in spec.items():
        _require(targets, list, f"{where}.{event}")
        for target in targets:
            if not isinstance(target, dict) or not (target.get("url") or target.get("id")):
                raise _fail(
                    f"{where}.{event}: each entry needs a 'url' (or a webhook 'id'), "
                    f"got {target!r}."
                )


def _validate_task(
    task: dict[str, Any],
    keys: list[str],
    clusters: set[str],
    *,
    cluster_exists: Callable[[str], bool] | None,
    task_types: Mapping[str, Any],
    check_imports: bool,
) -> None:
    key = task["task_key"]
    where = f"task {key!r}"
    _unknown_keys(task, _TASK_KEYS, where)
    deps = task.get("depends_on") or []
    _require(deps, list, f"{where}: depends_on")
    for dep in deps:
        dep_key = dep.get("task_key") if isinstance(dep, dict) else dep
        if dep_key not in keys:
            raise _fail(
                f"{where} depends on unknown task_key {dep_key!r}."
                f"{close_matches(str(dep_key), keys) or ' Known: ' + ', '.join(keys)}"
            )
        if dep_key == key:
            raise _fail(f"{where} depends on itself.")
    task["depends_on"] = [d if isinstance(d, dict) else {"task_key": d} for d in deps]
    task.setdefault("run_if", "ALL_SUCCESS")
    if task["run_if"] not in RUN_IF:
        raise _fail(
            f"{where}: run_if {task['run_if']!r} is not one of {', '.join(RUN_IF)}."
            f"{close_matches(str(task['run_if']), RUN_IF)}"
        )
    task.setdefault("max_retries", 0)
    _require(task["max_retries"], int, f"{where}: max_retries", minimum=-1)
    task.setdefault("min_retry_interval_millis", 0)
    _require(
        task["min_retry_interval_millis"], int, f"{where}: min_retry_interval_millis", minimum=0
    )
    task.setdefault("retry_on_timeout", False)
    _require(task["retry_on_timeout"], bool, f"{where}: retry_on_timeout")
    task.setdefault("timeout_seconds", 0)
    _require(task["timeout_seconds"], int, f"{where}: timeout_seconds", minimum=0)
    _validate_notifications(task.get("webhook_notifications"), f"{where}: webhook_notifications")
    kinds = [k for k in TASK_TYPES if task.get(k) is not None]
    if len(kinds) != 1:
        raise _fail(
            f"{where} needs exactly one task type, got {kinds or 'none'}; use one of "
            f"{', '.join(TASK_TYPES)}."
        )
    kind = kinds[0]
    _require(task[kind], dict, f"{where}: {kind}")
    _validate_task_body(kind, task[kind], where, task_types=task_types, check_imports=check_imports)
    chosen = [k for k in ("job_cluster_key", "existing_cluster_id", "new_cluster") if task.get(k)]
    if len(chosen) > 1:
        raise _fail(f"{where} names more than one cluster ({', '.join(chosen)}); pick one.")
    if task.get("job_cluster_key") and task["job_cluster_key"] not in clusters:
        raise _fail(
            f"{where}: unknown job_cluster_key {task['job_cluster_key']!r}."
            f"{close_matches(task['job_cluster_key'], clusters)} Define it under "
            "job_clusters."
        )
    if task.get("existing_cluster_id"):
        cid = task["existing_cluster_id"]
        if cluster_exists is not None and not cluster_exists(cid):
            raise _fail(
                f"{where}: unknown all-purpose cluster {cid!r}. Create it first with "
                f"ws.jobs.create_cluster({cid!r}) or `lakebox jobs clusters create`."
            )
    if task.get("new_cluster"):
        _validate_new_cluster(task["new_cluster"], where)


def _validate_task_body(
    kind: str,
    body: dict[str, Any],
    where: str,
    *,
    task_types: Mapping[str, Any],
    check_imports: bool,
) -> None:
    if kind == "python_function_task":
        params = body.setdefault("parameters", {})
        _require(params, dict, f"{where}: python_function_task.parameters")
        target = body.get("function")
        if not isinstance(target, str):
            raise _fail(f"{where}: python_function_task.function must be 'module:function'.")
        if check_imports:
            fn = resolve_function(target, what=f"{where}: function")
            check_call(fn, params, what=f"{where}: {target}")
    elif kind == "spark_python_task":
        path = body.get("python_file")
        if not isinstance(path, str) or not path.endswith(".py"):
            raise _fail(f"{where}: spark_python_task.python_file must be a .py path, got {path!r}.")
        if not Path(path).expanduser().is_file():
            raise _fail(f"{where}: python_file {path!r} does not exist.")
        params = body.setdefault("parameters", [])
        _require(params, list, f"{where}: spark_python_task.parameters")
        body["parameters"] = [p if isinstance(p, str) else json.dumps(p) for p in params]
    elif kind == "notebook_task":
        path = body.get("notebook_path")
        if not isinstance(path, str) or not path.endswith((".py", ".ipynb")):
            raise _fail(
                f"{where}: notebook_task.notebook_path must be a .py or .ipynb file, got {path!r}."
            )
        if not Path(path).expanduser().is_file():
            raise _fail(f"{where}: notebook {path!r} does not exist.")
        params = body.setdefault("base_parameters", {})
        _require(params, dict, f"{where}: notebook_task.base_parameters")
    elif kind == "sql_task":
        query, file = body.get("query"), body.get("file")
        if isinstance(query, dict):
            raise _fail(
                f"{where}: saved queries (query_id) do not exist locally; give the "
                "SQL text as sql_task.query or a file as sql_task.file.path."
            )
        if not (isinstance(query, str) and query.strip()) and not (
            isinstance(file, dict) and isinstance(file.get("path"), str)
        ):
            raise _fail(f"{where}: sql_task needs 'query' (SQL text) or 'file': {{'path': ...}}.")
        if file and not Path(file["path"]).expanduser().is_file():
            raise _fail(f"{where}: SQL file {file['path']!r} does not exist.")
        params = body.setdefault("parameters", {})
        _require(params, dict, f"{where}: sql_task.parameters")
    elif kind == "lakebox_task":
        name = body.get("type")
        if name not in task_types:
            hint = close_matches(str(name), task_types) or " Registered: " + ", ".join(
                sorted(task_types)
            )
            raise _fail(f"{where}: unknown lakebox_task type {name!r}.{hint}")
        params = body.setdefault("parameters", {})
        _require(params, dict, f"{where}: lakebox_task.parameters")
        if check_imports:
            fn = resolve_function(task_types[str(name)].target, what=f"{where}: task type {name!r}")
            check_call(fn, {"ws": None, **params}, what=f"{where}: task type {name!r}")
    elif kind == "condition_task":
        if body.get("op") not in CONDITION_OPS:
            raise _fail(
                f"{where}: condition_task.op must be one of {', '.join(CONDITION_OPS)}, "
                f"got {body.get('op')!r}."
            )
        for side in ("left", "right"):
            if not isinstance(body.get(side), str):
                raise _fail(f"{where}: condition_task.{side} must be a string.")


def _check_cycles(tasks: list[dict[str, Any]]) -> None:
    graph = {t["task_key"]: [d["task_key"] for d in t["depends_on"]] for t in tasks}
    state: dict[str, int] = {}  # 1 visiting, 2 done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in graph[node]:
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep]
                raise _fail(
                    "depends_on has a cycle: "
                    + " -> ".join(cycle)
                    + " (x -> y: x depends on y). Remove one of these dependencies."
                )
            if state.get(dep) is None:
                visit(dep)
        path.pop()
        state[node] = 2

    for node in graph:
        if state.get(node) is None:
            visit(node)
