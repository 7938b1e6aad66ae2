"""lakebox.tuning.fmin: parallel trials as nested MLflow runs, real worker processes."""

from __future__ import annotations

import os
import threading

import mlflow
import numpy as np
import pytest
from hyperopt import STATUS_OK, Trials, hp

import lakebox.tuning
from lakebox.errors import InvalidInput

SPACE = {"x": hp.uniform("x", -10, 10), "kind": hp.choice("kind", ["a", "b"])}


def quadratic(point):
    """Module-level objective: pickled by reference, imported by the workers."""
    return (point["x"] - 3) ** 2


def _children(parent_run_id: str) -> list[mlflow.entities.Run]:
    return mlflow.search_runs(
        search_all_experiments=True,
        output_format="list",
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
    )


def test_parallel_trials_are_nested_runs_with_the_best_on_the_parent(ws):
    def objective(point):
        mlflow.set_tag("pid", os.getpid())
        if point["kind"] == "b":
            raise ValueError(f"kind b is broken (x={point['x']:.2f})")
        mlflow.log_metric("seen_by_objective", 1.0)  # the trial's run is active
        return {"loss": (point["x"] - 3) ** 2, "status": STATUS_OK, "pid": os.getpid()}

    trials = Trials()
    with mlflow.start_run(run_name="search") as parent:
        best = lakebox.tuning.fmin(
            objective,
            SPACE,
            algo="random",
            max_evals=8,
            parallelism=2,
            trials=trials,
            rstate=np.random.default_rng(7),
            return_argmin=False,
        )
    children = _children(parent.info.run_id)
    assert len(children) == 8
    assert {c.data.tags["lakebox.tuning.trial"] for c in children} == {str(i) for i in range(8)}
    ok = [c for c in children if c.info.status == "FINISHED"]
    failed = [c for c in children if c.info.status == "FAILED"]
    assert len(failed) == sum(c.data.params["kind"] == "b" for c in children) > 0
    for run in failed:
        assert run.data.tags["lakebox.tuning.status"] == "fail"
        assert "ValueError: kind b is broken" in run.data.tags["lakebox.tuning.error"]
        assert "loss" not in run.data.metrics
    for run in ok:
        assert set(run.data.params) == {"x", "kind"}
        assert run.data.metrics["seen_by_objective"] == 1.0
        assert run.data.metrics["duration_s"] >= 0
        assert run.data.tags["lakebox.tuning.status"] == "ok"

    best_loss = min(c.data.metrics["loss"] for c in ok)
    parent_run = mlflow.get_run(parent.info.run_id)
    assert parent_run.data.metrics["best_loss"] == pytest.approx(best_loss)
    assert parent_run.data.metrics["num_trials"] == 8
    assert parent_run.data.metrics["num_failed_trials"] == len(failed)
    best_child = mlflow.get_run(parent_run.data.tags["lakebox.tuning.best_run_id"])
    assert best_child.data.metrics["loss"] == pytest.approx(best_loss)
    assert parent_run.data.params["best_x"] == best_child.data.params["x"]
    assert parent_run.data.params["best_kind"] == best_child.data.params["kind"]
    assert best == {"x": pytest.approx(float(best_child.data.params["x"])), "kind": "a"}

    # hyperopt's Trials is filled as hyperopt.fmin would, failures included
    assert len(trials.trials) == 8
    assert trials.statuses().count("fail") == len(failed)
    assert trials.best_trial["result"]["loss"] == pytest.approx(best_loss)
    assert {r["pid"] for r in trials.results if r["status"] == "ok"} <= {
        int(c.data.tags["pid"]) for c in children
    }
    pids = {c.data.tags["pid"] for c in children}
    assert len(pids) == 2 and str(os.getpid()) not in pids  # two worker processes


def test_new_parent_run_when_none_is_active_and_argmin_like_hyperopt(ws):
    best = lakebox.tuning.fmin(
        quadratic,
        {"x": hp.uniform("x", -10, 10), "kind": hp.choice("kind", ["a", "b"])},
        max_evals=4,
        parallelism=2,
        run_name="my-search",
    )
    assert mlflow.active_run() is None
    [parent] = mlflow.search_runs(
        search_all_experiments=True,
        output_format="list",
        filter_string="attributes.run_name = 'my-search'",
    )
    assert parent.info.status == "FINISHED"
    assert len(_children(parent.info.run_id)) == 4
    assert set(best) == {"x", "kind"} and best["kind"] in (0, 1)  # index, as hyperopt returns
    assert parent.data.metrics["best_loss"] == pytest.approx((best["x"] - 3) ** 2)


