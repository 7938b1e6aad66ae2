"""A pyfunc model that carries its preprocessing and lookup files: one artifact that predicts
the same in ``mlflow.pyfunc.load_model``, ``score_batch`` and serving."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow.pyfunc
from mlflow.pyfunc import PythonModel

from lakebox.errors import InvalidInput
from lakebox.tracking._requirements import pip_requirements

__all__ = ["PreprocessedModel", "log_preprocessed_model"]

DEFAULT_PARAMS: dict[str, Any] = {"threshold": 0.5, "output": "label"}
OUTPUTS = ("label", "probability")


class PreprocessedModel(PythonModel):
    """``mlflow.pyfunc.PythonModel``: join lookup files, run a fitted preprocessing pipeline,
    then the estimator.

    The fitted objects travel as artifacts (``preprocessor`` and ``estimator``, pickled with
    cloudpickle; one parquet file per lookup), so the model file holds no data of its own
    and ``load_context`` rebuilds everything from the artifacts.

    ``predict`` takes inference params: ``threshold`` (a probability cut-off for binary
    classifiers) and ``output`` (``"label"`` or ``"probability"``). Regressors ignore both.

    Args:
        lookups: for each lookup artifact name, the join key column(s). Lookup columns are
            left-joined onto the input before preprocessing; rows without a match get nulls,
            which the preprocessor's imputer fills.
    """

    def __init__(self, lookups: Mapping[str, list[str]] | None = None) -> None:
        self.lookups = {name: list(keys) for name, keys in (lookups or {}).items()}
        self._preprocessor: Any = None
        self._estimator: Any = None
        self._tables: dict[str, Any] = {}

    # No type hints on load_context/predict: MLflow reads them to build a signature.
    def load_context(self, context):
        import cloudpickle
        import pandas as pd

        with open(context.artifacts["preprocessor"], "rb") as f:
            self._preprocessor = cloudpickle.load(f)
        with open(context.artifacts["estimator"], "rb") as f:
            self._estimator = cloudpickle.load(f)
        self._tables = {name: pd.read_parquet(context.artifacts[name]) for name in self.lookups}

    def features(self, model_input: Any) -> Any:
        """The input with the lookup columns joined (before preprocessing)."""
        import pandas as pd

        frame = pd.DataFrame(model_input).reset_index(drop=True)
        for name, keys in self.lookups.items():
            table = self._tables[name]
            extra = [c for c in table.columns if c not in keys and c not in frame.columns]
            frame = frame.merge(table[keys + extra], on=keys, how="left")
        return frame

    def predict(self, context, model_input, params=None):
        import numpy as np

        options = {**DEFAULT_PARAMS, **(params or {})}
        if options["output"] not in OUTPUTS:
            raise InvalidInput(f"params output={options['output']!r} is not one of {OUTPUTS}.")
        X = self._preprocessor.transform(self.features(model_input))
        estimator = self._estimator
        classes = getattr(estimator, "classes_", None)
        if classes is None or not hasattr(estimator, "predict_proba"):
            return np.asarray(estimator.predict(X))
        proba = estimator.predict_proba(X)
        if len(classes) != 2:
            return proba if options["output"] == "probability" else estimator.predict(X)
        positive = proba[:, 1]
        if options["output"] == "probability":
            return positive
        return np.where(positive >= float(options["threshold"]), classes[1], classes[0])


def log_preprocessed_model(
    preprocessor: Any,
    estimator: Any,
    *,
    input_example: Any,
    name: str = "model",
    lookups: Mapping[str, tuple[Any, list[str]]] | None = None,
    params: Mapping[str, Any] | None = None,
    registered_model_name: str | None = None,
    pip_requirements_extra: list[str] | None = None,
) -> Any:
    """Log a :class:`PreprocessedModel` in the active run, with signature, params and example.

    Args:
        preprocessor: a fitted transformer (e.g. a ``ColumnTransformer`` with imputation,
            scaling and one-hot encoding) taking the input plus the lookup columns.
        estimator: a fitted model taking the preprocessor's output.
        input_example: a few input rows (a pandas DataFrame); also used for the signature.
        name: the model's name in the run.
        lookups: ``{artifact_name: (DataFrame, join_keys)}`` small tables joined onto the
            input before preprocessing (e.g. a plan price list).
        params: default inference params, recorded in the signature
            (default ``{"threshold": 0.5, "output": "label"}``).
        registered_model_name: also register a version of this model.
        pip_requirements_extra: requirements beyond lakebox's defaults (mlflow, scikit-learn,
            pandas, numpy, cloudpickle, pyarrow at the installed versions).

    Returns:
        MLflow's ``ModelInfo``.

    Example:
        >>> info = log_preprocessed_model(pre, clf, input_example=X.head(5),   # doctest: +SKIP
        ...                               lookups={"plans": (plans_df, ["plan"])})
        >>> mlflow.pyfunc.load_model(info.model_uri).predict(X, params={"threshold": 0.3})
    """
    import cloudpickle
    import pandas as pd
    from mlflow.models import infer_signature

    if not isinstance(input_example, pd.DataFrame) or input_example.empty:
        raise InvalidInput("input_example must be a non-empty pandas DataFrame of input rows.")
    defaults = {**DEFAULT_PARAMS, **(params or {})}
    python_model = PreprocessedModel({k: list(v[1]) for k, v in (lookups or {}).items()})
    with tempfile.TemporaryDirectory(prefix="lakebox-pyfunc-") as tmp:
        artifacts = {}
        for key, obj in (("preprocessor", preprocessor), ("estimator", estimator)):
            path = Path(tmp) / f"{key}.pkl"
            path.write_bytes(cloudpickle.dumps(obj))
            artifacts[key] = str(path)
        for lookup, (frame, keys) in (lookups or {}).items():
            missing = [k for k in keys if k not in frame.columns]
            if missing:
                raise InvalidInput(
                    f"Lookup {lookup!r} has no key column(s) {missing}; its "
                    f"columns are {list(frame.columns)}."
                )
            path = Path(tmp) / f"{lookup}.parquet"
            pd.DataFrame(frame).to_parquet(path, index=False)
            artifacts[lookup] = str(path)
        # predictions for the signature, from the same code path the loaded model runs
        python_model._preprocessor, python_model._estimator = preprocessor, estimator
        python_model._tables = {k: pd.DataFrame(v[0]) for k, v in (lookups or {}).items()}
        example_output = python_model.predict(None, input_example, defaults)
        python_model._preprocessor = python_model._estimator = None
        python_model._tables = {}
        signature = infer_signature(input_example, example_output, params=defaults)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=python_model,
            artifacts=artifacts,
            signature=signature,
            input_example=input_example,
            registered_model_name=registered_model_name,
            pip_requirements=pip_requirements("sklearn", extra=pip_requirements_extra),
        )
