"""Feature keys, image geometry and value ranges: written once, imported everywhere.

Layouts are NHWC. Three value conventions meet in this project:

* on disk and into Inception: uint8 RGB in [0, 255];
* inside the models (generator ``tanh`` output, discriminator input): float32 in [-1, 1];
* the latent: float32 ``[N, LATENT_DIM]`` drawn from N(0, 1).

``to_uint8`` is the single quantiser used for generated images, so generated and real images
reach the FID network the same way (architecture.md, "FID protocol").
"""
from __future__ import annotations

import os

import numpy as np

# --- tf.Example keys written by ImageExampleGen (TensorFlow's usual image conventions) ---
IMAGE_ENCODED_KEY = "image/encoded"        # bytes: the stored image (see ImageExampleGen docs)
IMAGE_FORMAT_KEY = "image/format"          # bytes: "jpeg" or "png"
CLASS_TEXT_KEY = "image/class/text"        # bytes: category folder name, UTF-8
CLASS_LABEL_KEY = "image/class/label"      # int64: index of the category in sorted names
FILENAME_KEY = "image/filename"            # bytes: path relative to the data root, "/"-separated
HEIGHT_KEY = "image/height"                # int64: height of the stored image, pixels
WIDTH_KEY = "image/width"                  # int64: width of the stored image, pixels
SHA256_KEY = "image/key/sha256"            # bytes: hex sha256 of the original file

# --- Transformed features written by Transform ---
IMAGE_KEY = "image"                        # float32 [IMAGE_SIZE, IMAGE_SIZE, 3] in [-1, 1]
LABEL_KEY = "label"                        # int64 category id

IMAGE_SIZE = 64
CHANNELS = 3
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, CHANNELS)
LATENT_DIM = 100

# --- Generator SavedModel signatures (trainer/export.py) ---
SERVING_SIGNATURE = "serving_default"      # {"noise": f32 [N, LATENT_DIM]} -> {"images": f32 [N,64,64,3] in [-1,1]}
GENERATE_SIGNATURE = "generate"            # {"count": i32 [], "seed": i64 []} -> {"images": u8 [N,64,64,3]}
NOISE_INPUT = "noise"
IMAGES_OUTPUT = "images"


# --- Examples artifact layout: TFX keeps each split in its own folder ---
SPLIT_PREFIX = "Split-"


def split_dir(examples_uri: str, split: str) -> str:
    """``<examples_uri>/Split-<split>``: the folder of one split of an Examples artifact.

    Args:
      examples_uri: the artifact's URI, a local path or ``scheme://…`` (gs:// included).
      split: the split name, e.g. "train".
    """
    return os.path.join(examples_uri.rstrip("/") or examples_uri, SPLIT_PREFIX + split)


def split_name(folder_name: str) -> str | None:
    """The split a listed folder name holds (``"Split-train/"`` -> ``"train"``); None for others."""
    folder_name = folder_name.rstrip("/")
    return folder_name[len(SPLIT_PREFIX):] if folder_name.startswith(SPLIT_PREFIX) else None


def tfrecord_compression(paths) -> str:
    """TFRecord compression for ``paths`` from their names: "GZIP" if they end in ``.gz``, else "".

    TFX's convention (tfx_bsl ``detect_compression_type``): ExampleGen and the stock Transform write
    ``*.gz``; our Transform writes uncompressed ``*.tfrecord``.
    Raises:
      ValueError: empty ``paths``, or a mix of gzip and non-gzip names (one reader cannot read both).
    """
    paths = [str(p) for p in paths]
    if not paths:
        raise ValueError("no TFRecord files given")
    gz = {p.endswith(".gz") for p in paths}
    if len(gz) > 1:
        raise ValueError(f"mixed gzip and uncompressed TFRecord files, e.g. {paths[:3]}")
    return "GZIP" if gz.pop() else ""


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Quantise model-range images to stored-image range.

    Args:
      images: float array in [-1, 1] (values outside are clipped), any shape.
    Returns:
      uint8 array of the same shape: ``round((x + 1) * 127.5)`` clipped to [0, 255].
    Raises:
      ValueError: if ``images`` holds NaN or Inf (a broken generator must not be scored as black).
    """
    images = np.asarray(images, dtype=np.float32)
    if not np.all(np.isfinite(images)):
        raise ValueError("images contain NaN or Inf; refusing to quantise them")
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def from_uint8(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1] (``x / 127.5 - 1``), the inverse of :func:`to_uint8`."""
    return np.asarray(images, dtype=np.float32) / 127.5 - 1.0
