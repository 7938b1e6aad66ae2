"""docs/tracking.py runs in a fresh workspace and prints what the tutorial promises."""

import os
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).parents[2] / "docs" / "tracking.py"


def test_tracking_tutorial_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "_MLFLOW"))}
    env.update(LAKEBOX_HOME=str(tmp_path / "ws"), MLFLOW_DISABLE_TELEMETRY="true", COLUMNS="200")
    result = subprocess.run(
        [sys.executable, str(DOC)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    out = result.stdout
    assert "lineage: run read ['main.docs.customers@v0']; reloaded 400 rows" in out
    assert "(table now has 800)" in out
    assert "autolog: " in out and "signature True, input example True" in out
    assert "tuning: 8 nested runs, " in out
    assert "pyfunc: loaded model predicts like the fitted objects: True" in out
    assert "'plots/confusion_matrix.png'" in out and "'plots/feature_importance.png'" in out
    assert "requirements: ['mlflow==" in out
