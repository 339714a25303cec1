"""FID statistics files (``.npz``): the feature Gaussian's ``mu`` and ``sigma``, as TTUR and pytorch-fid keep them.

Layout (``numpy.savez``; every array loads with ``allow_pickle=False``):

* ``mu``: float64 [d], the feature mean;
* ``sigma``: float64 [d, d], the unbiased (1/(N-1)) covariance, as ``numpy.cov`` gives it;
* ``n``: int64 scalar, the number of images the statistics come from (written by us; TTUR's and
  pytorch-fid's files have only ``mu`` and ``sigma``, so it is optional on read);
* ``protocol``, ``extractor``, ``extractor_hash``: str scalars naming how the features were made
  (optional on read; a file without ``protocol`` is recorded as of unknown protocol).

The key names ``mu`` and ``sigma`` are those of TTUR's precomputed statistics (Heusel et al. 2017,
the ``fid_stats_*.npz`` files) and of pytorch-fid's ``--save-stats``, so their files can be read
and ours can be read by them. A file holds no raw features: only FID can be computed from it.
"""
from __future__ import annotations

import io
import os
import zipfile

import numpy as np

from dcgan_common.fid.metrics import GaussianStats, MetricError
from dcgan_common.fileio import atomic_write

#: Recorded instead of a protocol for files that do not name one (TTUR, pytorch-fid).
UNKNOWN_PROTOCOL = "unknown (the statistics file names no protocol)"


def is_stats_file(path: str) -> bool:
    """Whether ``path`` names a statistics file by its suffix (``.npz``, any case)."""
    return path.lower().endswith(".npz")


def save_stats(path: str, mean: np.ndarray, cov: np.ndarray, count: int, protocol: str,
               extractor: str = "", extractor_hash: str = "") -> None:
    """Write ``mu`` (float64 [d]), ``sigma`` (float64 [d, d]), ``n`` and the provenance strings.

    Args:
      path: local path or gs:// URI ending in ``.npz``; written atomically
        (``dcgan_common.fileio.atomic_write``).
      mean, cov: the feature mean [d] and unbiased covariance [d, d] (e.g. ``FeatureStats.mean``/``cov``).
      count: images the statistics come from (>= 2).
      protocol, extractor, extractor_hash: how the features were made.
    Raises:
      ValueError: ``path`` does not end in .npz, shapes disagree, or count < 2.
    """
    if not is_stats_file(path):
        raise ValueError(f"statistics file {path} must end in .npz")
    mean, cov = np.asarray(mean, np.float64), np.asarray(cov, np.float64)
    if mean.ndim != 1 or cov.shape != (mean.shape[0], mean.shape[0]):
        raise ValueError(f"mu must be [d] and sigma [d, d], got {mean.shape} and {cov.shape}")
    if count < 2:
        raise ValueError(f"statistics need at least 2 samples, got {count}")
    buffer = io.BytesIO()
    np.savez(buffer, mu=mean, sigma=cov, n=np.int64(count), protocol=np.str_(protocol),
             extractor=np.str_(extractor), extractor_hash=np.str_(extractor_hash))
    atomic_write(path, buffer.getvalue())


def load_stats(path: str) -> tuple[GaussianStats, dict[str, str | None]]:
    """Read a statistics file (ours, TTUR's or pytorch-fid's). Numpy only: no TensorFlow.

    Args:
      path: local ``.npz`` path.
    Returns:
      (GaussianStats with ``count`` = ``n`` or None, ``{"protocol", "extractor", "extractor_hash"}``
      with None for keys the file lacks; ``protocol`` falls back to :data:`UNKNOWN_PROTOCOL`).
    Raises:
      FileNotFoundError: no such file.
      ValueError: not a readable .npz, ``mu`` or ``sigma`` missing, wrong shapes, non-finite
        values, or ``n`` < 2 (MetricError is a ValueError).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"statistics file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path} is not a readable .npz statistics file: {exc}") from exc
    missing = [key for key in ("mu", "sigma") if key not in arrays]
    if missing:
        raise ValueError(f"{path} has no {' or '.join(missing)} array (keys: {sorted(arrays)}); "
                         "expected TTUR / pytorch-fid statistics with 'mu' and 'sigma'")
    count = None
    if "n" in arrays:
        n = arrays["n"]
        if n.shape != () or n.dtype.kind not in "iu":
            raise ValueError(f"{path}: n must be an integer scalar, got {n.dtype} {n.shape}")
        count = int(n)
    try:
        stats = GaussianStats(arrays["mu"], arrays["sigma"], count, source=path)
    except MetricError as exc:
        raise ValueError(str(exc)) from exc
    info = {}
    for key in ("protocol", "extractor", "extractor_hash"):
        value = arrays.get(key)
        info[key] = str(value) if value is not None and value.shape == () and str(value) else None
    info["protocol"] = info["protocol"] or UNKNOWN_PROTOCOL
    return stats, info
