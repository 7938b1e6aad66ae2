"""``ws.serving``: create, update, list and query model serving endpoints."""

from __future__ import annotations

import getpass
import json
import os
import threading
from typing import TYPE_CHECKING, Any

from lakebox.errors import InvalidInput
from lakebox.serving._config import EndpointConfig, check_endpoint_name
from lakebox.serving._runtime import Runtime
from lakebox.serving._store import EndpointRecord, EndpointStore

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Serving", "endpoint_json"]

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


def _config(
    served_entities: list[dict[str, Any]] | None,
    config: dict[str, Any] | None,
    traffic: dict[str, int] | None,
    inference_table: str | None,
) -> EndpointConfig:
    if (served_entities is None) == (config is None):
        raise InvalidInput("Give either served_entities=[...] or config={...} (not both).")
    doc = dict(config) if config is not None else {"served_entities": served_entities}
    if inference_table is not None:
        from lakebox.catalog import TableName

        inference_table = TableName.parse(inference_table).full_name
    return EndpointConfig.from_json(doc, traffic=traffic, inference_table=inference_table)


def endpoint_json(record: EndpointRecord) -> dict[str, Any]:
    """An endpoint as Databricks' ``ServingEndpointDetailed`` JSON."""

    def config_json(cfg: EndpointConfig, version: int) -> dict[str, Any]:
        out = cfg.to_json()
        for entity in out["served_entities"]:
            loaded = record.served_versions.get(entity["name"])
            if loaded is not None:
                entity["current_version"] = loaded
            entity["state"] = {
                "deployment": "DEPLOYMENT_READY" if loaded else "DEPLOYMENT_CREATING",
                "deployment_state_message": "" if loaded else "Loading",
            }
        out["served_models"] = [
            {
                **e,
                "model_name": e["entity_name"],
                "model_version": e.get("entity_version") or e.get("current_version", ""),
            }
            for e in out["served_entities"]
        ]
        out["config_version"] = version
        return out

    state: dict[str, Any] = {"ready": record.ready, "config_update": record.config_update}
    if record.reason:
        state["reason"] = record.reason
    out: dict[str, Any] = {
        "name": record.name,
        "id": record.name,
        "creator": record.creator,
        "creation_timestamp": record.creation_timestamp,
        "last_updated_timestamp": record.last_updated_timestamp,
        "state": state,
        "tags": record.tags,
        "permission_level": "CAN_MANAGE",
    }
    out = {k: v for k, v in out.items() if v is not None}
    if record.description:
        out["description"] = record.description
    if record.config is not None:
        version = record.config_version - (1 if record.pending_config is not None else 0)
        out["config"] = config_json(record.config, version)
    if record.pending_config is not None:
        pending = config_json(record.pending_config, record.config_version)
        pending["start_time"] = record.last_updated_timestamp
        out["pending_config"] = pending
    return out


