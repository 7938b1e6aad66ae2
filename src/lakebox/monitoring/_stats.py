"""Drift and quality statistics. Every number comes from scipy, numpy or scikit-learn.

Binning follows the convention Evidently uses, so the two agree on the same data: a numeric
column with more than :data:`CATEGORICAL_MAX_DISTINCT` distinct baseline values is cut into
bins by Sturges' rule over both samples (``numpy.histogram_bin_edges(..., bins="sturges")``);
otherwise, and for strings and booleans, each value is its own category.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "CATEGORICAL_MAX_DISTINCT",
    "DRIFT_METRICS",
    "categorical_drift",
    "concept_drift",
    "numeric_drift",
    "quality_metrics",
    "sturges_edges",
]

CATEGORICAL_MAX_DISTINCT = 20
DRIFT_METRICS = (
    "ks_statistic",
    "ks_pvalue",
    "chi_squared_statistic",
    "chi_squared_pvalue",
    "js_distance",
    "population_stability_index",
    "wasserstein_distance",
    "tv_distance",
    "l_infinity_distance",
)


def _none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _fill_zeroes(percents: np.ndarray) -> np.ndarray:
    """Replace empty bins by a tiny share so PSI stays finite (as Evidently does)."""
    nonzero = percents[percents != 0]
    if nonzero.size == 0:
        return percents
    low = nonzero.min()
    out = percents.copy()
    np.place(out, out == 0, low / 10**6 if low <= 0.0001 else 0.0001)
    return out


def _distribution_distances(ref_counts: np.ndarray, cur_counts: np.ndarray) -> dict[str, Any]:
    from scipy.spatial import distance
    from scipy.special import rel_entr

    ref_n, cur_n = ref_counts.sum(), cur_counts.sum()
    if ref_n == 0 or cur_n == 0:
        return {}
    p, q = ref_counts / ref_n, cur_counts / cur_n
    pf, qf = _fill_zeroes(p), _fill_zeroes(q)
    return {
        "js_distance": _none(distance.jensenshannon(p, q)),
        # PSI = KL(p||q) + KL(q||p) = sum((p - q) * ln(p / q))
        "population_stability_index": _none(np.sum(rel_entr(pf, qf) + rel_entr(qf, pf))),
        "tv_distance": _none(distance.cityblock(p, q) / 2),
        "l_infinity_distance": _none(distance.chebyshev(p, q)),
    }


def _is_categorical_numeric(ref: np.ndarray) -> bool:
    head = ref[:5000]
    if len(np.unique(head)) > CATEGORICAL_MAX_DISTINCT:
        return False
    return len(np.unique(ref)) <= CATEGORICAL_MAX_DISTINCT


def _sample(values: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    if limit is None or len(values) <= limit:
        return values
    rng = np.random.default_rng(seed)
    return values[rng.choice(len(values), size=limit, replace=False)]


def sturges_edges(low: float, high: float, count: int) -> np.ndarray:
    """``numpy.histogram_bin_edges(values, bins="sturges")`` from the values' minimum, maximum
    and count alone (what an engine that aggregates, rather than holds, the values knows).

    Example:
        >>> values = np.array([1.0, 2.0, 2.5, 7.0])
        >>> bool((sturges_edges(1.0, 7.0, 4) == np.histogram_bin_edges(values, "sturges")).all())
        True
    """
    first, last = float(low), float(high)
    if first == last:
        first, last = first - 0.5, last + 0.5
    width = (float(high) - float(low)) / (np.log2(count) + 1.0)
    bins = int(np.ceil((last - first) / width)) if width else 1
    return np.linspace(first, last, bins + 1)


def numeric_drift(
    ref: np.ndarray,
    cur: np.ndarray,
    *,
    sample_rows: int | None = None,
    seed: int = 0,
    binned: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Drift statistics of a numeric column between a baseline (``ref``) and ``cur``.

    KS (``scipy.stats.ks_2samp``) and Wasserstein (``scipy.stats.wasserstein_distance``) run
    on all values, or on a seeded uniform sample of ``sample_rows`` per side when a side is
    larger (their cost grows with n; binned distances always use every row). ``binned`` gives
    the two sides' counts over :func:`sturges_edges` of every row, for callers that hold only
    a sample of the values (the spark engine counts them where the data is).

    Example:
        >>> import numpy as np
        >>> d = numeric_drift(np.arange(100.0), np.arange(100.0) + 50)
        >>> round(d["ks_statistic"], 2)
        0.5
    """
    from scipy import stats

    ref = ref[~np.isnan(ref)] if ref.dtype.kind == "f" else ref
    cur = cur[~np.isnan(cur)] if cur.dtype.kind == "f" else cur
    out: dict[str, Any] = dict.fromkeys(DRIFT_METRICS)
    if len(ref) == 0 or len(cur) == 0:
        return out
    # sorted copies: both scipy functions sort again, which is then nearly free
    ref_s = np.sort(_sample(ref, sample_rows, seed))
    cur_s = np.sort(_sample(cur, sample_rows, seed + 1))
    with warnings.catch_warnings():  # "exact calculation unsuccessful": scipy falls back
        warnings.simplefilter("ignore", RuntimeWarning)
        ks = stats.ks_2samp(ref_s, cur_s)
    out["ks_statistic"], out["ks_pvalue"] = _none(ks.statistic), _none(ks.pvalue)
    out["wasserstein_distance"] = _none(stats.wasserstein_distance(ref_s, cur_s))
    if _is_categorical_numeric(ref):  # few values (labels, flags): also a chi-square test
        keys = np.union1d(np.unique(ref), np.unique(cur))
        ref_counts = np.array([np.count_nonzero(ref == k) for k in keys], dtype=float)
        cur_counts = np.array([np.count_nonzero(cur == k) for k in keys], dtype=float)
        out.update(_chi_square(ref_counts, cur_counts))
    elif binned is not None:
        ref_counts, cur_counts = (np.asarray(c, dtype=float) for c in binned)
    else:
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        ref_counts = np.histogram(ref, edges)[0].astype(float)
        cur_counts = np.histogram(cur, edges)[0].astype(float)
    out.update(_distribution_distances(ref_counts, cur_counts))
    return out


