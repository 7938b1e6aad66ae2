"""sturges_edges: numpy's Sturges bin edges from min, max and count alone."""

from __future__ import annotations

import numpy as np
import pytest

from lakebox.monitoring._stats import numeric_drift, sturges_edges


@pytest.mark.parametrize("seed", range(8))
def test_same_edges_as_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.gamma(2.0, 10.0, int(rng.integers(1, 50_000))) * rng.choice([1e-3, 1.0, 1e6])
    expected = np.histogram_bin_edges(values, bins="sturges")
    got = sturges_edges(values.min(), values.max(), len(values))
    assert np.array_equal(got, expected)


def test_constant_values() -> None:
    values = np.full(10, 3.0)
    expected = np.histogram_bin_edges(values, bins="sturges")
    assert np.array_equal(sturges_edges(3.0, 3.0, 10), expected)


def test_binned_counts_replace_the_histogram_of_the_values() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(0, 1, 5000), rng.normal(0.3, 1, 5000)
    full = numeric_drift(ref, cur)
    edges = sturges_edges(min(ref.min(), cur.min()), max(ref.max(), cur.max()), 10_000)
    binned = (np.histogram(ref, edges)[0], np.histogram(cur, edges)[0])
    # a sample of the values with the counts of all of them: binned distances as on all rows
    sampled = numeric_drift(ref[:500], cur[:500], binned=binned)
    for metric in ("js_distance", "population_stability_index", "tv_distance"):
        assert sampled[metric] == pytest.approx(full[metric], rel=1e-12)
    assert sampled["ks_statistic"] != full["ks_statistic"]  # KS still from the values given
