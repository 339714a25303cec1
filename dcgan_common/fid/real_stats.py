"""Real-image feature statistics of transformed examples, cached by content key.

Shared by the FidEvaluator (FID/KID/… against every real image) and the Trainer (in-training KID):
both read the same ``Split-<name>/`` TFRecords the same way, extract with the same extractor and
find the same cache file, so whichever runs first pays for the real features once.

Cache files are written with ``dcgan_common.fileio.atomic_write`` (temp name, then rename), so a
concurrent reader never sees half a file (stylegan2-ada's metric_utils does the same).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from typing import Iterator

import numpy as np

from dcgan_common import features
from dcgan_common.fid import metrics as metrics_lib
from dcgan_common.fileio import atomic_write, read_if_exists

log = logging.getLogger(__name__)

STATS_FORMAT_VERSION = 1
DEFAULT_BATCH = 64


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


class Progress:
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
    progress = Progress("real-image features", max_real or None)
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
