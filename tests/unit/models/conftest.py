"""A workspace whose MLflow database is already initialised (creating MLflow's schema takes
seconds, so it is built once per session and copied)."""

import shutil

import pytest

import lakebox


@pytest.fixture(scope="session")
def _mlflow_db_template(tmp_path_factory):
    ws = lakebox.Workspace(tmp_path_factory.mktemp("template") / "ws")
    ws.models.list()  # creates every MLflow table
    ws.close()
    return ws.home / "mlflow.db"


@pytest.fixture
def rws(tmp_path, _mlflow_db_template):
    """A fresh workspace with an empty, ready MLflow registry."""
    home = tmp_path / "ws"
    home.mkdir()
    shutil.copy(_mlflow_db_template, home / "mlflow.db")
    workspace = lakebox.Workspace(home)
    yield workspace
    workspace.close()
