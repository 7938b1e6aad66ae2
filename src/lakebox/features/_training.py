"""Training sets: resolve lookups against feature tables, then build the DataFrame."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakebox.catalog._convert import delta_type_name, to_arrow
from lakebox.errors import InvalidInput, close_matches
from lakebox.features._lookups import FeatureFunction, FeatureLookup
from lakebox.features._spec import FeatureSpec, ResolvedFunction, ResolvedLookup

if TYPE_CHECKING:
    import pandas as pd

    from lakebox.features._client import FeatureEngineeringClient

__all__ = ["TrainingSet", "build_spec", "is_temporal"]


def is_temporal(arrow_type: pa.DataType) -> bool:
    return bool(pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type))


def _compatible(a: pa.DataType, b: pa.DataType) -> bool:
    groups = (
        pa.types.is_integer,
        pa.types.is_floating,
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_timestamp,
        pa.types.is_date,
    )
    if a == b:
        return True
    if (pa.types.is_string(a) or pa.types.is_large_string(a)) and (
        pa.types.is_string(b) or pa.types.is_large_string(b)
    ):
        return True
    return any(g(a) and g(b) for g in groups)


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def build_spec(
    client: FeatureEngineeringClient,
    schema: pa.Schema,
    feature_lookups: Sequence[FeatureLookup | FeatureFunction],
    label: str | Sequence[str] | None,
    exclude_columns: Sequence[str] | None,
) -> FeatureSpec:
    """Check lookups and functions against the tables, functions and input schema."""
    columns = schema.names
    labels = _as_list(label)
    missing_labels = [c for c in labels if c not in columns]
    if missing_labels:
        raise InvalidInput(f"Label column(s) {missing_labels} are not in the DataFrame {columns}.")
    taken = set(columns)
    lookups: list[ResolvedLookup] = []
    functions: list[ResolvedFunction] = []
    versions: dict[str, int] = {}
    for item in feature_lookups:
        if isinstance(item, FeatureLookup):
            resolved = _resolve_lookup(client, item, schema, taken)
            lookups.append(resolved)
            if resolved.table not in versions:
                versions[resolved.table] = client._ws.tables.delta_table(resolved.table).version()
        elif isinstance(item, FeatureFunction):
            functions.append(_resolve_function(client, item, taken))
        else:
            raise InvalidInput(
                f"feature_lookups takes FeatureLookup and FeatureFunction "
                f"objects, got {type(item).__name__}."
            )
    excluded = _as_list(exclude_columns)
    unknown = [c for c in excluded if c not in taken]
    if unknown:
        raise InvalidInput(
            f"exclude_columns {unknown} are neither in the DataFrame nor produced by a lookup."
        )
    return FeatureSpec(
        lookups=lookups,
        functions=functions,
        table_versions=versions,
        input_columns=list(columns),
        label=labels,
        exclude_columns=excluded,
    )


def _resolve_lookup(
    client: FeatureEngineeringClient, lookup: FeatureLookup, schema: pa.Schema, taken: set[str]
) -> ResolvedLookup:
    info = client.get_table(name=lookup.table_name)
    lookup.table_name = info.name
    ts = info.timeseries_columns[0] if info.timeseries_columns else None
    table_keys = [k for k in info.primary_keys if k != ts]
    table_schema = client._ws.tables.delta_table(info.name).schema().to_arrow()
    table_schema = pa.schema(table_schema)
    if len(lookup.lookup_key) != len(table_keys):
        raise InvalidInput(
            f"FeatureLookup of {info.name!r} has lookup_key {lookup.lookup_key} "
            f"but the table's primary key is {table_keys}; give one column per "
            "key, in that order."
        )
    for column, key in zip(lookup.lookup_key, table_keys, strict=False):
        if column not in schema.names:
            raise InvalidInput(
                f"Lookup key {column!r} of feature table {info.name!r} is not a "
                f"column of the DataFrame {schema.names}."
                f"{close_matches(column, schema.names)}"
            )
        have, want = schema.field(column).type, table_schema.field(key).type
        if not _compatible(have, want):
            raise InvalidInput(
                f"Lookup key {column!r} is {delta_type_name(have)} but key "
                f"{key!r} of {info.name!r} is {delta_type_name(want)}; cast it."
            )
    if lookup.timestamp_lookup_key is not None:
        column = lookup.timestamp_lookup_key
        if ts is None:
            raise InvalidInput(
                f"Feature table {info.name!r} has no timeseries column, so "
                f"timestamp_lookup_key={column!r} cannot be used; drop it."
            )
        if column not in schema.names:
            raise InvalidInput(
                f"timestamp_lookup_key {column!r} of the lookup on {info.name!r} "
                f"is not a column of the DataFrame {schema.names}."
                f"{close_matches(column, schema.names)}"
            )
        if not is_temporal(schema.field(column).type):
            raise InvalidInput(
                f"timestamp_lookup_key {column!r} has type "
                f"{delta_type_name(schema.field(column).type)}; it must be a "
                "timestamp or date column (convert it, e.g. with "
                "pandas.to_datetime)."
            )
    elif lookup.lookback_window is not None:
        raise InvalidInput(
            f"The lookup on {info.name!r} has a lookback_window but no "
            "timestamp_lookup_key; give both or neither."
        )
    available = [c for c in table_schema.names if c not in info.primary_keys]
    features = lookup.feature_names if lookup.feature_names is not None else available
    for name in features:
        if name not in available:
            hint = (
                " It is a key column."
                if name in info.primary_keys
                else close_matches(name, available)
            )
            raise InvalidInput(
                f"Feature {name!r} is not in feature table {info.name!r}.{hint} "
                f"Its features are {available}."
            )
    bad_renames = [k for k in lookup.rename_outputs if k not in features]
    if bad_renames:
        raise InvalidInput(
            f"rename_outputs names {bad_renames}, which are not features looked "
            f"up from {info.name!r} ({features})."
        )
    outputs = {f: lookup.rename_outputs.get(f, f) for f in features}
    for output in outputs.values():
        if output in taken:
            raise InvalidInput(
                f"Output column {output!r} from {info.name!r} clashes with a "
                "column of the DataFrame or of another lookup; use "
                "rename_outputs={...} or exclude it from feature_names."
            )
        taken.add(output)
    defaults: dict[str, Any] = {}
    for key, value in lookup.default_values.items():
        if key in outputs:
            defaults[outputs[key]] = value
        elif key in outputs.values():
            defaults[key] = value
        else:
            raise InvalidInput(
                f"default_values names {key!r}, which is not a feature looked up "
                f"from {info.name!r} ({features})."
            )
    return ResolvedLookup(lookup, table_keys, ts, outputs, defaults)


def _resolve_function(
    client: FeatureEngineeringClient, function: FeatureFunction, taken: set[str]
) -> ResolvedFunction:
    info = client._ws.functions.get(function.udf_name)
    function.udf_name = info.full_name
    params = info.parameter_names
    unknown = [p for p in function.input_bindings if p not in params]
    if unknown:
        raise InvalidInput(
            f"input_bindings of {info.full_name!r} name unknown parameter(s) "
            f"{unknown}; its parameters are {params}."
        )
    unbound = [p for p in params if p not in function.input_bindings]
    if unbound:
        raise InvalidInput(
            f"Parameter(s) {unbound} of function {info.full_name!r} are not "
            "bound: add them to input_bindings={parameter: column}."
        )
    missing = [c for c in function.input_bindings.values() if c not in taken]
    if missing:
        raise InvalidInput(
            f"Function {info.full_name!r} is bound to column(s) {missing}, which "
            "are neither in the DataFrame nor produced by an earlier lookup."
        )
    output = str(function.output_name)
    if output in taken:
        raise InvalidInput(
            f"Output column {output!r} of function {info.full_name!r} clashes "
            "with an existing column; choose another output_name."
        )
    taken.add(output)
    return ResolvedFunction(function, info)


class TrainingSet:
    """Input rows plus looked-up and computed features, built by :meth:`load_df`.

    Created by ``ws.features.create_training_set(...)``; feature tables are read at the versions
    current when it was created, so every :meth:`load_df` returns the same data.

    Example:
        >>> ts = ws.features.create_training_set(df=labels, feature_lookups=[...],
        ...                                      label="churned")            # doctest: +SKIP
        >>> train = ts.load_df()                                            # doctest: +SKIP
    """

    def __init__(self, client: FeatureEngineeringClient, df: Any, spec: FeatureSpec) -> None:
        self._client = client
        self._input = df if client.engine.is_frame(df) else to_arrow(df)
        self.feature_spec = spec

    @property
    def _df(self) -> pa.Table:
        return to_arrow(self._input)

    @property
    def label(self) -> list[str]:
        """The label column(s)."""
        return list(self.feature_spec.label)

    def load_arrow(self) -> pa.Table:
        """The training data as a pyarrow Table, in the input's row order (a Spark DataFrame
        input is collected to the driver first)."""
        spec = self.feature_spec
        table = spec.compute_offline(
            self._client._ws, self._df, versions=spec.table_versions, override=False
        )
        return table.select(spec.training_columns)

    def load_df(self) -> pd.DataFrame | Any:
        """The training data: the input columns, then the features, minus
        ``exclude_columns``. Reads inside an MLflow run are recorded as its inputs.

        On the ``local`` engine this is a pandas DataFrame (in the input's row order). On the
        ``spark`` engine it is a Spark DataFrame, as in Databricks: the point-in-time joins
        run in Spark and the rows stay on the cluster until you act on them (Spark's row
        order; use :meth:`load_arrow` for the input's order on the driver).

        Example:
            >>> train = ws.features.create_training_set(df=labels_sdf, feature_lookups=lookups,
            ...                                         label="churned").load_df()  # doctest: +SKIP
            >>> train.write.parquet("training/")  # a Spark DataFrame          # doctest: +SKIP
        """
        spec = self.feature_spec
        engine = self._client.engine
        frame = spec.compute_frame(
            self._client._ws, self._input, versions=spec.table_versions, override=False
        )
        return engine.user_frame(engine.select(frame, spec.training_columns))
