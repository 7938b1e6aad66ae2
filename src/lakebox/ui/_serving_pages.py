"""Serving pages: the endpoints, one endpoint's served models, traffic split, feature
lookups and inference table, a query box that calls the live endpoint, and request and
latency charts.

The query box calls the endpoint in this process through the same runtime that answers
``/serving-endpoints/{name}/invocations`` (so the request is counted in ``/metrics`` and
logged to the inference table like any other). The charts read the inference table
(requests per minute per served model, p50/p99 latency per minute); the counters this
server process keeps since it started are shown beside them.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from lakebox.errors import LakeboxError
from lakebox.ui._csrf import require_csrf
from lakebox.ui._render import page_router, render

if TYPE_CHECKING:
    from lakebox.serving import Deployment, EndpointRecord, LoadedModel
    from lakebox.workspace import Workspace

__all__ = ["build_pages", "sample_request"]

# The charts show this much history, ending at the newest logged request.
CHART_HOURS = 3
# Values put in a sample request for a signature column of each type.
_SAMPLE_VALUES: dict[str, Any] = {
    "double": 1.0,
    "float": 1.0,
    "long": 1,
    "integer": 1,
    "boolean": False,
    "string": "a",
    "binary": "",
    "datetime": "2024-01-01T00:00:00",
}


def build_pages(ws: Workspace) -> APIRouter:
    """The ``/ui/serving`` pages."""
    pages = page_router()

    @pages.get("/serving")
    def endpoints(request: Request) -> Response:
        rows = [_summary(r) for r in ws.serving.list_endpoints()]
        return render(request, "serving/list.html", {"endpoints": rows})

    @pages.get("/serving/{name}")
    def endpoint(request: Request, name: str) -> Response:
        record = ws.serving.get_endpoint(name)
        deployment, load_error = _deployment(ws, record)
        record = ws.serving.get_endpoint(name)  # loading just now may have changed its state
        config = record.pending_config or record.config
        entities = config.served_entities if config else ()
        served = [_served(ws, record, e, deployment) for e in entities]
        sample = _sample(ws, deployment)
        return render(
            request,
            "serving/endpoint.html",
            {
                "e": _summary(record),
                "record": record,
                "served": served,
                "load_error": load_error,
                "sample": json.dumps(sample, indent=2) if sample is not None else "",
                "lookups": _lookups(ws, deployment),
                "inference_table": config.inference_table if config else None,
                "process_metrics": ws.serving.runtime.metrics.summary(record.name),
            },
        )

    @pages.get("/serving/{name}/charts")
    def charts(request: Request, name: str) -> Response:
        record = ws.serving.get_endpoint(name)
        config = record.config or record.pending_config
        table = config.inference_table if config else None
        return render(
            request,
            "serving/_charts.html",
            {
                "name": record.name,
                "inference_table": table,
                "charts": _charts(ws, table, record.name) if table else None,
                "process_metrics": ws.serving.runtime.metrics.summary(record.name),
            },
        )

    @pages.post("/serving/{name}/query", dependencies=[Depends(require_csrf)])
    async def query(request: Request, name: str, body: str = Form("")) -> Response:
        from lakebox.serving._runtime import check_body_size

        record = await run_in_threadpool(ws.serving.get_endpoint, name)  # NotFound names it
        data = body.encode()
        check_body_size(len(data), ws.serving.max_body_bytes)
        started = time.perf_counter()
        answer = await ws.serving.runtime.invoke(record.name, data, "application/json")
        elapsed_ms = (time.perf_counter() - started) * 1000
        try:
            shown = json.dumps(json.loads(answer.body), indent=2)
        except ValueError:
            shown = answer.body.decode("utf-8", "replace")
        response = render(
            request,
            "serving/_answer.html",
            {
                "status": answer.status,
                "ok": answer.status == 200,
                "served_model": answer.served_model,
                "elapsed_ms": elapsed_ms,
                "answer": shown,
            },
        )
        response.headers["HX-Trigger"] = "serving-queried"
        return response

    return pages


# ---------------------------------------------------------------------- endpoint facts
def _summary(record: EndpointRecord) -> dict[str, Any]:
    """What the list shows of an endpoint."""
    config = record.config or record.pending_config
    entities = config.served_entities if config else ()
    return {
        "name": record.name,
        "ready": record.ready,
        "ready_kind": "ready" if record.ready == "READY" else "failed",
        "config_update": record.config_update,
        "update_kind": {"IN_PROGRESS": "updating", "UPDATE_FAILED": "failed"}.get(
            record.config_update, ""
        ),
        "reason": record.reason,
        "served": [
            f"{e.entity_name} {'v' + e.selector if e.entity_version else e.selector}"
            + (
                f" (v{record.served_versions[e.name]})"
                if e.name in record.served_versions and e.moves
                else ""
            )
            for e in entities
        ],
        "traffic": config.routes if config else {},
        "inference_table": config.inference_table if config else None,
        "creator": record.creator,
        "updated": record.last_updated_timestamp,
        "created": record.creation_timestamp,
    }


def _deployment(ws: Workspace, record: EndpointRecord) -> tuple[Deployment | None, str | None]:
    """The endpoint as loaded in this process (loading it now if it is not yet), or the
    reason it cannot be loaded."""
    runtime = ws.serving.runtime
    deployment = runtime.deployments.get(record.name)
    if deployment is not None:
        return deployment, None
    try:
        return runtime.ensure(record.name), None
    except LakeboxError as exc:
        return None, exc.message


def _served(
    ws: Workspace, record: EndpointRecord, entity: Any, deployment: Deployment | None
) -> dict[str, Any]:
    """A served model's row: what it selects, the version it runs, its traffic share."""
    config = record.pending_config or record.config
    loaded = deployment.models.get(entity.name) if deployment is not None else None
    version = (
        loaded.version if loaded is not None else record.served_versions.get(entity.name)
    ) or entity.entity_version
    signature = None
    if loaded is not None and loaded.schema is not None:
        signature = [f"{n}: {t}" for n, t, _ in loaded.schema.columns]
    return {
        "name": entity.name,
        "model": entity.entity_name,
        "selector": entity.selector,
        "version": version,
        "traffic": config.routes.get(entity.name, 0) if config else 0,
        "workers": entity.workers,
        "loaded": loaded is not None,
        "signature": signature,
        "features": loaded.feature_spec is not None if loaded is not None else False,
    }


