"""Event names, payload texts, signatures and the ``lakebox:`` registry URI."""

import pytest

import lakebox
from lakebox.errors import InvalidInput, SettingsError
from lakebox.events import (
    EVENTS,
    registry_store_uri,
    render_body,
    sign,
    split_registry_uri,
    verify_signature,
)
from lakebox.events._plugin import build_registry_store
from lakebox.events._types import stage_event, validate_events


def test_validate_events():
    assert validate_events(["comment_created", "COMMENT_CREATED"], model_name=None) == [
        "COMMENT_CREATED"
    ]
    with pytest.raises(InvalidInput, match="Did you mean 'COMMENT_CREATED'"):
        validate_events(["COMMENT_CREATD"], model_name=None)
    with pytest.raises(InvalidInput, match="registry-wide"):
        validate_events(["REGISTERED_MODEL_CREATED"], model_name="churn")
    with pytest.raises(InvalidInput, match="at least one event"):
        validate_events([], model_name=None)
    with pytest.raises(InvalidInput, match="registry-wide"):
        validate_events(["MONITOR_ALERT_TRIGGERED"], model_name="churn")
    assert len(EVENTS) == 15  # Databricks' 12, two alias events, monitor alerts


def test_stage_events():
    assert [e for e, _ in stage_event("m", "2", "None", "Production")] == [
        "MODEL_VERSION_TRANSITIONED_STAGE",
        "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
    ]
    assert [e for e, _ in stage_event("m", "2", "Staging", "None")] == [
        "MODEL_VERSION_TRANSITIONED_STAGE"
    ]


def test_signature_over_the_exact_body():
    body = render_body({"event": "COMMENT_CREATED", "comment": "hi"}, "abc")
    assert body.startswith(b'{"event": "COMMENT_CREATED", "webhook_id": "abc"')
    signature = sign("s3cret", body)
    assert len(signature) == 64 and verify_signature("s3cret", body, signature)
    assert not verify_signature("other", body, signature)
    assert not verify_signature("s3cret", body + b" ", signature)


def test_registry_uri_wrapping():
    wrapped = registry_store_uri("sqlite:////w/mlflow.db", "/w")
    assert wrapped == "lakebox:sqlite:////w/mlflow.db?lakebox_home=%2Fw"
    assert split_registry_uri(wrapped) == ("sqlite:////w/mlflow.db", "/w")
    assert registry_store_uri(wrapped, "/other") == wrapped
    pg = registry_store_uri("postgresql+psycopg://u:p@h/db?sslmode=disable", "/w")
    assert split_registry_uri(pg) == ("postgresql+psycopg://u:p@h/db?sslmode=disable", "/w")
    for remote in ("http://mlflow:5000", "databricks", "file:///tmp/mlruns"):
        assert registry_store_uri(remote, "/w") == remote
    with pytest.raises(SettingsError, match="not a lakebox URI"):
        split_registry_uri("sqlite:///x.db")


def test_plugin_needs_a_workspace(tmp_path, monkeypatch):
    monkeypatch.delenv("LAKEBOX_HOME", raising=False)
    with pytest.raises(SettingsError, match="names no workspace"):
        build_registry_store(f"lakebox:sqlite:///{tmp_path}/m.db")


def test_each_workspace_gets_its_own_registry_uri(tmp_path):
    first = lakebox.Workspace(tmp_path / "a")
    second = lakebox.Workspace(tmp_path / "b")
    assert first.registry_uri.startswith("lakebox:sqlite:")
    assert split_registry_uri(second.registry_uri)[1] == str(tmp_path / "b")
    import mlflow

    assert mlflow.get_registry_uri() == second.registry_uri
