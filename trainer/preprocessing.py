"""The Transform ``preprocessing_fn``: stored image bytes → float32 [64, 64, 3] in [-1, 1].

One path for every real image: the Trainer reads its output and the FID evaluator takes its real
images from the same transformed examples, so nothing here may be random or order-dependent.

Per element (``tf.map_fn`` over the batch; inputs have variable sizes):

1. Decode. JPEG: DCT-scaled decoding (``tf.io.decode_jpeg(ratio=k)``, libjpeg's 1/k IDCT), with
   the largest k in {1, 2, 4, 8} whose output still has a short side >= the target size (chosen
   from the stored ``image/height``/``image/width``), ``dct_method="INTEGER_ACCURATE"`` (libjpeg
   ISLOW, the accurate integer IDCT; TF's default is the fast one). PNG: ``decode_png``.
   ImageExampleGen only stores these two formats (both 8-bit RGB semantics; see
   components/image_example_gen/ingest.py).
2. Geometry (``custom_config["aspect"]``, a ``TransformComponentConfig``): ``squash`` (both sides
   to the target, the seed's behaviour, default), ``center_crop`` (central square of the short
   side), or ``pad`` (long side to the target, short side centred on the background colour
   ``custom_config["background"]``, RGB 0-255).
3. Resize: ``tf.image.resize(method="bilinear", antialias=True)``: a triangle (tent) filter whose
   support is widened by the downscale factor, i.e. the same filter as Pillow's
   ``Image.resize(..., Image.BILINEAR)`` (tests compare the two). FID depends on this choice.
4. Quantise to the uint8 grid (round, clip to [0, 255]) and scale ``x / 127.5 - 1``: real images
   then sit exactly on the values ``dcgan_common.features.to_uint8`` maps back to stored uint8 pixels.

Analyzers (full pass over the analysed split, all in tf.Transform's first analysis phase):
per-channel pixel statistics of the transformed images and the category vocabulary
(``tft.vocabulary`` with frequencies), both written as Transform assets. The pixel statistics
are exact: the transformed pixels lie on the uint8 grid, so per-channel sums of the grid values
v and of v² are integers, accumulated in float64 (exact below 2**53) by a weighted
``tft.vocabulary`` over seven keys (``count``, ``sum_r`` ... ``sumsq_b``). They are not a second-phase
analyzer (tft.mean/tft.var formatted into an asset) because that costs a whole extra pass over
the data (measured 3.8 CPU-s of fixed cost). ``read_analyzer_outputs`` returns mean and population
(1/N) std in the units of the transformed images from a ``TFTransformOutput``.
"""
from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf

from dcgan_common import features
from dcgan_common.config import (ASPECT_POLICIES, DEFAULT_BACKGROUND, TransformComponentConfig,
                                 decode_section)

#: The policies by name, bound to the one list the config validates against.
ASPECT_SQUASH, ASPECT_CENTER_CROP, ASPECT_PAD = ASPECT_POLICIES
#: libjpeg's DCT scaling factors that TensorFlow exposes (decode_jpeg ``ratio``).
JPEG_RATIOS = (1, 2, 4, 8)
#: Asset names (``TFTransformOutput.vocabulary_file_by_name``).
CATEGORY_VOCAB_NAME = "category_vocabulary"
IMAGE_STATS_NAME = "image_channel_stats"
#: Keys of the pixel-statistics asset: pixel count, per-channel sums of v and v² (v in 0..255).
STATS_COUNT_KEY = "count"
STATS_SUM_KEYS = ("sum_r", "sum_g", "sum_b")
STATS_SUMSQ_KEYS = ("sumsq_r", "sumsq_g", "sumsq_b")


