"""The catalog through the `lakebox` command line."""

import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

import lakebox
from lakebox.cli import app


@pytest.fixture
def cli(tmp_path):
    home = tmp_path / "ws"
    runner = CliRunner()

    def run(*args, ok=True, input=None):
        result = runner.invoke(app, ["--home", str(home), *args], input=input)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    run.home = home
    return run


@pytest.fixture
def filled(cli):
    ws = lakebox.Workspace(cli.home)
    ws.tables.write("main.sales.orders", pd.DataFrame({"id": [1, 2], "amount": [1.5, 2.5]}))
    ws.tables.write("main.sales.orders", pd.DataFrame({"id": [3], "amount": [3.5]}))
    ws.tables.set_comment("main.sales.orders", "All orders")
    return cli


def test_real_script_init_and_version(tmp_path):
    home = tmp_path / "ws"
    out = subprocess.run(
        [sys.executable, "-m", "lakebox", "--home", str(home), "init"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Workspace ready" in out and (home / "lakebox.toml").exists()
    out = subprocess.run(
        [sys.executable, "-m", "lakebox", "version"], capture_output=True, text=True, check=True
    ).stdout
    assert lakebox.__version__ in out


def test_list_show_history(filled):
    out = filled("tables", "list").output
    assert "main.sales.orders" in out and "All orders" in out
    out = filled("tables", "show", "sales.orders").output
    assert "version 1" in out and "amount" in out and "double" in out
    out = filled("tables", "history", "main.sales.orders").output
    assert "WRITE" in out and "Append" in out


def test_sql(filled):
    out = filled("sql", "SELECT sum(amount) AS total FROM main.sales.orders").output
    assert "7.5" in out
    out = filled("sql", "SELECT count(*) AS n FROM main.sales.orders VERSION AS OF 0").output
    assert "2" in out


def test_optimize_vacuum_drop(filled):
    assert (
        "rewritten"
        in filled("tables", "optimize", "main.sales.orders", "--zorder-by", "amount").output
    )
    refused = filled("tables", "vacuum", "main.sales.orders", "--retention-hours", "0", ok=False)
    assert refused.exit_code == 1 and "Refusing to vacuum" in refused.output
    assert (
        "deleted"
        in filled(
            "tables", "vacuum", "main.sales.orders", "--retention-hours", "0", "--force"
        ).output
    )
    aborted = filled("tables", "drop", "main.sales.orders", ok=False, input="n\n")
    assert aborted.exit_code != 0
    filled("tables", "drop", "main.sales.orders", "--yes")
    assert "main.sales.orders" not in filled("tables", "list").output


def test_errors_are_one_line_not_tracebacks(filled):
    result = filled("tables", "show", "main.sales.ordrs", ok=False)
    assert result.exit_code == 1
    assert "Did you mean 'main.sales.orders'" in result.output
    assert "Traceback" not in result.output
    result = filled("sql", "SELECT * FROM main.nope.nope", ok=False)
    assert result.exit_code == 1 and "does not exist" in result.output
    result = filled("tables", "show", "a/b", ok=False)
    assert result.exit_code == 1 and "catalog.schema.table" in result.output


def test_bad_settings_file_is_reported(cli):
    cli.home.mkdir()
    (cli.home / "lakebox.toml").write_text("[server]\nprot = 1\n")
    result = cli("tables", "list", ok=False)
    assert result.exit_code == 1 and "Did you mean 'port'" in result.output
