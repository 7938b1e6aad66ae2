"""Endpoint configuration: served entities and traffic routes, as Databricks' JSON spells them.

A served entity names a registered model and *one* selector: a version (``entity_version``),
a stage (``stage``, or a stage name given as ``entity_version``) or an alias (``alias``, or
``@alias`` as ``entity_version``). Routes give each served entity a percentage; they must
sum to 100.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lakebox.errors import InvalidInput, close_matches

__all__ = ["EndpointConfig", "ServedEntity", "check_endpoint_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_STAGES = {"staging": "Staging", "production": "Production", "archived": "Archived", "none": "None"}
_ENTITY_KEYS = {
    "name",
    "entity_name",
    "entity_version",
    "model_name",
    "model_version",
    "stage",
    "alias",
    "workers",
    "environment_vars",
    "workload_size",
    "workload_type",
    "scale_to_zero_enabled",
}
_WORKLOAD_WORKERS = {"Small": 1, "Medium": 2, "Large": 4}
MAX_WORKERS = 32


def check_endpoint_name(name: Any) -> str:
    """Refuse endpoint names Databricks would refuse (letters, digits, ``-`` and ``_``)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"Invalid endpoint name {name!r}: use 1-63 letters, digits, '-' or '_', "
            "starting with a letter or digit."
        )
    return name


@dataclass(frozen=True)
class ServedEntity:
    """One registered model version (or stage, or alias) served by an endpoint.

    Example:
        >>> ServedEntity.from_json({"entity_name": "churn", "entity_version": "Production"}).uri
        'models:/churn/Production'
    """

    name: str
    entity_name: str
    entity_version: str | None = None
    stage: str | None = None
    alias: str | None = None
    workers: int = 1
    environment_vars: dict[str, str] = field(default_factory=dict)

    @property
    def selector(self) -> str:
        """``"3"``, ``"Production"`` or ``"@champion"``."""
        if self.entity_version is not None:
            return self.entity_version
        if self.stage is not None:
            return self.stage
        return f"@{self.alias}"

    @property
    def uri(self) -> str:
        """The ``models:/`` URI the selector names (what MLflow would load now)."""
        if self.alias is not None:
            return f"models:/{self.entity_name}@{self.alias}"
        return f"models:/{self.entity_name}/{self.selector}"

    @property
    def moves(self) -> bool:
        """True when the selector can point at another version later (a stage or an alias)."""
        return self.entity_version is None

    @classmethod
    def from_json(cls, data: Any, *, index: int = 0) -> ServedEntity:
        """Parse one entry of ``served_entities`` (or legacy ``served_models``)."""
        where = f"served_entities[{index}]"
        if not isinstance(data, dict):
            raise InvalidInput(f"{where} must be an object, got {type(data).__name__}.")
        unknown = sorted(set(data) - _ENTITY_KEYS)
        if unknown:
            raise InvalidInput(
                f"{where} has unknown field(s) {unknown}; valid fields: {sorted(_ENTITY_KEYS)}."
                + close_matches(unknown[0], _ENTITY_KEYS)
            )
        entity_name = data.get("entity_name") or data.get("model_name")
        if not isinstance(entity_name, str) or not entity_name.strip():
            raise InvalidInput(f"{where} needs 'entity_name', the registered model to serve.")
        version = data.get("entity_version", data.get("model_version"))
        stage = data.get("stage")
        alias = data.get("alias")
        if version is not None:
            text = str(version).strip()
            if text.startswith("@"):
                alias, version = text[1:], None
            elif text.isascii() and text.isdigit() and len(text) <= 18:
                version = text
            elif text.lower() in _STAGES:
                stage, version = text, None
            else:
                raise InvalidInput(
                    f"{where}: entity_version {version!r} is neither a version number, a stage "
                    f"({', '.join(sorted(_STAGES.values()))}) nor an alias ('@champion')."
                )
        given = [
            k
            for k, v in (("entity_version", version), ("stage", stage), ("alias", alias))
            if v is not None
        ]
        if len(given) != 1:
            raise InvalidInput(
                f"{where} for model {entity_name!r} needs exactly one of entity_version, stage "
                f"or alias; got {given or 'none'}."
            )
        if stage is not None:
            canonical = _STAGES.get(str(stage).strip().lower())
            if canonical is None or canonical in ("None", "Archived"):
                raise InvalidInput(
                    f"{where}: stage {stage!r} cannot be served; use 'Staging' or 'Production'."
                )
            stage = canonical
        if alias is not None and (not isinstance(alias, str) or not alias.strip()):
            raise InvalidInput(f"{where}: alias must be a non-empty string, got {alias!r}.")
        workers = data.get("workers")
        if workers is None:
            workers = _WORKLOAD_WORKERS.get(str(data.get("workload_size", "Small")), 1)
        if (
            not isinstance(workers, int)
            or isinstance(workers, bool)
            or not (1 <= workers <= MAX_WORKERS)
        ):
            raise InvalidInput(
                f"{where}: workers must be an integer from 1 to {MAX_WORKERS}, got {workers!r}."
            )
        env = data.get("environment_vars") or {}
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()
        ):
            raise InvalidInput(f"{where}: environment_vars must map strings to strings.")
        selector = version or stage or f"{alias}"
        name = data.get("name") or f"{entity_name}-{selector}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInput(
                f"{where}: served entity name {name!r} must be letters, digits, '-' or '_'."
            )
        return cls(
            name=name,
            entity_name=entity_name,
            entity_version=version,
            stage=stage,
            alias=alias,
            workers=workers,
            environment_vars=dict(env),
        )

    def to_json(self) -> dict[str, Any]:
        """As stored and as returned by the REST API."""
        out: dict[str, Any] = {"name": self.name, "entity_name": self.entity_name}
        if self.entity_version is not None:
            out["entity_version"] = self.entity_version
        if self.stage is not None:
            out["stage"] = self.stage
        if self.alias is not None:
            out["alias"] = self.alias
        out["workers"] = self.workers
        if self.environment_vars:
            out["environment_vars"] = dict(self.environment_vars)
        return out


