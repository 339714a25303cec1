"""k-nearest-neighbour manifold metrics in pure numpy: improved precision/recall and density/coverage.

FID and KID fold fidelity and diversity into one number; these metrics separate them, which is what
makes mode collapse visible (a generator that draws one good image has high precision and near-zero
recall/coverage). All four work on the same features as FID (2,048-d Inception pool_3 in the
pipeline; any float [N, d] here).

Each sample set defines a manifold estimate: the union of balls around its points, each ball's
radius the distance to the point's k-th nearest neighbour *in the same set, the point itself
excluded*.

* Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric
  for Assessing Generative Models", section 2, eqs. 1-3), k = 3 (the paper's choice, section 3):
  precision = share of generated samples inside the real manifold, recall = share of real samples
  inside the generated manifold. The paper writes the ball as closed (distance <= radius), so a
  point on a boundary counts as inside.
* Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative
  Models", section 3.2, eqs. 5-6), built on the real balls only, so outlying generated samples
  cannot inflate them: density = (1 / kM) * sum over generated samples of the number of real balls
  holding it (expected value 1 when both sets come from one distribution; above 1 means samples
  crowd into dense real regions), coverage = share of real balls holding at least one generated
  sample. k = 5, the value the paper selects and uses throughout (section 4: for M = N it puts the
  expected coverage of two samples of one distribution at 1 - 2^-5 ~ 0.97, close enough to 1 to
  read as "full coverage" and far enough from it to respond to missing modes); k = 3 would put
  that expectation at 0.875, so a perfect generator would look like one missing an eighth of the
  data. Membership is strict (distance < radius) as in the authors' reference implementation:
  with it, two identical sets give density exactly 1 (each ball holds its own centre and k - 1
  neighbours; the k-th lies on the boundary).

Numerics: squared Euclidean distances in float64, ``|a|² + |b|² - 2 a·b`` after subtracting the
real mean from both sets (distances are translation invariant; centring keeps the norms, and so
the cancellation, small). Products of float32 features are exact in float64, so a computed
squared distance is within about ``d * 2^-53 * (|a|² + |b|²)`` of the exact one; two values whose
difference is below ``TIE_RTOL * max |x|²`` (1e-9, several orders above that bound at d = 2048 and
far below any real gap between images) are treated as equal, so a tie (a duplicate image, or the
k-th neighbour itself) is decided the same way whichever matrix block computed it.

Memory: the features are held once as float64 (N * d * 8 bytes for each set: 164 MB at N = 10,000,
d = 2,048); distances are computed in row blocks of at most ``block_bytes`` (64 MiB by default),
so no N x M matrix is ever held whole. Time: passes of 2 N M d flops each (real-real,
generated-generated for recall, one real-generated per metric), about 10 s per pass at
N = M = 10,000, d = 2,048 on two idle cores (float64 GEMM ~40 GFLOP/s; 2-3x longer on shared ones);
the real radii are cached per real feature set (see :func:`real_radii`), so the candidate, the
baseline and both metrics share one real-real pass: both metrics at 10k x 10k take four passes.
"""
from __future__ import annotations

import weakref

import numpy as np

from dcgan_common.fid.errors import MetricError

#: k of improved precision/recall (Kynkäänniemi et al. 2019, section 3).
PR_K = 3
#: k of density/coverage (Naeem et al. 2020, section 4).
DC_K = 5
#: Relative tie tolerance on squared distances (module docstring, "Numerics").
TIE_RTOL = 1e-9
#: Upper bound on one block of the distance matrix, bytes.
DEFAULT_BLOCK_BYTES = 64 * 2 ** 20


class _Centred:
    """float64 features minus a shared origin, with their squared norms (so each pass reuses them)."""

    def __init__(self, features: np.ndarray, origin: np.ndarray):
        self.x = np.asarray(features, np.float64) - origin
        self.sq = np.einsum("ij,ij->i", self.x, self.x)


