"""The registry lifecycle and webhooks through the `lakebox` command line, delivered by
`lakebox worker --once` to a real receiver on loopback."""

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

import lakebox
from lakebox.cli import app
from lakebox.events._receiver import Receiver


@pytest.fixture
def cli(tmp_path):
    home = tmp_path / "ws"
    ws = lakebox.Workspace(home)
    client = MlflowClient(tracking_uri=ws.tracking_uri, registry_uri=ws.registry_uri)
    client.create_registered_model("churn")
    (tmp_path / "model").mkdir()
    for _ in range(2):
        client.create_model_version("churn", source=str(tmp_path / "model"))
    ws.close()
    runner = CliRunner()

    def run(*args, ok=True):
        result = runner.invoke(app, ["--home", str(home), *args])
        if ok:
            assert result.exit_code == 0, result.output
        else:
            assert result.exit_code == 1, result.output
        return result.output

    run.home = home
    return run


def test_models_and_webhooks_cli(cli):
    with Receiver(secret="s") as receiver:
        out = cli(
            "webhooks",
            "create",
            "--event",
            "MODEL_VERSION_TRANSITIONED_STAGE",
            "--event",
            "COMMENT_CREATED",
            "--model",
            "churn",
            "--url",
            receiver.url,
            "--secret",
            "s",
        )
        hook_id = out.split("Created webhook ")[1].split()[0]
        assert hook_id in cli("webhooks", "list")
        assert "status 200" in cli("webhooks", "test", hook_id)

        assert "now in Staging" in cli(
            "models", "transition", "churn", "1", "staging", "--comment", "ok"
        )
        assert "churn@champion -> version 1" in cli("models", "alias", "churn", "champion", "1")
        cli("models", "request", "churn", "1", "Production", "--comment", "please")
        assert "Production" in cli("models", "requests", "churn", "1")
        cli("models", "approve", "churn", "1", "Production", "--archive-existing")
        cli("models", "comment", "churn", "1", "shipped")
        cli("models", "tag", "churn", "team", "growth", "--version", "2")
        history = cli("models", "history", "churn", "1")
        assert "APPROVED_REQUEST" in history and "NEW_COMMENT" in history
        versions = cli("models", "versions", "churn")
        assert "Production" in versions and "@champion" in versions
        assert "churn" in cli("models", "list")

        assert "3 delivery attempt(s)" in cli("worker", "--once")
        calls = receiver.wait_for(4)
    assert [c["body"]["event"] for c in calls[1:]] == [
        "MODEL_VERSION_TRANSITIONED_STAGE",
        "MODEL_VERSION_TRANSITIONED_STAGE",
        "COMMENT_CREATED",
    ]
    assert all(c["valid"] for c in calls)
    log = cli("webhooks", "deliveries")
    assert log.count("SUCCEEDED") == 3 and "3 delivery(ies)" in log

    # bad input: one red line, exit 1, nothing changed
    assert "Invalid stage" in cli("models", "transition", "churn", "2", "Prod", ok=False)
    assert "churnn" in cli("models", "versions", "churnn", ok=False)
    assert "No pending request" in cli("models", "approve", "churn", "2", "Staging", ok=False)
    assert "Unknown webhook event" in cli(
        "webhooks", "create", "--event", "NOPE", "--url", "http://127.0.0.1:9/x", ok=False
    )
    assert "Invalid webhook URL" in cli(
        "webhooks", "create", "--event", "COMMENT_CREATED", "--url", "nope", ok=False
    )
    cli("webhooks", "update", hook_id, "--status", "DISABLED")
    assert "DISABLED" in cli("webhooks", "list")
    cli("webhooks", "delete", hook_id)
    assert "0 webhook(s)" in cli("webhooks", "list")
    cli("models", "delete", "churn", "2", "--yes")
    assert "Deleted model churn" in cli("models", "delete", "churn", "--yes")