@dataclass(frozen=True)
class EndpointConfig:
    """Served entities, their traffic percentages and the optional inference table.

    Example:
        >>> cfg = EndpointConfig.from_json({
        ...     "served_entities": [{"entity_name": "churn", "stage": "Production"},
        ...                         {"entity_name": "churn", "stage": "Staging"}],
        ...     "traffic_config": {"routes": [
        ...         {"served_model_name": "churn-Production", "traffic_percentage": 90},
        ...         {"served_model_name": "churn-Staging", "traffic_percentage": 10}]}})
        >>> cfg.routes
        {'churn-Production': 90, 'churn-Staging': 10}
    """

    served_entities: tuple[ServedEntity, ...]
    routes: dict[str, int]
    inference_table: str | None = None

    def entity(self, name: str) -> ServedEntity:
        for entity in self.served_entities:
            if entity.name == name:
                return entity
        names = [e.name for e in self.served_entities]
        from lakebox.errors import NotFound

        raise NotFound(
            f"No served model {name!r} in this endpoint; it serves {names}."
            + close_matches(name, names)
        )

    @classmethod
    def from_json(
        cls, data: Any, *, traffic: dict[str, int] | None = None, inference_table: str | None = None
    ) -> EndpointConfig:
        """Parse Databricks' ``EndpointCoreConfigInput`` (plus lakebox's ``inference_table``).

        ``traffic`` maps a served entity's name, stage, alias or version to a percentage; it
        is a shorthand for ``traffic_config.routes``.
        """
        if not isinstance(data, dict):
            raise InvalidInput(f"config must be an object, got {type(data).__name__}.")
        raw = data.get("served_entities") or data.get("served_models")
        if not isinstance(raw, list) or not raw:
            raise InvalidInput(
                "config needs 'served_entities': a non-empty list such as "
                '[{"entity_name": "churn", "entity_version": "1"}].'
            )
        entities = tuple(ServedEntity.from_json(item, index=i) for i, item in enumerate(raw))
        names = [e.name for e in entities]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidInput(
                f"Served entity names must be unique; {duplicates} appear more than once. "
                "Give each a distinct 'name'."
            )
        routes = cls._routes(data, entities, traffic)
        table = inference_table or data.get("inference_table") or _auto_capture(data)
        return cls(served_entities=entities, routes=routes, inference_table=table or None)

    @staticmethod
    def _routes(
        data: dict[str, Any], entities: tuple[ServedEntity, ...], traffic: dict[str, int] | None
    ) -> dict[str, int]:
        names = [e.name for e in entities]
        if traffic is not None:
            pairs: list[tuple[Any, Any]] = list(traffic.items())
        else:
            raw = (data.get("traffic_config") or {}).get("routes")
            if raw is None:
                if len(entities) == 1:
                    return {entities[0].name: 100}
                raise InvalidInput(
                    f"An endpoint serving {len(entities)} models needs traffic_config.routes "
                    f"giving each of {names} a traffic_percentage (summing to 100)."
                )
            if not isinstance(raw, list):
                raise InvalidInput("traffic_config.routes must be a list.")
            pairs = []
            for route in raw:
                if not isinstance(route, dict):
                    raise InvalidInput("Each traffic route must be an object.")
                target = route.get("served_model_name") or route.get("served_entity_name")
                pairs.append((target, route.get("traffic_percentage")))
        routes: dict[str, int] = {}
        for target, pct in pairs:
            name = _match_entity(target, entities)
            if not isinstance(pct, int) or isinstance(pct, bool) or not 0 <= pct <= 100:
                raise InvalidInput(
                    f"traffic_percentage of {target!r} must be an integer from 0 to 100, "
                    f"got {pct!r}."
                )
            if name in routes:
                raise InvalidInput(f"Served model {name!r} has more than one traffic route.")
            routes[name] = pct
        total = sum(routes.values())
        if total != 100:
            raise InvalidInput(f"Traffic percentages must sum to 100; {routes} sum to {total}.")
        return routes

    def to_json(self) -> dict[str, Any]:
        """As stored and as returned under ``config`` by the REST API."""
        out: dict[str, Any] = {
            "served_entities": [e.to_json() for e in self.served_entities],
            "traffic_config": {
                "routes": [
                    {"served_model_name": n, "served_entity_name": n, "traffic_percentage": p}
                    for n, p in self.routes.items()
                ]
            },
        }
        if self.inference_table:
            out["inference_table"] = self.inference_table
        return out


def _match_entity(target: Any, entities: tuple[ServedEntity, ...]) -> str:
    names = [e.name for e in entities]
    if target in names:
        return str(target)
    text = str(target)
    matches = [
        e.name
        for e in entities
        if text in (e.selector, e.stage, e.alias, f"@{e.alias}", e.entity_version)
    ]
    if len(matches) == 1:
        return matches[0]
    raise InvalidInput(
        f"Traffic route names {target!r}, which is not one of the served models {names}."
        + close_matches(text, names)
    )


def _auto_capture(data: dict[str, Any]) -> str | None:
    capture = data.get("auto_capture_config")
    if not isinstance(capture, dict) or capture.get("enabled") is False:
        return None
    parts = [capture.get("catalog_name"), capture.get("schema_name")]
    prefix = capture.get("table_name_prefix")
    if not all(parts) or not prefix:
        raise InvalidInput(
            "auto_capture_config needs catalog_name, schema_name and table_name_prefix."
        )
    return f"{parts[0]}.{parts[1]}.{prefix}_payload"
