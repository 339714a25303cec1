"""k-NN manifold metrics (improved precision/recall, density/coverage) on closed-form cases.

Identity features (no extractor, no TF): each case is small enough that the expected value follows
from the definitions by hand; a brute-force double loop over scipy distances is the independent
reference for the general case.
"""
import math
import time

import numpy as np
import pytest
import scipy.spatial.distance

from dcgan_common.fid import manifold, metrics


def brute_force(real, fake, k_pr=3, k_dc=5):
    """The four definitions written as loops over an exact distance matrix (scipy, float64)."""
    rr = scipy.spatial.distance.cdist(real, real)
    ff = scipy.spatial.distance.cdist(fake, fake)
    rf = scipy.spatial.distance.cdist(real, fake)

    def radius(dist, i, k):
        others = np.delete(dist[i], i)  # the point itself excluded
        return np.sort(others)[k - 1]

    r3 = [radius(rr, i, k_pr) for i in range(len(real))]
    f3 = [radius(ff, j, k_pr) for j in range(len(fake))]
    r5 = [radius(rr, i, k_dc) for i in range(len(real))]
    precision = np.mean([any(rf[i, j] <= r3[i] for i in range(len(real))) for j in range(len(fake))])
    recall = np.mean([any(rf[i, j] <= f3[j] for j in range(len(fake))) for i in range(len(real))])
    density = sum(rf[i, j] < r5[i] for i in range(len(real)) for j in range(len(fake))) / (k_dc * len(fake))
    coverage = np.mean([any(rf[i, j] < r5[i] for j in range(len(fake))) for i in range(len(real))])
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


def both(real, fake, **kw):
    return {**manifold.precision_recall(real, fake, **kw), **manifold.density_coverage(real, fake, **kw)}


def test_identical_sets_score_one():
    x = np.random.default_rng(0).normal(size=(60, 8))
    # Permuted copy: the match must not rely on row order.
    fake = x[np.random.default_rng(1).permutation(len(x))]
    got = both(x, fake)
    # Each real ball holds its own copy and its k-1 nearest neighbours' copies strictly inside
    # (the k-th lies on the open boundary), so density is exactly k/k = 1.
    assert got == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}


def test_disjoint_far_apart_sets_score_zero():
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(40, 6)), rng.normal(size=(30, 6)) + 1000.0
    assert both(real, fake) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_one_collapsed_mode():
    # Real: n points at the corners of a regular simplex (x_i = 10 e_i: every pair at squared
    # distance 200, so every real radius, for any k, is sqrt(200)). Generated: M copies of x_0.
    n, m = 10, 25
    real = 10.0 * np.eye(n)
    fake = np.repeat(real[:1], m, axis=0)
    got = both(real, fake)
    # precision: every generated sample is x_0, inside real ball 0 (0 <= r)           -> 1
    # recall: generated radii are 0 (the neighbours are copies); only real x_0 is at
    #   distance <= 0 of a generated sample                                           -> 1/n
    # density: x_0 lies strictly inside ball 0 only; for i != 0 it is at exactly r_i,
    #   on the open boundary                                                          -> 1/k
    # coverage: ball 0 holds x_0; no other ball holds anything                        -> 1/n
    assert got["precision"] == 1.0
    assert got["recall"] == pytest.approx(1 / n, abs=1e-15)
    assert got["density"] == pytest.approx(1 / manifold.DC_K, abs=1e-15)
    assert got["coverage"] == pytest.approx(1 / n, abs=1e-15)
    # Same with a large offset and a non-integer scale: the boundary ties must survive the
    # cancellation in |a|² + |b|² - 2ab (this is what the tie tolerance is for).
    shifted = both(real * 0.37 + 123.4, fake * 0.37 + 123.4)
    assert shifted == got


def test_matches_brute_force_reference():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(45, 5))
    fake = 1.3 * rng.normal(size=(38, 5)) + 0.8
    got, want = both(real, fake), brute_force(real, fake)
    assert got == pytest.approx(want, abs=1e-15)
    # Not a trivial case: every value strictly between its extremes.
    assert 0 < got["precision"] < 1 and 0 < got["recall"] < 1 and 0 < got["coverage"] < 1


