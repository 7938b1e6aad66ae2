"""One loaded model version: ``mlflow.pyfunc.load_model``, its signature, its feature spec.

``predict`` takes the already-validated input. For scikit-learn models with a column
signature it calls the estimator directly (the columns and types were just checked, so
MLflow's per-call schema enforcement would only repeat the work); everything else goes
through ``PyFuncModel.predict``.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lakebox.errors import InvalidInput, LakeboxError, NotFound
from lakebox.serving._config import ServedEntity
from lakebox.serving._inputs import ColumnSchema

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["LoadError", "LoadedModel", "load_served_model", "resolve_version"]

# Predictions using less CPU than this (moving average of the thread's CPU time, so other
# processes' load does not count) run on the event loop: a small predict holds the GIL the
# whole time, so a thread adds no parallelism, only a hop and GIL hand-offs. Slower models,
# and models that look features up in an online store (I/O), run in the served model's pool
# of ``workers`` threads so the event loop keeps reading requests meanwhile.
INLINE_CPU_SECONDS = 0.005


class LoadError(LakeboxError):
    """A served model could not be loaded (the previous one keeps serving)."""

    error_code = "RESOURCE_CONFLICT"
    http_status = 409


def resolve_version(client: Any, entity: ServedEntity) -> str:
    """The model version an entity's selector points at now."""
    from mlflow.exceptions import MlflowException

    try:
        if entity.entity_version is not None:
            client.get_model_version(entity.entity_name, entity.entity_version)
            return entity.entity_version
        if entity.alias is not None:
            return str(client.get_model_version_by_alias(entity.entity_name, entity.alias).version)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            found = client.get_latest_versions(entity.entity_name, stages=[entity.stage])
    except MlflowException as exc:
        raise LoadError(
            f"Served model {entity.name!r}: cannot resolve {entity.uri}: "
            f"{' '.join(str(exc.message).split())[:300]}"
        ) from None
    if not found:
        raise LoadError(
            f"Served model {entity.name!r}: no version of model {entity.entity_name!r} is in "
            f"stage {entity.stage!r}; transition one there first."
        )
    return str(found[0].version)


@dataclass
class LoadedModel:
    """A served entity bound to one loaded model version."""

    entity: ServedEntity
    version: str
    pyfunc: Any
    schema: ColumnSchema | None
    feature_spec: Any = None
    raw_predict: Any = None
    matrix: bool = False  # parse requests into a float matrix for raw_predict
    pool: concurrent.futures.ThreadPoolExecutor | None = None
    avg_cpu_seconds: float = 0.0
    loaded_at: float = field(default_factory=time.time)

    @property
    def name(self) -> str:
        return self.entity.name

    @property
    def inline(self) -> bool:
        """Run predict on the event loop (fast models) rather than in the worker pool."""
        return self.feature_spec is None and self.avg_cpu_seconds < INLINE_CPU_SECONDS

    def executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self.pool is None:
            self.pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.entity.workers, thread_name_prefix=f"serve-{self.name}"
            )
        return self.pool

    def predict(self, ws: Workspace | None, data: Any, params: dict[str, Any] | None) -> Any:
        """Predict on validated input; input errors raise :class:`InvalidInput`."""
        started = time.thread_time()
        if self.feature_spec is not None:
            data = self._with_features(ws, data)
        if params is not None and isinstance(data, np.ndarray) and self.schema is not None:
            import pandas as pd

            data = pd.DataFrame(data, columns=self.schema.names)
        try:
            if self.raw_predict is not None and params is None:
                result = self.raw_predict(data)
            else:
                result = self.pyfunc.predict(data, params=params)
        except LakeboxError:
            raise
        except Exception as exc:
            from mlflow.exceptions import MlflowException

            message = exc.message if isinstance(exc, MlflowException) else str(exc)
            if isinstance(exc, (MlflowException, ValueError, TypeError, KeyError, IndexError)):
                raise InvalidInput(
                    f"Served model {self.name!r} (version {self.version}) rejected the input: "
                    f"{' '.join(str(message).split())[:500]}"
                ) from None
            raise
        used = time.thread_time() - started
        avg = self.avg_cpu_seconds
        self.avg_cpu_seconds = 0.9 * avg + 0.1 * used if avg else used
        return result

    def _with_features(self, ws: Workspace | None, data: Any) -> Any:
        import pandas as pd

        if ws is None:
            raise InvalidInput(f"Served model {self.name!r} needs a workspace to look up features.")
        if not isinstance(data, pd.DataFrame):
            raise InvalidInput(
                f"Served model {self.name!r} looks up features by key: send rows "
                "(dataframe_records or dataframe_split) with the lookup keys."
            )
        frame = self.feature_spec.lookup_online(ws, data)
        columns = self.feature_spec.model_columns or []
        for column in columns:
            if column in frame.columns and frame[column].isna().any():
                missing_rows = [int(i) for i in np.flatnonzero(frame[column].isna().to_numpy())]
                keys = _lookup_keys(self.feature_spec)
                shown = frame.loc[missing_rows[:5], keys].to_dict("records") if keys else []
                raise InvalidInput(
                    f"No value for feature {column!r} in row(s) {missing_rows[:5]} "
                    f"(keys {shown}): the key is not in the online store and the feature has "
                    "no default. Publish the feature table or send the feature in the request."
                )
        return frame

    def close(self) -> None:
        """Let the thread pool go once its queued predictions finish (a request that still
        holds this model after a swap gets a fresh pool, or runs inline)."""
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=False)


