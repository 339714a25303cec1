"""Feature extractors by name: the metric core takes features, these make them from uint8 images.

Every extractor is a callable ``uint8 [N, H, W, 3] -> float32 [N, feature_dim]`` with attributes
``name``, ``protocol`` (recorded in results and the stats cache key), ``feature_dim`` and
``extractor_hash`` (identifies the weights/version; part of the cache key).

* ``"inception"``: the standard FID network (``inception.InceptionExtractor``). The default.
* ``"downsample-8x8"``: FOR TESTS AND SMOKE RUNS ONLY. Area-averages the image to 8x8 (block
  means; H and W must be multiples of 8) and scales with the protocol's (x - 128) / 128, giving
  192 features. It needs no weights and runs in microseconds, so pipeline tests can exercise the
  component end to end; its numbers are not FID in any published sense.
"""
from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np

from dcgan_common.fid import protocol

DEFAULT_EXTRACTOR = "inception"


class Downsample8x8Extractor:
    """Tests/smoke only: 8x8 block-mean pixels, float32 [N, 192] in [-1, 1). See module docstring."""

    name = "downsample-8x8"
    protocol = "block-mean-8x8/pixels (tests and smoke runs only, not FID)"
    feature_dim = 8 * 8 * 3
    extractor_hash = hashlib.sha1(b"downsample-8x8/v1").hexdigest()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """uint8 [N, H, W, 3] (H, W multiples of 8) -> float32 [N, 192]. Raises ValueError otherwise."""
        images = protocol.check_uint8_nhwc(images)
        n, h, w, _ = images.shape
        if h % 8 or w % 8:
            raise ValueError(f"downsample-8x8 needs H and W divisible by 8, got {h}x{w}")
        blocks = images.reshape(n, 8, h // 8, 8, w // 8, 3).astype(np.float64).mean(axis=(2, 4))
        return ((blocks - protocol.INPUT_SHIFT) / protocol.INPUT_SCALE).reshape(n, -1).astype(np.float32)


def _inception(weights_uri: str, cache_dir: str):
    from dcgan_common.fid import inception  # lazy: pulls in TF/Keras

    return inception.InceptionExtractor(weights_uri=weights_uri, cache_dir=cache_dir)


_FACTORIES: dict[str, Callable[[str, str], object]] = {
    "inception": _inception,
    "downsample-8x8": lambda weights_uri, cache_dir: Downsample8x8Extractor(),
}


def _inception_class():
    from dcgan_common.fid import inception  # numpy only at import; Keras loads when it is built

    return inception.InceptionExtractor


_CLASSES: dict[str, Callable[[], type]] = {
    "inception": _inception_class,
    "downsample-8x8": lambda: Downsample8x8Extractor,
}


def extractor_spec(name: str) -> tuple[int, str]:
    """(feature_dim, protocol) of the named extractor without building it: no weights, no TensorFlow.

    Lets callers check inputs (e.g. a statistics file's dimension) before anything heavy loads.
    Raises ValueError for an unknown name (the message lists the valid ones).
    """
    if name not in _CLASSES:
        raise ValueError(f"unknown feature extractor {name!r}; valid: {list_extractors()}")
    cls = _CLASSES[name]()
    return int(cls.feature_dim), str(cls.protocol)


def list_extractors() -> list[str]:
    """Valid extractor names."""
    return sorted(_FACTORIES)


def get_extractor(name: str = DEFAULT_EXTRACTOR, weights_uri: str = "", cache_dir: str = ""):
    """Build the named extractor.

    Args:
      name: one of :func:`list_extractors`.
      weights_uri, cache_dir: passed to the Inception weights loader (ignored by others).
    Raises:
      ValueError: unknown name (the message lists the valid ones);
      weights.WeightsError: Inception weights missing or unreadable.
    """
    if name not in _FACTORIES:
        raise ValueError(f"unknown feature extractor {name!r}; valid: {list_extractors()}")
    return _FACTORIES[name](weights_uri, cache_dir)
