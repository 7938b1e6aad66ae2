"""``ws.models``: the registry lifecycle, its errors, and the events each change records."""

import warnings

import pytest
from mlflow import MlflowClient

from lakebox.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from lakebox.models import canonical_stage


@pytest.fixture
def models(rws, tmp_path):
    (tmp_path / "model").mkdir()
    rws.models.create_model("churn", description="churn model")
    for _ in range(3):
        rws.models.client.create_model_version("churn", source=str(tmp_path / "model"))
    return rws.models


def _events(models, *, after=0):
    return [(e.event, e.version) for e in models.outbox.events(after_seq=after)]


def _last_seq(models):
    events = list(models.outbox.events())
    return events[-1].seq if events else 0


def test_creation_events(models):
    assert _events(models) == [("REGISTERED_MODEL_CREATED", None)] + [
        ("MODEL_VERSION_CREATED", v) for v in "123"
    ]
    assert [str(v.version) for v in models.versions("churn")] == ["1", "2", "3"]
    assert [m.name for m in models.list()] == ["churn"] and models.exists("churn")


def test_stages_archive_existing_and_events(models):
    seq = _last_seq(models)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the stage FutureWarning must not leak to users
        models.transition_stage("churn", 1, "production", comment="first")
        models.transition_stage("churn", "2", "Production", archive_existing_versions=True)
    assert models.get_version("churn", 1).current_stage == "Archived"
    assert models.get_version("churn", 2).current_stage == "Production"
    assert [str(v.version) for v in models.latest_versions("churn", stages=["Production"])] == ["2"]
    models.archive("churn", 3)
    assert _events(models, after=seq) == [
        ("MODEL_VERSION_TRANSITIONED_STAGE", "1"),
        ("MODEL_VERSION_TRANSITIONED_TO_PRODUCTION", "1"),
        ("MODEL_VERSION_TRANSITIONED_STAGE", "2"),
        ("MODEL_VERSION_TRANSITIONED_TO_PRODUCTION", "2"),
        ("MODEL_VERSION_TRANSITIONED_STAGE", "3"),
        ("MODEL_VERSION_TRANSITIONED_TO_ARCHIVED", "3"),
    ]
    first = next(models.outbox.events(after_seq=seq))
    assert first.payload["comment"] == "first" and first.payload["from_stage"] == "None"
    history = models.activities("churn", 1)
    assert [(a.activity_type, a.to_stage, a.comment) for a in history] == [
        ("APPLIED_TRANSITION", "Production", "first")
    ]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m: m.transition_stage("churn", 1, "Prod"), InvalidInput, "Invalid stage 'Prod'"),
        (lambda m: m.transition_stage("churnn", 1, "Staging"), NotFound, "churnn"),
        (lambda m: m.transition_stage("churn", 9, "Staging"), NotFound, "Version 9"),
        (lambda m: m.transition_stage("churn", "abc", "Staging"), InvalidInput, "'abc'"),
        (
            lambda m: m.transition_stage("churn", 1, "Archived", archive_existing_versions=True),
            InvalidInput,
            "archive_existing_versions",
        ),
        (lambda m: m.set_alias("churn", "champion", 7), NotFound, "Version 7"),
        (lambda m: m.get_alias("churn", "nobody"), NotFound, "nobody"),
        (lambda m: m.create_comment("churn", 1, "  "), InvalidInput, "needs some text"),
        (lambda m: m.create_model("churn"), AlreadyExists, "churn"),
    ],
)
def test_bad_input_changes_nothing(models, call, error, message):
    seq = _last_seq(models)
    with pytest.raises(error, match=message):
        call(models)
    assert _events(models, after=seq) == []
    assert {v.current_stage for v in models.versions("churn")} == {"None"}
    assert canonical_stage("ARCHIVED") == "Archived"