class Serving:
    """Model serving endpoints of a workspace (``ws.serving``).

    Endpoints are stored in the metadata database; models are loaded in the process that
    serves them (each ``lakebox up`` worker, or this process for :meth:`query`).

    Example:
        >>> ws.serving.create_endpoint(                                       # doctest: +SKIP
        ...     "churn",
        ...     served_entities=[{"entity_name": "churn", "stage": "Production"},
        ...                      {"entity_name": "churn", "stage": "Staging"}],
        ...     traffic={"Production": 90, "Staging": 10},
        ...     inference_table="main.serving.churn_log")
        >>> ws.serving.query("churn", [{"sessions": 3, "spend": 20.0, "tickets": 0}])
        {'predictions': [0], 'served_model': 'churn-Production'}
    """

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws
        self.store = EndpointStore(ws.metadata)
        self.max_body_bytes = int(
            os.environ.get("LAKEBOX_SERVING_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)
        )
        self._runtime: Runtime | None = None
        self._runtime_lock = threading.Lock()

    @property
    def runtime(self) -> Runtime:
        """This process's loaded endpoints (created on first use)."""
        if self._runtime is None:
            with self._runtime_lock:
                if self._runtime is None:
                    self._runtime = Runtime(self._ws)
        return self._runtime

    def create_endpoint(
        self,
        name: str,
        served_entities: list[dict[str, Any]] | None = None,
        *,
        traffic: dict[str, int] | None = None,
        config: dict[str, Any] | None = None,
        inference_table: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        wait: bool = True,
    ) -> EndpointRecord:
        """Create an endpoint.

        Args:
            name: letters, digits, ``-`` and ``_``.
            served_entities: ``[{"entity_name": "churn", "entity_version": "3"}, ...]``; a
                stage (``"stage": "Production"``) or an alias (``"alias": "champion"``) may
                replace ``entity_version``; ``name``, ``workers`` and ``environment_vars``
                are optional.
            traffic: percentage per served entity (by name, stage, alias or version);
                required with more than one served entity.
            config: Databricks' ``EndpointCoreConfigInput`` JSON instead of the two above.
            inference_table: a Delta table (``catalog.schema.table``) receiving every
                request and response.
            description: free text.
            tags: key/value tags.
            wait: load the models in this process before returning (so the returned state
                is READY, or NOT_READY with the reason).
        """
        check_endpoint_name(name)
        cfg = _config(served_entities, config, traffic, inference_table)
        record = self.store.insert(
            name,
            cfg,
            description=description,
            tags=[{"key": k, "value": v} for k, v in (tags or {}).items()],
            creator=_user(),
        )
        if wait:
            self.runtime.deploy(record)
            return self.store.get(name)
        return record

    def get_endpoint(self, name: str) -> EndpointRecord:
        """The endpoint's config and state."""
        return self.store.get(name)

    def list_endpoints(self) -> list[EndpointRecord]:
        """Every endpoint, by name."""
        return self.store.list()

    def update_config(
        self,
        name: str,
        served_entities: list[dict[str, Any]] | None = None,
        *,
        traffic: dict[str, int] | None = None,
        config: dict[str, Any] | None = None,
        inference_table: str | None = None,
        wait: bool = True,
    ) -> EndpointRecord:
        """Replace the endpoint's config; the new models load beside the old ones and are
        swapped in with no failed request (in every server worker). If they fail to load,
        the old config keeps serving and the state says why (``UPDATE_FAILED``)."""
        current = self.store.get(name)
        cfg = _config(served_entities, config, traffic, inference_table)
        if inference_table is None and cfg.inference_table is None and current.config:
            cfg = EndpointConfig(cfg.served_entities, cfg.routes, current.config.inference_table)
        record = self.store.update_config(name, cfg)
        if wait:
            self.runtime.deploy(record)
            return self.store.get(name)
        return record

    def delete_endpoint(self, name: str) -> None:
        """Delete the endpoint (its inference table stays)."""
        self.store.delete(name)
        if self._runtime is not None:
            self._runtime.drop(name)

    def query(
        self,
        name: str,
        data: Any = None,
        *,
        served_model: str | None = None,
        params: dict[str, Any] | None = None,
        **body: Any,
    ) -> dict[str, Any]:
        """Score rows with the endpoint, in this process.

        Args:
            name: the endpoint.
            data: a pandas DataFrame or a list of row dicts; or pass one of the REST body
                keys (``dataframe_records=``, ``dataframe_split=``, ``instances=``,
                ``inputs=``) instead.
            served_model: call this served model instead of following the traffic split.
            params: inference parameters.

        Returns:
            ``{"predictions": [...], "served_model": name}``.

        Raises:
            InvalidInput: bad input (the message names the column and expected type).
        """
        doc = dict(body)
        if data is not None:
            if isinstance(data, list):
                doc["dataframe_records"] = data
            else:
                doc["dataframe_split"] = json.loads(data.to_json(orient="split", index=False))
        if params is not None:
            doc["params"] = params
        response = self.runtime.invoke_sync(
            name, json.dumps(doc).encode(), served_model=served_model
        )
        result = json.loads(response.body)
        if response.status != 200:
            from lakebox.serving._runtime import error_from_json

            raise error_from_json(response.status, result)
        result["served_model"] = response.served_model
        return dict(result)

    def close(self) -> None:
        """Stop this process's runtime (flushes inference tables)."""
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None
