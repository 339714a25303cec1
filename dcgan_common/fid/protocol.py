"""The pinned FID input protocol: how uint8 images become Inception inputs.

One named bundle (clean-fid calls it a "mode"): FID numbers only compare when real and generated
images take the same path. The name is recorded in every result and in the real-statistics cache key.

Steps (``tests/testdata/fid-reference/README.md``; the TTUR/pytorch-fid/NVIDIA convention):

1. uint8 RGB NHWC in [0, 255] -> float32 in [0, 255];
2. TF1 legacy bilinear resize to 299x299: the ``ResizeBilinear`` kernel with
   ``align_corners=False, half_pixel_centers=False`` (what ``tf.compat.v1.image.resize_bilinear``
   calls; run here as ``tf.raw_ops.ResizeBilinear``, the same kernel without that wrapper's
   deprecation warning); images already 299x299 are passed through unchanged;
3. ``(x - 128) / 128`` -> float32 in [-1, 0.9921875];
4. Inception 2015-12-05 ``pool_3`` -> float32 [N, 2048] (``inception.py``).

Generated images are quantised with ``dcgan_common.features.to_uint8`` before step 1, exactly like
stored images.
"""
from __future__ import annotations

import numpy as np

#: Recorded in every FID result and cache key.
PROTOCOL_NAME = "tf1-bilinear-299/inception-2015-12-05/pool3"
INCEPTION_SIZE = 299
#: Scaling of step 3: (x - 128) / 128 (the TTUR FID graph's input normalisation).
INPUT_SHIFT = 128.0
INPUT_SCALE = 128.0


def check_uint8_nhwc(images: np.ndarray, name: str = "images") -> np.ndarray:
    """Validate an image batch at a module edge.

    Args:
      images: array-like, uint8 [N, H, W, 3], N >= 0, H, W >= 1.
      name: used in error messages.
    Returns:
      the same data as a numpy uint8 array.
    Raises:
      ValueError: wrong rank, channel count or dtype (floats are refused: quantise them first with
        ``dcgan_common.features.to_uint8`` so that no silent rescaling happens here).
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 in [0, 255], got dtype {images.dtype}; "
                         "quantise model output with dcgan_common.features.to_uint8 first")
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] < 1 or images.shape[2] < 1:
        raise ValueError(f"{name} must be NHWC [N, H, W, 3], got shape {images.shape}")
    return images


def preprocess(images):
    """Steps 1-3 of the protocol as TensorFlow ops (call inside a tf.function).

    Args:
      images: tf uint8 tensor [N, H, W, 3] in [0, 255] (H, W static or dynamic).
    Returns:
      tf float32 tensor [N, 299, 299, 3] in [-1, 0.9921875].
    """
    import tensorflow as tf  # lazy: metrics and CLI parsing must not pay for TF

    x = tf.cast(images, tf.float32)
    height, width = images.shape[1], images.shape[2]
    if not (height == INCEPTION_SIZE and width == INCEPTION_SIZE):
        # The legacy (TF1) kernel: align_corners=False, half_pixel_centers=False. TF2's
        # tf.image.resize uses half-pixel centres and gives different features. The raw op is the
        # kernel tf.compat.v1.image.resize_bilinear dispatches to, minus its deprecation wrapper.
        x = tf.raw_ops.ResizeBilinear(images=x, size=[INCEPTION_SIZE, INCEPTION_SIZE],
                                      align_corners=False, half_pixel_centers=False)
    return (x - INPUT_SHIFT) / INPUT_SCALE