def _lookup_keys(spec: Any) -> list[str]:
    keys: list[str] = []
    for lk in spec.lookups:
        keys += [k for k in lk.lookup.lookup_key if k not in keys]
    return keys


def _feature_spec(local_path: str) -> Any:
    from pathlib import Path

    from lakebox.features import FeatureSpec
    from lakebox.features._spec import SPEC_ARTIFACT

    candidate = Path(local_path) / "artifacts" / SPEC_ARTIFACT
    return FeatureSpec.load(candidate) if candidate.exists() else None


def _raw_predict(pyfunc: Any, schema: ColumnSchema | None) -> tuple[Any, bool]:
    """The estimator's own ``predict`` for scikit-learn models with a column signature, and
    whether it takes the validated float matrix directly.

    A fitted estimator re-checks the feature names of every DataFrame it is given; the
    request's columns were just checked against the signature (which equals
    ``feature_names_in_``), so a copy of the estimator without recorded names is called on a
    plain array instead, but only if it answers a probe exactly as the original does on a
    DataFrame and without a warning.
    """
    if (
        schema is None
        or pyfunc.metadata.flavors.get("python_function", {}).get("loader_module")
        != "mlflow.sklearn"
    ):
        return None, False
    try:
        raw = pyfunc.get_raw_model()
    except Exception:
        return None, False
    predict = getattr(raw, "predict", None)
    if predict is None:
        return None, False
    names = getattr(raw, "feature_names_in_", None)
    if names is not None and [str(n) for n in names] != schema.names:
        return None, False
    if not schema.numeric:
        return predict, False
    try:
        import copy

        import pandas as pd

        bare = copy.deepcopy(raw)
        _strip_feature_names(bare, set())
        width = len(schema.columns)
        probe = np.array([[0.0] * width, [1.0] * width, [3.0] * width, [-2.0] * width])
        frame = pd.DataFrame(probe, columns=schema.names).astype(
            {n: "int64" for n, t, _ in schema.columns if t in ("long", "integer")}
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            same = np.array_equal(np.asarray(predict(frame)), np.asarray(bare.predict(probe)))
        if same and not caught:
            return bare.predict, True
    except Exception:
        pass
    return predict, False


def _strip_feature_names(obj: Any, seen: set[int]) -> None:
    if id(obj) in seen or not hasattr(obj, "__dict__"):
        return
    seen.add(id(obj))
    obj.__dict__.pop("feature_names_in_", None)
    for value in list(obj.__dict__.values()):
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            parts = item if isinstance(item, tuple) else (item,)
            for part in parts:
                if hasattr(part, "get_params"):
                    _strip_feature_names(part, seen)


def load_served_model(client: Any, entity: ServedEntity, version: str) -> LoadedModel:
    """Load ``entity`` at ``version`` (downloading artifacts, reading signature and spec).

    Raises:
        LoadError: the version does not exist or its model cannot be loaded.
    """
    import mlflow

    os.environ.update(entity.environment_vars)
    uri = f"models:/{entity.entity_name}/{version}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri)
            pyfunc = mlflow.pyfunc.load_model(local)
    except Exception as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise LoadError(
            f"Served model {entity.name!r}: version {version} of {entity.entity_name!r} failed "
            f"to load: {type(exc).__name__}: {' '.join(str(message).split())[:400]}"
        ) from None
    schema = ColumnSchema.from_signature(pyfunc.metadata.signature)
    raw_predict, matrix = _raw_predict(pyfunc, schema)
    try:
        spec = _feature_spec(local)
    except (NotFound, ValueError, KeyError) as exc:
        raise LoadError(f"Served model {entity.name!r}: unreadable feature spec: {exc}") from None
    return LoadedModel(
        entity=entity,
        version=version,
        pyfunc=pyfunc,
        schema=None if spec is not None else schema,
        feature_spec=spec,
        raw_predict=None if spec is not None else raw_predict,
        matrix=matrix and spec is None,
    )
