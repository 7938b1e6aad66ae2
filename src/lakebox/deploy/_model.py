"""Models for scoring: resolve a model URI to a name, a version and a local copy, and a
picklable :class:`Predictor` that loads the model once per process and scores Arrow batches."""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from lakebox.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["ModelRef", "Predictor", "predictor", "resolve_model"]

_PROGRESS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
SPEC_FILE = "feature_spec.json"  # where ws.features.log_model puts the feature spec
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<ref>[^/]+)|@(?P<alias>[^/]+))/?$")


@dataclass(frozen=True)
class ModelRef:
    """A model URI resolved once: its registered name and version (None for ``runs:/`` and
    paths) and a local copy that worker processes load."""

    uri: str
    name: str | None
    version: str | None
    local_path: str


def _registry_version(uri: str) -> tuple[str | None, str | None]:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    match = _MODELS_URI.match(uri)
    if match is None:
        return None, None
    name, ref, alias = match["name"], match["ref"], match["alias"]
    client = MlflowClient()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # stages still work in MLflow 3
            if alias is not None:
                return name, str(client.get_model_version_by_alias(name, alias).version)
            if ref is not None and ref.isdigit():
                return name, str(client.get_model_version(name, ref).version)
            if ref is not None and ref.lower() != "latest":
                found = client.get_latest_versions(name, stages=[ref])
                if not found:
                    raise NotFound(
                        f"Model {name!r} has no version in stage {ref!r}; move one there "
                        f"with ws.models.transition_stage({name!r}, version=..., stage={ref!r})."
                    )
                return name, str(found[0].version)
            versions = client.search_model_versions(f"name='{name}'")
            if not versions:
                raise NotFound(f"Registered model {name!r} has no versions.")
            return name, str(max(int(v.version) for v in versions))
    except MlflowException as exc:
        raise NotFound(f"Cannot resolve model {uri!r}: {exc.message}") from None


def resolve_model(model_uri: str, *, dst: str | Path | None = None) -> ModelRef:
    """Resolve ``model_uri`` to its registered name and version and download it once.

    ``models:/name/latest`` and ``models:/name/Stage`` are pinned to the version they point to
    now, so a transition during a long job does not mix two models in one output.

    Example:
        >>> ref = resolve_model("models:/churn/Production")          # doctest: +SKIP
        >>> ref.name, ref.version                                     # doctest: +SKIP
        ('churn', '3')
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    if not isinstance(model_uri, str) or not model_uri:
        raise InvalidInput(f"model_uri must be a non-empty string, got {model_uri!r}.")
    name, version = _registry_version(model_uri)
    pinned = f"models:/{name}/{version}" if name is not None else model_uri
    local = Path(model_uri)
    if name is None and local.is_dir():
        return ModelRef(model_uri, None, None, str(local.resolve()))
    saved = os.environ.get(_PROGRESS_ENV)
    os.environ[_PROGRESS_ENV] = "false"  # no download bars in the middle of a CLI's progress
    try:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=pinned, dst_path=str(dst) if dst else None
        )
    except (MlflowException, OSError) as exc:
        message = getattr(exc, "message", str(exc))
        raise NotFound(
            f"Cannot load model {model_uri!r}: {message}. Use models:/<name>/<version>, "
            "models:/<name>@<alias>, models:/<name>/<stage> or runs:/<run_id>/<path>."
        ) from None
    finally:
        if saved is None:
            os.environ.pop(_PROGRESS_ENV, None)
        else:
            os.environ[_PROGRESS_ENV] = saved
    return ModelRef(model_uri, name, version, path)


def _to_arrow(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise InvalidInput(f"Expected a pyarrow Table or pandas DataFrame, got {type(data).__name__}.")


@dataclass
class Predictor:
    """Scores batches with one model, loaded on first use in each process.

    Picklable (it carries paths, not the model), so it can be sent to worker processes or used
    as a stream transform. Models logged with ``ws.features.log_model`` get their features
    joined first (point-in-time when the input has the timestamp lookup key), through the
    feature store's :class:`~lakebox.features.FeatureSpec`.

    Args:
        model: the resolved model.
        home: the workspace folder (needed to join features).
        result_column: name of the prediction column.
        keep_columns: input columns to keep in the output (all by default).
        feature_versions: read feature tables at these versions (pinned by ``score_table``).
        scored_at: the time stamped on every row (default: when each batch is scored).
        feature_columns: the columns fed to the model (default: the inputs of its signature,
            else every column).
        features_joined: the input already holds the looked-up features (an engine joined
            them, e.g. in Spark); only feature functions are applied.

    Example:
        >>> score = predictor("models:/churn/1", ws=ws)                 # doctest: +SKIP
        >>> score(ids_df).column_names                                  # doctest: +SKIP
        ['customer_id', ..., 'prediction', 'model_name', 'model_version', 'scored_at']
    """

    model: ModelRef
    home: str | None = None
    result_column: str = "prediction"
    keep_columns: list[str] | None = None
    feature_versions: dict[str, int] | None = None
    scored_at: datetime | None = None
    feature_columns: list[str] | None = None
    features_joined: bool = False
    _loaded: Any = field(default=None, init=False, repr=False, compare=False)
    _spec: Any = field(default=None, init=False, repr=False, compare=False)
    _ws: Any = field(default=None, init=False, repr=False, compare=False)
    _casts: dict[str, pa.DataType] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_loaded=None, _spec=None, _ws=None, _casts={})
        return state

    @property
    def model_dir(self) -> str:
        """The model's local folder (engines ship it to their workers)."""
        return self.model.local_path

    @property
    def has_feature_spec(self) -> bool:
        """Whether the model carries a feature spec (its features are looked up)."""
        return (Path(self.model.local_path) / "artifacts" / SPEC_FILE).exists()

    def load(self) -> None:
        """Load the model (and its feature spec) now; later calls reuse it."""
        if self._loaded is not None:
            return
        import mlflow.pyfunc

        if not Path(self.model.local_path).exists():  # on a Spark executor: its shipped copy
            from lakebox.engines._spark_session import shipped_path

            self.model = replace(self.model, local_path=shipped_path(self.model.local_path))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            self._loaded = mlflow.pyfunc.load_model(self.model.local_path)
        if self.has_feature_spec:
            from lakebox.features import FeatureSpec

            self._spec = FeatureSpec.load(self.model.local_path)
        schema = self._loaded.metadata.get_input_schema()
        if schema is not None and schema.has_input_names():
            if self.feature_columns is None and self._spec is None:
                self.feature_columns = list(schema.input_names())
            self._casts = {
                name: _ARROW_TYPES[getattr(kind, "name", str(kind))]
                for name, kind in zip(schema.input_names(), schema.input_types(), strict=False)
                if getattr(kind, "name", str(kind)) in _ARROW_TYPES
            }

    def _features(self, table: pa.Table) -> pa.Table:
        if self._spec is None:
            return table
        if self.features_joined:
            return self._spec.apply_functions(table, override=True)
        if self._ws is None:
            if self.home is None:
                raise InvalidInput(
                    f"Model {self.model.uri!r} looks up features; pass ws= so they can be read."
                )
            from lakebox.workspace import Workspace

            self._ws = Workspace(self.home)
        return self._spec.compute_offline(
            self._ws, table, versions=self.feature_versions, override=True
        )

    def __call__(self, data: Any) -> Any:
        """Score ``data`` (Arrow or pandas); returns the same kind with the prediction,
        ``model_name``, ``model_version`` and ``scored_at`` columns added."""
        self.load()
        as_pandas = not isinstance(data, (pa.Table, pa.RecordBatch))
        table = _to_arrow(data)
        features = self._features(table)
        if self.feature_columns is not None:
            missing = [c for c in self.feature_columns if c not in features.column_names]
            if missing:
                raise InvalidInput(
                    f"Model {self.model.uri!r} needs column(s) {missing}, which the input "
                    f"{features.column_names} lacks."
                )
            frame = _cast_numbers(features.select(self.feature_columns), self._casts).to_pandas()
        else:
            frame = _cast_numbers(features, self._casts).to_pandas()
        from mlflow.exceptions import MlflowException

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # schema enforcement chatter
                raw = self._loaded.predict(frame)
        except MlflowException as exc:
            raise InvalidInput(
                f"Model {self.model.uri!r} refused the input: {exc.message[-400:]}"
            ) from None
        out = features
        if self.keep_columns is not None:
            out = out.select([c for c in self.keep_columns])
        for column, values in _prediction_columns(raw, self.result_column, len(frame)):
            if column in out.column_names:
                out = out.drop_columns([column])
            out = out.append_column(column, values)
        n = out.num_rows
        when = self.scored_at or datetime.now(timezone.utc)
        constants = (
            ("model_name", pa.scalar(self.model.name, pa.string())),
            ("model_version", pa.scalar(self.model.version, pa.string())),
            ("scored_at", pa.scalar(when, pa.timestamp("us", tz="UTC"))),
        )
        for column, value in constants:
            out = out.append_column(column, pa.repeat(value, n))
        return out.to_pandas() if as_pandas else out


