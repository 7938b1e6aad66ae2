"""The serving runtime of one process: loaded models, hot swap, routing, invocation.

Every server worker process has one :class:`Runtime`. It keeps an immutable
:class:`Deployment` per endpoint (the loaded models and the traffic split) and replaces it
with one assignment when a config changes or a stage/alias moves. A request takes the
deployment once and uses it to the end, so a swap never fails a request in flight; the old
models are dropped when the last request holding them finishes.

A watcher thread polls the metadata database every ``poll_interval`` seconds: endpoint
``config_version`` counters (configs written by any process) and the registry events in the
durable outbox (stage transitions, alias moves). A model that fails to load leaves the
previous deployment serving and records the reason on the endpoint.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakebox.errors import InvalidInput, LakeboxError
from lakebox.serving._config import EndpointConfig, ServedEntity
from lakebox.serving._inference_log import InferenceLogger, inference_row
from lakebox.serving._inputs import ParsedInput, parse_request
from lakebox.serving._metrics import Metrics
from lakebox.serving._model import LoadedModel, LoadError, load_served_model, resolve_version
from lakebox.serving._store import EndpointRecord, EndpointStore

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["Deployment", "Response", "Runtime"]

_log = logging.getLogger(__name__)
# A process retries loading an endpoint that has nothing to serve at most this often.
RETRY_SECONDS = 2.0
_MOVE_EVENTS = {
    "MODEL_VERSION_TRANSITIONED_STAGE",
    "MODEL_VERSION_TRANSITIONED_TO_STAGING",
    "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
    "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED",
    "MODEL_VERSION_ALIAS_SET",
    "MODEL_VERSION_ALIAS_DELETED",
}


@dataclass(frozen=True)
class Deployment:
    """What one endpoint serves in this process right now (never mutated: replaced)."""

    name: str
    config_version: int
    config: EndpointConfig
    models: dict[str, LoadedModel]
    _names: tuple[str, ...]
    _cumulative: tuple[float, ...]

    @classmethod
    def build(
        cls, name: str, config_version: int, config: EndpointConfig, models: dict[str, LoadedModel]
    ) -> Deployment:
        routed = [(n, p) for n, p in config.routes.items() if p > 0]
        cumulative = tuple(itertools.accumulate(p for _, p in routed))
        return cls(name, config_version, config, models, tuple(n for n, _ in routed), cumulative)

    def pick(self) -> LoadedModel:
        """A served model chosen by the traffic percentages."""
        if len(self._names) == 1:
            return self.models[self._names[0]]
        index = bisect.bisect_right(self._cumulative, random.random() * self._cumulative[-1])
        return self.models[self._names[min(index, len(self._names) - 1)]]

    def served(self, name: str) -> LoadedModel:
        model = self.models.get(name)
        if model is None:
            self.config.entity(name)  # raises NotFound naming the served models
            raise LoadError(f"Served model {name!r} is not loaded.")
        return model

    def versions(self) -> dict[str, str]:
        return {n: m.version for n, m in self.models.items()}


@dataclass(frozen=True)
class Response:
    """An invocation's outcome, ready to send."""

    status: int
    body: bytes
    served_model: str | None