def _lookups(ws: Workspace, deployment: Deployment | None) -> list[dict[str, Any]]:
    """The online feature lookups of the served models (from their feature specs), with
    where each feature table is published."""
    if deployment is None:
        return []
    out: list[dict[str, Any]] = []
    published: dict[str, list[dict[str, Any]]] = {}
    for model in deployment.models.values():
        spec = model.feature_spec
        if spec is None:
            continue
        for lk in spec.lookups:
            if lk.table not in published:
                try:
                    published[lk.table] = ws.features.get_table(lk.table).online_stores
                except LakeboxError:
                    published[lk.table] = []
            out.append(
                {
                    "served_model": model.name,
                    "table": lk.table,
                    "keys": list(lk.lookup.lookup_key),
                    "features": [f if f == o else f"{f} → {o}" for f, o in lk.outputs.items()],
                    "defaults": lk.defaults,
                    "online": published[lk.table],
                }
            )
        for fn in spec.functions:
            out.append(
                {
                    "served_model": model.name,
                    "table": None,
                    "function": fn.function.udf_name,
                    "features": [fn.output],
                    "keys": [],
                    "defaults": {},
                    "online": [],
                }
            )
    return out


# ---------------------------------------------------------------------- sample request
def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def sample_request(model: LoadedModel, ws: Workspace | None = None) -> dict[str, Any] | None:
    """A request body for ``model``: the first row of its input example, else one row
    built from its signature (or, for a model with a feature spec, its lookup keys with a
    key found in the feature table).

    Example:
        >>> sample_request(loaded_model)                                    # doctest: +SKIP
        {'dataframe_records': [{'sessions': 3.0, 'spend': 25.0, 'tickets': 2.0}]}
    """
    import numpy as np
    import pandas as pd

    if model.feature_spec is not None:
        return _feature_sample(model, ws)
    example = getattr(model.pyfunc, "input_example", None)
    if isinstance(example, pd.DataFrame) and len(example):
        row = {str(k): _jsonable(v) for k, v in example.iloc[0].items()}
        return {"dataframe_records": [row]}
    if isinstance(example, dict) and example:
        return {"inputs": {str(k): _jsonable(np.asarray(v).tolist()) for k, v in example.items()}}
    if isinstance(example, (np.ndarray, list)) and len(example):
        return {"inputs": np.asarray(example)[:1].tolist()}
    if model.schema is not None:
        return {
            "dataframe_records": [
                {name: _SAMPLE_VALUES.get(kind) for name, kind, _ in model.schema.columns}
            ]
        }
    return None


