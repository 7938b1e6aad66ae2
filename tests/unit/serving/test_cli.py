"""``lakebox serving ...`` commands on a workspace with the ``churn`` model."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from lakebox.cli import app

ROW = {"sessions": 1.0, "spend": 2.0, "tickets": 3}


def _run(home, *args, ok=True):
    result = CliRunner().invoke(app, ["--home", str(home), "serving", *args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_create_list_get_query_update_delete(sws):
    home = sws.home
    sws.models.transition_stage("churn", version=1, stage="Production")
    sws.models.transition_stage("churn", version=2, stage="Staging")
    out = _run(home, "create", "churn", "-m", "churn:Production=90", "-m", "churn:Staging=10")
    assert "READY" in out.output
    listed = _run(home, "list").output
    assert "churn-Production=1 (90%)" in listed and "churn-Staging=2 (10%)" in listed
    got = json.loads(_run(home, "get", "churn").output)
    assert got["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
    query = _run(
        home,
        "query",
        "churn",
        "--served-model",
        "churn-Staging",
        "-d",
        json.dumps({"dataframe_records": [ROW]}),
    )
    assert json.loads(query.output) == {"predictions": [2.0], "served_model": "churn-Staging"}
    _run(home, "update", "churn", "-m", "churn:3")
    query = _run(home, "query", "churn", "-d", json.dumps({"dataframe_records": [ROW]}))
    assert json.loads(query.output)["predictions"] == [3.0]
    bad = _run(
        home, "query", "churn", "-d", json.dumps({"dataframe_records": [{"x": 1}]}), ok=False
    )
    assert bad.exit_code == 1 and "Unexpected column(s) ['x']" in bad.output
    bad = _run(home, "create", "other", "-m", "churn", ok=False)
    assert bad.exit_code == 1 and "MODEL:SELECTOR" in bad.output
    _run(home, "delete", "churn")
    missing = _run(home, "get", "churn", ok=False)
    assert missing.exit_code == 1 and "does not exist" in missing.output
