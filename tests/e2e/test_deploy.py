"""Batch scoring end to end: score_table with worker processes, partitioned and Z-ordered
output, commit metadata, models that carry a feature spec, the CLI and the job task type."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from lakebox import deploy
from lakebox.cli import app
from lakebox.errors import InvalidInput, NotFound, SchemaMismatch
from lakebox.features import FeatureLookup


def _model(ws, name: str = "churn") -> LogisticRegression:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    model = LogisticRegression().fit(x, (x.a + x.b > 0).astype(int))
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            input_example=x.head(2),
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    return model


def _input(ws, n: int = 6_000, commits: int = 3) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "id": np.arange(n),
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "day": np.where(np.arange(n) % 2 == 0, "d1", "d2"),
        }
    )
    for part in np.array_split(np.arange(n), commits):
        ws.tables.write("main.raw.customers", df.iloc[part])
    return df


def test_score_table_in_worker_processes(ws) -> None:
    model = _model(ws)
    df = _input(ws)
    seen: list[tuple[int, int]] = []
    result = deploy.score_table(
        "models:/churn/1",
        "main.raw.customers",
        "main.preds.churn",
        ws=ws,
        partition_by=["day"],
        zorder_by=["id"],
        workers=2,
        batch_rows=1_000,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert (result.rows, result.input_version, result.model_version) == (6_000, 2, "1")
    assert seen[-1] == (6_000, 6_000) and len(seen) >= 3
    out = ws.tables.read("main.preds.churn").sort_values("id").reset_index(drop=True)
    np.testing.assert_array_equal(out["prediction"], model.predict(df[["a", "b"]]))
    assert set(out["model_name"]) == {"churn"} and set(out["model_version"]) == {"1"}
    assert out["scored_at"].nunique() == 1
    info = ws.tables.get("main.preds.churn")
    assert info.partition_columns == ["day"]
    history = ws.tables.history("main.preds.churn")
    assert history[0]["operation"] == "OPTIMIZE"
    write = history[1]
    assert write["lakebox.input_table"] == "main.raw.customers"
    assert write["lakebox.input_version"] == "2"
    assert (write["lakebox.model_name"], write["lakebox.model_version"]) == ("churn", "1")


def test_modes_versions_and_errors(ws) -> None:
    _model(ws)
    _input(ws, n=300)
    first = deploy.score_table(
        "models:/churn/latest",
        "main.raw.customers",
        "main.preds.c",
        ws=ws,
        workers=1,
        input_version=0,
        keep_columns=["id"],
    )
    assert first.rows == 100 and first.input_version == 0
    second = deploy.score_table(
        "models:/churn/1",
        "main.raw.customers",
        "main.preds.c",
        ws=ws,
        workers=1,
        keep_columns=["id"],
    )
    assert len(ws.tables.read("main.preds.c")) == 400 and second.rows == 300
    deploy.score_table(
        "models:/churn/1", "main.raw.customers", "main.preds.c", ws=ws, workers=1, mode="overwrite"
    )
    out = ws.tables.read("main.preds.c")
    assert len(out) == 300 and "a" in out.columns
    with pytest.raises(SchemaMismatch, match="keep_columns"):
        deploy.score_table(
            "models:/churn/1",
            "main.raw.customers",
            "main.preds.c",
            ws=ws,
            workers=1,
            keep_columns=["id"],
        )
    with pytest.raises(NotFound, match="main.raw.nope"):
        deploy.score_table("models:/churn/1", "main.raw.nope", "main.preds.x", ws=ws)
    with pytest.raises(NotFound, match="models:/churn/7"):
        deploy.score_table("models:/churn/7", "main.raw.customers", "main.preds.x", ws=ws)
    with pytest.raises(NotFound, match="Staging"):
        deploy.score_table("models:/churn/Staging", "main.raw.customers", "main.preds.x", ws=ws)
    with pytest.raises(InvalidInput, match="same table"):
        deploy.score_table("models:/churn/1", "main.raw.customers", "raw.customers", ws=ws)
    with pytest.raises(InvalidInput, match="mode"):
        deploy.score_table(
            "models:/churn/1", "main.raw.customers", "main.preds.x", ws=ws, mode="upsert"
        )  # type: ignore[arg-type]


def test_model_with_feature_spec_joins_features(ws) -> None:
    daily = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-02", "2024-01-02"]),
            "sessions": [1, 4, 0, 2],
            "spend": [5.0, 30.0, 0.0, 8.0],
        }
    )
    ws.features.create_table(
        name="main.fs.daily", primary_keys="customer_id", timeseries_columns="ts", df=daily
    )
    labels = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "event_ts": pd.to_datetime(["2024-01-02", "2024-01-04", "2024-01-03", "2024-01-03"]),
            "churned": [1, 0, 1, 0],
        }
    )
    ts = ws.features.create_training_set(
        df=labels,
        label="churned",
        exclude_columns=["customer_id", "event_ts"],
        feature_lookups=[
            FeatureLookup("main.fs.daily", "customer_id", timestamp_lookup_key="event_ts")
        ],
    )
    train = ts.load_df()
    model = LogisticRegression().fit(train[["sessions", "spend"]], train["churned"])
    with mlflow.start_run():
        ws.features.log_model(
            model, "model", flavor=mlflow.sklearn, training_set=ts, registered_model_name="fs_churn"
        )
    ids = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 1],
            "event_ts": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-03", "2024-01-05"]),
        }
    )
    ws.tables.write("main.raw.ids", ids)
    deploy.score_table("models:/fs_churn/1", "main.raw.ids", "main.preds.fs", ws=ws, workers=1)
    out = ws.tables.read("main.preds.fs").sort_values(["customer_id", "event_ts"])
    expected = ws.features.score_batch(model_uri="models:/fs_churn/1", df=ids).sort_values(
        ["customer_id", "event_ts"]
    )
    assert list(out["spend"]) == list(expected["spend"]) == [5.0, 30.0, 0.0, 8.0]
    assert list(out["prediction"]) == list(expected["prediction"])


def test_cli_score_and_streams(ws) -> None:
    _model(ws)
    _input(ws, n=300)
    ws.close()
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "--home",
            str(ws.home),
            "score",
            "models:/churn/1",
            "main.raw.customers",
            "main.preds.cli",
            "--workers",
            "1",
            "--zorder-by",
            "id",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Scored 300 row(s) of main.raw.customers (version 2) with churn v1" in result.output
    bad = runner.invoke(
        app, ["--home", str(ws.home), "score", "models:/churn/1", "main.raw.nope", "main.preds.cli"]
    )
    assert bad.exit_code == 1 and "main.raw.nope" in bad.output
    from lakebox import streaming
    from lakebox.workspace import Workspace

    again = Workspace(ws.home)
    streaming.read_delta(again, "main.preds.cli").write_delta(
        "main.out.s", query_name="scores"
    ).run()
    again.close()
    listed = runner.invoke(app, ["--home", str(ws.home), "streams", "list"])
    assert listed.exit_code == 0 and "scores" in listed.output and "STOPPED" in listed.output
    status = runner.invoke(app, ["--home", str(ws.home), "streams", "status", "scores", "--json"])
    assert json.loads(status.output)["last_batch_id"] == 0
    stop = runner.invoke(app, ["--home", str(ws.home), "streams", "stop", "scores", "--wait", "0"])
    assert stop.exit_code == 0 and "STOPPED" in stop.output
    missing = runner.invoke(app, ["--home", str(ws.home), "streams", "status", "score"])
    assert missing.exit_code == 1 and "Did you mean 'scores'" in missing.output
    reset = runner.invoke(app, ["--home", str(ws.home), "streams", "reset", "scores"])
    assert reset.exit_code == 0 and not (ws.home / "checkpoints" / "scores").exists()


def test_score_batch_job_task(ws) -> None:
    _model(ws)
    _input(ws, n=300)
    job_id = ws.jobs.create(
        {
            "name": "nightly-scores",
            "tasks": [
                {
                    "task_key": "score",
                    "lakebox_task": {
                        "type": "score_batch",
                        "parameters": {
                            "model_uri": "models:/churn/1",
                            "input_table": "main.raw.customers",
                            "output_table": "main.preds.job",
                            "workers": 1,
                        },
                    },
                }
            ],
        }
    )
    run = ws.jobs.wait(ws.jobs.run_now(job_id), timeout=180)
    assert run.result_state == "SUCCESS", ws.jobs.logs(run.run_id, "score")
    assert len(ws.tables.read("main.preds.job")) == 300
