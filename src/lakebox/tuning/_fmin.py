"""``lakebox.tuning.fmin``: Hyperopt's fmin, trials in parallel processes, each a nested run."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from typing import Any

from lakebox.errors import Conflict, InvalidInput, MissingDependency
from lakebox.tuning._pool import ObjectiveNotLoadable, WorkerDied, WorkerPool
from lakebox.tuning._worker import ERROR_TAG, MAX_PARAM, MAX_TAG, PARENT_TAG, STATUS_TAG, flatten

__all__ = ["ALGORITHMS", "fmin"]

log = logging.getLogger(__name__)

ALGORITHMS = ("tpe", "random", "anneal")
_ALIASES = {"tpe": "tpe", "random": "rand", "rand": "rand", "anneal": "anneal"}
MAX_PARALLELISM = 64


def _algorithm(algo: str | Callable[..., Any] | None) -> Callable[..., Any]:
    import hyperopt

    if algo is None:
        algo = "tpe"
    if isinstance(algo, str):
        module = _ALIASES.get(algo.lower())
        if module is None:
            raise InvalidInput(
                f"Unknown search algorithm algo={algo!r}. Use one of "
                f"{list(ALGORITHMS)} or a Hyperopt suggest function such as "
                "hyperopt.tpe.suggest."
            )
        return getattr(hyperopt, module).suggest
    if callable(algo):
        return algo
    raise InvalidInput(
        f"algo={algo!r} is not a search algorithm. Use one of {list(ALGORITHMS)} "
        "or a Hyperopt suggest function; pass the number of trials as "
        "max_evals=."
    )


def _check_count(name: str, value: Any, *, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{name} must be a positive integer, got {value!r}. {hint}")
    return value


def _domain(fn: Callable[..., Any], space: Any) -> Any:
    from hyperopt.base import Domain
    from hyperopt.exceptions import DuplicateLabel

    if space is None or (isinstance(space, (dict, list, tuple)) and not space):
        raise InvalidInput(
            f"The search space is empty ({space!r}). Give at least one "
            "hyperparameter, e.g. {'C': hp.loguniform('C', -4, 2)}."
        )
    try:
        domain = Domain(fn, space)
    except DuplicateLabel as exc:
        raise InvalidInput(
            f"The search space uses the label {exc.args[0]!r} twice; every hp.* "
            "expression needs its own label."
        ) from None
    if not domain.params:
        raise InvalidInput(
            f"The search space {space!r} has no hyperparameters (no hp.* "
            "expressions), so there is nothing to search. Use hyperopt.hp, e.g. "
            "hp.uniform('x', 0, 1)."
        )
    return domain


def _pickled(fn: Callable[..., Any]) -> bytes:
    import cloudpickle

    try:
        return bytes(cloudpickle.dumps(fn))
    except Exception as exc:
        raise InvalidInput(
            f"The objective {getattr(fn, '__name__', fn)!r} cannot be pickled "
            f"({type(exc).__name__}: {exc}). Trials run in worker processes, so the objective "
            "and everything it refers to must be picklable (as with Hyperopt's SparkTrials): "
            "load data inside the objective or refer to plain data (DataFrames, arrays), not "
            "to open connections, locks or a Workspace."
        ) from None


def fmin(
    fn: Callable[[Any], Any],
    space: Any,
    algo: str | Callable[..., Any] | None = "tpe",
    max_evals: int | None = None,
    timeout: float | None = None,
    loss_threshold: float | None = None,
    trials: Any = None,
    rstate: Any = None,
    *,
    parallelism: int | None = None,
    return_argmin: bool = True,
    early_stop_fn: Callable[..., Any] | None = None,
    run_name: str | None = None,
    verbose: bool = False,
    show_progressbar: bool = False,
) -> Any:
    """Minimize ``fn`` over ``space`` with Hyperopt, trials in parallel, each a nested MLflow run.

    The arguments are Hyperopt's (``hyperopt.fmin``); what :class:`hyperopt.SparkTrials`
    gives on Databricks, on one machine: ``parallelism`` worker processes evaluate trials at
    the same time. Every trial is an MLflow run nested under one parent run (the active run,
    or a new one named ``run_name``) with the sampled params, the ``loss`` metric, the
    ``duration_s`` metric and a ``lakebox.tuning.status`` tag. A trial whose objective raises
    ends as a FAILED run with the error in the ``lakebox.tuning.error`` tag and the search goes
    on. The parent gets ``best_<param>`` params, the ``best_loss`` metric and the
    ``lakebox.tuning.best_run_id`` tag.

    The objective is pickled (with cloudpickle) and sent to the workers, so it must be
    picklable, like with SparkTrials: refer to plain data, or load it inside the objective;
    never to an open connection or a ``Workspace``. Inside the objective the trial's run is
    active, so ``mlflow.log_metric`` logs to it.

    Args:
        fn: the objective: takes a point of ``space`` and returns a loss, or a dict with
            ``status`` (``"ok"``/``"fail"``) and ``loss`` as in Hyperopt.
        space: a Hyperopt search space (``hyperopt.hp`` expressions).
        algo: ``"tpe"`` (default), ``"random"``, ``"anneal"`` or a Hyperopt suggest function.
        max_evals: how many trials in total (counting those already in ``trials``).
        timeout: seconds after which no new trial starts (running ones finish).
        loss_threshold: stop starting trials once a loss at or below this is found.
        trials: a ``hyperopt.Trials`` to fill (and to resume from); a new one by default.
        rstate: a ``numpy.random.Generator`` (or ``$HYPEROPT_FMIN_SEED``) for reproducibility.
        parallelism: worker processes; default ``min(max_evals, cpu count)``.
        return_argmin: return Hyperopt's argmin (indices for ``hp.choice``) like
            ``hyperopt.fmin``; ``False`` returns the best point itself (``space_eval``).
        early_stop_fn: Hyperopt's ``early_stop_fn(trials, *args) -> (stop, args)`` (e.g.
            ``hyperopt.early_stop.no_progress_loss(10)``), called after each trial; once it
            says stop, no new trial starts.
        run_name: name of the parent run when there is no active run.
        verbose: accepted for Hyperopt compatibility; trials are in the MLflow run instead.
        show_progressbar: accepted for Hyperopt compatibility (no progress bar).

    Returns:
        The best assignment, as ``hyperopt.fmin`` returns it.

    Example:
        >>> from hyperopt import hp
        >>> best = lakebox.tuning.fmin(lambda p: (p["x"] - 3) ** 2,      # doctest: +SKIP
        ...                            {"x": hp.uniform("x", -10, 10)},
        ...                            max_evals=16, parallelism=2)
    """
    try:
        import hyperopt
    except ImportError:  # pragma: no cover - hyperopt is a core dependency
        raise MissingDependency("hyperopt", "tuning", "lakebox.tuning.fmin") from None
    import mlflow
    import numpy as np

    if not callable(fn):
        raise InvalidInput(f"The objective fn must be callable, got {fn!r}.")
    if max_evals is None:
        raise InvalidInput("max_evals is required: how many trials to run, e.g. max_evals=32.")
    max_evals = _check_count("max_evals", max_evals, hint="It is the total number of trials.")
    suggest = _algorithm(algo)
    domain = _domain(fn, space)
    if parallelism is None:
        parallelism = min(max_evals, os.cpu_count() or 1)
    parallelism = _check_count(
        "parallelism", parallelism, hint="It is the number of trials run at the same time."
    )
    if parallelism > MAX_PARALLELISM:
        raise InvalidInput(
            f"parallelism={parallelism} is more than {MAX_PARALLELISM} worker "
            "processes; use fewer (one per core is usually best)."
        )
    if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
        raise InvalidInput(f"timeout must be a positive number of seconds, got {timeout!r}.")
    if trials is None:
        trials = hyperopt.Trials()
    elif not isinstance(trials, hyperopt.Trials) or getattr(trials, "asynchronous", False):
        raise InvalidInput(
            f"trials must be a plain hyperopt.Trials, got "
            f"{type(trials).__name__}; lakebox runs the trials itself (set "
            "parallelism= instead of using SparkTrials)."
        )
    if rstate is None:
        seed = os.environ.get("HYPEROPT_FMIN_SEED", "")
        rstate = np.random.default_rng(int(seed)) if seed else np.random.default_rng()
    fn_bytes = _pickled(fn)

    own_run = mlflow.active_run() is None
    parent = mlflow.start_run(run_name=run_name or "fmin") if own_run else mlflow.active_run()
    assert parent is not None
    search = _Search(
        suggest,
        domain,
        trials,
        rstate,
        max_evals=max_evals,
        timeout=timeout,
        loss_threshold=loss_threshold,
        parent_run_id=parent.info.run_id,
        experiment_id=parent.info.experiment_id,
        early_stop_fn=early_stop_fn,
    )
    try:
        algo_name = algo if isinstance(algo, str) else getattr(suggest, "__module__", "custom")
        mlflow.set_tags(
            {
                "lakebox.tuning.algo": str(algo_name),
                "lakebox.tuning.max_evals": str(max_evals),
                "lakebox.tuning.parallelism": str(parallelism),
            }
        )
        with WorkerPool(
            parallelism,
            fn_bytes=fn_bytes,
            tracking_uri=mlflow.get_tracking_uri(),
            registry_uri=mlflow.get_registry_uri(),
            experiment_id=parent.info.experiment_id,
        ) as pool:
            search.run(pool, parallelism)
        best = search.log_best()
    except BaseException:
        if own_run:
            mlflow.end_run(status="FAILED")
        raise
    if own_run:
        mlflow.end_run()
    if return_argmin:
        return trials.argmin
    return best


class _Search:
    """The ask-evaluate-tell loop over a hyperopt ``Trials``."""

    def __init__(
        self,
        suggest: Callable[..., Any],
        domain: Any,
        trials: Any,
        rstate: Any,
        *,
        max_evals: int,
        timeout: float | None,
        loss_threshold: float | None,
        parent_run_id: str,
        experiment_id: str,
        early_stop_fn: Callable[..., Any] | None = None,
    ) -> None:
        self.suggest, self.domain, self.trials, self.rstate = suggest, domain, trials, rstate
        self.max_evals, self.timeout, self.loss_threshold = max_evals, timeout, loss_threshold
        self.parent_run_id, self.experiment_id = parent_run_id, experiment_id
        self.best_loss = math.inf
        self.exhausted = False
        self.early_stop_fn = early_stop_fn
        self.early_stop_args: list[Any] = []
        self._finished: list[dict[str, Any]] = []

    def _stop_starting(self, started: float) -> bool:
        if self.exhausted:
            return True
        if self.timeout is not None and time.monotonic() - started >= self.timeout:
            return True
        return self.loss_threshold is not None and self.best_loss <= self.loss_threshold

    def _ask(self) -> dict[str, Any] | None:
        from hyperopt import JOB_STATE_RUNNING, space_eval
        from hyperopt.base import spec_from_misc

        trials = self.trials
        tids = trials.new_trial_ids(1)
        trials.refresh()
        docs = self.suggest(tids, self.domain, trials, self.rstate.integers(2**31 - 1))
        if not docs:
            self.exhausted = True
            return None
        trials.insert_trial_docs(docs)
        doc = trials._dynamic_trials[-1]
        doc["state"] = JOB_STATE_RUNNING
        doc["book_time"] = datetime.now(timezone.utc).replace(tzinfo=None)
        trials.refresh()
        doc["point"] = space_eval(self.domain.expr, spec_from_misc(doc["misc"]))
        return doc

    def _tell(self, doc: dict[str, Any], future: Future[dict[str, Any]]) -> None:
        from hyperopt import JOB_STATE_DONE

        try:
            reply = future.result()
            result = reply["result"]
            run_id = reply["run_id"]
        except WorkerDied as exc:
            run_id = self._record_dead_trial(doc, str(exc), exc.run_id)
            result = {"status": "fail", "error": str(exc)}
        result["run_id"] = run_id
        doc.pop("point", None)
        doc["result"] = result
        doc["state"] = JOB_STATE_DONE
        doc["refresh_time"] = datetime.now(timezone.utc).replace(tzinfo=None)
        if result["status"] == "ok":
            self.best_loss = min(self.best_loss, result["loss"])
        else:
            log.warning("Trial %s failed: %s", doc["tid"], result.get("error"))
        self.trials.refresh()
        if self.early_stop_fn is not None:
            self._early_stop(doc)

    def _early_stop(self, done: dict[str, Any]) -> None:
        """Ask early_stop_fn, showing it the finished trials in the order they finished
        (Hyperopt's stop functions look at the last trial's loss)."""
        from hyperopt import JOB_STATE_DONE, Trials

        self._finished.append(done)
        view = Trials()
        view._dynamic_trials = [d for d in self._finished if d["state"] == JOB_STATE_DONE]
        view.refresh()
        assert self.early_stop_fn is not None
        stop, args = self.early_stop_fn(view, *self.early_stop_args)
        self.early_stop_args = list(args)
        if stop:
            self.exhausted = True

    def _record_dead_trial(self, doc: dict[str, Any], error: str, run_id: str | None) -> str:
        """A worker died: make sure the trial's run exists and is FAILED with the reason."""
        from mlflow import MlflowClient

        client = MlflowClient()
        if run_id is None:
            run = client.create_run(
                self.experiment_id,
                run_name=f"trial-{doc['tid']}",
                tags={PARENT_TAG: self.parent_run_id, "lakebox.tuning.trial": str(doc["tid"])},
            )
            run_id = run.info.run_id
            for key, value in flatten(doc.get("point", {})).items():
                client.log_param(run_id, key, value[:MAX_PARAM])
        client.set_tag(run_id, STATUS_TAG, "fail")
        client.set_tag(run_id, ERROR_TAG, error[:MAX_TAG])
        client.set_terminated(run_id, "FAILED")
        return run_id

    def run(self, pool: WorkerPool, parallelism: int) -> None:
        pending: dict[Future[dict[str, Any]], dict[str, Any]] = {}
        with ThreadPoolExecutor(parallelism, thread_name_prefix="lakebox-trial") as threads:
            try:
                self._loop(pool, threads, parallelism, pending)
            except BaseException:  # Ctrl-C or an error: do not wait for running trials
                for future in pending:
                    future.cancel()
                pool.kill()
                raise

    def _loop(
        self,
        pool: WorkerPool,
        threads: ThreadPoolExecutor,
        parallelism: int,
        pending: dict[Future[dict[str, Any]], dict[str, Any]],
    ) -> None:
        started = time.monotonic()
        submitted = len(self.trials._dynamic_trials)
        while True:
            while (
                submitted < self.max_evals
                and len(pending) < parallelism
                and not self._stop_starting(started)
            ):
                doc = self._ask()
                if doc is None:
                    break
                task = {
                    "tid": doc["tid"],
                    "point": doc["point"],
                    "experiment_id": self.experiment_id,
                    "parent_run_id": self.parent_run_id,
                }
                pending[threads.submit(pool.run, task)] = doc
                submitted += 1
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                doc = pending.pop(future)
                if isinstance(future.exception(), ObjectiveNotLoadable):
                    raise InvalidInput(
                        f"The objective cannot be loaded in a worker process: "
                        f"{future.exception()}. Define it in an importable module or in the "
                        "script itself, and make sure what it refers to is picklable."
                    )
                self._tell(doc, future)

    def log_best(self) -> Any:
        """Log the best trial on the parent run; returns the best point."""
        import mlflow
        from hyperopt import space_eval
        from hyperopt.exceptions import AllTrialsFailed
        from mlflow.exceptions import MlflowException

        results = [t["result"] for t in self.trials.trials]
        failed = sum(1 for r in results if r.get("status") != "ok")
        mlflow.log_metrics({"num_trials": len(results), "num_failed_trials": failed})
        try:
            best = self.trials.best_trial
        except AllTrialsFailed:
            errors = sorted({str(r.get("error")) for r in results if r.get("error")})
            raise InvalidInput(
                f"All {len(results)} trials failed, so there is no best point. "
                f"Errors: {errors[:3]}. The failed runs under parent run "
                f"{self.parent_run_id} hold the tracebacks."
            ) from None
        point = space_eval(self.domain.expr, self.trials.argmin)
        params = {f"best_{k}": v[:MAX_PARAM] for k, v in flatten(point).items()}
        try:
            mlflow.log_params(params)
        except MlflowException as exc:
            raise Conflict(
                f"Run {self.parent_run_id} already has different best_* params "
                f"(from an earlier fmin in the same run?): {exc.message[:300]}. "
                "Start one run per search, e.g. "
                "mlflow.start_run(nested=True)."
            ) from None
        mlflow.log_metric("best_loss", best["result"]["loss"])
        mlflow.set_tag("lakebox.tuning.best_run_id", best["result"].get("run_id", ""))
        return point
