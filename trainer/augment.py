"""DiffAugment: differentiable augmentations applied to every image the discriminator sees.

Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training" (NeurIPS), section 3:
with little data the discriminator memorises the training set; augmenting *both* real and generated
images, in *both* the D and the G step, with transforms that gradients flow through keeps D from
overfitting without leaking the augmentations into G's output (augmenting only reals does leak them).
Their policy ``color,translation,cutout`` is the one for small image sets; its constants are theirs:

* ``color``: per image, brightness + (u - 0.5), saturation x 2u about the pixel's channel mean,
  contrast x (u + 0.5) about the image mean (u ~ U(0, 1) each).
* ``translation``: per image, an integer shift of up to 1/8 of the side in y and x, zeros shifted in.
* ``cutout``: per image, one zeroed square of half the side at a random centre (clipped at borders).

Images are float32 NHWC in [-1, 1] (dcgan_common/features.py); outputs are float32 of the same shape,
*not* clipped (as in the paper: the discriminator sees the augmented values as they are).

Randomness is stateless, keyed on an int32/int64 [2] seed the caller derives from (run seed, step):
the augmentation has no state of its own, so a resumed run replays exactly the draws of an
uninterrupted one (the step counter lives in the checkpointed optimizer).
"""
from __future__ import annotations

import tensorflow as tf

from dcgan_common.config import DIFFAUGMENT_POLICIES as POLICIES  # noqa: F401  (one list)
from dcgan_common.config import parse_diffaugment as parse_policy  # noqa: F401  (one parser)

TRANSLATION_RATIO = 0.125   # Zhao et al. 2020: shift up to 1/8 of the image side
CUTOUT_RATIO = 0.5          # Zhao et al. 2020: square of half the image side


def diff_augment(images: tf.Tensor, policy: tuple[str, ...], seed: tf.Tensor) -> tf.Tensor:
    """Apply the policy's transforms in order (the paper's order: color, translation, cutout).

    Args:
      images: float32 [N, H, W, C] in [-1, 1].
      policy: names from ``POLICIES`` (``parse_policy``); () returns ``images`` unchanged.
      seed: int32/int64 [2] stateless seed; equal seeds give equal draws.
    Returns:
      float32 [N, H, W, C]; differentiable with respect to ``images``.
    """
    if not policy:
        return images
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=len(POLICIES))
    x = tf.cast(images, tf.float32)
    for name in policy:
        s = seeds[POLICIES.index(name)]
        x = {"color": _color, "translation": _translation, "cutout": _cutout}[name](x, s)
    return x


def _uniform(shape, seed, minval=0.0, maxval=1.0, dtype=tf.float32):
    return tf.random.stateless_uniform(shape, seed=seed, minval=minval, maxval=maxval, dtype=dtype)


def _color(x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    n = tf.shape(x)[0]
    s = tf.random.experimental.stateless_split(seed, num=3)
    x = x + (_uniform([n, 1, 1, 1], s[0]) - 0.5)
    mean_c = tf.reduce_mean(x, axis=3, keepdims=True)
    x = (x - mean_c) * (_uniform([n, 1, 1, 1], s[1]) * 2.0) + mean_c
    mean_all = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean_all) * (_uniform([n, 1, 1, 1], s[2]) + 0.5) + mean_all


def _translation(x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    n, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    s = tf.random.experimental.stateless_split(seed, num=2)
    max_dy = tf.cast(tf.cast(h, tf.float32) * TRANSLATION_RATIO + 0.5, tf.int32)
    max_dx = tf.cast(tf.cast(w, tf.float32) * TRANSLATION_RATIO + 0.5, tf.int32)
    dy = _uniform([n, 1], s[0], -max_dy, max_dy + 1, tf.int32)
    dx = _uniform([n, 1], s[1], -max_dx, max_dx + 1, tf.int32)
    # One zero pixel around the image; indices that leave it clamp onto that border, so every
    # pixel shifted in is 0 and the gather stays differentiable in x.
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    rows = tf.clip_by_value(tf.range(h)[None, :] - dy + 1, 0, h + 1)        # [N, H]
    cols = tf.clip_by_value(tf.range(w)[None, :] - dx + 1, 0, w + 1)        # [N, W]
    x = tf.gather(padded, rows, axis=1, batch_dims=1)                        # [N, H, W+2, C]
    return tf.gather(x, cols, axis=2, batch_dims=1)                          # [N, H, W, C]


def _cutout(x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    n, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    s = tf.random.experimental.stateless_split(seed, num=2)
    size_h = tf.cast(tf.cast(h, tf.float32) * CUTOUT_RATIO + 0.5, tf.int32)
    size_w = tf.cast(tf.cast(w, tf.float32) * CUTOUT_RATIO + 0.5, tf.int32)
    # Centres anywhere in the image (the square may hang over the border and is clipped there).
    cy = _uniform([n, 1, 1], s[0], 0, h + (1 - size_h % 2), tf.int32)
    cx = _uniform([n, 1, 1], s[1], 0, w + (1 - size_w % 2), tf.int32)
    ys = tf.range(h)[None, :, None]
    xs = tf.range(w)[None, None, :]
    inside = ((ys >= cy - size_h // 2) & (ys < cy - size_h // 2 + size_h)
              & (xs >= cx - size_w // 2) & (xs < cx - size_w // 2 + size_w))
    return x * tf.cast(~inside, x.dtype)[..., None]