# MLflow signature types -> Arrow types that integer input is widened to.
_ARROW_TYPES = {"double": pa.float64(), "float": pa.float32()}


def _cast_numbers(table: pa.Table, casts: dict[str, pa.DataType]) -> pa.Table:
    """Widen integer columns the model's signature declares as floating point (MLflow's
    schema enforcement refuses int64 for a double column)."""
    for name, target in casts.items():
        if name in table.column_names and pa.types.is_integer(table.schema.field(name).type):
            index = table.column_names.index(name)
            table = table.set_column(index, name, table[name].cast(target))
    return table


def _prediction_columns(raw: Any, name: str, rows: int) -> list[tuple[str, pa.Array]]:
    import pandas as pd

    if isinstance(raw, pd.DataFrame):
        if raw.shape[1] == 1:
            raw = raw.iloc[:, 0]
        else:
            return [(f"{name}_{c}", pa.array(raw[c].to_numpy())) for c in raw.columns]
    values = np.asarray(raw)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or len(values) != rows:
        raise InvalidInput(
            f"The model returned predictions of shape {values.shape} for {rows} rows; "
            "scoring needs one value (or one column) per row."
        )
    return [(name, pa.array(values))]


def predictor(
    model_uri: str,
    *,
    ws: Workspace | None = None,
    result_column: str = "prediction",
    keep_columns: list[str] | None = None,
    feature_columns: list[str] | None = None,
) -> Predictor:
    """A picklable scoring function for ``model_uri``: use it as a stream transform or on
    any Arrow / pandas batch.

    Example:
        >>> from lakebox.deploy import predictor
        >>> score = predictor("models:/churn/1", ws=ws)                 # doctest: +SKIP
        >>> preds = score(df)                                           # doctest: +SKIP
    """
    ref = resolve_model(model_uri)
    return Predictor(
        ref,
        home=str(ws.home) if ws is not None else None,
        result_column=result_column,
        keep_columns=keep_columns,
        feature_columns=feature_columns,
    )
