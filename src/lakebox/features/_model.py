"""Models that carry their features: ``log_model`` and ``score_batch``.

The logged MLflow model is a pyfunc wrapper whose artifacts are the flavor's own model
(``artifacts/model``) and the feature spec (``artifacts/feature_spec.json``).
"""

from __future__ import annotations

import dataclasses
import tempfile
import warnings
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pyarrow as pa
from mlflow.pyfunc import PythonModel

from lakebox.catalog import TableName
from lakebox.errors import InvalidInput, NotFound
from lakebox.features._spec import SPEC_ARTIFACT, FeatureSpec

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

    from lakebox.features._training import TrainingSet
    from lakebox.workspace import Workspace

__all__ = ["FeatureAwareModel", "log_feature_model", "score"]

# MLflow flavor module -> the package its models need.
_FLAVOR_PACKAGES = {
    "sklearn": "scikit-learn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "statsmodels": "statsmodels",
    "pytorch": "torch",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "prophet": "prophet",
}
_RESULT_TYPES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "int": "int32",
    "integer": "int32",
    "string": "str",
    "boolean": "bool",
    "bool": "bool",
}


class FeatureAwareModel(PythonModel):
    """The pyfunc wrapper ``log_model`` writes: the flavor's model plus the feature spec.

    ``predict`` takes rows that already hold the features (as ``score_batch`` and serving
    build them) and feeds the model the columns it was trained on.
    """

    def load_context(self, context: Any) -> None:
        self.spec = FeatureSpec.load(context.artifacts["feature_spec"])
        self.model = mlflow.pyfunc.load_model(context.artifacts["model"])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> Any:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        columns = self.spec.model_columns or [
            c for c in self.spec.training_columns if c not in self.spec.label
        ]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InvalidInput(
                f"The model needs feature column(s) {missing}; compute them with "
                "ws.features.score_batch() or FeatureSpec.lookup_online()."
            )
        return self.model.predict(frame[columns])


def _requirements(flavor: Any) -> list[str]:
    reqs = [f"mlflow=={mlflow.__version__}", "lakebox"]
    short = getattr(flavor, "__name__", "").rsplit(".", 1)[-1]
    package = _FLAVOR_PACKAGES.get(short)
    if package:
        try:
            reqs.append(f"{package}=={importlib_metadata.version(package)}")
        except importlib_metadata.PackageNotFoundError:
            reqs.append(package)
    return reqs


