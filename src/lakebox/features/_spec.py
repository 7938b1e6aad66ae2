"""The feature spec: which features a training set (and the model trained on it) uses, how to
compute them offline (point-in-time join) and online (key lookups in the online store).

A model logged with :meth:`FeatureEngineeringClient.log_model` carries its spec as
``artifacts/feature_spec.json`` in the MLflow model directory. Serving loads it with
:meth:`FeatureSpec.load` and computes a batch of request rows with
:meth:`FeatureSpec.lookup_online`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakebox.catalog._convert import to_arrow
from lakebox.engines import FeatureJoin, TableSnapshot
from lakebox.errors import InvalidInput, NotFound
from lakebox.features._functions import FunctionInfo, apply_function
from lakebox.features._lookups import FeatureFunction, FeatureLookup

if TYPE_CHECKING:
    import pandas as pd

    from lakebox.workspace import Workspace

__all__ = ["SPEC_ARTIFACT", "FeatureSpec", "ResolvedFunction", "ResolvedLookup"]

SPEC_ARTIFACT = "feature_spec.json"
FORMAT_VERSION = 1


def _jsonable(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


@dataclass
class ResolvedLookup:
    """A :class:`FeatureLookup` checked against its table.

    Attributes:
        lookup: the lookup as given.
        table_keys: the table's primary keys without the timeseries column, matched in order to
            ``lookup.lookup_key``.
        timeseries_column: the table's timeseries column, if any.
        outputs: feature column -> output column.
        defaults: output column -> default value.
    """

    lookup: FeatureLookup
    table_keys: list[str]
    timeseries_column: str | None
    outputs: dict[str, str]
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return self.lookup.table_name

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.lookup.to_dict(),
            "table_keys": self.table_keys,
            "timeseries_column": self.timeseries_column,
            "outputs": self.outputs,
            "defaults": {k: _jsonable(v) for k, v in self.defaults.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResolvedLookup:
        return cls(
            FeatureLookup.from_dict(data),
            list(data["table_keys"]),
            data.get("timeseries_column"),
            dict(data["outputs"]),
            dict(data.get("defaults") or {}),
        )


@dataclass
class ResolvedFunction:
    """A :class:`FeatureFunction` with the registered function's source and signature."""

    function: FeatureFunction
    info: FunctionInfo
    _callable: Any = field(default=None, repr=False, compare=False)

    @property
    def output(self) -> str:
        return str(self.function.output_name)

    def callable(self) -> Any:
        if self._callable is None:
            self._callable = self.info.compile()
        return self._callable

    def to_dict(self) -> dict[str, Any]:
        return {**self.function.to_dict(), "function": self.info.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResolvedFunction:
        return cls(FeatureFunction.from_dict(data), FunctionInfo.from_dict(data["function"]))


@dataclass
class FeatureSpec:
    """The features of a training set or model, and how to compute them.

    Attributes:
        lookups: resolved feature lookups, in order.
        functions: resolved feature functions, applied after the lookups.
        table_versions: feature table -> the Delta version the training set read.
        input_columns: columns of the input DataFrame kept in the training set.
        label: label column(s).
        exclude_columns: columns dropped from the training set.
        model_columns: the columns the model is fed, in order (set by ``log_model``).

    Example:
        >>> spec = FeatureSpec.load("models:/churn/3")                   # doctest: +SKIP
        >>> features = spec.lookup_online(ws, [{"customer_id": 42}])    # doctest: +SKIP
    """

    lookups: list[ResolvedLookup]
    functions: list[ResolvedFunction]
    table_versions: dict[str, int]
    input_columns: list[str]
    label: list[str] = field(default_factory=list)
    exclude_columns: list[str] = field(default_factory=list)
    model_columns: list[str] | None = None

    # ----------------------------------------------------------------- columns
    @property
    def feature_tables(self) -> list[str]:
        """The feature tables used, each once."""
        return list(dict.fromkeys(lk.table for lk in self.lookups))

    @property
    def output_columns(self) -> list[str]:
        """Every looked-up or computed column, in order."""
        return [o for lk in self.lookups for o in lk.outputs.values()] + [
            f.output for f in self.functions
        ]

    @property
    def training_columns(self) -> list[str]:
        """The training DataFrame's columns: inputs, then features, minus excluded ones."""
        excluded = set(self.exclude_columns)
        return [c for c in self.input_columns + self.output_columns if c not in excluded]

    # ----------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "lookups": [lk.to_dict() for lk in self.lookups],
            "functions": [f.to_dict() for f in self.functions],
            "table_versions": self.table_versions,
            "input_columns": self.input_columns,
            "label": self.label,
            "exclude_columns": self.exclude_columns,
            "model_columns": self.model_columns,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        if data.get("format_version") != FORMAT_VERSION:
            raise InvalidInput(
                f"Feature spec format {data.get('format_version')!r} is not "
                f"supported by this lakebox (it reads {FORMAT_VERSION})."
            )
        return cls(
            lookups=[ResolvedLookup.from_dict(d) for d in data["lookups"]],
            functions=[ResolvedFunction.from_dict(d) for d in data["functions"]],
            table_versions={k: int(v) for k, v in data["table_versions"].items()},
            input_columns=list(data["input_columns"]),
            label=list(data["label"]),
            exclude_columns=list(data["exclude_columns"]),
            model_columns=data.get("model_columns"),
        )

    def save(self, path: str | Path) -> Path:
        """Write the spec as JSON to ``path``."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str))
        return path

    @classmethod
    def load(cls, model_uri: str | Path) -> FeatureSpec:
        """The spec carried by a model logged with ``ws.features.log_model``.

        Args:
            model_uri: ``models:/name/3``, ``models:/name@alias``, ``models:/name/Production``,
                ``runs:/<run_id>/model``, or a local model directory or spec file.
        """
        local = Path(str(model_uri))
        if local.is_file():
            return cls.from_dict(json.loads(local.read_text()))
        if local.is_dir():
            candidate = local / "artifacts" / SPEC_ARTIFACT
            if not candidate.exists():
                raise NotFound(
                    f"Model directory {local} carries no feature spec: it was not "
                    "logged with ws.features.log_model(training_set=...)."
                )
            return cls.from_dict(json.loads(candidate.read_text()))
        import mlflow

        uri = str(model_uri).rstrip("/")
        try:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{uri}/artifacts/{SPEC_ARTIFACT}"
            )
        except Exception as exc:
            raise NotFound(
                f"Cannot read the feature spec of model {uri!r}: "
                f"{' '.join(str(exc).split())[:300]}. Was it logged with "
                "ws.features.log_model(training_set=...)?"
            ) from None
        return cls.from_dict(json.loads(Path(path).read_text()))

    # ----------------------------------------------------------------- offline
    def check_input(self, columns: Sequence[str], *, override: bool, need_timestamps: bool) -> None:
        """Refuse input lacking a lookup key (or, if needed, a timestamp lookup key)."""
        have = set(columns)
        for lk in self.lookups:
            if override and set(lk.outputs.values()) <= have:
                continue
            missing = [k for k in lk.lookup.lookup_key if k not in have]
            ts = lk.lookup.timestamp_lookup_key
            if need_timestamps and ts is not None and ts not in have:
                missing.append(ts)
            if missing:
                raise InvalidInput(
                    f"Lookup key column(s) {missing} of feature table "
                    f"{lk.table!r} are missing from the DataFrame, which has "
                    f"{list(columns)}. Add them or fix the FeatureLookup."
                )

    def compute_offline(
        self,
        ws: Workspace,
        df: Any,
        *,
        versions: Mapping[str, int] | None = None,
        override: bool = True,
    ) -> pa.Table:
        """Join and compute every feature for the rows of ``df`` (point-in-time).

        Args:
            ws: the workspace holding the feature tables.
            df: input rows (pandas, polars or Arrow) with the lookup keys and timestamps.
            versions: read feature tables at these versions (default: latest).
            override: keep columns already in ``df`` instead of looking them up (scoring);
                without it a clash is an error (training sets).
        """
        table = to_arrow(df)
        joins = self.offline_joins(ws, table.column_names, versions=versions, override=override)
        result = ws.features.engine.join_features(table, joins) if joins else table
        return self._apply_functions(result, override=override)

    def compute_frame(
        self,
        ws: Workspace,
        df: Any,
        *,
        versions: Mapping[str, int] | None = None,
        override: bool = True,
    ) -> Any:
        """:meth:`compute_offline` on the workspace engine's frame type: a Spark DataFrame
        stays on the cluster (joins in Spark, functions in ``mapInArrow``); the local engine
        returns a ``pyarrow.Table``.

        Example:
            >>> frame = spec.compute_frame(ws, spark_df)  # doctest: +SKIP
        """
        engine = ws.features.engine
        frame = engine.frame(df)
        joins = self.offline_joins(ws, engine.columns(frame), versions=versions, override=override)
        if joins:
            frame = engine.join_frame(frame, joins)
        columns = engine.columns(frame)
        if any(not (override and f.output in columns) for f in self.functions):
            frame = engine.map_batches(frame, _FunctionStep(self.to_dict(), override))
        return frame

    def offline_joins(
        self,
        ws: Workspace,
        columns: Sequence[str],
        *,
        versions: Mapping[str, int] | None = None,
        override: bool = True,
    ) -> list[FeatureJoin]:
        """The engine joins that look up this spec's features for rows with ``columns``
        (see :meth:`compute_offline` for ``versions`` and ``override``)."""
        columns = list(columns)
        self.check_input(columns, override=override, need_timestamps=not override)
        joins = []
        snapshots: dict[str, TableSnapshot] = {}
        for lk in self.lookups:
            wanted = {f: o for f, o in lk.outputs.items() if not (override and o in columns)}
            if not wanted:
                continue
            if lk.table not in snapshots:
                version = (versions or {}).get(lk.table)
                dataset, read_version = ws.tables.dataset(lk.table, version=version)
                snapshots[lk.table] = TableSnapshot(
                    lk.table, ws.tables.location(lk.table), read_version, dataset
                )
            entity_ts = lk.lookup.timestamp_lookup_key
            if entity_ts is not None and entity_ts not in columns:
                entity_ts = None  # scoring without times: the newest feature values
            joins.append(
                FeatureJoin(
                    source=snapshots[lk.table],
                    keys=list(zip(lk.lookup.lookup_key, lk.table_keys, strict=False)),
                    columns=wanted,
                    entity_timestamp=entity_ts,
                    feature_timestamp=lk.timeseries_column,
                    lookback=lk.lookup.lookback_window if entity_ts else None,
                    defaults={o: v for o, v in lk.defaults.items() if o in wanted.values()},
                )
            )
        return joins

    def apply_functions(self, table: pa.Table, *, override: bool = True) -> pa.Table:
        """Append the feature functions' outputs to ``table`` (with ``override``, outputs
        already present are kept)."""
        return self._apply_functions(table, override=override)

    def _apply_functions(self, table: pa.Table, *, override: bool) -> pa.Table:
        for fn in self.functions:
            if override and fn.output in table.column_names:
                continue
            missing = [
                c for c in fn.function.input_bindings.values() if c not in table.column_names
            ]
            if missing:
                raise InvalidInput(
                    f"Function {fn.info.full_name!r} is bound to column(s) "
                    f"{missing}, which are neither in the DataFrame nor "
                    "looked up."
                )
            values = apply_function(fn.info, fn.callable(), table, fn.function.input_bindings)
            table = table.append_column(fn.output, values)
        return table

    # ----------------------------------------------------------------- online
    def lookup_online(
        self, ws: Workspace, df: Any, *, online_store: str | None = None
    ) -> pd.DataFrame:
        """Compute the features of a batch of request rows from the online store.

        Each lookup reads the newest published row per key (timestamps in ``df`` are
        ignored); misses get the lookup's defaults or nulls; feature functions are then
        applied; columns already in ``df`` are kept as given.

        Args:
            ws: the workspace (to find where each table was published).
            df: request rows: a pandas DataFrame, a list of dicts, or an Arrow table.
            online_store: read every table from this store instead of where it was published.

        Returns:
            ``df`` with the feature columns added, as a pandas DataFrame; feed
            ``result[spec.model_columns]`` to the model.
        """
        import pandas as pd

        frame = pd.DataFrame(df) if isinstance(df, list) else to_arrow(df).to_pandas()
        self.check_input(list(frame.columns), override=True, need_timestamps=False)
        for lk in self.lookups:
            wanted = {f: o for f, o in lk.outputs.items() if o not in frame.columns}
            if not wanted:
                continue
            keys = frame[lk.lookup.lookup_key].itertuples(index=False, name=None)
            rows = ws.features.lookup_online(
                lk.table,
                list(keys),
                feature_names=list(wanted),
                online_store=online_store,
                include_keys=False,
            )
            for feature, output in wanted.items():
                default = lk.defaults.get(output)
                values = [default if r is None or r[feature] is None else r[feature] for r in rows]
                frame[output] = pd.Series(values, index=frame.index, dtype=object)
                frame[output] = frame[output].infer_objects()
        table = self._apply_functions(
            pa.Table.from_pandas(frame, preserve_index=False), override=True
        )
        return table.to_pandas()


@dataclass
class _FunctionStep:
    """Applies a spec's feature functions to Arrow batches; picklable (it carries the spec as
    JSON and rebuilds it once per process) so engines can run it on their workers."""

    spec: dict[str, Any]
    override: bool
    _built: FeatureSpec | None = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "override": self.override, "_built": None}

    def __call__(self, table: pa.Table) -> pa.Table:
        if self._built is None:
            self._built = FeatureSpec.from_dict(self.spec)
        return self._built.apply_functions(table, override=self.override)
