"""Demo step: a stage transition fires a signed webhook to a local receiver; a transition
request is approved."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lakebox.events._receiver import Receiver

if TYPE_CHECKING:
    from lakebox.demo import DemoContext

TITLE = "Registry lifecycle: Staging fires a signed webhook, a request is approved"
SECRET = "demo-secret"


def run(ctx: DemoContext) -> None:
    from lakebox.models import workspace_dispatcher

    ws = ctx.ws
    version = str(ctx.state.get("model_version", "1"))
    with Receiver(secret=SECRET) as receiver:
        hook = ws.webhooks.create(
            ["MODEL_VERSION_TRANSITIONED_TO_STAGING", "TRANSITION_REQUEST_CREATED"],
            model_name="churn",
            http_url_spec={"url": receiver.url, "secret": SECRET},
            description="lakebox demo receiver",
        )
        ctx.say(f"webhook {hook.id[:8]} -> {receiver.url} (HMAC-signed)")
        dispatcher = workspace_dispatcher(ws, poll_interval_seconds=0.01)
        dispatcher.start()
        try:
            ws.models.transition_stage("churn", version, "Staging", comment="demo: checks pass")
            ws.models.create_transition_request(
                "churn", version, "Production", comment="demo: ready for production"
            )
            calls = receiver.wait_for(2, timeout=10)
        finally:
            dispatcher.stop()
            ws.webhooks.delete(hook.id)  # the receiver goes away with the demo
    for call in calls:
        body = call["body"]
        check = "signature valid" if call["valid"] else "BAD SIGNATURE"
        ctx.say(
            f"receiver got {body['event']} for churn v{body['version']} "
            f"({body.get('from_stage')} -> {body.get('to_stage')}), {check}"
        )
    started = time.perf_counter()
    ws.models.approve_transition_request(
        "churn", version, "Production", archive_existing_versions=True, comment="approved"
    )
    stage = ws.models.get_version("churn", version).current_stage
    ctx.say(
        f"request approved: churn v{version} is now in {stage} "
        f"({(time.perf_counter() - started) * 1000:.0f} ms)"
    )
    ctx.state.update(webhook_calls=calls, registry_stage=stage)
