"""The registry demo step: a stage transition fires a signed webhook to a local receiver."""

from mlflow import MlflowClient
from rich.console import Console

from lakebox.demo import DemoContext, _registry


def test_demo_step_fires_webhook(ws, tmp_path):
    client = MlflowClient(tracking_uri=ws.tracking_uri, registry_uri=ws.registry_uri)
    client.create_registered_model("churn")
    (tmp_path / "model").mkdir()
    client.create_model_version("churn", source=str(tmp_path / "model"))
    console = Console(record=True, width=200)
    ctx = DemoContext(ws=ws, console=console, state={"model_version": "1"})
    _registry.run(ctx)
    calls = ctx.state["webhook_calls"]
    assert [c["body"]["event"] for c in calls] == [
        "MODEL_VERSION_TRANSITIONED_TO_STAGING",
        "TRANSITION_REQUEST_CREATED",
    ]
    assert all(c["valid"] for c in calls)
    assert ctx.state["registry_stage"] == "Production"
    out = console.export_text()
    assert "MODEL_VERSION_TRANSITIONED_TO_STAGING" in out and "signature valid" in out
    assert ws.webhooks.list() == []
