"""Endpoint configs: selectors, default names, traffic routes and their errors."""

from __future__ import annotations

import pytest

from lakebox.errors import InvalidInput
from lakebox.serving import EndpointConfig, ServedEntity


def test_selectors_and_default_names():
    version = ServedEntity.from_json({"entity_name": "churn", "entity_version": 3})
    stage = ServedEntity.from_json({"entity_name": "churn", "entity_version": "production"})
    alias = ServedEntity.from_json({"entity_name": "churn", "alias": "champion"})
    at_alias = ServedEntity.from_json({"entity_name": "churn", "entity_version": "@champion"})
    assert (version.name, version.uri, version.moves) == ("churn-3", "models:/churn/3", False)
    assert (stage.name, stage.stage, stage.uri) == (
        "churn-Production",
        "Production",
        "models:/churn/Production",
    )
    assert (alias.name, alias.uri, alias.moves) == (
        "churn-champion",
        "models:/churn@champion",
        True,
    )
    assert at_alias == alias


@pytest.mark.parametrize(
    ("entity", "message"),
    [
        ({"entity_version": "1"}, "needs 'entity_name'"),
        ({"entity_name": "churn"}, "exactly one of entity_version, stage or alias"),
        ({"entity_name": "churn", "entity_version": "1", "alias": "a"}, "exactly one"),
        ({"entity_name": "churn", "entity_version": "latest!"}, "neither a version number"),
        ({"entity_name": "churn", "stage": "Archived"}, "cannot be served"),
        ({"entity_name": "churn", "entity_version": "1", "workers": 0}, "workers must be"),
        ({"entity_name": "churn", "entity_version": "1", "wrokers": 2}, "Did you mean 'workers'"),
        (
            {"entity_name": "churn", "entity_version": "1", "environment_vars": {"A": 1}},
            "environment_vars",
        ),
    ],
)
def test_bad_entities(entity, message):
    with pytest.raises(InvalidInput, match=message):
        ServedEntity.from_json(entity)


def test_routes_from_traffic_config_and_shorthand():
    entities = [
        {"entity_name": "churn", "stage": "Production"},
        {"entity_name": "churn", "stage": "Staging"},
    ]
    cfg = EndpointConfig.from_json(
        {
            "served_entities": entities,
            "traffic_config": {
                "routes": [
                    {"served_model_name": "churn-Production", "traffic_percentage": 90},
                    {"served_model_name": "churn-Staging", "traffic_percentage": 10},
                ]
            },
        }
    )
    short = EndpointConfig.from_json(
        {"served_entities": entities}, traffic={"Production": 90, "Staging": 10}
    )
    assert cfg.routes == short.routes == {"churn-Production": 90, "churn-Staging": 10}
    again = EndpointConfig.from_json(cfg.to_json())
    assert again == cfg


def test_single_entity_gets_all_traffic_and_auto_capture_names_a_table():
    cfg = EndpointConfig.from_json(
        {
            "served_entities": [{"entity_name": "churn", "entity_version": "1"}],
            "auto_capture_config": {
                "catalog_name": "main",
                "schema_name": "serving",
                "table_name_prefix": "churn",
            },
        }
    )
    assert cfg.routes == {"churn-1": 100}
    assert cfg.inference_table == "main.serving.churn_payload"


@pytest.mark.parametrize(
    ("traffic", "message"),
    [
        (None, "needs traffic_config.routes"),
        ({"Production": 60, "Staging": 30}, "sum to 90"),
        ({"Production": 100, "Nope": 0}, "not one of the served models"),
        ({"Production": 150, "Staging": -50}, "from 0 to 100"),
    ],
)
def test_bad_traffic(traffic, message):
    entities = [
        {"entity_name": "churn", "stage": "Production"},
        {"entity_name": "churn", "stage": "Staging"},
    ]
    with pytest.raises(InvalidInput, match=message):
        EndpointConfig.from_json({"served_entities": entities}, traffic=traffic)


def test_duplicate_served_names_are_refused():
    entities = [
        {"entity_name": "churn", "entity_version": "1", "name": "a"},
        {"entity_name": "churn", "entity_version": "2", "name": "a"},
    ]
    with pytest.raises(InvalidInput, match="unique"):
        EndpointConfig.from_json({"served_entities": entities}, traffic={"a": 100})