def test_aliases_tags_descriptions(models):
    seq = _last_seq(models)
    models.set_alias("churn", "champion", 2)
    assert str(models.get_alias("churn", "champion").version) == "2"
    models.delete_alias("churn", "champion")
    models.set_tag("churn", "team", "growth", version=1)
    models.set_tag("churn", "owner", "ana")
    models.set_description("churn", "v1 desc", version=1)
    assert models.get_version("churn", 1).tags == {"team": "growth"}
    assert models.get_version("churn", 1).description == "v1 desc"
    assert models.get_model("churn").tags == {"owner": "ana"}
    models.delete_tag("churn", "team", version=1)
    assert models.get_version("churn", 1).tags == {}
    assert _events(models, after=seq) == [
        ("MODEL_VERSION_ALIAS_SET", "2"),
        ("MODEL_VERSION_ALIAS_DELETED", "2"),
        ("MODEL_VERSION_TAG_SET", "1"),
    ]


def test_transition_requests(models):
    seq = _last_seq(models)
    request = models.create_transition_request(
        "churn", 1, "Staging", comment="please", user_id="ana"
    )
    assert (request.activity_type, request.request_status) == ("REQUESTED_TRANSITION", "PENDING")
    with pytest.raises(AlreadyExists, match="pending"):
        models.create_transition_request("churn", 1, "Staging", user_id="ana")
    assert [r.id for r in models.list_transition_requests("churn", 1)] == [request.id]
    approved = models.approve_transition_request("churn", 1, "Staging", user_id="bo", comment="ok")
    assert approved.activity_type == "APPROVED_REQUEST" and approved.user_id == "bo"
    assert models.get_version("churn", 1).current_stage == "Staging"
    assert models.list_transition_requests("churn", 1) == []
    with pytest.raises(Conflict, match="No pending request"):
        models.approve_transition_request("churn", 1, "Staging")
    with pytest.raises(Conflict, match="already in Staging"):
        models.create_transition_request("churn", 1, "Staging")

    models.create_transition_request("churn", 2, "Production", user_id="ana")
    rejected = models.reject_transition_request("churn", 2, "Production", comment="no")
    assert rejected.activity_type == "REJECTED_REQUEST"
    assert models.get_version("churn", 2).current_stage == "None"

    models.create_transition_request("churn", 3, "Archived", user_id="ana")
    with pytest.raises(Conflict, match="by bo"):
        models.cancel_transition_request("churn", 3, "Archived", creator="bo")
    cancelled = models.cancel_transition_request("churn", 3, "Archived", creator="ana")
    assert cancelled.activity_type == "CANCELLED_REQUEST"
    assert models.list_transition_requests("churn", 3) == []
    assert _events(models, after=seq) == [
        ("TRANSITION_REQUEST_CREATED", "1"),
        ("TRANSITION_REQUEST_TO_STAGING_CREATED", "1"),
        ("MODEL_VERSION_TRANSITIONED_STAGE", "1"),
        ("MODEL_VERSION_TRANSITIONED_TO_STAGING", "1"),
        ("TRANSITION_REQUEST_CREATED", "2"),
        ("TRANSITION_REQUEST_TO_PRODUCTION_CREATED", "2"),
        ("TRANSITION_REQUEST_CREATED", "3"),
        ("TRANSITION_REQUEST_TO_ARCHIVED_CREATED", "3"),
    ]
    staged = next(
        e
        for e in models.outbox.events(after_seq=seq)
        if e.event == "MODEL_VERSION_TRANSITIONED_STAGE"
    )
    assert staged.payload["comment"] == "ok"


def test_comments(models):
    seq = _last_seq(models)
    first = models.create_comment("churn", 1, "looks good", user_id="ana")
    models.create_comment("churn", 1, "agreed")
    assert [c.comment for c in models.list_comments("churn", 1)] == ["looks good", "agreed"]
    assert models.update_comment(first.id, "looks great").comment == "looks great"
    models.delete_comment(first.id)
    assert [c.comment for c in models.list_comments("churn", 1)] == ["agreed"]
    with pytest.raises(NotFound, match="Comment"):
        models.delete_comment(first.id)
    events = list(models.outbox.events(after_seq=seq))
    assert [(e.event, e.payload["comment"]) for e in events] == [
        ("COMMENT_CREATED", "looks good"),
        ("COMMENT_CREATED", "agreed"),
    ]


