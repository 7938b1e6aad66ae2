"""``ws.features``: feature tables, training sets, feature-aware models, the online store.

Names and keyword arguments follow Databricks' ``FeatureEngineeringClient``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
from sqlalchemy import delete, select

from lakebox.catalog._convert import delta_type_name, to_arrow, to_arrow_schema
from lakebox.engines import Engine, TableSnapshot, get_engine
from lakebox.errors import AlreadyExists, InvalidInput, NotFound, close_matches
from lakebox.features import _schema as meta
from lakebox.features._lookups import FeatureFunction, FeatureLookup
from lakebox.features._training import TrainingSet, build_spec, is_temporal
from lakebox.features.online import OnlineStore, open_online_store
from lakebox.metadata._db import utcnow

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.models.model import ModelInfo

    from lakebox.workspace import Workspace

__all__ = ["FeatureEngineeringClient", "FeatureTable"]

Mode = Literal["merge", "overwrite"]


@dataclass
class FeatureTable:
    """A feature table: a Delta table in the catalog plus its keys.

    Attributes:
        name: ``catalog.schema.table``.
        primary_keys: key columns, including the timeseries column if any.
        timeseries_columns: the time column (at most one).
        features: the non-key columns.
        description: the table comment.
        tags: table tags.
        version: the current Delta version (filled by ``get_table``).
        models: models logged with training sets that used the table.
        online_stores: where it was published: ``[{"store_uri", "table_version", ...}]``.
    """

    name: str
    primary_keys: list[str]
    timeseries_columns: list[str]
    features: list[str] = field(default_factory=list)
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int | None = None
    models: list[dict[str, Any]] = field(default_factory=list)
    online_stores: list[dict[str, Any]] = field(default_factory=list)

    @property
    def timestamp_keys(self) -> list[str]:
        """Older name of :attr:`timeseries_columns`."""
        return self.timeseries_columns


def _names(value: str | Sequence[str] | None, what: str) -> list[str]:
    if value is None:
        return []
    names = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(n, str) and n for n in names):
        raise InvalidInput(f"{what} must be column names, got {value!r}.")
    return names


class FeatureEngineeringClient:
    """The feature store of a workspace, reached as ``ws.features``.

    Example:
        >>> ws.features.create_table(name="main.fs.customer_daily",
        ...                          primary_keys=["customer_id", "ts"],
        ...                          timeseries_columns="ts", df=daily)          # doctest: +SKIP
        >>> ts = ws.features.create_training_set(df=labels, feature_lookups=[
        ...     FeatureLookup("main.fs.customer_daily", "customer_id",
        ...                   timestamp_lookup_key="event_ts")], label="churned")  # doctest: +SKIP
    """

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws
        self._stores: dict[str, OnlineStore] = {}
        self._published: dict[str, str] = {}

    @cached_property
    def engine(self) -> Engine:
        """The engine that runs joins (``[engine] name``)."""
        engine = self._ws.settings.engine
        options: dict[str, Any] = {}
        if engine.name == "spark":
            options = {"spark_master": engine.spark_master, "spark_conf": dict(engine.spark_conf)}
        return get_engine(engine.name, threads=engine.threads, **options)

    # ----------------------------------------------------------------- tables
    def create_table(
        self,
        name: str,
        primary_keys: str | Sequence[str],
        df: Any = None,
        *,
        timeseries_columns: str | Sequence[str] | None = None,
        timestamp_keys: str | Sequence[str] | None = None,
        partition_columns: str | Sequence[str] | None = None,
        schema: Any = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> FeatureTable:
        """Create a feature table (a Delta table plus its keys), from ``df`` or ``schema``.

        Args:
            name: ``catalog.schema.table``.
            primary_keys: key column(s); with a timeseries column, rows are unique per keys and
                time.
            df: initial rows (pandas, polars or Arrow).
            timeseries_columns: the time column for point-in-time lookups (``timestamp_keys``
                is accepted as the older name). It is added to the primary keys if missing.
            partition_columns: Delta partition columns.
            schema: a schema (pyarrow, deltalake or DDL) when there is no ``df``.
            description: the table comment.
            tags: table tags.

        Raises:
            InvalidInput: keys missing from the data, null or duplicate keys (with examples),
                or a timeseries column that is not a timestamp or date. Nothing is written.
        """
        tn = self._ws.tables.resolve(name)
        keys = _names(primary_keys, "primary_keys")
        if not keys:
            raise InvalidInput(f"Feature table {tn.full_name!r} needs at least one primary key.")
        ts_cols = _names(timeseries_columns, "timeseries_columns")
        old_ts = _names(timestamp_keys, "timestamp_keys")
        if ts_cols and old_ts and ts_cols != old_ts:
            raise InvalidInput(
                f"timeseries_columns={ts_cols} and timestamp_keys={old_ts} "
                "disagree; pass only timeseries_columns."
            )
        ts_cols = ts_cols or old_ts
        if len(ts_cols) > 1:
            raise InvalidInput(f"A feature table has at most one timeseries column, got {ts_cols}.")
        keys += [c for c in ts_cols if c not in keys]
        if (df is None) == (schema is None):
            raise InvalidInput(
                f"Create feature table {tn.full_name!r} from df or from schema: pass exactly one."
            )
        data = to_arrow(df) if df is not None else None
        arrow_schema = data.schema if data is not None else to_arrow_schema(schema)
        self._check_keys(tn.full_name, arrow_schema, keys, ts_cols)
        if data is not None:
            self._check_rows(tn.full_name, data, keys)
        if self._ws.tables.exists(tn):
            raise AlreadyExists(
                f"Table {tn.full_name!r} already exists. Write to it with "
                "ws.features.write_table(), or drop it first."
            )
        self._ws.tables.create(
            tn,
            data,
            schema=None if data is not None else arrow_schema,
            partition_by=_names(partition_columns, "partition_columns"),
            comment=description,
            tags=tags,
        )
        now = utcnow()
        try:
            with self._ws.metadata.begin() as conn:
                conn.execute(
                    meta.feature_tables.insert().values(
                        full_name=tn.full_name,
                        primary_keys=json.dumps(keys),
                        timeseries_columns=json.dumps(ts_cols),
                        created_at=now,
                        updated_at=now,
                    )
                )
        except Exception:
            self._ws.tables.drop(tn, missing_ok=True)
            raise
        return self.get_table(name=tn.full_name)

    @staticmethod
    def _check_keys(name: str, schema: pa.Schema, keys: list[str], ts_cols: list[str]) -> None:
        missing = [k for k in keys if k not in schema.names]
        if missing:
            raise InvalidInput(
                f"Key column(s) {missing} of feature table {name!r} are not in "
                f"its columns {schema.names}."
            )
        for column in ts_cols:
            kind = schema.field(column).type
            if not is_temporal(kind):
                raise InvalidInput(
                    f"Timeseries column {column!r} of {name!r} has type "
                    f"{delta_type_name(kind)}; it must be a timestamp or date "
                    "(convert it, e.g. with pandas.to_datetime)."
                )

    def _check_rows(self, name: str, data: pa.Table, keys: list[str]) -> None:
        nulls = [k for k in keys if data.column(k).null_count]
        if nulls:
            raise InvalidInput(
                f"Key column(s) {nulls} of feature table {name!r} contain nulls; "
                "every row needs all its keys. Nothing was written."
            )
        count, examples = self.engine.duplicate_keys(data, keys)
        if count:
            raise InvalidInput(
                f"{count} key(s) of feature table {name!r} occur more than once "
                f"in the data, e.g. {examples}. Keys {keys} must be unique; "
                "de-duplicate first. Nothing was written."
            )

    def write_table(self, name: str, df: Any, mode: Mode = "merge") -> int:
        """Write rows to a feature table.

        Args:
            name: the feature table.
            df: rows with the table's columns (missing nullable columns become null).
            mode: ``"merge"`` upserts by primary key; ``"overwrite"`` replaces all rows.

        Returns:
            The new Delta version.
        """
        if mode not in ("merge", "overwrite"):
            raise InvalidInput(
                f"mode must be 'merge' or 'overwrite', got {mode!r}. Nothing was written."
            )
        info = self.get_table(name=name)
        data = to_arrow(df)
        missing = [k for k in info.primary_keys if k not in data.column_names]
        if missing:
            raise InvalidInput(
                f"Key column(s) {missing} of feature table {info.name!r} are "
                f"missing from the data {data.column_names}. Nothing was "
                "written."
            )
        table_schema = pa.schema(self._ws.tables.delta_table(info.name).schema().to_arrow())
        extra = [c for c in data.column_names if c not in table_schema.names]
        if extra:
            from lakebox.errors import SchemaMismatch

            raise SchemaMismatch(
                f"Column(s) {extra} are not in feature table {info.name!r}, "
                f"whose columns are {table_schema.names}. Nothing was "
                "written."
            )
        self._check_rows(info.name, data, info.primary_keys)
        if mode == "overwrite":
            version = self._ws.tables.write(info.name, data, mode="overwrite")
        else:
            self._ws.tables.merge(info.name, data, on=info.primary_keys)
            version = self._ws.tables.delta_table(info.name).version()
        with self._ws.metadata.begin() as conn:
            conn.execute(
                meta.feature_tables.update()
                .where(meta.feature_tables.c.full_name == info.name)
                .values(updated_at=utcnow())
            )
        return version

    def read_table(
        self,
        name: str,
        *,
        version: int | None = None,
        timestamp: datetime | str | None = None,
        output: str = "pandas",
    ) -> Any:
        """Read a feature table, optionally at an older version or time."""
        info = self._meta_row(name)
        return self._ws.tables.read(info.name, version=version, timestamp=timestamp, output=output)  # type: ignore[arg-type]

    def _meta_row(self, name: str) -> FeatureTable:
        tn = self._ws.tables.resolve(name)
        with self._ws.metadata.begin() as conn:
            row = conn.execute(
                select(meta.feature_tables).where(meta.feature_tables.c.full_name == tn.full_name)
            ).first()
        if row is None:
            known = [t.name for t in self.list_tables()]
            hint = (
                " It is a plain table; create a feature table with ws.features.create_table()."
                if self._ws.tables.exists(tn)
                else ""
            )
            raise NotFound(
                f"Feature table {tn.full_name!r} does not exist."
                f"{close_matches(tn.full_name, known)}{hint} Feature tables: "
                f"{known}."
            )
        return FeatureTable(
            name=row.full_name,
            primary_keys=json.loads(row.primary_keys),
            timeseries_columns=json.loads(row.timeseries_columns),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def get_table(self, name: str) -> FeatureTable:
        """Everything known about a feature table: keys, features, description, tags, version,
        the models that use it and where it is published."""
        table = self._meta_row(name)
        info = self._ws.tables.get(table.name)
        table.features = [c.name for c in info.columns if c.name not in table.primary_keys]
        table.description, table.tags, table.version = info.comment, info.tags, info.version
        with self._ws.metadata.begin() as conn:
            models = conn.execute(
                select(meta.table_models)
                .where(meta.table_models.c.full_name == table.name)
                .order_by(meta.table_models.c.created_at)
            ).all()
            online = conn.execute(
                select(meta.online_publications)
                .where(meta.online_publications.c.full_name == table.name)
                .order_by(meta.online_publications.c.published_at)
            ).all()
        table.models = [
            {
                "model_uri": m.model_uri,
                "run_id": m.run_id,
                "name": m.model_name,
                "version": m.model_version,
                "table_version": m.table_version,
            }
            for m in models
        ]
        table.online_stores = [
            {
                "store_uri": o.store_uri,
                "table_version": o.table_version,
                "mode": o.mode,
                "num_rows": o.num_rows,
                "published_at": o.published_at,
            }
            for o in online
        ]
        return table

    def list_tables(self) -> list[FeatureTable]:
        """Every feature table (keys only; use :meth:`get_table` for details)."""
        with self._ws.metadata.begin() as conn:
            rows = conn.execute(
                select(meta.feature_tables).order_by(meta.feature_tables.c.full_name)
            ).all()
        return [
            FeatureTable(
                name=r.full_name,
                primary_keys=json.loads(r.primary_keys),
                timeseries_columns=json.loads(r.timeseries_columns),
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]

    def drop_table(self, name: str) -> None:
        """Drop a feature table: its Delta table, metadata and online copies."""
        table = self._meta_row(name)
        for store_uri in self._publications(table.name):
            self._store(store_uri).drop(table.name)
        with self._ws.metadata.begin() as conn:
            for t in (meta.online_publications, meta.table_models, meta.feature_tables):
                conn.execute(delete(t).where(t.c.full_name == table.name))
        self._published.pop(table.name, None)
        self._ws.tables.drop(table.name, missing_ok=True)

    def set_feature_table_tag(self, *, name: str, key: str, value: str) -> None:
        """Set a tag on a feature table."""
        self._ws.tables.set_tags(self._meta_row(name).name, {key: value})

    def delete_feature_table_tag(self, *, name: str, key: str) -> None:
        """Remove a tag from a feature table (a missing tag is ignored)."""
        self._ws.tables.unset_tags(self._meta_row(name).name, [key])

    # ----------------------------------------------------------------- training and models
    def create_training_set(
        self,
        *,
        df: Any,
        feature_lookups: Sequence[FeatureLookup | FeatureFunction],
        label: str | Sequence[str] | None,
        exclude_columns: Sequence[str] | None = None,
    ) -> TrainingSet:
        """A training set: ``df`` plus the features of ``feature_lookups``, point-in-time.

        For each row and lookup with a ``timestamp_lookup_key``, the newest feature row whose
        time is at or before the row's time (and within ``lookback_window``) is used — never
        a later one. Rows without a match keep nulls, or the lookup's ``default_values``.
        Feature tables are pinned at their current versions.

        Args:
            df: rows with lookup keys, timestamps and labels.
            feature_lookups: :class:`FeatureLookup` and :class:`FeatureFunction` objects.
            label: the label column(s), or None.
            exclude_columns: columns to leave out of the training DataFrame.

        Returns:
            A :class:`TrainingSet`; call ``load_df()`` for the data.
        """
        engine = self.engine
        # a DataFrame the engine computes on natively (a Spark DataFrame) stays where it is
        data = df if engine.is_frame(df) else to_arrow(df)
        spec = build_spec(self, engine.schema(data), feature_lookups, label, exclude_columns)
        return TrainingSet(self, data, spec)

    def log_model(
        self,
        model: Any,
        artifact_path: str | None = None,
        *,
        flavor: Any,
        training_set: TrainingSet,
        registered_model_name: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> ModelInfo:
        """Log a model with the feature spec of its training set inside the MLflow model.

        Args:
            model: the trained model.
            artifact_path: name of the model in the run (MLflow 3 calls it ``name``).
            flavor: the MLflow flavor module that saves ``model``, e.g. ``mlflow.sklearn``.
            training_set: the training set the model was trained on.
            registered_model_name: also register a new version of this model.
            kwargs: passed to ``mlflow.pyfunc.log_model`` (``pip_requirements`` defaults to
                lakebox, MLflow and the flavor's package, which skips slow inference).
        """
        from lakebox.features._model import log_feature_model

        info = log_feature_model(
            self._ws,
            model,
            name=name or artifact_path or "model",
            flavor=flavor,
            training_set=training_set,
            registered_model_name=registered_model_name,
            **kwargs,
        )
        spec = training_set.feature_spec
        now = utcnow()
        with self._ws.metadata.begin() as conn:
            for table in spec.feature_tables:
                conn.execute(
                    meta.table_models.insert().values(
                        full_name=table,
                        model_uri=info.model_uri,
                        run_id=info.run_id,
                        model_name=registered_model_name,
                        model_version=(
                            None
                            if info.registered_model_version is None
                            else str(info.registered_model_version)
                        ),
                        table_version=spec.table_versions.get(table),
                        created_at=now,
                    )
                )
        return info

    def score_batch(
        self, *, model_uri: str, df: Any, result_type: str | None = "double"
    ) -> pd.DataFrame | Any:
        """Score rows with a model logged by :meth:`log_model`, joining its features.

        ``df`` needs only the lookup keys (and timestamp lookup keys for point-in-time values;
        without them the newest values are used). Columns already in ``df`` override
        looked-up values.

        On the ``spark`` engine ``df`` may be a Spark DataFrame and the result is a Spark
        DataFrame (as in Databricks): features are joined in Spark and the model predicts in
        ``mapInArrow`` tasks on the executors, so the rows never pass through the driver.

        Args:
            model_uri: ``models:/name/3``, ``models:/name@alias``, ``models:/name/Production``
                or ``runs:/<run_id>/model``.
            df: rows to score.
            result_type: type of ``prediction`` (``"double"``, ``"float"``, ``"long"``,
                ``"int"``, ``"string"``, ``"boolean"``), or None to keep the model's.

        Returns:
            ``df`` with the feature columns and a ``prediction`` column: a pandas DataFrame on
            the ``local`` engine, a Spark DataFrame on ``spark``.
        """
        from lakebox.features._model import score

        return score(self._ws, model_uri, df, result_type=result_type)

    # ----------------------------------------------------------------- online
    def _store(self, uri: str | None) -> OnlineStore:
        key = uri or "sqlite"
        store = self._stores.get(key)
        if store is None:
            store = open_online_store(uri, home=self._ws.home)
            self._stores[key] = self._stores[store.uri] = store
        return store

    def _publications(self, name: str) -> list[str]:
        with self._ws.metadata.begin() as conn:
            rows = conn.execute(
                select(meta.online_publications.c.store_uri)
                .where(meta.online_publications.c.full_name == name)
                .order_by(meta.online_publications.c.published_at.desc())
            ).all()
        return [r.store_uri for r in rows]

    def publish_table(
        self,
        *,
        name: str,
        online_store: str | OnlineStore | None = None,
        mode: Mode = "merge",
        filter_condition: str | None = None,
        features: str | Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Copy the newest row per key of a feature table to an online store.

        Args:
            name: the feature table.
            online_store: ``"sqlite"`` (default: ``<home>/online.db``), ``"sqlite:///path"``,
                ``"redis://host:port/db"`` or an :class:`OnlineStore`.
            mode: ``"merge"`` upserts the keys published; ``"overwrite"`` replaces the online
                table.
            filter_condition: a SQL predicate choosing the rows to publish.
            features: feature columns to publish (default all).

        Returns:
            ``{"name", "store_uri", "table_version", "num_rows", "mode"}``.
        """
        if mode not in ("merge", "overwrite"):
            raise InvalidInput(
                f"mode must be 'merge' or 'overwrite', got {mode!r}. Nothing was published."
            )
        info = self.get_table(name=name)
        wanted = _names(features, "features") or info.features
        unknown = [f for f in wanted if f not in info.features]
        if unknown:
            raise InvalidInput(
                f"Feature(s) {unknown} are not in {info.name!r}; its features "
                f"are {info.features}.{close_matches(unknown[0], info.features)}"
            )
        store = online_store if isinstance(online_store, OnlineStore) else self._store(online_store)
        ts = info.timeseries_columns[0] if info.timeseries_columns else None
        keys = [k for k in info.primary_keys if k != ts]
        dataset, version = self._ws.tables.dataset(info.name)
        snapshot = TableSnapshot(info.name, self._ws.tables.location(info.name), version, dataset)
        columns = keys + ([ts] if ts else []) + [f for f in wanted if f != ts]
        rows = self.engine.latest_rows(
            snapshot, keys=keys, timestamp=ts, columns=columns, where=filter_condition
        )
        count = store.write(info.name, rows, keys=keys, mode=mode)
        with self._ws.metadata.begin() as conn:
            conn.execute(
                delete(meta.online_publications).where(
                    meta.online_publications.c.full_name == info.name,
                    meta.online_publications.c.store_uri == store.uri,
                )
            )
            conn.execute(
                meta.online_publications.insert().values(
                    full_name=info.name,
                    store_uri=store.uri,
                    table_version=version,
                    mode=mode,
                    num_rows=count,
                    published_at=utcnow(),
                )
            )
        self._published[info.name] = store.uri
        self._stores.setdefault(store.uri, store)
        return {
            "name": info.name,
            "store_uri": store.uri,
            "table_version": version,
            "num_rows": count,
            "mode": mode,
        }

    def lookup_online(
        self,
        name: str,
        keys: Sequence[Any],
        *,
        feature_names: Sequence[str] | None = None,
        online_store: str | None = None,
        include_keys: bool = True,
    ) -> list[dict[str, Any] | None]:
        """Look up the published features of a batch of keys (one store round trip).

        Args:
            name: the feature table.
            keys: one dict (``{"customer_id": 42}``) or tuple of key values per row.
            feature_names: features to return (default all published).
            online_store: the store to read (default: where the table was last published).
            include_keys: put the key columns in each returned row.

        Returns:
            One dict per key, in order; ``None`` where the key is not in the store.

        Example:
            >>> ws.features.lookup_online("main.fs.customer_daily",
            ...                           [{"customer_id": 42}])          # doctest: +SKIP
            [{'customer_id': 42, 'sessions_7d': 9, ...}]
        """
        uri = online_store or self._published.get(name)
        if uri is None:
            full = self._meta_row(name).name
            published = self._publications(full)
            if not published:
                raise InvalidInput(
                    f"Feature table {full!r} has not been published; run "
                    "ws.features.publish_table(name=...) first."
                )
            uri = published[0]
            self._published[name] = self._published[full] = uri
            name = full
        elif "." not in name or name.count(".") < 2:
            name = self._ws.tables.resolve(name).full_name
        store = self._store(uri)
        rows = store.read(name, keys, features=feature_names)
        if not include_keys:
            return rows
        layout_keys = store._layouts[name][1].keys
        out: list[dict[str, Any] | None] = []
        for key, row in zip(keys, rows, strict=False):
            if row is None:
                out.append(None)
                continue
            key_values = (
                {k: key[k] for k in layout_keys}
                if isinstance(key, Mapping)
                else dict(zip(layout_keys, key, strict=False))
            )
            out.append({**key_values, **row})
        return out

    def close(self) -> None:
        """Close online store connections."""
        for store in {id(s): s for s in self._stores.values()}.values():
            store.close()
        self._stores.clear()
