"""Demo step: the CI/CD job template — moving a challenger to Staging fires a webhook that
runs the validation job on a warm all-purpose cluster; it approves the version to Production
or rejects it with a comment."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import mlflow

from lakebox.demo import _data

if TYPE_CHECKING:
    from lakebox.demo import DemoContext

TITLE = "Jobs: a Staging transition runs the validation job (CI/CD template)"
FEATURES = ["sessions", "spend", "tickets"]
CLUSTER = "demo-validators"


def run(ctx: DemoContext) -> None:
    from sklearn.linear_model import LogisticRegression

    from lakebox.jobs import create_model_validation_job
    from lakebox.models import workspace_dispatcher
    from lakebox.tracking import pip_requirements

    ws = ctx.ws
    if CLUSTER not in [c["cluster_id"] for c in ws.jobs.list_clusters()]:
        ws.jobs.create_cluster(CLUSTER, num_workers=1)
    # warm the cluster's worker now (model loading imports skops, sklearn): it stays up
    ws.jobs.submit(
        {
            "name": "warm-up",
            "tasks": [
                {
                    "task_key": "imports",
                    "existing_cluster_id": CLUSTER,
                    "python_function_task": {
                        "function": "lakebox.jobs._builtin:preload",
                        "parameters": {
                            "modules": [
                                "mlflow.pyfunc",
                                "skops.io",
                                "sklearn.linear_model",
                                "lakebox.workspace",
                            ]
                        },
                    },
                }
            ],
        }
    )
    daily = ws.tables.read("main.raw.activity")
    y = _data.labels(daily).set_index("customer_id")["churned"]
    holdout = daily.groupby("customer_id")[FEATURES].mean().astype("float64").loc[y.index]
    holdout["churned"] = y.astype("int64")
    ws.tables.write("main.fs.churn_holdout", holdout.reset_index(), mode="overwrite")
    job_id, hook = create_model_validation_job(
        ws,
        model_name="churn",
        holdout_table="main.fs.churn_holdout",
        label_col="churned",
        cluster_id=CLUSTER,
        job_name="validate churn",
    )
    ctx.say(
        f"job {job_id} 'validate churn' runs on warm cluster {CLUSTER!r}; webhook "
        f"{hook.id[:8]} starts it on MODEL_VERSION_TRANSITIONED_TO_STAGING"
    )
    challenger = LogisticRegression(C=0.5, max_iter=500).fit(holdout[FEATURES], y)
    mlflow.set_experiment("lakebox-demo")
    with mlflow.start_run(run_name="churn-challenger"):
        info = mlflow.sklearn.log_model(
            challenger,
            name="model",
            input_example=holdout[FEATURES].head(3),
            registered_model_name="churn",
            pip_requirements=pip_requirements("sklearn"),
        )
    version = str(info.registered_model_version)
    dispatcher = workspace_dispatcher(ws, poll_interval_seconds=0.02)
    dispatcher.start()
    started = time.perf_counter()
    try:
        ws.models.transition_stage("churn", version, "Staging", comment="challenger")
        deadline = time.monotonic() + 120
        while not (runs := ws.jobs.list_runs(job_id)) or not runs[0].done:
            if time.monotonic() > deadline:
                raise TimeoutError("the validation job did not finish in 120 s")
            time.sleep(0.1)
    finally:
        dispatcher.stop()
        ws.webhooks.delete(hook.id)
    run = runs[0]
    result = run.task("validate").output.get("result") or {}
    stage = ws.models.get_version("churn", version).current_stage
    ctx.say(
        f"run {run.run_id} (trigger {run.trigger}) {run.result_state} in "
        f"{time.perf_counter() - started:.1f} s: {result.get('comment', run.state_message)}"
    )
    ctx.say(
        f"churn v{version} is now in {stage}; see `lakebox jobs runs` and "
        f"`lakebox jobs logs {run.run_id}`"
    )
    ws.jobs.close()
    ctx.state.update(validation_job_id=job_id, validation_run_id=run.run_id, challenger_stage=stage)
