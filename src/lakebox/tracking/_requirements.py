"""Explicit pip requirements for ``log_model``: what MLflow would infer, without the seconds
it spends loading the model in a subprocess to find out."""

from __future__ import annotations

from importlib import metadata
from types import ModuleType

from lakebox.errors import InvalidInput

__all__ = ["pip_requirements"]

# What a model of each flavor needs at load time, besides mlflow itself.
_COMMON = ("cloudpickle", "numpy", "pandas", "scipy")
_FLAVORS: dict[str, tuple[str, ...]] = {
    "pyfunc": ("pyarrow",),
    "sklearn": ("scikit-learn", "pyarrow"),
    "xgboost": ("xgboost", "scikit-learn"),
    "lightgbm": ("lightgbm", "scikit-learn"),
    "catboost": ("catboost",),
    "statsmodels": ("statsmodels",),
    "pytorch": ("torch",),
    "tensorflow": ("tensorflow",),
    "keras": ("keras",),
}


def _pin(package: str) -> str | None:
    try:
        return f"{package}=={metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return None


def pip_requirements(
    flavor: str | ModuleType = "pyfunc", *, extra: list[str] | None = None
) -> list[str]:
    """Pinned pip requirements of a model of ``flavor``, from the installed versions.

    Pass the result as ``pip_requirements=`` to any ``mlflow.<flavor>.log_model``: MLflow
    then skips requirement inference, which loads the model in a subprocess and takes
    seconds (see ``benchmarks/bench_tracking.py``). Packages that are not installed are left
    out.

    Args:
        flavor: a flavor name (``"sklearn"``, ``"xgboost"``, ``"lightgbm"``, ``"pyfunc"``...)
            or the flavor module (``mlflow.sklearn``).
        extra: further requirements, appended as given (``"my-features==1.2"``).

    Example:
        >>> mlflow.sklearn.log_model(model, name="model",                      # doctest: +SKIP
        ...     pip_requirements=lakebox.tracking.pip_requirements("sklearn"))
    """
    name = flavor.__name__.rsplit(".", 1)[-1] if isinstance(flavor, ModuleType) else flavor
    if name not in _FLAVORS:
        raise InvalidInput(
            f"No default requirements for flavor {name!r}; known flavors are "
            f"{sorted(_FLAVORS)}. Pass pip_requirements yourself for others."
        )
    packages = ["mlflow", *_COMMON, *_FLAVORS[name]]
    pinned = [p for p in (_pin(pkg) for pkg in dict.fromkeys(packages)) if p]
    return pinned + [r for r in (extra or []) if r not in pinned]