def categorical_drift(ref: Mapping[Any, int], cur: Mapping[Any, int]) -> dict[str, Any]:
    """Drift statistics of a categorical column from value counts (nulls excluded).

    The chi-square test is the two-sample test of homogeneity on the 2 × k contingency table
    (``scipy.stats.chi2_contingency``), not a goodness-of-fit test against the baseline's
    proportions.

    Example:
        >>> d = categorical_drift({"a": 50, "b": 50}, {"a": 90, "b": 10})
        >>> d["chi_squared_pvalue"] < 0.001
        True
    """
    out: dict[str, Any] = dict.fromkeys(DRIFT_METRICS)
    keys = sorted(set(ref) | set(cur), key=str)
    ref_counts = np.array([ref.get(k, 0) for k in keys], dtype=float)
    cur_counts = np.array([cur.get(k, 0) for k in keys], dtype=float)
    if ref_counts.sum() == 0 or cur_counts.sum() == 0:
        return out
    out.update(_distribution_distances(ref_counts, cur_counts))
    out.update(_chi_square(ref_counts, cur_counts))
    return out


def _chi_square(ref_counts: np.ndarray, cur_counts: np.ndarray) -> dict[str, Any]:
    """Two-sample chi-square test of homogeneity (``scipy.stats.chi2_contingency``)."""
    from scipy import stats

    table = np.vstack([ref_counts, cur_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:  # one category on both sides: identical distributions
        return {"chi_squared_statistic": 0.0, "chi_squared_pvalue": 1.0}
    chi = stats.chi2_contingency(table)
    return {"chi_squared_statistic": _none(chi.statistic), "chi_squared_pvalue": _none(chi.pvalue)}


def concept_drift(
    ref_feature: np.ndarray,
    ref_label: np.ndarray,
    cur_feature: np.ndarray,
    cur_label: np.ndarray,
    *,
    numeric: bool,
    bins: int = 5,
) -> dict[str, Any]:
    """Test whether P(label | feature) changed between two windows.

    The feature is cut into ``bins`` quantile bins of the baseline (categories stay as they
    are); within each bin, ``scipy.stats.chi2_contingency`` tests window × label
    independence. The per-bin statistics and degrees of freedom are summed and the p-value is
    ``scipy.stats.chi2.sf`` of the sum: a small p-value means the same inputs now lead to
    different labels (concept drift), even when the inputs themselves did not drift.
    """
    from scipy import stats

    empty = {"concept_chi_squared_statistic": None, "concept_chi_squared_pvalue": None}
    if len(ref_label) == 0 or len(cur_label) == 0:
        return empty
    if numeric:
        edges = np.unique(np.quantile(ref_feature, np.linspace(0, 1, bins + 1)))
        ref_bin = np.searchsorted(edges[1:-1], ref_feature, side="right")
        cur_bin = np.searchsorted(edges[1:-1], cur_feature, side="right")
    else:
        ref_bin, cur_bin = ref_feature.astype(str), cur_feature.astype(str)
    labels = np.union1d(np.unique(ref_label), np.unique(cur_label))
    total, dof = 0.0, 0
    for b in np.unique(ref_bin):
        r, c = ref_label[ref_bin == b], cur_label[cur_bin == b]
        if len(r) == 0 or len(c) == 0:
            continue
        table = np.array(
            [
                [np.count_nonzero(r == lab) for lab in labels],
                [np.count_nonzero(c == lab) for lab in labels],
            ],
            dtype=float,
        )
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            continue
        result = stats.chi2_contingency(table, correction=False)
        total += float(result.statistic)
        dof += int(result.dof)
    if dof == 0:
        return empty
    return {
        "concept_chi_squared_statistic": total,
        "concept_chi_squared_pvalue": float(stats.chi2.sf(total, dof)),
    }


def quality_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    problem_type: str,
    y_proba: np.ndarray | None = None,
) -> dict[str, float | None]:
    """Model quality from scikit-learn: classification accuracy, precision, recall, f1,
    roc_auc and log_loss (binary: positive class is the larger label; more classes: weighted
    averages); regression mse, rmse, mae and r2. Metrics that cannot be computed are None."""
    import sklearn
    from sklearn import metrics

    out: dict[str, float | None] = {}
    if len(y_true) == 0:
        return out
    if problem_type == "regression":
        y_true, y_pred = y_true.astype(float), y_pred.astype(float)
        mse = metrics.mean_squared_error(y_true, y_pred)
        out.update(
            mse=_none(mse),
            rmse=_none(math.sqrt(mse)),
            mae=_none(metrics.mean_absolute_error(y_true, y_pred)),
            r2=_none(metrics.r2_score(y_true, y_pred)) if len(y_true) > 1 else None,
        )
        return out
    labels = np.union1d(np.unique(y_true), np.unique(y_pred))
    binary = len(labels) <= 2
    average = "binary" if binary and len(labels) == 2 else "weighted"
    kwargs: dict[str, Any] = {"zero_division": 0}
    if average == "binary":
        kwargs.update(average="binary", pos_label=labels[-1])
    else:
        kwargs.update(average="weighted")
    with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
        precision, recall, f1, _ = metrics.precision_recall_fscore_support(y_true, y_pred, **kwargs)
        out["accuracy_score"] = _none(metrics.accuracy_score(y_true, y_pred))
    out["precision"], out["recall"], out["f1_score"] = _none(precision), _none(recall), _none(f1)
    out["roc_auc"] = out["log_loss"] = None
    if y_proba is not None and binary and len(np.unique(y_true)) == 2:
        positive = (y_true == labels[-1]).astype(int)
        proba = np.clip(y_proba.astype(float), 1e-15, 1 - 1e-15)
        out["roc_auc"] = _none(metrics.roc_auc_score(positive, proba))
        out["log_loss"] = _none(metrics.log_loss(positive, proba, labels=[0, 1]))
    return out
