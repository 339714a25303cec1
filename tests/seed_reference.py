"""The seed's training step, reimplemented as the baseline for speed and equivalence checks.

The seed (keras-io style ``train_step``) runs the generator forward twice per step: once to make
fakes for the discriminator update and once more, on a fresh latent batch, for the generator update.
``trainer.model.DCGAN.train_step`` runs it once; with the same latent batch for both halves the two
steps must agree to float rounding (tests/test_model.py, benchmarks/train_step.py).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from trainer.model import bce_with_logits, real_targets


def seed_train_step(generator: keras.Model, discriminator: keras.Model,
                    d_optimizer: keras.optimizers.Optimizer, g_optimizer: keras.optimizers.Optimizer,
                    real: tf.Tensor, noise_d: tf.Tensor, noise_g: tf.Tensor,
                    label_smoothing: str = "uniform", uniform: tf.Tensor | None = None
                    ) -> dict[str, tf.Tensor]:
    """One seed-style step on a single device; updates the networks and optimizers in place.

    Args:
      generator, discriminator: from ``trainer.model`` (the discriminator returns logits).
      d_optimizer, g_optimizer: built or unbuilt keras optimizers.
      real: float32 [B, 64, 64, 3] in [-1, 1].
      noise_d, noise_g: float32 [B, latent]; the seed draws them independently, pass the same
        tensor twice to compare with the one-forward step.
      label_smoothing, uniform: as ``trainer.model.real_targets`` (uniform: float32 [B, 1] U(0,1)).
    Returns:
      {"d_loss", "g_loss"}: float32 scalars (means over the batch).
    """
    batch = tf.shape(real)[0]
    targets = tf.concat([tf.zeros([batch, 1]), real_targets(batch, label_smoothing, uniform)], 0)
    fakes = generator(noise_d, training=True)                      # generator forward no. 1
    with tf.GradientTape() as tape:
        logits = discriminator(tf.concat([fakes, real], axis=0), training=True)
        d_loss = tf.reduce_mean(bce_with_logits(targets, logits))
    d_vars = discriminator.trainable_variables
    d_optimizer.apply(tape.gradient(d_loss, d_vars), d_vars)
    with tf.GradientTape() as tape:
        # Forward no. 2; fakes scored inside a fakes+reals batch, as trainer.model does (its BatchNorm note).
        logits = discriminator(tf.concat([generator(noise_g, training=True), real], axis=0),
                               training=True)[:batch]
        g_loss = tf.reduce_mean(bce_with_logits(tf.ones([batch, 1]), logits))
    g_vars = generator.trainable_variables
    g_optimizer.apply(tape.gradient(g_loss, g_vars), g_vars)
    return {"d_loss": d_loss, "g_loss": g_loss}
