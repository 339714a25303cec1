"""Generator SavedModel: export, load, generate, and the sample-grid PNG helper.

The exported SavedModel (``tf.saved_model.save`` of a ``tf.Module``; loading needs TensorFlow only,
not Keras or this package) has two signatures, keys from ``dcgan_common/features.py``:

* ``serving_default``: {"noise": float32 [N, latent_dim]} -> {"images": float32 [N, 64, 64, 3]}
  in [-1, 1], NHWC (the generator in inference mode).
* ``generate``: {"count": int32 scalar >= 1, "seed": int64 scalar} -> {"images": uint8
  [count, 64, 64, 3]}; the noise is ``tf.random.stateless_normal`` keyed on (seed, 0), so the
  same seed gives the same images on every call and every machine with the same TF build;
  quantised as ``features.to_uint8`` (round((x + 1) * 127.5), clipped).
"""
from __future__ import annotations

import io
import math
import os

import numpy as np

from dcgan_common import features


def _quantise_tf(images):
    """TF twin of ``features.to_uint8``: float32 [-1, 1] -> uint8, round half to even as numpy."""
    import tensorflow as tf
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def _generator_module(generator, latent_dim: int):
    """A tf.Module holding the generator with the two serving functions (see module docstring)."""
    import tensorflow as tf

    class GeneratorModule(tf.Module):
        def __init__(self):
            super().__init__(name="dcgan_generator")
            self.generator = generator
            self.latent_dim = tf.constant(latent_dim, tf.int32)

        @tf.function(input_signature=[
            tf.TensorSpec([None, latent_dim], tf.float32, name=features.NOISE_INPUT)])
        def serve(self, noise):
            images = tf.cast(self.generator(noise, training=False), tf.float32)
            return {features.IMAGES_OUTPUT: images}

        @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="count"),
                                      tf.TensorSpec([], tf.int64, name="seed")])
        def generate(self, count, seed):
            tf.debugging.assert_positive(count, message="count must be >= 1")
            noise = tf.random.stateless_normal(
                tf.stack([count, latent_dim]), seed=tf.stack([seed, tf.constant(0, tf.int64)]))
            images = tf.cast(self.generator(noise, training=False), tf.float32)
            return {features.IMAGES_OUTPUT: _quantise_tf(images)}

    return GeneratorModule()


def export_generator(generator, export_dir: str, latent_dim: int = features.LATENT_DIM) -> str:
    """Write the generator SavedModel with both signatures to ``export_dir`` (local or gs://).

    Args:
      generator: Keras model float32 [N, latent_dim] -> float32 [N, 64, 64, 3] in [-1, 1].
      export_dir: target directory; created; an existing SavedModel there is overwritten.
      latent_dim: the generator's input size.
    Returns:
      ``export_dir``.
    Raises:
      ValueError: if the generator's input or output shape does not match the contract.
    """
    import tensorflow as tf

    in_shape = tuple(generator.input_shape)
    out_shape = tuple(generator.output_shape)
    if in_shape[1:] != (latent_dim,) or out_shape[1:] != features.IMAGE_SHAPE:
        raise ValueError(f"generator maps {in_shape} -> {out_shape}; expected "
                         f"(N, {latent_dim}) -> (N, {features.IMAGE_SHAPE})")
    module = _generator_module(generator, latent_dim)
    tf.saved_model.save(module, export_dir, signatures={
        features.SERVING_SIGNATURE: module.serve,
        features.GENERATE_SIGNATURE: module.generate,
    })
    return export_dir


def load_generator(model_dir: str):
    """Load an exported generator SavedModel.

    Returns:
      The loaded object; ``.signatures["serving_default"]`` and ``.signatures["generate"]`` as above.
    Raises:
      FileNotFoundError: if ``model_dir`` holds no saved_model.pb.
      ValueError: if a required signature is missing.
    """
    import tensorflow as tf

    if not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        raise FileNotFoundError(f"no SavedModel (saved_model.pb) in {model_dir}")
    loaded = tf.saved_model.load(model_dir)
    missing = {features.SERVING_SIGNATURE, features.GENERATE_SIGNATURE} - set(loaded.signatures)
    if missing:
        raise ValueError(f"SavedModel {model_dir} lacks signatures {sorted(missing)}")
    return loaded


def generate_images(model_dir: str, num: int, seed: int = 0) -> np.ndarray:
    """Generate ``num`` images with the SavedModel's ``generate`` signature.

    Returns:
      uint8 [num, 64, 64, 3], NHWC RGB in [0, 255]; the same (model, num, seed) gives the same array.
    Raises:
      ValueError: if ``num`` < 1; FileNotFoundError/ValueError from ``load_generator``.
    """
    import tensorflow as tf

    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    fn = load_generator(model_dir).signatures[features.GENERATE_SIGNATURE]
    out = fn(count=tf.constant(num, tf.int32), seed=tf.constant(seed, tf.int64))
    return out[features.IMAGES_OUTPUT].numpy()


def image_grid(images_u8: np.ndarray, ncols: int) -> np.ndarray:
    """Tile images into one picture.

    Args:
      images_u8: uint8 [N, H, W, 3], N >= 1.
      ncols: images per row (>= 1); rows = ceil(N / ncols), empty cells are black.
    Returns:
      uint8 [rows * H, ncols * W, 3].
    Raises:
      ValueError: wrong dtype, rank, channel count, N = 0 or ncols < 1.
    """
    images_u8 = np.asarray(images_u8)
    if images_u8.dtype != np.uint8 or images_u8.ndim != 4 or images_u8.shape[-1] != 3:
        raise ValueError(f"expected uint8 [N, H, W, 3], got {images_u8.dtype} {images_u8.shape}")
    if len(images_u8) == 0 or ncols < 1:
        raise ValueError(f"need at least one image and ncols >= 1 (got N={len(images_u8)}, "
                         f"ncols={ncols})")
    n, h, w, c = images_u8.shape
    ncols = min(ncols, n)
    rows = math.ceil(n / ncols)
    grid = np.zeros((rows * h, ncols * w, c), np.uint8)
    for i, img in enumerate(images_u8):
        r, col = divmod(i, ncols)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = img
    return grid


def save_grid_png(images_u8: np.ndarray, path: str, ncols: int = 8) -> str:
    """Save ``image_grid(images_u8, ncols)`` as an RGB PNG at ``path`` (local, or gs:// via
    tf.io.gfile); creates parent folders. Returns ``path``. Raises ValueError as ``image_grid``."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image_grid(images_u8, ncols), mode="RGB").save(buf, format="PNG")
    if "://" in path:
        import tensorflow as tf
        tf.io.gfile.makedirs(os.path.dirname(path))
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(buf.getvalue())
    else:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as f:
            f.write(buf.getvalue())
    return path