def test_delete_is_refused_while_guarded(models):
    models.delete_guards.append(
        lambda name, version: "serving endpoint 'churn' uses it" if version in (None, "2") else None
    )
    with pytest.raises(Conflict, match="serving endpoint 'churn' uses it"):
        models.delete_version("churn", 2)
    with pytest.raises(Conflict, match="model 'churn'"):
        models.delete_model("churn")
    models.delete_version("churn", 3)
    assert [str(v.version) for v in models.versions("churn")] == ["1", "2"]
    models.delete_guards.pop()
    models.delete_model("churn")
    assert not models.exists("churn")


def test_stock_mlflow_client_changes_are_events_too(models, rws):
    seq = _last_seq(models)
    client = MlflowClient(tracking_uri=rws.tracking_uri, registry_uri=rws.registry_uri)
    client.set_model_version_tag("churn", "3", "k", "v")
    client.set_registered_model_alias("churn", "challenger", "3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage("churn", "3", "Staging")
    assert [e for e, _ in _events(models, after=seq)] == [
        "MODEL_VERSION_TAG_SET",
        "MODEL_VERSION_ALIAS_SET",
        "MODEL_VERSION_TRANSITIONED_STAGE",
        "MODEL_VERSION_TRANSITIONED_TO_STAGING",
    ]


def test_webhooks_check_the_registry(rws):
    rws.models.create_model("exists")
    hook = rws.webhooks.create(
        ["COMMENT_CREATED"], model_name="exists", http_url_spec={"url": "http://127.0.0.1:9/x"}
    )
    assert hook.model_name == "exists"
    with pytest.raises(NotFound, match="'missing' does not exist"):
        rws.webhooks.create(
            ["COMMENT_CREATED"], model_name="missing", http_url_spec={"url": "http://127.0.0.1:9/x"}
        )


def test_job_webhooks_go_to_lakebox_jobs(rws):
    """With the jobs component, a job_spec webhook starts a run; an unknown job is a visible
    failed delivery with the jobs component's own message."""
    from lakebox.models import workspace_dispatcher

    rws.models.create_model("m")
    rws.webhooks.create(["COMMENT_CREATED"], job_spec={"job_id": 987654})
    rws.models.outbox.emit("COMMENT_CREATED", model_name="m", version="1")
    dispatcher = workspace_dispatcher(rws)
    dispatcher.run_once()
    dispatcher.stop()
    (delivery,) = rws.webhooks.deliveries()
    assert delivery.status == "DEAD"
    if hasattr(type(rws), "jobs"):
        assert "987654" in delivery.last_error
    else:
        assert "no job runner available" in delivery.last_error


def test_delete_is_refused_while_a_serving_endpoint_serves_it(models, rws):
    if not hasattr(type(rws), "serving"):
        pytest.skip("no serving component")
    rws.serving.create_endpoint(
        "churn-ep",
        [
            {"entity_name": "churn", "entity_version": "1"},
            {"entity_name": "churn", "alias": "champion"},
        ],
        traffic={"churn-1": 50, "churn-champion": 50},
        wait=False,
    )
    models.set_alias("churn", "champion", 2)
    for version in ("1", "2"):
        with pytest.raises(Conflict, match="serving endpoint 'churn-ep' serves it"):
            models.delete_version("churn", version)
    with pytest.raises(Conflict, match="serving endpoint 'churn-ep'"):
        models.delete_model("churn")
    models.delete_version("churn", 3)
    assert [str(v.version) for v in models.versions("churn")] == ["1", "2"]
