"""`lakebox demo` runs end to end on a fresh workspace and tells the story it promises."""

import os
import subprocess
import sys

import lakebox


def test_demo_runs_and_records_lineage(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "_MLFLOW"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", COLUMNS="200")
    home = tmp_path / "ws"
    result = subprocess.run(
        [sys.executable, "-m", "lakebox", "--home", str(home), "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "time travel" in out and "registered model 'churn'" in out
    ws = lakebox.Workspace(home)
    assert {"main.raw.activity", "main.raw.customers"} <= {t.full_name for t in ws.tables.list()}
    from mlflow import MlflowClient

    client = MlflowClient(ws.tracking_uri, ws.registry_uri)
    version = client.get_model_version("churn", "1")
    inputs = client.get_run(version.run_id).inputs.dataset_inputs
    names = [d.dataset.name for d in inputs]
    assert any(n.startswith("main.raw.activity@v") for n in names), names
    # Running the demo again on the same workspace works (it starts its tables afresh).
    again = subprocess.run(
        [sys.executable, "-m", "lakebox", "--home", str(home), "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert again.returncode == 0, again.stderr[-3000:]
