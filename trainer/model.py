"""The seed's DCGAN: generator, discriminator and a ``keras.Model`` whose ``train_step`` trains both.

Layouts are NHWC; images inside the models are float32 in [-1, 1] (``dcgan_common/features.py``).

Architecture (reverse-engineered from the seed's parameter counts, checked with ``count_params()``):

* generator, 6,065,603 parameters: Dense(8*8*512) -> LeakyReLU(0.2) -> Reshape(8, 8, 512) ->
  3 x [Conv2DTranspose(k=4, s=2, same) -> LeakyReLU(0.2)] with 256/128/64 filters ->
  Conv2D(3, 4, same, tanh). Output [N, 64, 64, 3] in [-1, 1].
* discriminator, 243,329 parameters: 2 x [Conv2D(k=5, s=2, same) -> BatchNorm -> LeakyReLU(0.2)]
  with 64/128 filters -> Flatten -> Dense(1). It returns a **logit**, not a probability: the loss
  uses ``from_logits`` BCE, which is numerically stabler than sigmoid + BCE and has the same count.

Options the seed's text describes but its code leaves out: BatchNorm after the Dense and each
Conv2DTranspose of the generator (``batchnorm=True``) and one more Conv2D -> BN -> LeakyReLU block in
the discriminator (``extra_block=True``).

Training recipe (the seed's): non-saturating BCE (G minimises -log D(G(z))), one-sided label
smoothing of the real targets, Adam with D 1e-4 / G 3e-4 and beta_1 0.5 (set in ``trainer/train.py``).
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

from dcgan_common import features
# One list of each choice, checked by the config (early, named fields) and by the builders here.
from dcgan_common.config import (DISCRIMINATOR_NORMS, LOSSES, PRECISIONS, WEIGHT_INITS)
from dcgan_common.config import LABEL_SMOOTHING_MODES as SMOOTHING_MODES
from trainer import augment as augment_lib

LEAK = 0.2                      # LeakyReLU slope of the seed (and of Radford et al. 2015, DCGAN)
GEN_BASE = (8, 8, 512)          # the generator's first feature map: 64 = 8 * 2**3
GEN_FILTERS = (256, 128, 64)    # Conv2DTranspose widths, each doubles the spatial size
DISC_FILTERS = (64, 128)        # discriminator Conv2D widths, each halves the spatial size
EXTRA_DISC_FILTERS = 256        # width of the optional third discriminator block
UNIFORM_SMOOTHING_SPAN = 0.05   # real targets 1 + 0.05 * U(0, 1): the seed's text
CONSTANT_REAL_TARGET = 0.9      # the classic one-sided smoothing (Salimans et al. 2016)


def build_generator(latent_dim: int = features.LATENT_DIM, batchnorm: bool = False,
                    sync_batchnorm: bool = False, precision: str = "float32",
                    weight_init: str = "glorot") -> keras.Model:
    """The seed's generator.

    Args:
      latent_dim: size of the latent vector (the seed uses 100; its mode-collapse study 10 and 128).
      batchnorm: add BatchNormalization after the Dense and after each Conv2DTranspose (an option
        from the seed's text, off in its code). Adds 4 * (2 * C) trainable and as many moving
        parameters (C = the layer's channels).
      sync_batchnorm: synchronise BN batch statistics across replicas (use under a multi-replica
        strategy so that N devices compute what one device would; changes no parameters).
      precision: "float32" or "mixed_bfloat16" (bfloat16 compute, float32 weights; fast on CPUs
        with AMX/AVX512-BF16). The output layer always computes in float32.
      weight_init: "glorot" (Keras's default, the seed's) or "dcgan" (kernels ~ N(0, 0.02),
        Radford et al. 2015, section 4); see ``kernel_initializer``.
    Returns:
      ``keras.Model`` named "generator": float32 [N, latent_dim] -> float32 [N, 64, 64, 3] in
      [-1, 1] (tanh). 6,065,603 parameters with the defaults.
    Raises:
      ValueError: if ``latent_dim`` < 1 or ``precision`` is unknown.
    """
    if latent_dim < 1:
        raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
    dt = _policy(precision)
    init = kernel_initializer(weight_init)
    layers = keras.layers
    noise = keras.Input(shape=(latent_dim,), name=features.NOISE_INPUT)
    x = layers.Dense(GEN_BASE[0] * GEN_BASE[1] * GEN_BASE[2], name="project", dtype=dt,
                     kernel_initializer=init())(noise)
    if batchnorm:
        x = layers.BatchNormalization(synchronized=sync_batchnorm, name="project_bn", dtype=dt)(x)
    x = layers.LeakyReLU(negative_slope=LEAK, dtype=dt)(x)
    x = layers.Reshape(GEN_BASE, dtype=dt)(x)
    for i, filters in enumerate(GEN_FILTERS):
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", name=f"up{i}",
                                   dtype=dt, kernel_initializer=init())(x)
        if batchnorm:
            x = layers.BatchNormalization(synchronized=sync_batchnorm, name=f"up{i}_bn",
                                          dtype=dt)(x)
        x = layers.LeakyReLU(negative_slope=LEAK, dtype=dt)(x)
    # float32 output: the tanh range and the images other parts see do not depend on precision.
    images = layers.Conv2D(features.CHANNELS, 4, padding="same", activation="tanh",
                           name="to_rgb", dtype="float32", kernel_initializer=init())(x)
    return keras.Model(noise, images, name="generator")


def build_discriminator(extra_block: bool = False, dropout: float = 0.0,
                        sync_batchnorm: bool = False, precision: str = "float32",
                        norm: str = "batchnorm", spectral_norm: bool = False,
                        weight_init: str = "glorot") -> keras.Model:
    """The seed's discriminator, with the normalisation choices of the recipes.

    Args:
      extra_block: append one more Conv2D(256, 5, s2) -> norm -> LeakyReLU block (seed's text option).
      dropout: rate of a Dropout after Flatten (no parameters; 0 = none, the default). Dropout
        masks are drawn per replica, so a multi-device step only equals a one-device step with 0.
      sync_batchnorm: synchronise BN batch statistics across replicas (see ``build_generator``).
      precision: "float32" or "mixed_bfloat16" (see ``build_generator``); the logit is float32.
      norm: "batchnorm" (the seed's) or "none". WGAN-GP needs "none": its penalty is per example,
        and batch statistics couple the examples (Gulrajani et al. 2017, section 4).
      spectral_norm: wrap every Conv2D and the Dense in ``keras.layers.SpectralNormalization``
        (Miyato et al. 2018; one power iteration per training call, as in the paper). Keras's layer
        divides the kernel by its largest singular value in place on each training call (a
        projection), rather than differentiating through the division as the paper does.
      weight_init: "glorot" or "dcgan" (``kernel_initializer``).
    Returns:
      ``keras.Model`` named "discriminator": float32 [N, 64, 64, 3] in [-1, 1] -> float32 [N, 1]
      logits (apply a sigmoid for D(x) in (0, 1)). 243,329 parameters with the defaults; spectral
      normalisation adds one non-trainable vector per wrapped layer.
    Raises:
      ValueError: if ``dropout`` is outside [0, 1), or ``precision``, ``norm`` or ``weight_init``
        is unknown.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if norm not in DISCRIMINATOR_NORMS:
        raise ValueError(f"norm must be one of {DISCRIMINATOR_NORMS}, got {norm!r}")
    dt = _policy(precision)
    init = kernel_initializer(weight_init)
    layers = keras.layers

    def sn(layer):
        return layers.SpectralNormalization(layer, name=f"{layer.name}_sn", dtype=dt) \
            if spectral_norm else layer

    images = keras.Input(shape=features.IMAGE_SHAPE, name=features.IMAGE_KEY)
    x = images
    widths = DISC_FILTERS + ((EXTRA_DISC_FILTERS,) if extra_block else ())
    for i, filters in enumerate(widths):
        x = sn(layers.Conv2D(filters, 5, strides=2, padding="same", name=f"down{i}", dtype=dt,
                             kernel_initializer=init()))(x)
        if norm == "batchnorm":
            x = layers.BatchNormalization(synchronized=sync_batchnorm, name=f"down{i}_bn",
                                          dtype=dt)(x)
        x = layers.LeakyReLU(negative_slope=LEAK, dtype=dt)(x)
    x = layers.Flatten(dtype=dt)(x)
    if dropout > 0:
        x = layers.Dropout(dropout, dtype=dt)(x)
    logits = sn(layers.Dense(1, name="logit", dtype="float32", kernel_initializer=init()))(x)
    return keras.Model(images, logits, name="discriminator")


DCGAN_INIT_STDDEV = 0.02        # Radford et al. 2015, section 4: all weights from N(0, 0.02)


def kernel_initializer(name: str):
    """A factory of fresh kernel initialisers for one network.

    "glorot": Keras's default ``glorot_uniform`` (what the seed's layers get); "dcgan":
    ``RandomNormal(0, 0.02)`` (Radford et al. 2015). Draws follow the global Keras seed.
    Raises ValueError on another name.
    """
    if name == "glorot":
        return lambda: "glorot_uniform"
    if name == "dcgan":
        return lambda: keras.initializers.RandomNormal(0.0, DCGAN_INIT_STDDEV)
    raise ValueError(f"weight_init must be one of {WEIGHT_INITS}, got {name!r}")


def _policy(precision: str) -> str:
    """Validate a precision name and return it as a Keras dtype-policy name."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def real_targets(batch: int, mode: str, uniform: tf.Tensor | None = None) -> tf.Tensor:
    """Targets for real images under one-sided label smoothing (fake targets stay 0).

    Args:
      batch: number of targets N.
      mode: "uniform" -> 1 + 0.05 * u (the seed's text), "constant" -> 0.9 (Salimans et al. 2016,
        "Improved techniques for training GANs"), "none" -> 1.
      uniform: float32 [N, 1] draws of U(0, 1), needed for "uniform".
    Returns:
      float32 [N, 1].
    Raises:
      ValueError: unknown mode, or "uniform" without draws.
    """
    if mode == "uniform":
        if uniform is None:
            raise ValueError("uniform label smoothing needs U(0, 1) draws")
        return 1.0 + UNIFORM_SMOOTHING_SPAN * uniform
    if mode == "constant":
        return tf.fill([batch, 1], CONSTANT_REAL_TARGET)
    if mode == "none":
        return tf.ones([batch, 1])
    raise ValueError(f"label smoothing must be one of {SMOOTHING_MODES}, got {mode!r}")


#: Keras's ``epsilon()``: its BinaryCrossentropy clips probabilities to [eps, 1 - eps].
KERAS_EPSILON = 1e-7


def bce_with_logits(targets: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-example binary cross-entropy, float32 [N] from targets and logits of shape [N, 1].

    Computes what the seed's ``sigmoid`` output + ``keras.losses.BinaryCrossentropy`` computes:
    ``-(t log p + (1 - t) log(1 - p))`` with p = sigmoid(x) clipped to [1e-7, 1 - 1e-7], in log
    space for stability. The clip matters: "uniform" smoothing gives real targets t > 1, and then
    the unclipped loss ``(t - 1) log(1 - p)`` is unbounded below — the discriminator can lower it
    forever by pushing real logits to +inf (seen here: d_loss -5 after 3 epochs, generator stalled).
    With the clip the loss is bounded (>= -0.05 * log(1e7) ≈ -0.81) exactly as in the seed.
    """
    logits = tf.cast(logits, tf.float32)
    lo, hi = math.log(KERAS_EPSILON), math.log1p(-KERAS_EPSILON)
    log_p = tf.clip_by_value(tf.math.log_sigmoid(logits), lo, hi)
    log_not_p = tf.clip_by_value(tf.math.log_sigmoid(-logits), lo, hi)
    return tf.reshape(-(targets * log_p + (1.0 - targets) * log_not_p), [-1])


def _replica_info() -> tuple[tf.Tensor | int, int]:
    """(replica id, number of replicas) in the current replica context (0, 1 without a strategy)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:  # cross-replica context: the caller must use strategy.run
        raise RuntimeError("DCGAN.train_step must run in a replica context (strategy.run)")
    return ctx.replica_id_in_sync_group, ctx.num_replicas_in_sync


def _local_slice(global_values: tf.Tensor, local_batch: tf.Tensor, replica_id) -> tf.Tensor:
    """This replica's rows of a tensor drawn for the global batch (replicas hold equal shares)."""
    start = tf.cast(replica_id, tf.int32) * local_batch
    return global_values[start:start + local_batch]


EXTRA_SEED_STREAM = 1   # fold-in constant separating extra_seeds from step_seeds (any value)


def discriminator_loss_sum(loss: str, real_logits: tf.Tensor, fake_logits: tf.Tensor,
                           real_targets_: tf.Tensor | None = None) -> tf.Tensor:
    """Sum over this replica's examples of the discriminator loss (divide by the global batch).

    Args:
      loss: "bce": BCE(real targets, D(x)) + BCE(0, D(G(z))), halved because it averages over the
        2B examples (the seed's concatenated batch); "hinge": relu(1 - D(x)) + relu(1 + D(G(z)))
        (Lim & Ye 2017; Miyato et al. 2018, eq. 17); "wgan_gp": D(G(z)) - D(x), the critic's
        Wasserstein estimate (Arjovsky et al. 2017) without its penalty (``gradient_penalty_sum``).
      real_logits, fake_logits: float [b, 1] logits (critic values for wgan_gp).
      real_targets_: float32 [b, 1] BCE targets for reals (``real_targets``); "bce" only.
    Returns:
      float32 scalar.
    Raises:
      ValueError: unknown loss, or "bce" without targets.
    """
    real = tf.cast(real_logits, tf.float32)
    fake = tf.cast(fake_logits, tf.float32)
    if loss == "bce":
        if real_targets_ is None:
            raise ValueError("the bce loss needs real targets")
        return 0.5 * (tf.reduce_sum(bce_with_logits(real_targets_, real))
                      + tf.reduce_sum(bce_with_logits(tf.zeros_like(fake), fake)))
    if loss == "hinge":
        return tf.reduce_sum(tf.nn.relu(1.0 - real)) + tf.reduce_sum(tf.nn.relu(1.0 + fake))
    if loss == "wgan_gp":
        return tf.reduce_sum(fake) - tf.reduce_sum(real)
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


def generator_loss_sum(loss: str, fake_logits: tf.Tensor) -> tf.Tensor:
    """Sum over this replica's examples of the generator loss: "bce" the non-saturating
    -log D(G(z)) (Goodfellow et al. 2014, section 3); "hinge" and "wgan_gp" -D(G(z)).
    ``fake_logits``: float [b, 1]. Returns float32 scalar; ValueError on an unknown loss."""
    fake = tf.cast(fake_logits, tf.float32)
    if loss == "bce":
        return tf.reduce_sum(bce_with_logits(tf.ones_like(fake), fake))
    if loss in ("hinge", "wgan_gp"):
        return -tf.reduce_sum(fake)
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


def gradient_penalty_sum(critic: keras.Model, real: tf.Tensor, fake: tf.Tensor,
                         seed: tf.Tensor) -> tf.Tensor:
    """WGAN-GP's penalty summed over examples: (|grad_x D(x_hat)|_2 - 1)^2 at x_hat = e x + (1-e) G(z),
    e ~ U(0, 1) per example (Gulrajani et al. 2017, algorithm 1; weight lambda applied by the caller).

    Args:
      critic: D without batch-coupling layers. real, fake: float32 [b, 64, 64, 3].
      seed: int [2] stateless seed for e.
    Returns:
      float32 scalar; differentiable with respect to the critic's weights (double back-prop).
    """
    b = tf.shape(real)[0]
    eps = tf.random.stateless_uniform([b, 1, 1, 1], seed=seed)
    x_hat = eps * tf.cast(real, tf.float32) + (1.0 - eps) * tf.cast(fake, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        score = tf.reduce_sum(tf.cast(critic(x_hat, training=True), tf.float32))
    grads = tape.gradient(score, x_hat)
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + 1e-12)
    return tf.reduce_sum(tf.square(norms - 1.0))


class DCGAN(keras.Model):
    """Generator + discriminator trained together by one ``train_step`` (keras 3, TF backend).

    ``train_step(data)`` takes ``images`` (float32 [b, 64, 64, 3] in [-1, 1], this replica's share
    of the global batch B) or ``(images, noise)`` with noise float32 [b, latent_dim]. Without noise it
    draws the *global* batch's noise from a stateless RNG keyed on (seed, step) and keeps this
    replica's rows, so the noise (and the U(0,1) label-smoothing, augmentation and penalty draws)
    do not depend on how many replicas share the batch, and a resumed run replays the same draws.
    The step is D's update counter (``d_optimizer.iterations``): one per batch.

    One step with the seed's settings (generator forward run once; the seed's step ran it twice):

    1. fakes = G(z); D sees concat(fakes, reals) in one batch (as the seed: BatchNorm statistics
       over both halves); d_loss = mean BCE over the 2B examples; update D.
    2. The *same* fakes go through the *updated* D; g_loss = mean BCE(1, D(G(z))) (non-saturating);
       update G, back-propagating through the recorded generator forward (persistent tape).

    With equal noise this equals the seed's step (which drew a fresh z for step 2) to float
    rounding; reusing z for step 2 is the only change in the recipe.

    Recipe switches (``trainer/train.py`` maps ``TrainConfig`` onto them):

    * ``loss``: "bce" (with ``label_smoothing``), "hinge" or "wgan_gp" (penalty weight
      ``gp_weight``); see ``discriminator_loss_sum``.
    * ``separate_passes``: D sees reals and fakes in two calls (own BatchNorm statistics each)
      instead of one concatenated batch; required by nothing, offered for BN discriminators.
    * ``augment``: DiffAugment policy (``trainer/augment.py``) applied to reals and fakes alike in
      both the D and the G step (fresh draws in each).
    * ``train_step(data, update_generator=False)`` updates D only: ``n_critic`` D steps per G step
      are the caller's loop (no control flow in the replica function, so every strategy runs it).

    Losses are per-example sums divided by the *global* batch, so the sum of replica
    gradients that MirroredStrategy applies is the gradient of the global mean. Logged losses are
    the mean over replicas (Mean trackers with on-read SUM variables).
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model,
                 latent_dim: int = features.LATENT_DIM, label_smoothing: str = "uniform",
                 seed: int = 0, loss: str = "bce", gp_weight: float = 10.0,
                 separate_passes: bool = False, augment: tuple[str, ...] = (), **kwargs):
        """Args: the two networks, the latent size, the smoothing mode (``real_targets``), the
        integer seed of the stateless draws and the recipe switches above. Raises ValueError on an
        unknown smoothing mode or loss."""
        super().__init__(**kwargs)
        if label_smoothing not in SMOOTHING_MODES:
            raise ValueError(f"label_smoothing must be one of {SMOOTHING_MODES}, "
                             f"got {label_smoothing!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.label_smoothing = label_smoothing
        self.seed = int(seed)
        self.loss_name = loss
        self.gp_weight = float(gp_weight)
        self.separate_passes = bool(separate_passes)
        self.augment = tuple(augment)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")   # mean D(x), sigmoid of logit
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")   # mean D(G(z)) before D's update

    def compile(self, d_optimizer: keras.optimizers.Optimizer,
                g_optimizer: keras.optimizers.Optimizer, **kwargs):
        """Attach the two optimizers (the seed: Adam(1e-4, 0.5) for D, Adam(3e-4, 0.5) for G)."""
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer

    def build_optimizers(self) -> None:
        """Create both optimizers' slot variables now (needed before restoring a checkpoint)."""
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    @property
    def metrics(self):
        """The four Mean trackers: d_loss, g_loss, d_real (mean D(x)), d_fake (mean D(G(z)))."""
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker]

    def call(self, noise, training=False):
        """G(noise): float32 [N, latent_dim] -> float32 [N, 64, 64, 3] in [-1, 1]."""
        return self.generator(noise, training=training)

    def step_seeds(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Two stateless-RNG seeds (noise, label draws), int64 [2] each, from (seed, step)."""
        pair = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        both = tf.random.experimental.stateless_split(pair, num=2)
        return both[0], both[1]

    def extra_seeds(self, step: tf.Tensor) -> tf.Tensor:
        """Five more seeds, int64 [5, 2], from (seed, step) on a stream apart from
        ``step_seeds``'s (so the seed recipe's draws stay what they were): augmentation of fakes
        and reals in the D step, the penalty's mixing weights, augmentation in the G step."""
        pair = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        return tf.random.experimental.stateless_split(
            tf.random.experimental.stateless_fold_in(pair, EXTRA_SEED_STREAM), num=5)

    def _discriminate(self, fakes, real, training=True):
        """(fake logits [b, 1], real logits [b, 1]) from one concatenated or two separate D calls."""
        b = tf.shape(fakes)[0]
        if self.separate_passes:
            return (self.discriminator(fakes, training=training),
                    self.discriminator(real, training=training))
        logits = self.discriminator(tf.concat([fakes, real], axis=0), training=training)
        return logits[:b], logits[b:]

    def _augment(self, x, seed, replica_id, global_b):
        """DiffAugment of this replica's rows ``x`` [b, ...] with its rows of the global batch's
        draws, so the images do not depend on how many replicas share the batch."""
        if not self.augment:
            return x
        if _replica_info()[1] == 1:
            return augment_lib.diff_augment(x, self.augment, seed)
        local_b = tf.shape(x)[0]
        # Augment a global-size stand-in holding this replica's rows at their place.
        full = tf.tile(tf.zeros_like(x[:1]), [global_b, 1, 1, 1])
        start = tf.cast(replica_id, tf.int32) * local_b
        full = tf.tensor_scatter_nd_update(full, tf.range(start, start + local_b)[:, None], x)
        return _local_slice(augment_lib.diff_augment(full, self.augment, seed), local_b,
                            replica_id)

    def train_step(self, data, update_generator: bool = True):
        """One D update and (with ``update_generator``) one G update; returns the trackers'
        values (dict of scalar tensors).

        Also returns ``finite``: float32 scalar, 1.0 when both losses and every generated pixel are
        finite, 0.0 otherwise (a float so Keras can average it over replicas).
        """
        if isinstance(data, (tuple, list)):
            real, noise = data[0], (data[1] if len(data) > 1 else None)
        else:
            real, noise = data, None
        real = tf.convert_to_tensor(real, tf.float32)
        replica_id, n_replicas = _replica_info()
        local_b = tf.shape(real)[0]
        global_b = local_b * n_replicas
        step = self.d_optimizer.iterations
        noise_seed, label_seed = self.step_seeds(step)
        seeds = self.extra_seeds(step)
        if noise is None:
            noise = _local_slice(
                tf.random.stateless_normal([global_b, self.latent_dim], seed=noise_seed),
                local_b, replica_id)
        targets_real = None
        if self.loss_name == "bce":
            uniform = None
            if self.label_smoothing == "uniform":
                uniform = _local_slice(tf.random.stateless_uniform([global_b, 1], seed=label_seed),
                                       local_b, replica_id)
            targets_real = real_targets(local_b, self.label_smoothing, uniform)
        global_f = tf.cast(global_b, tf.float32)

        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables
        with tf.GradientTape(persistent=True) as tape:
            fakes = self.generator(noise, training=True)
            d_fakes = self._augment(fakes, seeds[0], replica_id, global_b)
            d_real = self._augment(real, seeds[1], replica_id, global_b)
            fake_logits, real_logits = self._discriminate(d_fakes, d_real)
            d_loss = discriminator_loss_sum(self.loss_name, real_logits, fake_logits,
                                            targets_real) / global_f
            if self.loss_name == "wgan_gp":
                gp = gradient_penalty_sum(self.discriminator, d_real, d_fakes,
                                          _local_seed(seeds[2], replica_id))
                d_loss += self.gp_weight * gp / global_f
            with tape.stop_recording():
                self.d_optimizer.apply(tape.gradient(d_loss, d_vars), d_vars)
            if update_generator:
                g_fakes = self._augment(fakes, seeds[3], replica_id, global_b)
                if self.separate_passes:
                    g_logits = self.discriminator(g_fakes, training=True)
                else:
                    # The fakes go through D inside the same fakes+reals batch as in the D update:
                    # with BatchNorm in D, a fakes-only batch gets its own statistics, which make
                    # fakes look real to D (seen here: g_loss 0.0000 from epoch 1, no G gradient).
                    g_real = self._augment(real, seeds[4], replica_id, global_b)
                    g_logits, _ = self._discriminate(g_fakes, g_real)
                g_loss = generator_loss_sum(self.loss_name, g_logits) / global_f
        if update_generator:
            self.g_optimizer.apply(tape.gradient(g_loss, g_vars), g_vars)
        del tape

        # Per-replica means for logging; the trackers average them over replicas.
        scale = tf.cast(n_replicas, tf.float32)
        self.d_loss_tracker.update_state(d_loss * scale)
        finite = [tf.math.is_finite(d_loss), tf.reduce_all(tf.math.is_finite(fakes))]
        if update_generator:
            self.g_loss_tracker.update_state(g_loss * scale)
            finite.append(tf.math.is_finite(g_loss))
        self.d_real_tracker.update_state(tf.reduce_mean(tf.sigmoid(real_logits)))
        self.d_fake_tracker.update_state(tf.reduce_mean(tf.sigmoid(fake_logits)))
        out = {m.name: m.result() for m in self.metrics}
        out["finite"] = tf.cast(tf.reduce_all(finite), tf.float32)
        return out


def _local_seed(seed: tf.Tensor, replica_id) -> tf.Tensor:
    """A per-replica seed for draws that are per example and never compared across layouts."""
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64),
                                                    tf.cast(replica_id, tf.int64))
