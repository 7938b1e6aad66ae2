"""Every runnable example in docs/ runs in a fresh workspace, so the docs cannot rot."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[2] / "docs"
# Examples with a dedicated test (which also checks what they print) are run there instead.
EXAMPLES = sorted(
    p for p in DOCS.glob("*.py") if not (Path(__file__).parent / f"test_{p.stem}_doc.py").exists()
)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(example, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "_MLFLOW"))}
    env.update(LAKEBOX_HOME=str(tmp_path / "ws"), MLFLOW_DISABLE_TELEMETRY="true")
    result = subprocess.run(
        [sys.executable, str(example)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
