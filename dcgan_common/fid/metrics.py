"""FID and KID in pure numpy, independent of any feature extractor.

Features come in as float arrays [N, d] (from ``inception.InceptionExtractor`` or any other
extractor; tests use identity features). Statistics are accumulated in float64.

FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", eq. 6) is the Fréchet (2-Wasserstein) distance between Gaussians fitted to the two
feature sets, with the closed form of Dowson & Landau 1982 ("The Fréchet distance between
multivariate normal distributions"):

    d² = |μ₁ − μ₂|² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½.

``tr (Σ₁ Σ₂)^½`` in the usual form equals ``tr (Σ₁^½ Σ₂ Σ₁^½)^½`` because Σ₁Σ₂ and
Σ₁^½Σ₂Σ₁^½ are similar matrices (same eigenvalues). The latter is symmetric positive
semi-definite, so both square roots come from symmetric eigendecompositions (``numpy.linalg.eigh``)
with real eigenvalues; eigenvalues at the rounding level of the feature scale are set to 0 (so a
collapsed sample, whose covariance is all rounding noise, is scored in closed form) and anything
more negative is refused, as is a failed residual check: no complex number or NaN appears silently.

Covariances use the unbiased 1/(N−1) normalisation (as ``numpy.cov`` in the TTUR reference code).
FID is biased upwards at small N (Bińkowski et al. 2018; Chong & Forsyth 2020), so N is recorded
with every value and N below the feature dimension (a singular Σ) is refused unless allowed.

KID (Bińkowski et al. 2018, "Demystifying MMD GANs", section 4) is the unbiased estimator of the
squared MMD with the cubic polynomial kernel ``k(x, y) = (xᵀy / d + 1)³``, averaged over random
subsets; it is unbiased at small N, hence the better gate for small samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from dcgan_common.fid import manifold
from dcgan_common.fid.errors import MetricError, SmallSampleError  # noqa: F401  (re-exported)


class FeatureStats:
    """Streaming float64 mean and covariance of feature vectors.

    Keeps ``sum x`` and ``sum x xᵀ`` (memory O(d²), flat in N) and, if ``keep_features``, the raw
    features up to ``max_items`` rows (KID needs them).

    Args:
      dim: feature dimension d.
      keep_features: also keep raw features (float32) for kernel metrics.
      max_items: stop accepting rows after this many (None: no cap); further rows are ignored and
        counted in ``dropped`` so callers can report it.
    Raises:
      MetricError (from ``update``): wrong shape or non-finite features.
    """

    def __init__(self, dim: int, keep_features: bool = True, max_items: int | None = None):
        if dim < 1:
            raise MetricError(f"feature dimension must be >= 1, got {dim}")
        self.dim = dim
        self.keep_features = keep_features
        self.max_items = max_items
        self.count = 0
        self.dropped = 0
        self._sum = np.zeros(dim, np.float64)
        self._outer = np.zeros((dim, dim), np.float64)
        self._rows: list[np.ndarray] = []

    def update(self, features: np.ndarray) -> None:
        """Add rows. ``features``: float [n, dim], finite."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise MetricError(f"features must be [n, {self.dim}], got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise MetricError("features contain NaN or Inf")
        if self.max_items is not None:
            room = max(self.max_items - self.count, 0)
            self.dropped += max(len(x) - room, 0)
            x = x[:room]
        if len(x) == 0:
            return
        self.count += len(x)
        self._sum += x.sum(axis=0)
        self._outer += x.T @ x
        if self.keep_features:
            self._rows.append(x.astype(np.float32))

    @property
    def mean(self) -> np.ndarray:
        """float64 [d]. Raises MetricError when empty."""
        if self.count < 1:
            raise MetricError("no features accumulated")
        return self._sum / self.count

    @property
    def cov(self) -> np.ndarray:
        """float64 [d, d], unbiased: (Σ x xᵀ − N μ μᵀ) / (N − 1). Raises MetricError for N < 2."""
        if self.count < 2:
            raise MetricError(f"covariance needs at least 2 samples, got {self.count}")
        mu = self.mean
        cov = (self._outer - self.count * np.outer(mu, mu)) / (self.count - 1)
        return (cov + cov.T) / 2.0  # remove rounding asymmetry

    @property
    def features(self) -> np.ndarray:
        """float32 [count, d] raw features. Raises MetricError if they were not kept."""
        if not self.keep_features:
            raise MetricError("raw features were not kept (keep_features=False)")
        if not self._rows:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate(self._rows)

    @classmethod
    def from_features(cls, features: np.ndarray, keep_features: bool = True) -> "FeatureStats":
        """Stats of a whole [N, d] array at once."""
        features = np.asarray(features)
        if features.ndim != 2:
            raise MetricError(f"features must be [N, d], got shape {features.shape}")
        stats = cls(features.shape[1], keep_features=keep_features)
        stats.update(features)
        return stats

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Serialisable state (for the stats cache, ``numpy.savez``)."""
        arrays = {"count": np.array(self.count), "sum": self._sum, "outer": self._outer}
        if self.keep_features:
            arrays["features"] = self.features
        return arrays

    @classmethod
    def from_arrays(cls, arrays) -> "FeatureStats":
        """Inverse of :meth:`to_arrays`."""
        total = np.asarray(arrays["sum"], np.float64)
        stats = cls(total.shape[0], keep_features="features" in arrays)
        stats.count = int(arrays["count"])
        stats._sum = total
        stats._outer = np.asarray(arrays["outer"], np.float64)
        if stats.keep_features:
            stats._rows = [np.asarray(arrays["features"], np.float32)]
        return stats


class GaussianStats:
    """Stats-only side of a comparison: a feature Gaussian's mean and covariance, no raw features.

    What a TTUR / pytorch-fid ``.npz`` statistics file holds (``dcgan_common.fid.stats_npz``).
    Duck-types :class:`FeatureStats` for FID; metrics that need raw features (KID, the k-NN ones)
    raise :class:`MetricError` from :attr:`features`.

    Args:
      mean: float [d] feature mean. cov: float [d, d] covariance (unbiased, 1/(N-1)).
      count: N the statistics were computed from, or None when the file does not say (TTUR and
        pytorch-fid files do not); a known N < 2 cannot have a covariance.
      source: named in error messages (e.g. the file path).
    Raises:
      MetricError: shapes that are not [d] and [d, d], non-finite values, or count < 2.
    """

    keep_features = False

    def __init__(self, mean: np.ndarray, cov: np.ndarray, count: int | None = None, source: str = ""):
        mean, cov = np.asarray(mean, np.float64), np.asarray(cov, np.float64)
        if mean.ndim != 1 or mean.shape[0] < 1 or cov.shape != (mean.shape[0], mean.shape[0]):
            raise MetricError(f"{source or 'statistics'}: mu must be [d] and sigma [d, d], got "
                              f"{mean.shape} and {cov.shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
            raise MetricError(f"{source or 'statistics'}: mu or sigma contains NaN or Inf")
        if count is not None and count < 2:
            raise MetricError(f"{source or 'statistics'}: computed from n={count} samples; "
                              "a covariance needs at least 2")
        self.dim = int(mean.shape[0])
        self.count = None if count is None else int(count)
        self.source = source
        self._mean, self._cov = mean, cov

    @property
    def mean(self) -> np.ndarray:
        """float64 [d]."""
        return self._mean

    @property
    def cov(self) -> np.ndarray:
        """float64 [d, d]."""
        return self._cov

    @property
    def features(self) -> np.ndarray:
        """Always raises MetricError: a stats-only side has no raw features."""
        raise MetricError(f"{self.source or 'these statistics'} holds only mu/sigma, no raw features")


def _check_counts(n1: int | None, n2: int | None, dim: int, allow_small_sample: bool) -> None:
    """Sample-count checks of FID; a count of None (stats file without N) is not checked."""
    known = [n for n in (n1, n2) if n is not None]
    if any(n < 2 for n in known):
        raise MetricError(f"FID needs at least 2 samples on each side, got {n1} and {n2}")
    if known and min(known) < dim and not allow_small_sample:
        raise SmallSampleError(
            f"N={min(known)} is below the feature dimension {dim}: the covariance is singular and "
            "FID is strongly biased; use KID, more samples, or allow_small_sample=True")


#: Eigenvalues below this share of the feature second moment E|x|² are rounding noise, set to 0
#: (see :func:`frechet_distance`, "Tolerances").
NOISE_RTOL = 1e-10


def _psd_eig(matrix: np.ndarray, tol: float, scale: float, what: str, vectors: bool = True):
    """Eigenvalues (and vectors) of a symmetric PSD matrix with rounding noise set to exactly 0.

    ``scale`` is the magnitude the matrix's rounding error is proportional to (not the matrix's own
    size: a covariance that is all rounding noise has noise for its largest eigenvalue too).
    Returns (values, vectors), or values only when ``vectors`` is False (``eigvalsh``, ~2x cheaper).
    Raises MetricError for an eigenvalue below ``-tol * max(largest |eigenvalue|, scale)``.
    """
    if vectors:
        values, vecs = np.linalg.eigh(matrix)
    else:
        values, vecs = np.linalg.eigvalsh(matrix), None
    bound = max(float(np.max(np.abs(values))), scale, 1e-300)
    if values.min() < -tol * bound:
        raise MetricError(f"{what} is not positive semi-definite: eigenvalue {values.min():.3e} "
                          f"vs scale {bound:.3e} (tolerance {tol:g})")
    values = values.copy()
    values[values <= NOISE_RTOL * scale] = 0.0
    return (values, vecs) if vectors else values


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     tol: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Dowson & Landau 1982).

    Route: Σ₁^½ = V diag(√λ) Vᵀ from ``eigh(Σ₁)``; then ``tr (Σ₁^½ Σ₂ Σ₁^½)^½ = Σ √μᵢ`` with μ the
    eigenvalues of the symmetric matrix Σ₁^½ Σ₂ Σ₁^½.

    Tolerances: the rounding error of a covariance accumulated from raw moments,
    ``(Σ x xᵀ − N μ μᵀ) / (N − 1)``, is proportional to the features' second moment
    ``m = max(tr Σ + |μ|²)`` over both sets (about 2^-53 · √N · m per eigenvalue; 2e-14 · m at
    N = 10,000), not to the covariance itself: a fully collapsed sample (N identical vectors) has a
    covariance that is pure noise, largest eigenvalue included, so a check relative to the largest
    eigenvalue compares noise with noise. Hence eigenvalues of Σ₁ below ``NOISE_RTOL · m`` (1e-10 · m,
    four orders above that noise) are set to 0, and those of Σ₁^½ Σ₂ Σ₁^½ below
    ``NOISE_RTOL · λmax(Σ₁) · m`` (Σ₂'s noise conjugated by Σ₁^½); a rank-deficient or zero
    covariance then gives the exact closed form (Σ₂ = 0: d² = |μ₁ − μ₂|² + tr Σ₁). A genuine variance
    direction below the floor changes ``tr (Σ₁^½ Σ₂ Σ₁^½)^½`` by at most √(1e-10) · m = 1e-5 · m.
    Negative eigenvalues beyond ``tol`` times the same scale are refused.

    Args:
      mu1, mu2: float [d] means. sigma1, sigma2: float [d, d] symmetric PSD covariances.
      tol: relative tolerance for negative eigenvalues (see above) and for the residual
        ``‖Σ₁^½ Σ₁^½ − Σ₁‖_F / max(‖Σ₁‖_F, m)``.
    Returns:
      the squared distance d² (the quantity called FID), a finite float >= 0, in squared feature units.
    Raises:
      MetricError: shape mismatch, non-finite input, a matrix that is not PSD beyond ``tol``, or a
        residual above ``tol`` (never a NaN or complex value).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise MetricError(f"shape mismatch: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
    for name, arr in (("mu1", mu1), ("mu2", mu2), ("sigma1", s1), ("sigma2", s2)):
        if not np.all(np.isfinite(arr)):
            raise MetricError(f"{name} contains NaN or Inf")
    s1, s2 = (s1 + s1.T) / 2.0, (s2 + s2.T) / 2.0
    moment = max(abs(float(np.trace(s1))) + float(mu1 @ mu1), abs(float(np.trace(s2))) + float(mu2 @ mu2))
    # Σ₂ is only checked through Σ₁^½ Σ₂ Σ₁^½ below, so its own negativity is checked here.
    _psd_eig(s2, tol, moment, "sigma2", vectors=False)
    lam, vec = _psd_eig(s1, tol, moment, "sigma1")
    sqrt_s1 = (vec * np.sqrt(lam)) @ vec.T
    norm = max(float(np.linalg.norm(s1)), moment, 1e-300)
    residual = np.linalg.norm(sqrt_s1 @ sqrt_s1 - s1) / norm
    if residual > max(tol, 1e-9):
        raise MetricError(f"sqrt(sigma1) residual {residual:.3e} exceeds tolerance {tol:g}")
    middle = sqrt_s1 @ s2 @ sqrt_s1
    # Only the eigenvalues are needed here: eigvalsh is ~2x cheaper than eigh at d = 2048.
    mu_eig = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    middle_scale = float(lam.max()) * moment
    bound = max(float(np.max(np.abs(mu_eig))), middle_scale, 1e-300)
    if mu_eig.min() < -tol * bound:
        raise MetricError("sigma1^1/2 sigma2 sigma1^1/2 is not positive semi-definite: eigenvalue "
                          f"{mu_eig.min():.3e} vs scale {bound:.3e} (tolerance {tol:g})")
    mu_eig[mu_eig <= NOISE_RTOL * middle_scale] = 0.0
    tr_covmean = float(np.sum(np.sqrt(mu_eig)))
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    if not math.isfinite(value):
        raise MetricError("FID is not finite")
    # Rounding can push an exact 0 slightly negative; anything more negative is a bug in the inputs.
    if value < -tol * max(1.0, float(np.trace(s1) + np.trace(s2))):
        raise MetricError(f"FID came out negative ({value:.3e}) beyond rounding")
    return max(value, 0.0)


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``k(x, y) = (xᵀy / d + 1)³`` (Bińkowski et al. 2018), float64 [n, m] for x [n, d], y [m, d]."""
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² estimate (Gretton et al. 2012, eq. 3) with :func:`polynomial_kernel`.

    ``(Σ_{i≠j} k(xᵢ,xⱼ))/(m(m−1)) + (Σ_{i≠j} k(yᵢ,yⱼ))/(n(n−1)) − 2 Σ k(xᵢ,yⱼ)/(mn)``; may be < 0.
    x: [m, d], y: [n, d], m, n >= 2.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m, n = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                 + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID: mean and std of :func:`mmd2_unbiased` over random equal-size subsets.

    Args:
      real, fake: float [N_real, d], [N_fake, d] features (finite).
      num_subsets: number of subsets (100 in Bińkowski et al.; also stylegan2-ada's default).
      subset_size: rows per subset, capped at min(N_real, N_fake).
      seed: subsets are drawn without replacement from ``numpy.random.default_rng(seed)``.
    Returns:
      (mean, std) in kernel units (the kernel is dimensionless); mean may be slightly < 0.
      std is NaN when every subset is the whole of both sets (N_real, N_fake <= subset_size):
      the subsets are then permutations of one another and their spread says nothing.
    Raises:
      MetricError: fewer than 2 rows on a side, dimension mismatch, non-finite values.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise MetricError(f"KID needs [N, d] features of equal d, got {real.shape} and {fake.shape}")
    if len(real) < 2 or len(fake) < 2:
        raise MetricError(f"KID needs at least 2 samples on each side, got {len(real)} and {len(fake)}")
    if not (np.all(np.isfinite(real)) and np.all(np.isfinite(fake))):
        raise MetricError("features contain NaN or Inf")
    if num_subsets < 1:
        raise MetricError("num_subsets must be >= 1")
    m = min(len(real), len(fake), subset_size)
    rng = np.random.default_rng(seed)
    values = np.array([
        mmd2_unbiased(real[rng.choice(len(real), m, replace=False)],
                      fake[rng.choice(len(fake), m, replace=False)])
        for _ in range(num_subsets)])
    if m >= len(real) and m >= len(fake):
        return float(values.mean()), math.nan
    return float(values.mean()), float(values.std())


# --- Registry: each metric maps (real stats, fake stats, options) -> dict[str, float] ---

@dataclass(frozen=True)
class MetricOptions:
    """Options every metric receives. ``allow_small_sample``: FID with N < d is computed (and
    flagged by the caller) instead of refused; ``seed``: for KID's subsets."""

    allow_small_sample: bool = False
    seed: int = 0
    kid_subsets: int = 100
    kid_subset_size: int = 1000


MetricFn = Callable[[FeatureStats, FeatureStats, MetricOptions], dict[str, float]]
_REGISTRY: dict[str, MetricFn] = {}
_NEEDS_FEATURES: dict[str, bool] = {}


def register_metric(name: str, needs_features: bool = True) -> Callable[[MetricFn], MetricFn]:
    """Decorator: register ``fn(real: FeatureStats, fake: FeatureStats, opts) -> dict[str, float]``.

    ``needs_features``: the metric reads raw feature rows (``stats.features``), so it cannot run on
    a stats-only side (:class:`GaussianStats`); False for metrics of mean and covariance only.
    """

    def wrap(fn: MetricFn) -> MetricFn:
        if name in _REGISTRY:
            raise ValueError(f"metric {name!r} is already registered")
        _REGISTRY[name] = fn
        _NEEDS_FEATURES[name] = needs_features
        return fn

    return wrap


def needs_raw_features(name: str) -> bool:
    """Whether metric ``name`` needs raw features (not just mu/sigma). Raises ValueError if unknown."""
    get_metric(name)
    return _NEEDS_FEATURES[name]


def list_metrics() -> list[str]:
    """Registered metric names, sorted (for error messages and CLI help)."""
    return sorted(_REGISTRY)


def get_metric(name: str) -> MetricFn:
    """The metric function for ``name``. Raises ValueError naming the valid metrics."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown metric {name!r}; valid metrics: {list_metrics()}")
    return _REGISTRY[name]


def compute_metrics(names, real: FeatureStats, fake: FeatureStats,
                    options: MetricOptions = MetricOptions()) -> dict[str, float]:
    """Run the named metrics and merge their dicts (keys must not collide)."""
    result: dict[str, float] = {}
    for name in names:
        values = get_metric(name)(real, fake, options)
        overlap = set(values) & set(result)
        if overlap:
            raise ValueError(f"metric {name!r} returns keys already set: {sorted(overlap)}")
        result.update(values)
    return result


@register_metric("fid", needs_features=False)
def _fid(real: FeatureStats, fake: FeatureStats, options: MetricOptions) -> dict[str, float]:
    """{"fid": Fréchet distance of the two feature Gaussians}."""
    _check_counts(real.count, fake.count, real.dim, options.allow_small_sample)
    return {"fid": frechet_distance(real.mean, real.cov, fake.mean, fake.cov)}


@register_metric("kid")
def _kid(real: FeatureStats, fake: FeatureStats, options: MetricOptions) -> dict[str, float]:
    """{"kid": mean unbiased MMD², "kid_std": its std over subsets}."""
    mean, std = kernel_inception_distance(real.features, fake.features, options.kid_subsets,
                                          options.kid_subset_size, options.seed)
    return {"kid": mean, "kid_std": std}


# k-NN manifold metrics (dcgan_common/fid/manifold.py).
@register_metric("precision_recall")
def _precision_recall(real: FeatureStats, fake: FeatureStats, options: MetricOptions) -> dict[str, float]:
    """{"precision", "recall"}: improved precision/recall, k = 3 (Kynkäänniemi et al. 2019)."""
    real_x = real.features
    return manifold.precision_recall(real_x, fake.features, manifold.PR_K,
                                     real_sq_radii=manifold.real_radii(real, real_x, manifold.PR_K))


@register_metric("density_coverage")
def _density_coverage(real: FeatureStats, fake: FeatureStats, options: MetricOptions) -> dict[str, float]:
    """{"density", "coverage"}: Naeem et al. 2020, k = 5."""
    real_x = real.features
    return manifold.density_coverage(real_x, fake.features, manifold.DC_K,
                                     real_sq_radii=manifold.real_radii(real, real_x, manifold.DC_K))
