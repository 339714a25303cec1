"""The one seeded sampler: (generator, seed, count) -> latent batches -> uint8 images.

``dcgan-tfx generate``, ``dcgan-tfx fid`` and the FidEvaluator all draw their images here, so the
grid a user looks at and the number the gate reads come from the same images: with the same seed,
``generate --num 16`` gives the first 16 images ``fid`` scores.

Noise: ``tf.random.stateless_normal([count, latent_dim], seed=[seed, 0])``, float32 N(0, 1), the
recipe of the exported SavedModel's own ``generate`` signature (trainer/export.py), so the three
agree with it too. The counter-based generator (Philox) fills the array in row-major order, so the
first n rows of a draw of ``count`` rows are the draw of n rows: a sample is a prefix of any larger
sample with the same seed, and splitting the draw into batches of any size changes no image.
Images: the SavedModel's ``serving_default`` signature ({"noise": float32 [b, latent_dim]} ->
{"images": float32 [b, 64, 64, 3] in [-1, 1]}), one batch at a time, quantised with
``dcgan_common.features.to_uint8``. latent_dim is read from the signature, so a generator trained with
another latent size is sampled correctly.
"""
from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from dcgan_common import features

DEFAULT_BATCH = 64


class GenerationError(RuntimeError):
    """The generator could not be loaded or produced unusable images (NaN/Inf, wrong shape)."""


def latent_noise(count: int, seed: int, latent_dim: int = features.LATENT_DIM) -> np.ndarray:
    """float32 [count, latent_dim] ~ N(0, 1), ``stateless_normal`` keyed on (seed, 0).

    Raises ValueError for count < 1 or latent_dim < 1.
    """
    import tensorflow as tf

    if count < 1 or latent_dim < 1:
        raise ValueError(f"count and latent_dim must be >= 1, got {count} and {latent_dim}")
    key = tf.constant([int(seed), 0], tf.int64)
    return tf.random.stateless_normal([int(count), int(latent_dim)], seed=key, dtype=tf.float32).numpy()


def latent_batches(count: int, seed: int, latent_dim: int = features.LATENT_DIM,
                   batch_size: int = DEFAULT_BATCH) -> Iterator[np.ndarray]:
    """Yield float32 [<= batch_size, latent_dim] consecutive slices of ``latent_noise(count, seed)``.

    The concatenation is the same whatever ``batch_size`` (>= 1). count * latent_dim * 4 bytes are
    held at once (4 MB for 10,000 x 100).
    Raises ValueError for count, latent_dim or batch_size < 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    noise = latent_noise(count, seed, latent_dim)
    for start in range(0, count, batch_size):
        yield noise[start:start + batch_size]


def serving_model_dir(path: str) -> str:
    """The SavedModel folder of ``path``: itself, or its ``Format-Serving`` child (a Model artifact)."""
    nested = os.path.join(path, "Format-Serving")
    if not os.path.isfile(os.path.join(path, "saved_model.pb")) and os.path.isfile(
            os.path.join(nested, "saved_model.pb")):
        return nested
    return path


def load_serving(model_dir: str):
    """(loaded object, serving signature, latent_dim) of an exported generator. Keep the loaded
    object referenced while calling the signature: its variables live there.

    Raises:
      GenerationError: the model cannot be loaded or lacks the ``serving_default`` signature or
        its ``noise`` input.
    """
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(model_dir)
        signature = loaded.signatures[features.SERVING_SIGNATURE]
    except (OSError, KeyError, ValueError, tf.errors.OpError) as exc:
        raise GenerationError(f"cannot load generator {model_dir}: {exc}") from exc
    noise_spec = signature.structured_input_signature[1].get(features.NOISE_INPUT)
    if noise_spec is None:
        raise GenerationError(f"generator {model_dir} has no {features.NOISE_INPUT!r} input")
    return loaded, signature, int(noise_spec.shape[-1] or features.LATENT_DIM)


def sample_batches(model_dir: str, count: int, seed: int,
                   batch_size: int = DEFAULT_BATCH) -> Iterator[np.ndarray]:
    """Yield uint8 [<= batch_size, 64, 64, 3] image batches of the seeded sample (see module doc).

    Raises:
      ValueError: count or batch_size < 1.
      GenerationError: as :func:`load_serving`, or the generator returns the wrong shape or NaN/Inf.
    """
    import tensorflow as tf

    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    loaded, signature, latent_dim = load_serving(model_dir)  # noqa: F841 (keeps the variables alive)
    for noise in latent_batches(count, seed, latent_dim, batch_size):
        images = signature(**{features.NOISE_INPUT: tf.constant(noise)})
        images = np.asarray(images[features.IMAGES_OUTPUT])
        if images.shape[1:] != features.IMAGE_SHAPE or len(images) != len(noise):
            raise GenerationError(f"generator returned shape {images.shape}, expected "
                                  f"[{len(noise)}, *{features.IMAGE_SHAPE}]")
        try:
            yield features.to_uint8(images)
        except ValueError as exc:
            raise GenerationError(f"generator output unusable: {exc}") from exc


def sample_images(model_dir: str, count: int, seed: int, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """uint8 [count, 64, 64, 3]: the concatenated :func:`sample_batches`. Raises as that function."""
    return np.concatenate(list(sample_batches(model_dir, count, seed, batch_size)))
