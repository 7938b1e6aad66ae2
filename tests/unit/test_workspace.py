import os

import mlflow
import pandas as pd
import pytest

import lakebox
from lakebox.errors import SettingsError


def test_home_from_argument_env_and_default(tmp_path, monkeypatch):
    ws = lakebox.Workspace(tmp_path / "a")
    assert ws.home == (tmp_path / "a").resolve()
    assert (ws.home / "lakebox.toml").exists() and (ws.home / "lakebox.db").exists()
    monkeypatch.setenv("LAKEBOX_HOME", str(tmp_path / "b"))
    assert lakebox.Workspace().home == (tmp_path / "b").resolve()
    monkeypatch.delenv("LAKEBOX_HOME")
    monkeypatch.chdir(tmp_path)
    assert lakebox.Workspace().home == (tmp_path / ".lakebox").resolve()


def test_existing_settings_file_is_kept(tmp_path):
    home = tmp_path / "ws"
    home.mkdir()
    (home / "lakebox.toml").write_text("[server]\nport = 9999\n")
    assert lakebox.Workspace(home).settings.server.port == 9999
    assert (home / "lakebox.toml").read_text() == "[server]\nport = 9999\n"


def test_home_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(SettingsError, match="is a file"):
        lakebox.Workspace(tmp_path / "f")


def test_mlflow_points_at_the_workspace(ws):
    assert ws.tracking_uri == f"sqlite:///{ws.home / 'mlflow.db'}"
    assert mlflow.get_tracking_uri() == ws.tracking_uri
    assert mlflow.get_registry_uri() == ws.registry_uri
    mlflow.set_experiment("exp")
    with mlflow.start_run() as run:
        mlflow.log_text("hi", "note.txt")
    assert run.info.artifact_uri.startswith(str(ws.home / "mlartifacts"))


def test_user_tracking_uri_wins(tmp_path, monkeypatch):
    user_uri = f"sqlite:///{tmp_path / 'mine.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", user_uri)
    ws = lakebox.Workspace(tmp_path / "ws")
    assert ws.tracking_uri == user_uri


def test_settings_tracking_uri_and_workspace_switch(tmp_path):
    home = tmp_path / "ws"
    home.mkdir()
    uri = f"sqlite:///{tmp_path / 'configured.db'}"
    (home / "lakebox.toml").write_text(f'[mlflow]\ntracking_uri = "{uri}"\n')
    assert lakebox.Workspace(home).tracking_uri == uri
    # A second workspace is not fooled by the URI the first one exported.
    other = lakebox.Workspace(tmp_path / "other")
    assert other.tracking_uri == f"sqlite:///{other.home / 'mlflow.db'}"
    assert os.environ["MLFLOW_TRACKING_URI"] == other.tracking_uri


def test_engine_overrides(tmp_path):
    ws = lakebox.Workspace(tmp_path / "ws", engine="spark", spark_master="local[1]")
    assert ws.settings.engine.name == "spark" and ws.settings.engine.spark_master == "local[1]"
    with pytest.raises(SettingsError, match="engine.name"):
        lakebox.Workspace(tmp_path / "ws", engine="flink")


def test_metadata_on_postgresql(tmp_path, postgres_url):
    ws = lakebox.Workspace(tmp_path / "ws", settings={"metadata": {"url": postgres_url}})
    ws.tables.write("main.pg.t", pd.DataFrame({"a": [1]}))
    ws.tables.set_tags("main.pg.t", {"k": "v"})
    assert ws.tables.get("main.pg.t").tags == {"k": "v"}
    assert "main.pg.t" in [t.full_name for t in ws.tables.list()]
    ws.tables.drop("main.pg.t")