def _jsonable(result: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(result, pd.DataFrame):
        return json.loads(result.to_json(orient="records"))
    if isinstance(result, pd.Series):
        return json.loads(result.to_json(orient="values"))
    if isinstance(result, np.ndarray):
        return result.tolist()
    if isinstance(result, dict):
        return {k: _jsonable(v) for k, v in result.items()}
    if isinstance(result, (list, tuple)):
        return [_jsonable(v) for v in result]
    if isinstance(result, np.generic):
        return result.item()
    return result


class Runtime:
    """Loaded endpoints of this process, kept in step with the metadata database.

    Args:
        ws: the workspace.
        poll_interval: seconds between checks for config changes and registry events.
        resolve_interval: seconds between re-resolving stages and aliases in MLflow directly
            (catches registry changes made without lakebox's registry store).
    """

    def __init__(
        self, ws: Workspace, *, poll_interval: float = 0.5, resolve_interval: float = 15.0
    ) -> None:
        self.ws = ws
        self.store = EndpointStore(ws.metadata)
        self.metrics = Metrics()
        self.logger = InferenceLogger(
            ws.tables, on_drop=lambda n: self.metrics.incr("inference_log_dropped", n)
        )
        self.poll_interval = poll_interval
        self.resolve_interval = resolve_interval
        self.deployments: dict[str, Deployment] = {}
        self._attempted: dict[str, int] = {}
        self._failed_at: dict[str, float] = {}
        self.eager = False
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._seq: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None

    # ----------------------------------------------------------------- loading
    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(self.ws.tracking_uri, self.ws.registry_uri)
        return self._client

    def _lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())

    def ensure(self, name: str) -> Deployment:
        """The endpoint's deployment, loading it in this process if needed.

        Raises:
            NotFound: no such endpoint.
            LoadError: its models could not be loaded (the reason is on the endpoint too).
        """
        deployment = self.deployments.get(name)
        if deployment is not None:
            return deployment
        record = self.store.get(name)
        self.deploy(record)
        deployment = self.deployments.get(name)
        if deployment is None:
            reason = self.store.get(name).reason or "its models have not loaded"
            raise LoadError(f"Serving endpoint {name!r} is not ready: {reason}")
        self.start()
        return deployment

    def deploy(self, record: EndpointRecord) -> None:
        """Load ``record``'s target config beside what is served, then swap it in."""
        with self._lock(record.name):
            current = self.deployments.get(record.name)
            if current is not None and current.config_version == record.config_version:
                return
            if self._attempted.get(record.name) == record.config_version and (
                current is not None
                or time.monotonic() - self._failed_at.get(record.name, 0.0) < RETRY_SECONDS
            ):
                return
            self._attempted[record.name] = record.config_version
            candidates = [record.pending_config, record.config]
            errors: list[str] = []
            for config in candidates:
                if config is None:
                    continue
                try:
                    models = self._load_all(config, current)
                except LoadError as exc:
                    errors.append(exc.message)
                    if current is not None:
                        break  # keep serving what we have
                    continue
                fresh = Deployment.build(record.name, record.config_version, config, models)
                self._swap(record.name, fresh, current)
                if config is record.target:
                    self.store.mark_loaded(record.name, record.config_version, fresh.versions())
                else:
                    self.store.mark_failed(record.name, record.config_version, errors[0])
                return
            if errors:
                self._failed_at[record.name] = time.monotonic()
                _log.warning("endpoint %s: %s", record.name, errors[0])
                self.store.mark_failed(record.name, record.config_version, errors[0])

    def _load_all(
        self, config: EndpointConfig, current: Deployment | None
    ) -> dict[str, LoadedModel]:
        models: dict[str, LoadedModel] = {}
        for entity in config.served_entities:
            version = resolve_version(self.client, entity)
            models[entity.name] = self._reuse(current, entity, version) or load_served_model(
                self.client, entity, version
            )
        return models

    @staticmethod
    def _reuse(
        current: Deployment | None, entity: ServedEntity, version: str
    ) -> LoadedModel | None:
        if current is None:
            return None
        for model in current.models.values():
            if model.entity == entity and model.version == version:
                return model
        return None

    def _swap(self, name: str, fresh: Deployment, old: Deployment | None) -> None:
        self.deployments[name] = fresh  # the atomic swap
        if old is not None:
            kept = {id(m) for m in fresh.models.values()}
            for model in old.models.values():
                if id(model) not in kept:
                    model.close()

    def refresh_moves(self, model_names: set[str] | None = None) -> list[str]:
        """Re-resolve stages and aliases; swap in models whose version moved.

        Returns the endpoints that changed.
        """
        changed = []
        for name, deployment in list(self.deployments.items()):
            moving = [
                m
                for m in deployment.models.values()
                if m.entity.moves and (model_names is None or m.entity.entity_name in model_names)
            ]
            if not moving:
                continue
            with self._lock(name):
                current = self.deployments.get(name)
                if current is not deployment:
                    continue
                models = dict(current.models)
                problems = []
                for model in moving:
                    try:
                        version = resolve_version(self.client, model.entity)
                        if version != model.version:
                            models[model.name] = load_served_model(
                                self.client, model.entity, version
                            )
                    except LoadError as exc:
                        problems.append(exc.message)
                if any(models[n] is not current.models[n] for n in models):
                    fresh = Deployment.build(name, current.config_version, current.config, models)
                    self._swap(name, fresh, current)
                    changed.append(name)
                    self.store.set_reason(name, "; ".join(problems) or None, fresh.versions())
                elif problems:
                    self.store.set_reason(
                        name,
                        "; ".join(problems)
                        + " (still serving version "
                        + ", ".join(f"{n}={m.version}" for n, m in current.models.items())
                        + ")",
                    )
        return changed

    def drop(self, name: str) -> None:
        """Forget an endpoint (deleted)."""
        old = self.deployments.pop(name, None)
        self._attempted.pop(name, None)
        if old is not None:
            for model in old.models.values():
                model.close()

    # ----------------------------------------------------------------- watching
    def start(self) -> None:
        """Start the watcher thread (idempotent)."""
        if self._thread is not None:
            return
        with self._locks_guard:
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._watch, name="lakebox-serving-watch", daemon=True
            )
            self._thread.start()

    def _latest_seq(self) -> int:
        from lakebox.events import Outbox

        outbox, seq = Outbox(self.ws.metadata), 0
        while True:
            page = [e.seq for e in outbox.events(after_seq=seq, limit=1000)]
            if not page:
                return seq
            seq = page[-1]

    def poll(self) -> None:
        """One watcher step: new configs, deleted endpoints, registry moves."""
        from lakebox.events import Outbox

        if self._seq is None:
            self._seq = self._latest_seq()
        versions = self.store.versions()
        for name in list(self.deployments):
            if name not in versions:
                self.drop(name)
        for name, version in versions.items():
            current = self.deployments.get(name)
            if current is None and not self.eager:
                continue  # loaded on first use in this process
            if (current is None or current.config_version != version) and (
                self._attempted.get(name) != version
            ):
                with contextlib.suppress(LakeboxError):  # deleted meanwhile
                    self.deploy(self.store.get(name))
        moved: set[str] = set()
        for event in Outbox(self.ws.metadata).events(after_seq=self._seq, limit=1000):
            self._seq = event.seq
            if event.event in _MOVE_EVENTS and event.model_name:
                moved.add(event.model_name)
        if moved:
            self.refresh_moves(moved)

    def _watch(self) -> None:
        last_resolve = time.monotonic()
        while not self._stop.wait(self.poll_interval):
            try:
                self.poll()
                if time.monotonic() - last_resolve > self.resolve_interval:
                    last_resolve = time.monotonic()
                    self.refresh_moves()
            except Exception:
                _log.exception("serving watcher poll failed")

    def load_all(self) -> None:
        """Load every endpoint in the database and keep loading new ones (server start-up)."""
        self.eager = True
        for record in self.store.list():
            try:
                self.deploy(record)
            except Exception:
                _log.exception("loading endpoint %s failed", record.name)
        self.start()

    def close(self) -> None:
        """Stop watching, flush the inference log, release model thread pools."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.logger.flush()  # the logger restarts if this runtime serves again
        self.eager = False
        for name in list(self.deployments):
            self.drop(name)

    # ----------------------------------------------------------------- invoking
    async def invoke(
        self, endpoint: str, body: bytes, content_type: str, *, served_model: str | None = None
    ) -> Response:
        """Answer one invocation (never raises for bad input: the error is the response)."""
        started = time.perf_counter()
        model: LoadedModel | None = None
        deployment = self.deployments.get(endpoint)
        parsed: ParsedInput | None = None
        try:
            if deployment is None:
                import anyio.to_thread

                deployment = await anyio.to_thread.run_sync(self.ensure, endpoint)
            model = deployment.pick() if served_model is None else deployment.served(served_model)
            parsed = parse_request(body, content_type, model.schema, matrix=model.matrix)
            if model.inline:
                result = model.predict(self.ws, parsed.data, parsed.params)
            else:
                import asyncio

                try:
                    future = asyncio.get_running_loop().run_in_executor(
                        model.executor(), model.predict, self.ws, parsed.data, parsed.params
                    )
                except RuntimeError:  # swapped out and shut down this instant: run here
                    result = model.predict(self.ws, parsed.data, parsed.params)
                else:
                    result = await future
            payload = json.dumps({"predictions": _jsonable(result)}).encode()
            status = 200
        except LakeboxError as exc:
            status, payload = exc.http_status, json.dumps(exc.to_json()).encode()
        except Exception as exc:
            _log.exception("endpoint %s: predict failed", endpoint)
            status = 500
            payload = json.dumps(
                {"error_code": "INTERNAL_ERROR", "message": f"{type(exc).__name__}: {exc}"}
            ).encode()
        seconds = time.perf_counter() - started
        if deployment is not None:  # unknown endpoint names must not grow the label set
            self.metrics.observe(endpoint, model.name if model is not None else "", status, seconds)
        if deployment is not None and deployment.config.inference_table and model is not None:
            self.logger.offer(
                deployment.config.inference_table,
                inference_row(
                    request_id=uuid.uuid4().hex,
                    client_request_id=parsed.client_request_id if parsed else None,
                    endpoint=endpoint,
                    served_model=model.name,
                    model_name=model.entity.entity_name,
                    model_version=model.version,
                    status=status,
                    seconds=seconds,
                    request=body.decode("utf-8", "replace"),
                    response=payload.decode(),
                ),
            )
        return Response(status, payload, model.name if model is not None else None)

    def invoke_sync(
        self,
        endpoint: str,
        body: bytes,
        content_type: str = "application/json",
        *,
        served_model: str | None = None,
    ) -> Response:
        """:meth:`invoke` from synchronous code (the Python API and CLI)."""
        import asyncio

        return asyncio.run(self.invoke(endpoint, body, content_type, served_model=served_model))

    def loaded(self) -> dict[tuple[str, str], str]:
        """``{(endpoint, served model): version}`` for metrics."""
        return {(e, n): m.version for e, d in self.deployments.items() for n, m in d.models.items()}


def check_body_size(size: int, limit: int) -> None:
    """Refuse a body over the limit (413)."""
    if size > limit:
        raise PayloadTooLarge(
            f"The request body is {size} bytes; the limit is {limit} bytes. Send fewer rows "
            "per request (or raise LAKEBOX_SERVING_MAX_BODY_BYTES)."
        )


class PayloadTooLarge(InvalidInput):
    """The request body exceeds the size limit."""

    error_code = "REQUEST_LIMIT_EXCEEDED"
    http_status = 413


def error_from_json(status: int, doc: dict[str, Any]) -> LakeboxError:
    """Rebuild the error an invocation answered with (for the in-process Python API)."""
    from lakebox import errors

    message = str(doc.get("message", doc))
    if status == 413:
        return PayloadTooLarge(message)
    if status == 409:
        return LoadError(message)
    for cls in (errors.InvalidInput, errors.NotFound, errors.PermissionDenied):
        if cls.http_status == status:
            return cls(message)
    return LakeboxError(message)
