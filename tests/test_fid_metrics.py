"""The pure-numpy FID/KID core against independent references (no extractor, no TF)."""
import math

import numpy as np
import pytest
import scipy.linalg

from dcgan_common.fid import metrics


def scipy_fid(x: np.ndarray, y: np.ndarray) -> float:
    """Independent reference: the TTUR formula with scipy's general sqrtm, all float64."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def gaussian(rng, n, d, scale=1.0, shift=0.0):
    mix = rng.normal(size=(d, d)) / math.sqrt(d)
    return shift + scale * rng.normal(size=(n, d)) @ (np.eye(d) + mix)


def test_matches_scipy_sqrtm_reference():
    rng = np.random.default_rng(1)
    x, y = gaussian(rng, 400, 16), gaussian(rng, 300, 16, scale=1.3, shift=0.2)
    ours = metrics.frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert ours == pytest.approx(scipy_fid(x, y), rel=1e-8, abs=1e-9)
    # Through the registry and the streaming stats with unequal N.
    got = metrics.compute_metrics(["fid"], metrics.FeatureStats.from_features(x),
                                  metrics.FeatureStats.from_features(y))
    assert got["fid"] == pytest.approx(scipy_fid(x, y), rel=1e-8)


def test_fid_of_identical_sets_is_zero():
    x = gaussian(np.random.default_rng(2), 200, 12)
    s = metrics.FeatureStats.from_features(x)
    assert metrics.frechet_distance(s.mean, s.cov, s.mean, s.cov) == pytest.approx(0.0, abs=1e-9)


def test_monotone_in_covariance_scale():
    rng = np.random.default_rng(3)
    base = gaussian(rng, 500, 8)
    ref = metrics.FeatureStats.from_features(base)
    values = []
    for scale in (1.0, 1.2, 1.5, 2.0, 3.0):
        other = metrics.FeatureStats.from_features(base * scale)
        values.append(metrics.frechet_distance(ref.mean * scale, ref.cov, other.mean, other.cov))
    assert values[0] == pytest.approx(0.0, abs=1e-9)
    assert all(b > a for a, b in zip(values, values[1:])), values


def test_streaming_equals_batch():
    rng = np.random.default_rng(4)
    x = gaussian(rng, 257, 10)
    stream = metrics.FeatureStats(10)
    for i in range(0, len(x), 33):
        stream.update(x[i:i + 33])
    assert stream.count == 257
    np.testing.assert_allclose(stream.mean, x.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stream.cov, np.cov(x, rowvar=False), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(stream.features, x.astype(np.float32))
    again = metrics.FeatureStats.from_arrays(stream.to_arrays())
    np.testing.assert_allclose(again.cov, stream.cov, rtol=0, atol=0)


def test_fixed_matrix_regression_diagonal_closed_form():
    # Diagonal covariances commute: FID = |mu1-mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2
    # = (1 + 4) + ((1-2)^2 + (2-1)^2 + 0) = 7 exactly.
    value = metrics.frechet_distance(np.zeros(3), np.diag([1.0, 4.0, 9.0]),
                                     np.array([1.0, 2.0, 0.0]), np.diag([4.0, 1.0, 9.0]))
    assert value == pytest.approx(7.0, abs=1e-12)


def test_fixed_matrix_rotated_closed_form():
    # sigma1 = I, sigma2 = R diag(4, 9) R^T: sqrt(sigma1 sigma2) = R diag(2, 3) R^T,
    # FID = 0 + 2 + 13 - 2 * 5 = 5 for any rotation R.
    theta = 0.7
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    s2 = rot @ np.diag([4.0, 9.0]) @ rot.T
    assert metrics.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), s2) == pytest.approx(5.0, abs=1e-12)


def test_too_few_samples_and_small_sample_policy():
    rng = np.random.default_rng(5)
    one = metrics.FeatureStats.from_features(rng.normal(size=(1, 4)))
    many = metrics.FeatureStats.from_features(rng.normal(size=(50, 4)))
    with pytest.raises(metrics.MetricError, match="at least 2"):
        metrics.compute_metrics(["fid"], one, many)
    small = metrics.FeatureStats.from_features(rng.normal(size=(10, 32)))
    big = metrics.FeatureStats.from_features(rng.normal(size=(100, 32)))
    with pytest.raises(metrics.SmallSampleError):
        metrics.compute_metrics(["fid"], big, small)
    allowed = metrics.compute_metrics(["fid"], big, small, metrics.MetricOptions(allow_small_sample=True))
    assert math.isfinite(allowed["fid"]) and allowed["fid"] > 0


def test_non_finite_inputs_raise_instead_of_nan():
    stats = metrics.FeatureStats(3)
    with pytest.raises(metrics.MetricError, match="NaN"):
        stats.update(np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(metrics.MetricError, match="NaN"):
        metrics.frechet_distance(np.zeros(2), np.eye(2), np.array([np.inf, 0]), np.eye(2))
    with pytest.raises(metrics.MetricError, match="positive semi-definite"):
        metrics.frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))


def test_kid_sanity():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    far = rng.normal(loc=0.5, size=(300, 16))
    same_mean, same_std = metrics.kernel_inception_distance(x, y, num_subsets=20, subset_size=100)
    far_mean, _ = metrics.kernel_inception_distance(x, far, num_subsets=20, subset_size=100)
    assert abs(same_mean) < 3 * same_std + 1e-3     # unbiased: ~0 for the same distribution
    assert far_mean > 10 * max(abs(same_mean), same_std)
    # Subsets that are the whole of both sets are permutations: no spread to report.
    whole_mean, whole_std = metrics.kernel_inception_distance(x[:50], y[:50], num_subsets=5, subset_size=100)
    assert math.isnan(whole_std) and math.isfinite(whole_mean)
    # Unbiased MMD^2 against a brute-force double loop on a tiny case.
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    k = lambda u, v: (u @ v / 3 + 1) ** 3
    xx = sum(k(a[i], a[j]) for i in range(4) for j in range(4) if i != j) / 12
    yy = sum(k(b[i], b[j]) for i in range(5) for j in range(5) if i != j) / 20
    xy = sum(k(a[i], b[j]) for i in range(4) for j in range(5)) / 20
    assert metrics.mmd2_unbiased(a, b) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_registry_lists_and_rejects():
    assert {"fid", "kid"} <= set(metrics.list_metrics())
    with pytest.raises(ValueError, match="valid metrics"):
        metrics.get_metric("nope")
    rng = np.random.default_rng(7)
    a = metrics.FeatureStats.from_features(rng.normal(size=(40, 4)))
    b = metrics.FeatureStats.from_features(rng.normal(size=(30, 4)))
    out = metrics.compute_metrics(["fid", "kid"], a, b, metrics.MetricOptions(kid_subsets=5))
    assert set(out) == {"fid", "kid", "kid_std"} and all(isinstance(v, float) for v in out.values())


@pytest.mark.parametrize("collapsed_first", [False, True])
def test_fully_collapsed_sample_is_scored_in_closed_form(collapsed_first):
    # N identical feature vectors (a constant generator) have covariance 0 up to rounding noise
    # from (sum x x^T - N mu mu^T) / (N - 1). Against any set with covariance S:
    # tr (0^1/2 S 0^1/2)^1/2 = 0, so FID = |mu1 - mu2|^2 + tr S exactly.
    rng = np.random.default_rng(11)
    d = 64
    point = rng.random(d) * 3.0 + 0.1           # positive and non-round, as pool_3 features are
    collapsed = metrics.FeatureStats.from_features(np.repeat(point[None], 500, axis=0))
    spread = metrics.FeatureStats.from_features(gaussian(rng, 700, d, scale=0.5, shift=1.0))
    assert np.abs(collapsed.cov).max() > 0      # the rounding noise this case is about is there
    expected = float(np.sum((collapsed.mean - spread.mean) ** 2) + np.trace(spread.cov))
    first, second = (collapsed, spread) if collapsed_first else (spread, collapsed)
    got = metrics.compute_metrics(["fid", "kid"], first, second, metrics.MetricOptions(kid_subsets=3))
    assert got["fid"] == pytest.approx(expected, rel=1e-9)
    assert math.isfinite(got["kid"]) and got["kid"] > 0
    # Both sides collapsed (two constant generators): FID is the squared distance of the points.
    other = metrics.FeatureStats.from_features(np.repeat(point[None] + 0.25, 300, axis=0))
    both = metrics.compute_metrics(["fid"], collapsed, other)["fid"]
    assert both == pytest.approx(0.25 ** 2 * d, rel=1e-9)
    # An exactly zero covariance (features that are all 0) is the same closed form.
    zeros = metrics.FeatureStats.from_features(np.zeros((10, d)))
    assert metrics.compute_metrics(["fid"], zeros, spread, metrics.MetricOptions(allow_small_sample=True))[
        "fid"] == pytest.approx(float(spread.mean @ spread.mean + np.trace(spread.cov)), rel=1e-9)


def test_psd_check_still_refuses_real_negative_eigenvalues_relative_to_the_feature_scale():
    # A negative eigenvalue far above rounding (1e-3 of the second moment) is still refused, also
    # when the matrix is otherwise tiny (so the check is not relative to its own largest eigenvalue).
    with pytest.raises(metrics.MetricError, match="positive semi-definite"):
        metrics.frechet_distance(np.ones(3), np.diag([1e-6, 1e-6, -3e-3]), np.ones(3), np.eye(3))
    with pytest.raises(metrics.MetricError, match="positive semi-definite"):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.diag([2.0, 1.0, -0.01]))
    # sigma2 is checked on its own: with a collapsed sigma1 it would not show in sigma1^1/2 sigma2 sigma1^1/2.
    with pytest.raises(metrics.MetricError, match="sigma2 is not positive semi-definite"):
        metrics.frechet_distance(np.zeros(3), np.zeros((3, 3)), np.zeros(3), np.diag([2.0, 1.0, -0.01]))
