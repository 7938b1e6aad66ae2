"""docs/feature_store.py runs in a fresh workspace, twice (it cleans up after itself), and
prints what the tutorial promises."""

import os
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).parents[2] / "docs" / "feature_store.py"


def run(home, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "_MLFLOW"))}
    env.update(LAKEBOX_HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true", COLUMNS="200")
    result = subprocess.run(
        [sys.executable, str(DOC)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def test_feature_store_tutorial_runs(tmp_path):
    out = run(tmp_path / "ws", tmp_path)
    assert "published 3 rows to sqlite:///" in out
    assert "keys ['customer_id', 'ts'], features ['sessions_7d', 'spend_7d']" in out
    assert "used by [('docs_churn', '1')]" in out
    out = run(tmp_path / "ws", tmp_path)  # again on the same workspace
    assert "used by [('docs_churn', '2')]" in out
