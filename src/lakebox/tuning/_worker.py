"""The trial worker: a child process that evaluates the objective, one trial at a time.

Started as ``python <this file>`` (not through ``multiprocessing``, so the user's
``__main__`` is never re-imported and scripts need no ``if __name__ == "__main__"`` guard; and
not as ``-m lakebox...``, so the worker does not pay for importing all of lakebox). It imports
nothing from lakebox. It speaks a tiny protocol on its original stdin/stdout:
length-prefixed cloudpickle messages. The objective's own prints go to stderr.

Messages from the parent: one ``init`` (sys.path, tracking URIs, the pickled objective), then
one ``trial`` per trial. For each trial the worker answers ``started`` (with the MLflow run id)
and then ``done`` (status, loss, result, error). A worker that dies between the two leaves the
parent to mark the run FAILED.
"""

from __future__ import annotations

import math
import os
import struct
import sys
import time
import traceback
from typing import IO, Any

_HEADER = struct.Struct("!Q")
# MLflow limits: param values 6000 characters, tag values 8000.
MAX_PARAM = 6000
MAX_TAG = 8000
STATUS_TAG = "lakebox.tuning.status"
TRIAL_TAG = "lakebox.tuning.trial"
ERROR_TAG = "lakebox.tuning.error"
PARENT_TAG = "mlflow.parentRunId"


def send(stream: IO[bytes], message: Any) -> None:
    import cloudpickle

    payload = cloudpickle.dumps(message)
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    import pickle

    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the other side closed the pipe")
    (size,) = _HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError("the other side closed the pipe mid-message")
    return pickle.loads(payload)


def flatten(point: Any, prefix: str = "") -> dict[str, str]:
    """A sampled point as MLflow params: nested dicts and lists become dotted keys."""
    if isinstance(point, dict):
        items: list[tuple[str, Any]] = [(str(k), v) for k, v in point.items()]
    elif isinstance(point, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(point)]
    else:
        return {prefix or "value": str(point)[:MAX_PARAM]}
    flat: dict[str, str] = {}
    for key, value in items:
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, (dict, list, tuple)) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = str(value)[:MAX_PARAM]
    return flat


def normalize_result(result: Any) -> dict[str, Any]:
    """The objective's return value as a Hyperopt result dict; raises ValueError if invalid."""
    if isinstance(result, dict):
        result = dict(result)
        status = result.get("status")
        if status not in ("ok", "fail"):
            raise ValueError(
                f"the objective returned a dict with status {status!r}; Hyperopt "
                "needs status 'ok' (with a 'loss') or 'fail'."
            )
        if status == "fail":
            return result
        loss = result.get("loss")
    else:
        loss, result = result, {"status": "ok"}
    try:
        value = float(loss)
    except (TypeError, ValueError):
        raise ValueError(
            f"the objective must return a number or a dict with a 'loss'; got loss {loss!r}."
        ) from None
    if math.isnan(value):
        raise ValueError("the objective returned a NaN loss.")
    result["loss"] = value
    return result


def run_trial(fn: Any, task: dict[str, Any], out: IO[bytes]) -> dict[str, Any]:
    """Evaluate one trial inside its own nested MLflow run."""
    import mlflow

    tags = {PARENT_TAG: task["parent_run_id"], TRIAL_TAG: str(task["tid"])}
    run = mlflow.start_run(
        experiment_id=task["experiment_id"], run_name=f"trial-{task['tid']}", tags=tags
    )
    run_id = run.info.run_id
    status = "FAILED"
    try:
        send(out, {"event": "started", "run_id": run_id})
        params = flatten(task["point"])
        if params:
            mlflow.log_params(params)
        started = time.perf_counter()
        try:
            result = normalize_result(fn(task["point"]))
            error = result.get("error") if result["status"] == "fail" else None
            if result["status"] == "fail" and not error:
                error = "the objective returned status 'fail'"
        except Exception as exc:  # the search goes on; the trial is recorded as failed
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            result = {"status": "fail", "error": text}
            error = text
            mlflow.set_tag("lakebox.tuning.traceback", traceback.format_exc()[-MAX_TAG:])
        duration = time.perf_counter() - started
        metrics = {"duration_s": duration}
        tags = {STATUS_TAG: result["status"]}
        if result["status"] == "ok":
            metrics["loss"] = result["loss"]
            status = "FINISHED"
        else:
            result["error"] = error
            tags[ERROR_TAG] = str(error)[:MAX_TAG]
        mlflow.log_metrics(metrics)
        mlflow.set_tags(tags)
    finally:
        mlflow.end_run(status=status)
    return {"event": "done", "run_id": run_id, "result": result, "duration_s": duration}


def _portable(result: dict[str, Any]) -> dict[str, Any]:
    """Drop result entries the parent could not unpickle (they stay in the child)."""
    import cloudpickle

    kept = {}
    for key, value in result.items():
        try:
            cloudpickle.dumps(value)
        except Exception:
            continue
        kept[key] = value
    return kept


def main() -> None:
    # Keep the protocol pipes to ourselves: the objective's prints go to stderr and it cannot
    # read the parent's messages.
    out = os.fdopen(os.dup(1), "wb")
    inp = os.fdopen(os.dup(0), "rb")
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)

    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)  # this folder is not a place to import from
    import cloudpickle
    import mlflow

    init = receive(inp)
    sys.path[:0] = [entry for entry in init["sys_path"] if entry not in sys.path]
    os.environ.update(init["env"])

    mlflow.set_tracking_uri(init["tracking_uri"])
    mlflow.set_registry_uri(init["registry_uri"])
    mlflow.MlflowClient().get_experiment(init["experiment_id"])  # opens the store before trial 1
    try:
        fn = cloudpickle.loads(init["fn"])
    except Exception as exc:
        send(out, {"event": "init_failed", "error": f"{type(exc).__name__}: {exc}"})
        return
    send(out, {"event": "ready"})
    while True:
        try:
            task = receive(inp)
        except EOFError:
            break
        if task is None:
            break
        reply = run_trial(fn, task, out)
        reply["result"] = _portable(reply["result"])
        send(out, reply)
    # Everything is logged synchronously by now; skip the slow interpreter teardown.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