def _feature_sample(model: LoadedModel, ws: Workspace | None) -> dict[str, Any]:
    """Lookup keys (with a key from the feature table when it can be read) and the other
    input columns the feature spec needs."""
    spec = model.feature_spec
    row: dict[str, Any] = {}
    for lk in spec.lookups:
        keys = list(lk.lookup.lookup_key)
        if all(k in row for k in keys):
            continue
        values: dict[str, Any] = {}
        if ws is not None:
            try:
                dataset, _ = ws.tables.dataset(lk.table)
                first = dataset.head(1, columns=lk.table_keys)
                if first.num_rows:
                    found = [first.column(i)[0].as_py() for i in range(len(keys))]
                    values = dict(zip(keys, found, strict=False))
            except (LakeboxError, KeyError, ValueError):
                values = {}
        for key in keys:
            row.setdefault(key, _jsonable(values.get(key, 1)))
    skip = set(spec.label) | set(spec.exclude_columns) | set(spec.output_columns)
    timestamps = {lk.lookup.timestamp_lookup_key for lk in spec.lookups}
    for column in spec.input_columns:
        if column not in skip and column not in timestamps:
            row.setdefault(column, 1.0)
    return {"dataframe_records": [row]}


def _sample(ws: Workspace, deployment: Deployment | None) -> dict[str, Any] | None:
    if deployment is None:
        return None
    for name in sorted(deployment.config.routes, key=lambda n: -deployment.config.routes[n]):
        model = deployment.models.get(name)
        if model is not None:
            try:
                return sample_request(model, ws)
            except Exception:  # a sample is a convenience: never fail the page for it
                return None
    return None


# ---------------------------------------------------------------------- charts
def _charts(ws: Workspace, table: str, endpoint: str) -> dict[str, Any] | None:
    """Requests per minute (per served model) and p50/p99 latency per minute, from the
    inference table's last :data:`CHART_HOURS` hours of this endpoint; None when the
    table has no row of it yet."""
    import duckdb

    if not ws.tables.exists(table):
        return None
    dataset, _ = ws.tables.dataset(table)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        con.register("log", dataset)
        window = (
            "endpoint_name = $endpoint AND ts >= (SELECT max(ts) FROM log "
            f"WHERE endpoint_name = $endpoint) - INTERVAL {CHART_HOURS} HOUR"
        )
        per_model = con.execute(
            "SELECT date_trunc('minute', ts) AS minute, served_model_name AS model, "
            "count(*) AS requests, count(*) FILTER (WHERE status_code >= 400) AS errors "
            f"FROM log WHERE {window} GROUP BY ALL ORDER BY minute, model",
            {"endpoint": endpoint},
        ).fetchall()
        latency = con.execute(
            "SELECT date_trunc('minute', ts) AS minute, "
            "quantile_cont(execution_time_ms, 0.5), quantile_cont(execution_time_ms, 0.99), "
            "count(*) FROM log "
            f"WHERE {window} GROUP BY ALL ORDER BY minute",
            {"endpoint": endpoint},
        ).fetchall()
    finally:
        con.close()
    if not latency:
        return None
    models: dict[str, tuple[list[str], list[int]]] = {}
    errors: dict[str, int] = {}
    for minute, model, requests, errs in per_model:
        xs, ys = models.setdefault(model or "(none)", ([], []))
        xs.append(_iso(minute))
        ys.append(int(requests))
        errors[_iso(minute)] = errors.get(_iso(minute), 0) + int(errs)
    requests_fig = {
        "data": [
            {"type": "bar", "x": xs, "y": ys, "name": model}
            for model, (xs, ys) in sorted(models.items())
        ]
        + [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": list(errors),
                "y": list(errors.values()),
                "name": "errors",
                "line": {"color": "#cf222e"},
            }
        ],
        "layout": _layout("Requests per minute", "requests", barmode="stack"),
    }
    minutes = [_iso(r[0]) for r in latency]
    latency_fig = {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": minutes,
                "y": [round(float(r[1]), 3) for r in latency],
                "name": "p50",
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": minutes,
                "y": [round(float(r[2]), 3) for r in latency],
                "name": "p99",
            },
        ],
        "layout": _layout("Latency per minute (server side)", "ms"),
    }
    return {
        "requests": requests_fig,
        "latency": latency_fig,
        "total": sum(int(r[3]) for r in latency),
        "first": minutes[0],
        "last": minutes[-1],
    }


def _iso(moment: Any) -> str:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return str(moment)


def _layout(title: str, unit: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "height": 300,
        "margin": {"l": 50, "r": 20, "t": 45, "b": 40},
        "yaxis": {"title": {"text": unit}, "rangemode": "tozero"},
        "xaxis": {"type": "date"},
        "legend": {"orientation": "h", "y": -0.2},
        **extra,
    }