def log_feature_model(
    ws: Workspace,
    model: Any,
    *,
    name: str,
    flavor: Any,
    training_set: TrainingSet,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Save ``model`` with ``flavor``, wrap it with the feature spec and log it."""
    from lakebox.features._training import TrainingSet

    if not isinstance(training_set, TrainingSet):
        raise InvalidInput(
            "log_model needs training_set= from ws.features.create_training_set(); "
            f"got {type(training_set).__name__}."
        )
    if not hasattr(flavor, "save_model"):
        raise InvalidInput(
            f"flavor must be an MLflow flavor module such as mlflow.sklearn; got {flavor!r}."
        )
    spec = training_set.feature_spec
    names = getattr(model, "feature_names_in_", None)
    model_columns = (
        [str(c) for c in names]
        if names is not None
        else [c for c in spec.training_columns if c not in spec.label]
    )
    spec = dataclasses.replace(spec, model_columns=model_columns)
    reqs = kwargs.pop("pip_requirements", None) or _requirements(flavor)
    started = None
    if mlflow.active_run() is None:
        started = mlflow.start_run()
    try:
        if ws.settings.mlflow.lineage:
            from lakebox.tracking import log_table_read

            for table, version in spec.table_versions.items():
                log_table_read(TableName.parse(table), version, ws.tables.location(table))
        with tempfile.TemporaryDirectory(prefix="lakebox-model-") as tmp:
            inner = Path(tmp) / "model"
            flavor.save_model(model, str(inner), pip_requirements=reqs)
            spec_path = spec.save(Path(tmp) / SPEC_ARTIFACT)
            return mlflow.pyfunc.log_model(
                name=name,
                python_model=FeatureAwareModel(),
                artifacts={"model": str(inner), "feature_spec": str(spec_path)},
                pip_requirements=reqs,
                registered_model_name=registered_model_name,
                **kwargs,
            )
    finally:
        if started is not None:
            mlflow.end_run()


def _load(model_uri: str, *, shown: str | None = None) -> FeatureAwareModel:
    from mlflow.exceptions import MlflowException

    shown = shown or model_uri
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # stage URIs still work in 3.x
            loaded = mlflow.pyfunc.load_model(model_uri)
    except MlflowException as exc:
        raise NotFound(f"Cannot load model {shown!r}: {exc.message}") from None
    try:
        wrapper = loaded.unwrap_python_model()
    except MlflowException:
        wrapper = None
    if not isinstance(wrapper, FeatureAwareModel):
        raise InvalidInput(
            f"Model {shown!r} was not logged with ws.features.log_model("
            "training_set=...), so it carries no features to look up; call its "
            "predict() with the features instead."
        )
    return wrapper


def _local_copy(ws: Workspace, model_uri: str) -> str:
    """A local folder holding the model, which worker processes (Spark's Python workers
    included) load: the folder itself for a path, else one download per model kept under
    ``<home>/cache/models/<model uuid>``."""
    import contextlib
    import os
    import shutil

    import yaml
    from mlflow.exceptions import MlflowException

    if Path(model_uri).is_dir():
        return str(Path(model_uri).resolve())
    cache = Path(ws.home) / "cache" / "models"
    cache.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".download-", dir=cache)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            path = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)
        meta = yaml.safe_load((Path(path) / "MLmodel").read_text()) or {}
    except (MlflowException, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        message = getattr(exc, "message", str(exc))
        raise NotFound(f"Cannot load model {model_uri!r}: {message}") from None
    key = str(meta.get("model_uuid") or meta.get("run_id") or Path(tmp).name.lstrip("."))
    final = cache / key
    if final.exists():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):  # another process put it there first
            os.replace(path, final)
        shutil.rmtree(tmp, ignore_errors=True)
    return str(final)


@dataclasses.dataclass
class _Predict:
    """Predicts Arrow batches that hold the features; picklable (it carries the model's
    folder and loads it once per process), so an engine can run it on its workers."""

    model_uri: str
    path: str
    result_type: str | None
    _wrapper: FeatureAwareModel | None = dataclasses.field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_wrapper": None}

    @property
    def model_dir(self) -> str:
        """The model's local folder (engines ship it to their workers)."""
        return self.path

    def __call__(self, table: pa.Table) -> pa.Table:
        if self._wrapper is None:
            from lakebox.engines._spark_session import shipped_path

            self._wrapper = _load(shipped_path(self.path), shown=self.model_uri)
        features = table.to_pandas()
        predictions = self._wrapper.predict(None, features)
        values = np.asarray(predictions)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1 or len(values) != len(features):
            raise InvalidInput(
                f"Model {self.model_uri!r} returned predictions of shape {values.shape} "
                f"for {len(features)} rows; score_batch needs one value per row."
            )
        if self.result_type is not None:
            values = values.astype(_RESULT_TYPES[self.result_type])
        if "prediction" in table.column_names:
            table = table.drop_columns(["prediction"])
        return table.append_column("prediction", pa.array(values))


def score(ws: Workspace, model_uri: str, df: Any, *, result_type: str | None) -> Any:
    """Join the model's features onto ``df`` and predict, on the workspace's engine."""
    if result_type is not None and result_type not in _RESULT_TYPES:
        raise InvalidInput(
            f"result_type must be one of {sorted(_RESULT_TYPES)} or None, got {result_type!r}."
        )
    path = _local_copy(ws, model_uri)
    wrapper = _load(path, shown=model_uri)
    engine = ws.features.engine
    features = wrapper.spec.compute_frame(ws, df, override=True)
    predict = _Predict(model_uri, path, result_type, wrapper)
    return engine.user_frame(engine.map_batches(features, predict))