def test_blocked_equals_unblocked():
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(57, 7)), rng.normal(size=(41, 7)) * 1.2
    whole = both(real, fake, block_rows=10_000)
    for rows in (1, 3, 16):
        assert both(real, fake, block_rows=rows) == whole
    # block_bytes small enough to force one-row blocks for every matrix.
    assert both(real, fake, block_bytes=8) == whole
    # The radii themselves may differ in the last bit (BLAS sums in a shape-dependent order):
    # that is what the tie tolerance absorbs; the metrics above are equal exactly.
    np.testing.assert_allclose(manifold.knn_sq_radii(real, 3, block_rows=1),
                               manifold.knn_sq_radii(real, 3, block_rows=1000), rtol=1e-12, atol=0)


def test_same_distribution_matches_naeem_expectations():
    # Naeem et al. 2020, section 3.2: for two samples of one distribution, E[density] = 1 and
    # E[coverage] = 1 - prod_{i=1..k} (N - i) / (N + M - i), whatever the dimension.
    rng = np.random.default_rng(5)
    n = m = 1000
    real, fake = rng.normal(size=(n, 8)), rng.normal(size=(m, 8))
    got = manifold.density_coverage(real, fake)
    k = manifold.DC_K
    expected_cov = 1 - math.prod((n - i) / (n + m - i) for i in range(1, k + 1))
    assert got["coverage"] == pytest.approx(expected_cov, abs=0.02)
    assert got["density"] == pytest.approx(1.0, abs=0.15)


def test_refusals():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(10, 4))
    with pytest.raises(metrics.MetricError, match="at least 4"):
        manifold.precision_recall(x, x[:3])
    with pytest.raises(metrics.MetricError, match="at least 6"):
        manifold.density_coverage(x[:5], x)
    with pytest.raises(metrics.MetricError, match="dimensions differ"):
        manifold.precision_recall(x, rng.normal(size=(10, 5)))
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(metrics.MetricError, match="NaN"):
        manifold.density_coverage(x, bad)
    with pytest.raises(ValueError, match="block_rows"):
        manifold.precision_recall(x, x, block_rows=0)


def test_registry_and_real_radii_memo():
    rng = np.random.default_rng(7)
    real = metrics.FeatureStats.from_features(rng.normal(size=(50, 6)))
    fake = metrics.FeatureStats.from_features(rng.normal(size=(40, 6)) + 0.5)
    assert {"precision_recall", "density_coverage"} <= set(metrics.list_metrics())
    out = metrics.compute_metrics(["fid", "precision_recall", "density_coverage"], real, fake)
    assert set(out) == {"fid", "precision", "recall", "density", "coverage"}
    assert {k: out[k] for k in ("precision", "recall", "density", "coverage")} == pytest.approx(
        brute_force(real.features.astype(np.float64), fake.features.astype(np.float64)), abs=1e-15)
    # The real radii are computed once per real set and reused (candidate and baseline share them).
    first = manifold.real_radii(real, real.features, 3)
    assert manifold.real_radii(real, real.features, 5).base is first.base  # one table, one pass
    np.testing.assert_allclose(first, manifold.knn_sq_radii(real.features, 3), rtol=1e-12)
    real.update(rng.normal(size=(5, 6)))  # more rows: recomputed
    assert len(manifold.real_radii(real, real.features, 3)) == 55


def test_inception_sized_input_is_fast_and_bounded():
    # 2,000 x 2,000 at d = 2,048 (the pipeline's feature size) in 8 MiB blocks.
    rng = np.random.default_rng(8)
    real = rng.random((2000, 2048), dtype=np.float32)
    fake = rng.random((2000, 2048), dtype=np.float32)
    start = time.perf_counter()
    got = both(real, fake, block_bytes=8 * 2 ** 20)
    assert time.perf_counter() - start < 60
    assert all(0 <= v <= 1.5 for v in got.values())
