"""Feature table pages: the list of feature tables, and one table's keys, features, the models
that use it and where it is published online.

Routes (relative to ``/ui``): ``/features`` and ``/features/{catalog.schema.table}``.

Which models use a feature table comes from two places, merged by registered model and
version:

1. **The feature spec of registered model versions.** ``ws.features.log_model`` stores the
   spec (``artifacts/feature_spec.json``) inside the MLflow model; it names the feature
   tables and the table versions the training set read. To stay cheap, only the versions that
   matter are read: each registered model's latest version per stage (which MLflow returns
   with the model list) and the versions its aliases point to. A spec never changes once
   logged, so each (model, version) is read at most once per server process (a missing spec
   is remembered too); a page view costs one registry listing plus new versions' specs.
2. **What ``log_model`` recorded** in the feature store (``FeatureTable.models``): every model
   logged with a training set on this workspace, including older versions and models never
   registered.
"""

from __future__ import annotations

import json
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from lakebox.errors import LakeboxError, NotFound
from lakebox.features._spec import SPEC_ARTIFACT, FeatureSpec
from lakebox.ui._render import page_router, render

if TYPE_CHECKING:
    from lakebox.features import FeatureTable
    from lakebox.workspace import Workspace

__all__ = ["build_pages"]

# (registered model, its creation time, version) -> {feature table: table version}, or None
# when the version carries no feature spec. Versions are immutable, so entries never go stale;
# the model's creation time tells a re-created model's version 1 from the old one's.
_SpecKey = tuple[str, int, str]


@dataclass
class ModelUse:
    """One model (version) that uses a feature table, as the feature page shows it."""

    name: str | None
    version: str | None
    run_id: str | None
    model_uri: str | None
    table_version: int | None
    stage: str | None = None
    aliases: list[str] = field(default_factory=list)
    found_by: list[str] = field(default_factory=list)
    experiment_id: str | None = None
    source: str | None = None


class _SpecCache:
    """Feature tables of registered model versions, read from their specs once each."""

    def __init__(self) -> None:
        self._tables: dict[_SpecKey, dict[str, int | None] | None] = {}
        self._experiments: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def tables_of(self, key: _SpecKey) -> dict[str, int | None] | None:
        with self._lock:
            if key in self._tables:
                return self._tables[key]
        found = _read_spec_tables(key[0], key[2])
        with self._lock:
            self._tables[key] = found
        return found

    def experiment_of(self, ws: Workspace, run_id: str) -> str | None:
        if run_id not in self._experiments:
            try:
                self._experiments[run_id] = ws.models.client.get_run(run_id).info.experiment_id
            except Exception:  # a deleted run: show the model without a run link
                self._experiments[run_id] = None
        return self._experiments[run_id]


def _read_spec_tables(name: str, version: str) -> dict[str, int | None] | None:
    """The feature tables (and the versions trained on) in a registered version's spec."""
    import os

    import mlflow

    # MLflow draws a progress bar per download on the server's stderr otherwise.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory(prefix="lakebox-ui-spec-") as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}/artifacts/{SPEC_ARTIFACT}", dst_path=tmp
            )
            spec = FeatureSpec.from_dict(json.loads(Path(path).read_text()))
        except Exception:  # not logged with ws.features.log_model, or unreadable: no features
            return None
    return {table: spec.table_versions.get(table) for table in spec.feature_tables}


