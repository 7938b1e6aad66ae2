"""The job worker process: runs task requests sent as JSON lines on stdin.

Started as a script (``python .../lakebox/jobs/_worker.py``) so that a fresh job-cluster worker
does not pay for importing lakebox unless its task needs it. A job-cluster worker runs one task
and exits; an all-purpose (warm pool) worker keeps running, so imports, loaded models and the
workspace stay cached between tasks.

Protocol: one JSON request per line on stdin, one JSON response per line on the original stdout;
while a task runs, file descriptors 1 and 2 point at the task's log file.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this folder would be sys.path[0] and its modules would shadow the standard
# library's (e.g. ``_context``); use the runner's working folder instead, like ``python -m``.
if sys.path and os.path.dirname(os.path.abspath(__file__)) == os.path.abspath(sys.path[0]):
    sys.path[0] = os.getcwd()

import contextlib
import importlib
import importlib.util
import json
import runpy
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_workspaces: dict[str, Any] = {}


def _load_context_module() -> Any:
    name = "lakebox.jobs._context"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _HERE / "_context.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_context = _load_context_module()


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the runner process dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    expected = os.environ.get("LAKEBOX_RUNNER_PID")
    if expected and str(os.getppid()) != expected:
        os._exit(1)  # the runner died before prctl took effect


@contextlib.contextmanager
def _output_to(log_path: str) -> Iterator[None]:
    """Point fds 1 and 2 (and sys.stdout/err) at the task's log file for the duration."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


def _workspace(home: str, settings: dict[str, Any] | None) -> Any:
    """The runner's workspace (same folder and settings), opened once per worker."""
    key = home + json.dumps(settings, sort_keys=True)
    if key not in _workspaces:
        from lakebox.workspace import Workspace

        _workspaces[key] = Workspace(home, settings=settings)
    return _workspaces[key]


def _resolve(target: str) -> Any:
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if type(value).__name__ == "Decimal":
        return int(value) if value == int(value) else float(value)
    return repr(value)


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (dates as ISO text, decimals as numbers, else repr)."""
    if value is None:
        return None
    return json.loads(json.dumps(value, default=_json_default))


@contextlib.contextmanager
def _argv(args: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = args
    try:
        yield
    finally:
        sys.argv = saved


def _run_notebook(path: str, params: dict[str, Any], context: dict[str, Any], log_path: str) -> Any:
    try:
        import nbclient
        import nbformat
    except ImportError:
        raise RuntimeError(
            "Running .ipynb notebooks needs nbclient and ipykernel: "
            "pip install 'lakebox[notebooks]'"
        ) from None
    nb = nbformat.read(path, as_version=4)
    lines = [
        f"{name} = {json.dumps(value)!s}"
        for name, value in params.items()
        if str(name).isidentifier()
    ]
    injected = nbformat.v4.new_code_cell("# Parameters injected by lakebox\n" + "\n".join(lines))
    injected.metadata["tags"] = ["injected-parameters"]
    # like papermill: right after the cell tagged "parameters", else first
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    nb.cells.insert(tagged[0] + 1 if tagged else 0, injected)
    folder = Path(log_path).parent
    ctx_file = folder / (Path(log_path).stem + ".context.json")
    values_file = folder / (Path(log_path).stem + ".values.jsonl")
    ctx_file.write_text(json.dumps({**context, "values": {}}))
    values_file.unlink(missing_ok=True)
    env = {
        **os.environ,
        _context.CONTEXT_FILE_ENV: str(ctx_file),
        _context.VALUES_FILE_ENV: str(values_file),
    }
    client = nbclient.NotebookClient(
        nb,
        timeout=None,
        kernel_name="python3",
        resources={"metadata": {"path": str(Path(path).parent)}},
    )
    try:
        client.execute(env=env)
    finally:
        out_path = folder / (Path(log_path).stem + ".ipynb")
        nbformat.write(nb, str(out_path))
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream":
                    sys.stdout.write(output.get("text", ""))
    if values_file.exists():
        for line in values_file.read_text().splitlines():
            item = json.loads(line)
            context["values"][item["key"]] = item["value"]
    return None


def run_request(request: dict[str, Any]) -> dict[str, Any]:
    """Run one task request and describe the outcome."""
    context = dict(request.get("context") or {})
    context["values"] = {}
    _context.set_current(context)
    started = time.time()
    out: dict[str, Any] = {"ok": True, "started_at": started}
    kind, params = request["kind"], request.get("params")
    target: str = request.get("target") or ""
    try:
        with _output_to(request["log_path"]):
            print(
                f"--- lakebox task {context.get('task_key')!r} attempt "
                f"{context.get('attempt_number', 0)} pid {os.getpid()} "
                f"at {time.strftime('%Y-%m-%d %H:%M:%S')}",
                flush=True,
            )
            result: Any = None
            if kind == "python_function":
                result = _resolve(target)(**(params or {}))
            elif kind == "builtin":
                result = _resolve(target)(
                    _workspace(request["home"], request.get("settings")), **(params or {})
                )
            elif kind == "python_file":
                with _argv([target, *(params or [])]):
                    runpy.run_path(target, run_name="__main__")
            elif kind == "notebook_py":
                with _argv([target]):
                    runpy.run_path(
                        target, run_name="__main__", init_globals={"params": dict(params or {})}
                    )
            elif kind == "notebook_ipynb":
                result = _run_notebook(target, dict(params or {}), context, request["log_path"])
            elif kind == "sql":
                table = _workspace(request["home"], request.get("settings")).sql(target)
                rows = table.slice(0, 1000).to_pylist()
                result = {
                    "columns": table.column_names,
                    "rows": _jsonable(rows),
                    "truncated": table.num_rows > 1000,
                    "num_rows": table.num_rows,
                }
                print(f"{table.num_rows} row(s)")
            else:
                raise ValueError(f"unknown task kind {kind!r}")
            out["result"] = _jsonable(result)
    except SystemExit as exc:  # scripts may call sys.exit(0)
        if exc.code not in (None, 0):
            out.update(ok=False, error=f"SystemExit: {exc.code}", error_trace="")
    except BaseException as exc:
        out.update(
            ok=False,
            error=f"{type(exc).__name__}: {exc}",
            error_trace="".join(traceback.format_exception(exc)),
        )
        with contextlib.suppress(OSError), open(request["log_path"], "a") as f:
            f.write(out["error_trace"])
    out["values"] = _jsonable(context.get("values") or {})
    out["finished_at"] = time.time()
    _context.set_current(None)
    return out


def main() -> None:
    _die_with_parent()
    protocol_out = os.fdopen(os.dup(1), "w", buffering=1)
    protocol_in = os.fdopen(os.dup(0), "r")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # tasks must not read the protocol stream
    os.close(devnull)
    protocol_out.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in protocol_in:
        request = json.loads(line)
        if request.get("op") == "exit":
            break
        response = run_request(request)
        protocol_out.write(json.dumps(response) + "\n")
        if request.get("once"):
            break


if __name__ == "__main__":
    main()
