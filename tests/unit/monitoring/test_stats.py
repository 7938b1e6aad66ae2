"""Drift and quality statistics against scipy / scikit-learn on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance
from sklearn import metrics

from lakebox.monitoring import categorical_drift, concept_drift, numeric_drift, quality_metrics


@pytest.fixture
def samples():
    rng = np.random.default_rng(7)
    return rng.normal(0, 1, 4000), rng.normal(0.3, 1.2, 3000)


def _binned(ref, cur):
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    p = np.histogram(ref, edges)[0] / len(ref)
    q = np.histogram(cur, edges)[0] / len(cur)
    return p, q


def test_numeric_drift_matches_scipy(samples):
    ref, cur = samples
    d = numeric_drift(ref, cur)
    ks = stats.ks_2samp(ref, cur)
    assert d["ks_statistic"] == pytest.approx(ks.statistic, rel=1e-12)
    assert d["ks_pvalue"] == pytest.approx(ks.pvalue, rel=1e-9)
    assert d["wasserstein_distance"] == pytest.approx(stats.wasserstein_distance(ref, cur))
    p, q = _binned(ref, cur)
    assert d["js_distance"] == pytest.approx(distance.jensenshannon(p, q))
    assert d["tv_distance"] == pytest.approx(0.5 * np.abs(p - q).sum())
    assert d["l_infinity_distance"] == pytest.approx(np.abs(p - q).max())
    pf = np.where(p == 0, 0.0001, p)
    qf = np.where(q == 0, 0.0001, q)
    assert d["population_stability_index"] == pytest.approx(np.sum((pf - qf) * np.log(pf / qf)))
    assert d["chi_squared_pvalue"] is None


def test_numeric_drift_ignores_nan_and_handles_empty():
    ref = np.array([1.0, 2.0, np.nan, 3.0, 4.0] * 10)
    cur = np.array([1.0, np.nan, 2.0] * 10)
    d = numeric_drift(ref, cur)
    ks = stats.ks_2samp(ref[~np.isnan(ref)], cur[~np.isnan(cur)])
    assert d["ks_pvalue"] == pytest.approx(ks.pvalue)
    assert numeric_drift(np.array([]), cur)["ks_pvalue"] is None


def test_numeric_drift_few_distinct_values_are_categories():
    ref = np.array([0, 1, 2] * 100, dtype=float)
    cur = np.array([0, 0, 1, 2] * 75, dtype=float)
    d = numeric_drift(ref, cur)
    p = np.array([100, 100, 100]) / 300
    q = np.array([150, 75, 75]) / 300
    assert d["js_distance"] == pytest.approx(distance.jensenshannon(p, q))
    chi = stats.chi2_contingency([[100, 100, 100], [150, 75, 75]])
    assert d["chi_squared_pvalue"] == pytest.approx(chi.pvalue)


def test_numeric_drift_sample_is_seeded_and_bounded(samples):
    ref, cur = samples
    a = numeric_drift(ref, cur, sample_rows=500)
    b = numeric_drift(ref, cur, sample_rows=500)
    assert a == b
    full = numeric_drift(ref, cur)
    assert a["ks_statistic"] != full["ks_statistic"]
    assert a["js_distance"] == full["js_distance"]  # binned distances use every row


def test_categorical_drift_is_two_sample_chi_square():
    ref = {"basic": 600, "pro": 300, "team": 100}
    cur = {"basic": 400, "pro": 450, "enterprise": 10}
    d = categorical_drift(ref, cur)
    keys = sorted(set(ref) | set(cur))
    table = np.array([[ref.get(k, 0) for k in keys], [cur.get(k, 0) for k in keys]])
    chi = stats.chi2_contingency(table)
    assert d["chi_squared_statistic"] == pytest.approx(chi.statistic)
    assert d["chi_squared_pvalue"] == pytest.approx(chi.pvalue)
    p, q = table[0] / table[0].sum(), table[1] / table[1].sum()
    assert d["js_distance"] == pytest.approx(distance.jensenshannon(p, q))
    assert d["tv_distance"] == pytest.approx(0.5 * np.abs(p - q).sum())
    assert d["ks_pvalue"] is None and d["wasserstein_distance"] is None


def test_categorical_identical_single_category():
    d = categorical_drift({"a": 5}, {"a": 9})
    assert d["chi_squared_pvalue"] == 1.0 and d["js_distance"] == 0.0


def test_quality_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    proba = np.clip(y * 0.6 + rng.random(500) * 0.5, 0, 1)
    pred = (proba > 0.5).astype(int)
    q = quality_metrics(
        y.astype(str), pred.astype(str), problem_type="classification", y_proba=proba
    )
    assert q["accuracy_score"] == pytest.approx(metrics.accuracy_score(y, pred))
    assert q["f1_score"] == pytest.approx(metrics.f1_score(y, pred))
    assert q["precision"] == pytest.approx(metrics.precision_score(y, pred))
    assert q["recall"] == pytest.approx(metrics.recall_score(y, pred))
    assert q["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, proba))
    assert q["log_loss"] == pytest.approx(metrics.log_loss(y, np.clip(proba, 1e-15, 1 - 1e-15)))
    yr = rng.normal(size=200)
    pr = yr + rng.normal(scale=0.3, size=200)
    r = quality_metrics(yr, pr, problem_type="regression")
    assert r["mse"] == pytest.approx(metrics.mean_squared_error(yr, pr))
    assert r["rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(yr, pr)))
    assert r["mae"] == pytest.approx(metrics.mean_absolute_error(yr, pr))
    assert r["r2"] == pytest.approx(metrics.r2_score(yr, pr))


def test_concept_drift_detects_changed_relationship_without_input_drift():
    rng = np.random.default_rng(3)
    x_ref, x_cur = rng.normal(size=3000), rng.normal(size=3000)
    y_ref = (rng.random(3000) < 1 / (1 + np.exp(-2 * x_ref))).astype(str)
    y_same = (rng.random(3000) < 1 / (1 + np.exp(-2 * x_cur))).astype(str)
    y_flip = (rng.random(3000) < 1 / (1 + np.exp(2 * x_cur))).astype(str)
    assert numeric_drift(x_ref, x_cur)["ks_pvalue"] > 0.01  # inputs did not drift
    same = concept_drift(x_ref, y_ref, x_cur, y_same, numeric=True)
    flip = concept_drift(x_ref, y_ref, x_cur, y_flip, numeric=True)
    assert same["concept_chi_squared_pvalue"] > 0.01
    assert flip["concept_chi_squared_pvalue"] < 1e-10
    # the statistic is the sum of per-bin scipy chi-square statistics
    edges = np.unique(np.quantile(x_ref, np.linspace(0, 1, 6)))
    rb = np.searchsorted(edges[1:-1], x_ref, side="right")
    cb = np.searchsorted(edges[1:-1], x_cur, side="right")
    total = 0.0
    for b in range(5):
        t = [
            [np.sum(y_ref[rb == b] == v) for v in ("False", "True")],
            [np.sum(y_flip[cb == b] == v) for v in ("False", "True")],
        ]
        total += stats.chi2_contingency(t, correction=False).statistic
    assert flip["concept_chi_squared_statistic"] == pytest.approx(total)