def _check(features: np.ndarray, what: str, k: int) -> np.ndarray:
    x = np.asarray(features)
    if x.ndim != 2:
        raise MetricError(f"{what} features must be [N, d], got shape {x.shape}")
    if len(x) <= k:
        raise MetricError(f"{what}: a k-NN radius with k={k} needs at least {k + 1} samples, got {len(x)}")
    if not np.all(np.isfinite(x)):
        raise MetricError(f"{what} features contain NaN or Inf")
    return x


def _rows_per_block(cols: int, block_rows: int | None, block_bytes: int) -> int:
    if block_rows is not None:
        if block_rows < 1:
            raise ValueError(f"block_rows must be >= 1, got {block_rows}")
        return block_rows
    return max(1, block_bytes // (8 * max(cols, 1)))


def _sq_dist_blocks(a: _Centred, b: _Centred, rows: int):
    """Yield (start, float64 [r, len(b)] squared distances of a's rows start..start+r to all of b)."""
    for start in range(0, len(a.x), rows):
        stop = min(start + rows, len(a.x))
        block = a.x[start:stop] @ b.x.T
        block *= -2.0
        block += a.sq[start:stop, None]
        block += b.sq[None, :]
        np.maximum(block, 0.0, out=block)  # cancellation can leave -1e-13 where the exact value is 0
        yield start, block


def _tie_tolerance(*sets: _Centred) -> float:
    scale = max(float(s.sq.max()) for s in sets)
    return TIE_RTOL * scale if scale > 0 else 0.0


def knn_sq_radii(features: np.ndarray, k: int, *, origin: np.ndarray | None = None,
                 block_rows: int | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES) -> np.ndarray:
    """Squared distance from each row to its k-th nearest *other* row (the row itself excluded).

    Duplicates count as neighbours at distance 0, so a set of identical rows has radii 0.

    Args:
      features: float [N, d], finite, N > k.
      k: neighbour rank, >= 1.
      origin: float [d] subtracted before the distance expansion (default: the set's mean);
        distances do not depend on it, only their rounding does.
      block_rows / block_bytes: rows per distance block (block_rows wins; tests use it).
    Returns:
      float64 [N] squared radii (units: squared feature units).
    Raises:
      MetricError: bad shape, N <= k, non-finite values. ValueError: k < 1 or block_rows < 1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    x = _check(features, "features", k)
    return _knn_sq_radii(_Centred(x, x.mean(0) if origin is None else origin), k, block_rows, block_bytes)


def _knn_sq_radii(c: _Centred, k: int, block_rows: int | None, block_bytes: int) -> np.ndarray:
    return _knn_sq_table(c, k, block_rows, block_bytes)[:, k - 1]


def _knn_sq_table(c: _Centred, k: int, block_rows: int | None, block_bytes: int) -> np.ndarray:
    """float64 [N, k]: column j holds each row's (j+1)-th smallest squared distance to other rows."""
    n = len(c.x)
    out = np.empty((n, k), np.float64)
    for start, block in _sq_dist_blocks(c, c, _rows_per_block(n, block_rows, block_bytes)):
        rows = np.arange(len(block))
        block[rows, start + rows] = np.inf  # exclude the point itself by index, not by value
        out[start:start + len(block)] = np.sort(np.partition(block, k - 1, axis=1)[:, :k], axis=1)
    return out


# Real radii per real feature set: the pipeline scores the candidate and the baseline against the
# same real statistics, and both metrics need the real radii, so one real-real pass serves all.
_REAL_RADII: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()


def real_radii(owner, features: np.ndarray, k: int) -> np.ndarray:
    """:func:`knn_sq_radii` of real ``features`` (float [N, d]) about their mean, the origin
    :func:`precision_recall` and :func:`density_coverage` use, memoised on ``owner`` (e.g. the
    FeatureStats holding them; weakly held). One pass yields every k up to max(k, PR_K, DC_K), so
    both metrics share it; keyed on N, so rows added later recompute.

    Returns float64 [N]. Raises MetricError as :func:`knn_sq_radii`.
    """
    features = _check(features, "real", k)
    origin = _origin(features)
    try:
        memo = _REAL_RADII.setdefault(owner, {})
    except TypeError:  # not weak-referenceable: no memo
        memo = {}
    table = memo.get(len(features))
    if table is None or table.shape[1] < k:
        table = _knn_sq_table(_Centred(features, origin), max(k, PR_K, DC_K), None, DEFAULT_BLOCK_BYTES)
        memo.clear()
        memo[len(features)] = table
    return table[:, k - 1]


def _prepare(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    real = _check(real, "real", k)
    fake = _check(fake, "generated", k)
    if real.shape[1] != fake.shape[1]:
        raise MetricError(f"feature dimensions differ: real {real.shape} vs generated {fake.shape}")
    return real, fake, _origin(real)


def _origin(real: np.ndarray) -> np.ndarray:
    return np.asarray(real, np.float64).mean(0)


def _real_balls(real, fake, k, block_rows, block_bytes, real_sq_radii):
    """What both metrics start from: the checked, centred sets, the block size, the real k-NN
    squared radii (given or computed) and the tie tolerance."""
    real, fake, origin = _prepare(real, fake, k)
    r, f = _Centred(real, origin), _Centred(fake, origin)
    rows = _rows_per_block(len(fake), block_rows, block_bytes)
    r_rad = (_knn_sq_radii(r, k, block_rows, block_bytes) if real_sq_radii is None
             else np.asarray(real_sq_radii, np.float64))
    return r, f, rows, r_rad, _tie_tolerance(r, f)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = PR_K, *,
                     block_rows: int | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES,
                     real_sq_radii: np.ndarray | None = None) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019, eqs. 1-3; closed balls).

    Args:
      real: float [N, d] real features; fake: float [M, d] generated features; N, M > k, finite.
      k: neighbour rank for the radii (3 in the paper).
      block_rows / block_bytes: distance-block size (results do not depend on it).
      real_sq_radii: precomputed real radii for this k (float64 [N], from :func:`real_radii`).
    Returns:
      {"precision": share of generated samples within some real ball, "recall": share of real
      samples within some generated ball}; floats in [0, 1].
    Raises:
      MetricError: bad shapes, too few samples, non-finite values.
    """
    r, f, rows, r_rad, tol = _real_balls(real, fake, k, block_rows, block_bytes, real_sq_radii)
    f_rad = _knn_sq_radii(f, k, block_rows, block_bytes)
    fake_in_real = np.zeros(len(fake), bool)
    real_in_fake = np.zeros(len(real), bool)
    for start, block in _sq_dist_blocks(r, f, rows):
        # block[i, j] = |real_i - fake_j|²; closed balls: <= radius, ties (within tol) inside.
        fake_in_real |= (block <= r_rad[start:start + len(block), None] + tol).any(axis=0)
        real_in_fake[start:start + len(block)] = (block <= f_rad[None, :] + tol).any(axis=1)
    return {"precision": float(fake_in_real.mean()), "recall": float(real_in_fake.mean())}


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = DC_K, *,
                     block_rows: int | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES,
                     real_sq_radii: np.ndarray | None = None) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020, eqs. 5-6; open balls around real samples only).

    Args:
      real: float [N, d]; fake: float [M, d]; N > k (M >= 1 would do; M > k is required for
        symmetry with precision/recall and to refuse degenerate samples); finite.
      k: neighbour rank (5 in the paper).
      block_rows / block_bytes: distance-block size (results do not depend on it).
      real_sq_radii: precomputed real radii for this k (float64 [N], from :func:`real_radii`).
    Returns:
      {"density": float >= 0 (<= N / k; 1 expected for one distribution), "coverage": float in
      [0, 1]}.
    Raises:
      MetricError: bad shapes, too few samples, non-finite values.
    """
    r, f, rows, r_rad, tol = _real_balls(real, fake, k, block_rows, block_bytes, real_sq_radii)
    balls_holding = np.zeros(len(fake), np.int64)
    covered = np.zeros(len(real), bool)
    for start, block in _sq_dist_blocks(r, f, rows):
        # Open balls: strictly inside, and a tie (within tol) is on the boundary, hence outside.
        inside = block < r_rad[start:start + len(block), None] - tol
        balls_holding += inside.sum(axis=0)
        covered[start:start + len(block)] = inside.any(axis=1)
    return {"density": float(balls_holding.sum() / (k * len(fake))), "coverage": float(covered.mean())}
