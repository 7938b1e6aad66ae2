"""A workspace whose MLflow database is already initialised (creating MLflow's schema takes
seconds, so it is built once per session, in a subprocess so that no MLflow URI leaks into
this process's environment, and copied)."""

import os
import shutil
import subprocess
import sys

import pytest

import lakebox


@pytest.fixture(scope="session")
def _mlflow_db_template(tmp_path_factory):
    home = tmp_path_factory.mktemp("template") / "ws"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, lakebox; lakebox.Workspace(sys.argv[1]).models.list()",
            str(home),
        ],
        check=True,
        # The template is this workspace's own MLflow DB, whatever URI an earlier test exported.
        env={k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "_MLFLOW"))},
    )
    return home / "mlflow.db"


@pytest.fixture
def rws(tmp_path, _mlflow_db_template):
    """A fresh workspace with an empty, ready MLflow registry."""
    home = tmp_path / "ws"
    home.mkdir()
    shutil.copy(_mlflow_db_template, home / "mlflow.db")
    workspace = lakebox.Workspace(home)
    yield workspace
    workspace.close()