def jpeg_ratio(height, width, size: int):
    """Largest DCT scaling factor k in {1, 2, 4, 8} with ``ceil(min(h, w) / k) >= size``.

    Works on Python ints and on int64 scalar tensors (returns the same kind). libjpeg's scaled
    output side is ``ceil(side / k)`` (jdmaster.c, jpeg_core_output_dimensions).
    """
    if isinstance(height, int) and isinstance(width, int):
        short = min(height, width)
        return max([k for k in JPEG_RATIOS if -(-short // k) >= size] or [1])
    short = tf.minimum(tf.cast(height, tf.int64), tf.cast(width, tf.int64))
    k = tf.constant(1, tf.int64)
    for r in JPEG_RATIOS[1:]:
        k = tf.where((short + r - 1) // r >= size, tf.constant(r, tf.int64), k)
    return k


def decode_stored_image(encoded, image_format, height, width, size: int = features.IMAGE_SIZE):
    """Decode one stored image.

    Args:
      encoded: scalar tf.string, JPEG or PNG bytes.
      image_format: scalar tf.string, b"jpeg" or b"png".
      height, width: scalar int64, the stored size (selects the JPEG DCT ratio).
      size: target side, pixels.
    Returns:
      uint8 [h', w', 3]; for JPEG h' = ceil(height / k) (k from ``jpeg_ratio``).
    Raises (at run time):
      InvalidArgumentError: bytes that are not a valid image of the stated format.
    """
    def _jpeg():
        k = jpeg_ratio(height, width, size)

        def _decode(r):
            return lambda: tf.io.decode_jpeg(encoded, channels=3, ratio=r, dct_method="INTEGER_ACCURATE")

        # Nested conds, not tf.switch_case: tf.Transform cannot serialise the latter's list of
        # branch functions ("list.func" attribute).
        image = _decode(JPEG_RATIOS[0])
        for r in JPEG_RATIOS[1:]:
            image = (lambda r=r, inner=image: tf.cond(tf.equal(k, r), _decode(r), inner))
        return image()

    def _png():
        return tf.io.decode_png(encoded, channels=3, dtype=tf.uint8)

    image = tf.cond(tf.equal(image_format, b"jpeg"), _jpeg, _png)
    image.set_shape([None, None, 3])
    return image


def resize_image(image, size: int, aspect: str, background=DEFAULT_BACKGROUND):
    """Apply the aspect policy and the antialiased resize.

    Args:
      image: uint8 [h, w, 3].
      size: output side, pixels.
      aspect: one of ``dcgan_common.config.ASPECT_POLICIES``.
      background: RGB 0-255 used by ``pad``.
    Returns:
      float32 [size, size, 3], values on the integer grid 0..255 (rounded and clipped).
    """
    x = tf.cast(image, tf.float32)
    shape = tf.shape(x)
    h, w = shape[0], shape[1]
    if aspect == ASPECT_SQUASH:
        out = tf.image.resize(x, [size, size], method="bilinear", antialias=True)
    elif aspect == ASPECT_CENTER_CROP:
        side = tf.minimum(h, w)
        x = tf.image.crop_to_bounding_box(x, (h - side) // 2, (w - side) // 2, side, side)
        out = tf.image.resize(x, [size, size], method="bilinear", antialias=True)
    elif aspect == ASPECT_PAD:
        long_side = tf.cast(tf.maximum(h, w), tf.float32)
        new_h = tf.maximum(1, tf.cast(tf.round(tf.cast(h, tf.float32) * size / long_side), tf.int32))
        new_w = tf.maximum(1, tf.cast(tf.round(tf.cast(w, tf.float32) * size / long_side), tf.int32))
        x = tf.image.resize(x, tf.stack([new_h, new_w]), method="bilinear", antialias=True)
        bg = tf.constant(background, tf.float32)
        # Pad the difference to the background with zeros, then add the background back.
        out = tf.image.pad_to_bounding_box(x - bg, (size - new_h) // 2, (size - new_w) // 2, size, size) + bg
    else:
        raise ValueError(f"aspect must be one of {ASPECT_POLICIES}, got {aspect!r}")
    out = tf.round(tf.clip_by_value(out, 0.0, 255.0))
    out.set_shape([size, size, 3])
    return out


def images_from_bytes(encoded, image_format, height, width, size: int = features.IMAGE_SIZE,
                      aspect: str = ASPECT_SQUASH, background=DEFAULT_BACKGROUND):
    """Batched: [N] bytes + [N] formats + [N] heights/widths → float32 [N, size, size, 3] in [-1, 1].

    Deterministic (no randomness; map_fn results do not depend on parallelism).
    """
    def _one(args):
        enc, fmt, h, w = args
        return resize_image(decode_stored_image(enc, fmt, h, w, size), size, aspect, background)

    pixels = tf.map_fn(
        _one, (encoded, image_format, tf.cast(height, tf.int64), tf.cast(width, tf.int64)),
        fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))
    return pixels / 127.5 - 1.0


def _flat(t):
    """[N] or [N, 1] dense, or sparse/ragged with one value per row → dense [N]."""
    if isinstance(t, tf.SparseTensor):
        t = tf.sparse.to_dense(t)
    elif isinstance(t, tf.RaggedTensor):
        t = t.to_tensor()
    return tf.reshape(t, [-1])


def preprocessing_fn(inputs: Mapping[str, Any], custom_config: Mapping[str, Any] | None = None):
    """tf.Transform entry point (stock Transform: ``preprocessing_fn="trainer.preprocessing.preprocessing_fn"``).

    Args:
      inputs: batched raw features (keys from dcgan_common/features.py): image/encoded, image/format
        (string), image/height, image/width, image/class/label (int64), image/class/text (string);
        shape [N] or [N, 1].
      custom_config: a ``dcgan_common.config.TransformComponentConfig`` as a JSON object (the
        component's ``transform_config``, decoded; the stock Transform passes its
        ``custom_config`` as is); missing fields and None take the defaults.
    Returns:
      ``{features.IMAGE_KEY: float32 [N, 64, 64, 3] in [-1, 1], features.LABEL_KEY: int64 [N]}``.
    Raises:
      ConfigError (a ValueError): unknown fields or invalid values in custom_config (``decode_section``).
    """
    import tensorflow_transform as tft

    config = decode_section(TransformComponentConfig, dict(custom_config or {}), "transform.")
    images = images_from_bytes(_flat(inputs[features.IMAGE_ENCODED_KEY]), _flat(inputs[features.IMAGE_FORMAT_KEY]),
                               _flat(inputs[features.HEIGHT_KEY]), _flat(inputs[features.WIDTH_KEY]),
                               config.image_size, config.aspect, config.background)
    labels = tf.cast(_flat(inputs[features.CLASS_LABEL_KEY]), tf.int64)

    # Analyzers (all first-phase, see the module docstring).
    _pixel_stats_analyzer(images)
    tft.vocabulary(_escape_line_breaks(_flat(inputs[features.CLASS_TEXT_KEY])),
                   vocab_filename=CATEGORY_VOCAB_NAME, store_frequency=True, name="category_vocabulary")
    return {features.IMAGE_KEY: images, features.LABEL_KEY: labels}


def _escape_line_breaks(text):
    """tft.vocabulary silently drops tokens holding a line break, and a category is any folder
    name: write ``\\`` as ``\\\\``, line feed as ``\\n``, carriage return as ``\\r``
    (``_unescape_line_breaks`` reverses it)."""
    text = tf.strings.regex_replace(text, r"\\", r"\\\\")
    text = tf.strings.regex_replace(text, "\n", r"\\n")
    return tf.strings.regex_replace(text, "\r", r"\\r")


def _unescape_line_breaks(name: str) -> str:
    import re

    return re.sub(r"\\([\\nr])", lambda m: {"\\": "\\", "n": "\n", "r": "\r"}[m.group(1)], name)


def _pixel_stats_analyzer(images):
    """Accumulate exact per-channel pixel statistics of a batch into the stats asset.

    Args:
      images: float32 [N, H, W, 3] in [-1, 1] on the uint8 grid (``v / 127.5 - 1``).
    Per batch: n = N·H·W and, per channel c, sum(v_c) and sum(v_c²) with v = round((x + 1)·127.5)
    in 0..255, as float64 (integers, exact). ``tft.vocabulary`` with these as weights sums them
    over all batches (Python floats, exact below 2**53: ~1.4e8 images of 64x64 for sum(v²)) and
    writes ``"<total> <key>"`` lines.
    """
    import tensorflow_transform as tft

    v = tf.cast(tf.round((tf.reshape(images, [-1, 3]) + 1.0) * 127.5), tf.float64)
    count = tf.cast(tf.shape(v)[0], tf.float64)
    weights = tf.concat([tf.reshape(count, [1]), tf.reduce_sum(v, 0), tf.reduce_sum(v * v, 0)], 0)
    keys = tf.constant((STATS_COUNT_KEY,) + STATS_SUM_KEYS + STATS_SUMSQ_KEYS)
    tft.vocabulary(keys, weights=weights, vocab_filename=IMAGE_STATS_NAME, store_frequency=True,
                   name="image_channel_stats")


def read_analyzer_outputs(tft_output) -> dict[str, Any]:
    """The analyzer results of a Transform run, for the run summary and the trainer.

    Args:
      tft_output: ``tensorflow_transform.TFTransformOutput`` of the TransformGraph artifact.
    Returns:
      ``{"channel_mean": [3 floats], "channel_std": [3 floats]`` (float32 units of the
      transformed images, range [-1, 1]; std is the population std, 1/N; from the exact grid
      sums: mean = S/n/127.5 − 1, var = (Q/n − (S/n)²)/127.5²),
      ``"category_counts": {name: images in the analysed split}``}.
    Raises:
      ValueError: the assets are missing or malformed (a graph from another preprocessing_fn),
        or no pixel was analysed.
    """
    import math

    totals: dict[str, float] = {}
    for line in tft_output.vocabulary_by_name(IMAGE_STATS_NAME):
        line = line.decode("utf-8") if isinstance(line, bytes) else line
        total, _, key = line.partition(" ")
        totals[key] = float(total)
    known = {STATS_COUNT_KEY, *STATS_SUM_KEYS, *STATS_SUMSQ_KEYS}
    if not totals or set(totals) - known:
        raise ValueError(f"{IMAGE_STATS_NAME} holds {sorted(totals)}, expected keys from {sorted(known)}")
    n = totals.get(STATS_COUNT_KEY, 0.0)
    if n <= 0:
        raise ValueError(f"{IMAGE_STATS_NAME}: no pixels were analysed")
    # A key whose total is 0 (e.g. an all-black channel) may be absent: its sum is 0.
    means_v = [totals.get(k, 0.0) / n for k in STATS_SUM_KEYS]
    vars_v = [max(totals.get(q, 0.0) / n - m * m, 0.0) for q, m in zip(STATS_SUMSQ_KEYS, means_v)]
    counts = {}
    for line in tft_output.vocabulary_by_name(CATEGORY_VOCAB_NAME):
        line = line.decode("utf-8") if isinstance(line, bytes) else line
        count, _, name = line.partition(" ")
        counts[_unescape_line_breaks(name)] = int(float(count))
    return {"channel_mean": [m / 127.5 - 1.0 for m in means_v],
            "channel_std": [math.sqrt(v) / 127.5 for v in vars_v],
            "category_counts": dict(sorted(counts.items()))}


def raw_feature_spec() -> dict[str, tf.io.FixedLenFeature]:
    """The raw tf.Example feature spec (matches pipeline/raw_schema.pbtxt): all scalars."""
    return {
        features.IMAGE_ENCODED_KEY: tf.io.FixedLenFeature([], tf.string),
        features.IMAGE_FORMAT_KEY: tf.io.FixedLenFeature([], tf.string),
        features.CLASS_TEXT_KEY: tf.io.FixedLenFeature([], tf.string),
        features.CLASS_LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
        features.FILENAME_KEY: tf.io.FixedLenFeature([], tf.string),
        features.HEIGHT_KEY: tf.io.FixedLenFeature([], tf.int64),
        features.WIDTH_KEY: tf.io.FixedLenFeature([], tf.int64),
        features.SHA256_KEY: tf.io.FixedLenFeature([], tf.string),
    }