def models_using(ws: Workspace, table: FeatureTable, cache: _SpecCache) -> list[ModelUse]:
    """The models that use feature table ``table`` (see the module docstring for how)."""
    uses: dict[tuple[str | None, str | None, str | None], ModelUse] = {}
    for model in ws.models.list():
        aliases: dict[str, list[str]] = {}
        for alias, version in (getattr(model, "aliases", None) or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        versions = {str(v.version): v for v in model.latest_versions or []}
        for version in aliases:
            if version not in versions:
                try:
                    versions[version] = ws.models.get_version(model.name, version)
                except LakeboxError:  # deleted meanwhile
                    continue
        for number, mv in versions.items():
            tables = cache.tables_of((model.name, int(model.creation_timestamp or 0), number))
            if not tables or table.name not in tables:
                continue
            uses[(model.name, number, None)] = ModelUse(
                name=model.name,
                version=number,
                run_id=mv.run_id,
                model_uri=f"models:/{model.name}/{number}",
                table_version=tables[table.name],
                stage=mv.current_stage,
                aliases=sorted(aliases.get(number, [])),
                found_by=["feature spec"],
                source=mv.source,
            )
    by_source = {use.source: use for use in uses.values() if use.source}
    for row in table.models:
        key = (row["name"], row["version"], None) if row["name"] else (None, None, row["model_uri"])
        # a model logged unregistered and registered later is the version whose source it is
        use = uses.get(key) or by_source.get(row["model_uri"])
        if use is None:
            use = uses[key] = ModelUse(
                name=row["name"],
                version=row["version"],
                run_id=row["run_id"],
                model_uri=row["model_uri"],
                table_version=row["table_version"],
            )
        use.found_by.append("log_model record")
    for use in uses.values():
        if use.run_id:
            use.experiment_id = cache.experiment_of(ws, use.run_id)
    return sorted(
        uses.values(),
        key=lambda u: (u.name is None, u.name or "", -int(u.version or 0), u.model_uri or ""),
    )


def _shown_uri(uri: str) -> str:
    """A store URI without any password in it."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def build_pages(ws: Workspace) -> APIRouter:
    """The feature table pages (paths relative to ``/ui``)."""
    pages = page_router()
    cache = _SpecCache()

    @pages.get("/features")
    def feature_tables(request: Request) -> Response:
        comments = {t.full_name: t.comment for t in ws.tables.list()}
        tables = [(t, comments.get(t.name)) for t in ws.features.list_tables()]
        return render(request, "features/list.html", {"tables": tables})

    @pages.get("/features/{name}")
    def feature_table(request: Request, name: str) -> Response:
        table = ws.features.get_table(name)
        columns = {c.name: c for c in ws.tables.get(table.name).columns}
        online = [
            {
                **o,
                "store": _shown_uri(o["store_uri"]),
                "behind": (table.version or 0) - o["table_version"],
            }
            for o in table.online_stores
        ]
        return render(
            request,
            "features/table.html",
            {
                "table": table,
                "keys": [k for k in table.primary_keys if k not in table.timeseries_columns],
                "key_columns": [columns[k] for k in table.primary_keys if k in columns],
                "features": [columns[f] for f in table.features if f in columns],
                "models": models_using(ws, table, cache),
                "online": online,
                "catalog_path": "/ui/catalog/" + table.name.replace(".", "/"),
            },
        )

    @pages.get("/features/{name}/online/{index}")
    def online_count(request: Request, name: str, index: str) -> Response:
        publications = ws.features.get_table(name).online_stores
        number = int(index) if index.isdigit() else -1
        if not 0 <= number < len(publications):
            raise NotFound(
                f"Feature table {name!r} has no online publication {index!r}; it has "
                f"{len(publications)}."
            )
        count, problem = _live_count(ws, publications[number]["store_uri"], name)
        return render(request, "features/_online_count.html", {"count": count, "problem": problem})

    return pages


def _live_count(ws: Workspace, uri: str, table: str) -> tuple[int | None, str | None]:
    """Rows a store holds for ``table`` now, or why it could not be asked. Only URIs the
    feature store recorded are opened (the page passes an index, never a URI); Redis gets
    short timeouts so an unreachable server cannot hold the request."""
    from lakebox.features.online import open_online_store

    opened = uri
    if uri.startswith(("redis://", "rediss://")):
        opened += ("&" if "?" in uri else "?") + "socket_connect_timeout=2&socket_timeout=2"
    try:
        store = open_online_store(opened, home=ws.home)
    except Exception as exc:  # LakeboxError (unreachable, extra missing) or the driver's own
        message = str(getattr(exc, "message", exc)).replace(opened, _shown_uri(uri))
        return None, " ".join(message.split())[:200]
    try:
        return store.count(table), None
    except Exception as exc:  # the store went away between opening and counting
        return None, " ".join(str(exc).split())[:200]
    finally:
        store.close()
