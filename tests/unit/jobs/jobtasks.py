"""Task functions used by the jobs tests (imported by worker processes via PYTHONPATH)."""

from __future__ import annotations

import os
import time


def values():
    from lakebox.jobs import task_values

    return task_values


def add(a: int, b: int = 1) -> int:
    print(f"adding {a} + {b}")
    values().set("sum", a + b)
    return a + b


def read_sum(task_key: str = "a") -> int:
    got = values().get(task_key, "sum")
    print(f"upstream sum {got}")
    return got


def echo(value=None):
    return value


def fail(message: str = "boom"):
    print("about to fail")
    raise ValueError(message)


def fail_until(marker: str, times: int = 1) -> str:
    """Fail the first ``times`` calls (counted in a file), then succeed."""
    count = 0
    if os.path.exists(marker):
        with open(marker) as f:
            count = int(f.read())
    with open(marker, "w") as f:
        f.write(str(count + 1))
    if count < times:
        raise RuntimeError(f"failure {count + 1}")
    return "ok"


def sleep(seconds: float = 30.0) -> float:
    time.sleep(seconds)
    return seconds


def pid_and_env(name: str = "JOB_ENV") -> dict:
    return {"pid": os.getpid(), "env": os.environ.get(name)}


def set_env(name: str, value: str) -> None:
    os.environ[name] = value


def stamp() -> float:
    return time.time()


def context() -> dict:
    import sys

    ctx = sys.modules["lakebox.jobs._context"].current() or {}
    return {
        "task_key": ctx.get("task_key"),
        "parameters": ctx.get("parameters"),
        "trigger": ctx.get("trigger"),
        "trigger_info": ctx.get("trigger_info"),
    }


def append_line(path: str, text: str = "x") -> None:
    with open(path, "a") as f:
        f.write(text + "\n")


def fn_task(key: str, function: str, **extra: object) -> dict:
    """A python_function_task entry."""
    params = extra.pop("parameters", {})
    return {
        "task_key": key,
        "python_function_task": {"function": f"jobtasks:{function}", "parameters": params},
        **extra,
    }


def die_once(marker: str) -> str:
    """SIGKILL this worker process the first time (like the OOM killer would)."""
    import signal

    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"
