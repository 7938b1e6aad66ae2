"""The model registry lifecycle with webhooks: stages, aliases, a transition request, comments,
and a signed webhook delivered to a receiver on this machine.

Run it: ``python docs/registry.py`` (uses ``$LAKEBOX_HOME`` or ``./.lakebox``). See
docs/registry.md.
"""

import tempfile

from mlflow import MlflowClient

import lakebox
from lakebox.events._receiver import Receiver
from lakebox.models import workspace_dispatcher

ws = lakebox.Workspace()

# A model with one version. Any MLflow client configured by the workspace goes through
# lakebox's registry store, so these changes are events too.
client = MlflowClient(tracking_uri=ws.tracking_uri, registry_uri=ws.registry_uri)
if not ws.models.exists("docs-churn"):
    client.create_registered_model("docs-churn")
version = client.create_model_version("docs-churn", source=tempfile.mkdtemp()).version

with Receiver(secret="s3cret") as receiver:  # a local HTTP endpoint that checks signatures
    hook = ws.webhooks.create(
        ["MODEL_VERSION_TRANSITIONED_STAGE", "TRANSITION_REQUEST_CREATED", "COMMENT_CREATED"],
        model_name="docs-churn",
        http_url_spec={"url": receiver.url, "secret": "s3cret"},
    )
    dispatcher = workspace_dispatcher(ws)  # what `lakebox up` and `lakebox worker` run
    dispatcher.start()

    ws.models.transition_stage("docs-churn", version, "Staging", comment="offline checks pass")
    ws.models.set_alias("docs-churn", "challenger", version)
    ws.models.create_transition_request("docs-churn", version, "Production", comment="ready")
    ws.models.approve_transition_request(
        "docs-churn", version, "Production", archive_existing_versions=True
    )
    ws.models.create_comment("docs-churn", version, "shipped")

    calls = receiver.wait_for(4)
    dispatcher.stop()
    ws.webhooks.delete(hook.id)

for call in calls:
    print(call["body"]["event"], "signature ok" if call["valid"] else "BAD SIGNATURE")
print("stage:", ws.models.get_version("docs-churn", version).current_stage)
for activity in ws.models.activities("docs-churn", version):
    print(activity.activity_type, activity.to_stage or "", activity.comment or "")
assert [c["body"]["event"] for c in calls] == [
    "MODEL_VERSION_TRANSITIONED_STAGE",
    "TRANSITION_REQUEST_CREATED",
    "MODEL_VERSION_TRANSITIONED_STAGE",
    "COMMENT_CREATED",
]