def test_worker_that_dies_fails_its_trial_and_the_search_goes_on(ws, tmp_path):
    marker = tmp_path / "died-once"

    def objective(point):
        if not marker.exists():
            marker.touch()
            os._exit(3)  # the worker process dies mid-trial, once
        return point["x"]

    trials = Trials()
    with mlflow.start_run() as parent:
        lakebox.tuning.fmin(
            objective, {"x": hp.uniform("x", -1, 1)}, max_evals=3, parallelism=1, trials=trials
        )
    children = _children(parent.info.run_id)
    assert sorted(c.info.status for c in children) == ["FAILED", "FINISHED", "FINISHED"]
    [died] = [c for c in children if c.info.status == "FAILED"]
    assert "exit code 3" in died.data.tags["lakebox.tuning.error"]
    assert "x" in died.data.params
    assert trials.statuses() == ["fail", "ok", "ok"]


def test_all_trials_failing_is_a_clear_error(ws):
    def objective(point):
        raise RuntimeError("boom")

    failed_search = pytest.raises(InvalidInput, match="All 2 trials failed.*boom")
    with mlflow.start_run() as parent, failed_search:
        lakebox.tuning.fmin(objective, {"x": hp.uniform("x", 0, 1)}, max_evals=2, parallelism=1)
    assert [c.info.status for c in _children(parent.info.run_id)] == ["FAILED", "FAILED"]


def test_loss_threshold_stops_starting_trials(ws):
    trials = Trials()
    lakebox.tuning.fmin(
        lambda p: 0.0,
        {"x": hp.uniform("x", 0, 1)},
        max_evals=50,
        parallelism=1,
        loss_threshold=0.5,
        trials=trials,
    )
    assert len(trials.trials) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_evals": 0}, "max_evals must be a positive integer, got 0"),
        ({"max_evals": -3}, "max_evals must be a positive integer"),
        ({"max_evals": True}, "max_evals must be a positive integer"),
        ({"max_evals": 2.5}, "max_evals must be a positive integer"),
        ({}, "max_evals is required"),
        ({"max_evals": 4, "algo": "bayes"}, "Unknown search algorithm algo='bayes'"),
        ({"max_evals": 4, "algo": 8}, "is not a search algorithm"),
        ({"max_evals": 4, "parallelism": 0}, "parallelism must be a positive integer"),
        ({"max_evals": 4, "parallelism": 1000}, "parallelism=1000 is more than"),
        ({"max_evals": 4, "timeout": -1}, "timeout must be a positive number"),
        ({"max_evals": 4, "trials": object()}, "trials must be a plain hyperopt.Trials"),
    ],
)
def test_bad_arguments(ws, kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        lakebox.tuning.fmin(quadratic, {"x": hp.uniform("x", 0, 1)}, **kwargs)
    assert mlflow.active_run() is None
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []


@pytest.mark.parametrize("space", [{}, [], None, {"x": 1}])
def test_empty_space(ws, space):
    with pytest.raises(InvalidInput, match="search space"):
        lakebox.tuning.fmin(quadratic, space, max_evals=4)


def test_duplicate_label(ws):
    with pytest.raises(InvalidInput, match="label 'x' twice"):
        lakebox.tuning.fmin(quadratic, [hp.uniform("x", 0, 1), hp.normal("x", 0, 1)], max_evals=4)


def test_unpicklable_objective(ws):
    lock = threading.Lock()

    def objective(point):
        with lock:
            return point["x"]

    with pytest.raises(InvalidInput, match="cannot be pickled.*must be picklable"):
        lakebox.tuning.fmin(objective, {"x": hp.uniform("x", 0, 1)}, max_evals=2)


def test_objective_that_workers_cannot_import(ws, monkeypatch):
    import sys
    import types

    module = types.ModuleType("lakebox_vanishing_module")
    exec("def objective(point):\n    return point['x']\n", module.__dict__)
    monkeypatch.setitem(sys.modules, "lakebox_vanishing_module", module)  # not on disk
    with pytest.raises(InvalidInput, match="cannot be loaded in a worker process"):
        lakebox.tuning.fmin(
            module.objective, {"x": hp.uniform("x", 0, 1)}, max_evals=2, parallelism=1
        )
    assert mlflow.active_run() is None


def test_early_stop_fn_like_hyperopt(ws):
    import hyperopt
    from hyperopt.early_stop import no_progress_loss

    space = {"x": hp.uniform("x", 0, 1)}
    expected = Trials()
    hyperopt.fmin(
        lambda p: 1.0,
        space,
        algo=hyperopt.tpe.suggest,
        max_evals=30,
        trials=expected,
        early_stop_fn=no_progress_loss(3),
        show_progressbar=False,
    )
    trials = Trials()
    lakebox.tuning.fmin(
        lambda p: 1.0,
        space,
        max_evals=30,
        parallelism=1,
        trials=trials,
        early_stop_fn=no_progress_loss(3),
        show_progressbar=False,
        verbose=False,
    )
    assert len(trials.trials) == len(expected.trials) < 30
