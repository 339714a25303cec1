"""Model tests: the seed's parameter counts, shapes and ranges, and the one-forward step against
the seed's two-forward step (tests/seed_reference.py) on the same noise."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from dcgan_common import features  # noqa: E402
from trainer import model as M  # noqa: E402
from seed_reference import seed_train_step  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_seed_parameter_counts():
    assert M.build_generator().count_params() == 6_065_603
    assert M.build_discriminator().count_params() == 243_329


def test_option_parameter_counts():
    # BN adds gamma, beta, moving mean, moving variance per channel after Dense and each ConvT.
    bn_channels = 8 * 8 * 512 + 256 + 128 + 64
    assert M.build_generator(batchnorm=True).count_params() == 6_065_603 + 4 * bn_channels
    # Third block: Conv2D(256, 5) on 128 channels + BN(256); Flatten shrinks 16*16*128 -> 8*8*256.
    extra = (5 * 5 * 128 * 256 + 256) + 4 * 256 + (8 * 8 * 256 + 1) - (16 * 16 * 128 + 1)
    assert M.build_discriminator(extra_block=True).count_params() == 243_329 + extra
    # Dropout and bf16 compute add no parameters.
    assert M.build_discriminator(dropout=0.3).count_params() == 243_329
    assert M.build_generator(precision="mixed_bfloat16").count_params() == 6_065_603


def test_shapes_and_ranges():
    g, d = M.build_generator(), M.build_discriminator()
    z = tf.random.normal([3, features.LATENT_DIM]) * 50.0  # large inputs still land in [-1, 1]
    x = g(z).numpy()
    assert x.shape == (3,) + features.IMAGE_SHAPE and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert d(x).shape == (3, 1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="latent_dim"):
        M.build_generator(latent_dim=0)
    with pytest.raises(ValueError, match="precision"):
        M.build_discriminator(precision="float16")
    with pytest.raises(ValueError, match="label_smoothing"):
        M.DCGAN(M.build_generator(), M.build_discriminator(), label_smoothing="two-sided")


def test_real_targets_modes():
    u = tf.constant([[0.0], [0.5], [1.0]])
    np.testing.assert_allclose(M.real_targets(3, "uniform", u).numpy().ravel(), [1.0, 1.025, 1.05])
    np.testing.assert_allclose(M.real_targets(3, "constant").numpy().ravel(), [0.9] * 3)
    np.testing.assert_allclose(M.real_targets(3, "none").numpy().ravel(), [1.0] * 3)


def _twins(smoothing):
    keras.utils.set_random_seed(1)
    g, d = M.build_generator(), M.build_discriminator()
    g2, d2 = M.build_generator(), M.build_discriminator()
    g2.set_weights(g.get_weights())
    d2.set_weights(d.get_weights())
    gan = M.DCGAN(g, d, label_smoothing=smoothing)
    gan.compile(keras.optimizers.Adam(1e-4, beta_1=0.5), keras.optimizers.Adam(3e-4, beta_1=0.5))
    opts = keras.optimizers.Adam(1e-4, beta_1=0.5), keras.optimizers.Adam(3e-4, beta_1=0.5)
    return gan, g2, d2, opts


def test_fused_step_matches_seed_step_on_same_noise():
    """Tolerance: losses to 1e-5 relative; weights to 0.1 x G's learning rate (Adam's first step
    moves every weight by about lr, so this is 10% of one update)."""
    gan, g2, d2, (do, go) = _twins("constant")
    rng = np.random.default_rng(0)
    real = tf.constant(rng.uniform(-1, 1, (8,) + features.IMAGE_SHAPE).astype("float32"))
    noise = tf.constant(rng.standard_normal((8, features.LATENT_DIM)).astype("float32"))
    ours = tf.function(gan.train_step)((real, noise))
    seed = tf.function(lambda r, n: seed_train_step(g2, d2, do, go, r, n, n, "constant"))(real, noise)
    np.testing.assert_allclose(float(ours["d_loss"]), float(seed["d_loss"]), rtol=1e-5)
    np.testing.assert_allclose(float(ours["g_loss"]), float(seed["g_loss"]), rtol=1e-5)
    assert float(ours["finite"]) == 1.0
    for a, b in zip(gan.generator.get_weights() + gan.discriminator.get_weights(),
                    g2.get_weights() + d2.get_weights()):
        np.testing.assert_allclose(a, b, atol=0.1 * 3e-4)
    # The step really trained something.
    before = _twins("constant")[1].get_weights()
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(before, g2.get_weights())) > 1e-4


def test_step_flags_nan():
    gan, *_ = _twins("uniform")
    real = tf.fill([4] + list(features.IMAGE_SHAPE), float("nan"))
    out = tf.function(gan.train_step)(real)
    assert float(out["finite"]) == 0.0


_TWO_DEVICE_SCRIPT = textwrap.dedent("""
    import json, sys
    import keras
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from dcgan_common.config import TrainConfig
    from trainer.train import build_gan, make_step_fn, select_strategy
    cfg = TrainConfig.from_recipe(sys.argv[1], batch_size=8, seed=3)
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (8, 64, 64, 3)).astype("float32")
    results = {}
    for name, devices in (("one", None), ("two", ["/cpu:0", "/cpu:1"])):
        strategy = select_strategy(tf_config="", devices=devices)
        with strategy.scope():
            gan = build_gan(cfg, strategy.num_replicas_in_sync)
            w0 = [v.numpy() for v in gan.generator.weights + gan.discriminator.weights]
            # Plain SGD: the update is lr * gradient, so a wrong loss scale would show (Adam's
            # first step is scale-invariant and would hide it).
            gan.d_optimizer = keras.optimizers.SGD(0.05)
            gan.g_optimizer = keras.optimizers.SGD(0.05)
            gan.build_optimizers()
        step = make_step_fn(gan, strategy)
        ds = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices(real).batch(8))
        finite = [float(step(b)) for b in ds]
        w = [v.numpy() - a for v, a in zip(gan.generator.weights + gan.discriminator.weights, w0)]
        results[name] = dict(replicas=strategy.num_replicas_in_sync, finite=finite,
                             metrics={m.name: float(m.result()) for m in gan.metrics}, w=w)
    one, two = results["one"], results["two"]
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(one["w"], two["w"]))
    moved = max(float(np.max(np.abs(a))) for a in one["w"])
    print(json.dumps(dict(replicas=[one["replicas"], two["replicas"]], finite=one["finite"] + two["finite"],
                          m1=one["metrics"], m2=two["metrics"], max_weight_diff=diff, moved=moved)))
""")


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["seed", "data_efficient"])
def test_two_logical_cpus_equal_one_device(recipe):
    """One step on 2 logical CPUs (MirroredStrategy, synced BN) == one step on one device for the
    same global batch and noise; for the default recipe that includes spectral norm's power
    iteration and DiffAugment's draws, which must not depend on how replicas split the batch.
    Runs in a subprocess: logical devices must be set before TF initialises its devices."""
    import json
    proc = subprocess.run([sys.executable, "-c", _TWO_DEVICE_SCRIPT, recipe], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["replicas"] == [1, 2]
    assert r["finite"] == [1.0, 1.0]
    for k in ("d_loss", "g_loss", "d_real", "d_fake"):
        np.testing.assert_allclose(r["m2"][k], r["m1"][k], rtol=1e-4, atol=1e-6)
    assert r["moved"] > 1e-4                           # the step changed the weights (SGD deltas)
    assert r["max_weight_diff"] <= 1e-3 * r["moved"]   # and both set-ups changed them the same way


def test_bce_matches_keras_sigmoid_bce_and_stays_bounded_for_smoothed_targets():
    import keras
    import numpy as np
    import tensorflow as tf

    from trainer.model import bce_with_logits

    logits = tf.constant([[-30.0], [-2.0], [0.0], [3.0], [40.0]])
    targets = tf.constant([[0.0], [1.0], [1.02], [1.05], [1.05]])
    keras_bce = keras.losses.BinaryCrossentropy(reduction=None)
    expected = keras_bce(targets, tf.sigmoid(logits)).numpy().reshape(-1)
    ours = bce_with_logits(targets, logits).numpy()
    np.testing.assert_allclose(ours[:4], expected[:4], rtol=1e-4, atol=1e-5)
    # Saturated: Keras clips at float32(1 - 1e-7) = 1 - 1.19e-7, so the two differ by ~1 % there.
    np.testing.assert_allclose(ours[4], expected[4], rtol=2e-2)
    # Targets above 1 with an ever larger real logit: the loss must not fall without bound.
    huge = bce_with_logits(tf.constant([[1.05]]), tf.constant([[1e4]])).numpy()[0]
    assert huge >= -0.05 * np.log(1e7) - 1e-4


# --- Recipe switches: losses, penalty, DiffAugment in both steps ---

def test_hinge_and_wgan_losses_closed_form():
    real = tf.constant([[2.0], [0.5], [-1.0]])
    fake = tf.constant([[-2.0], [0.0], [1.5]])
    # hinge: relu(1 - r) = 0, 0.5, 2; relu(1 + f) = 0, 1, 2.5
    assert float(M.discriminator_loss_sum("hinge", real, fake)) == pytest.approx(6.0)
    assert float(M.generator_loss_sum("hinge", fake)) == pytest.approx(0.5)
    assert float(M.discriminator_loss_sum("wgan_gp", real, fake)) == pytest.approx(-0.5 - 1.5)
    targets = tf.ones([3, 1])
    bce = M.discriminator_loss_sum("bce", real, fake, targets)
    expected = 0.5 * (np.sum(np.log1p(np.exp(-np.array([2.0, 0.5, -1.0]))))
                      + np.sum(np.log1p(np.exp(np.array([-2.0, 0.0, 1.5])))))
    assert float(bce) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="loss"):
        M.generator_loss_sum("lsgan", fake)


def test_gradient_penalty_of_a_linear_critic():
    """D(x) = w . x has gradient w everywhere: the penalty is n * (|w| - 1)^2 whatever x_hat is."""
    inp = keras.Input(shape=features.IMAGE_SHAPE)
    out = keras.layers.Dense(1, use_bias=False)(keras.layers.Flatten()(inp))
    critic = keras.Model(inp, out)
    w = np.full((64 * 64 * 3, 1), 0.02, np.float32)
    critic.set_weights([w])
    x = tf.random.uniform([5] + list(features.IMAGE_SHAPE), -1, 1)
    gp = M.gradient_penalty_sum(critic, x, -x, tf.constant([1, 2], tf.int64))
    expected = 5 * (np.linalg.norm(w) - 1.0) ** 2
    assert float(gp) == pytest.approx(expected, rel=1e-4)


def _mean_critic():
    """A real Keras critic whose logit is the mean pixel value (weights fixed by lr = 0 below)."""
    inp = keras.Input(shape=features.IMAGE_SHAPE)
    pooled = keras.layers.GlobalAveragePooling2D()(inp)
    dense = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(1 / 3))
    return keras.Model(inp, dense(pooled))


@pytest.mark.parametrize("separate", [True, False])
def test_diffaugment_reaches_reals_and_fakes_in_both_steps(separate):
    """D(x) = mean(x): the logged D(x), D(G(z)) and g_loss equal the values for the *augmented*
    reals and fakes under the step's own seeds, and differ from the unaugmented ones."""
    from trainer.augment import diff_augment
    keras.utils.set_random_seed(0)
    policy = ("color", "translation", "cutout")
    g = M.build_generator()
    gan = M.DCGAN(g, _mean_critic(), loss="hinge", separate_passes=separate, augment=policy)
    gan.compile(keras.optimizers.SGD(0.0), keras.optimizers.SGD(0.0))
    rng = np.random.default_rng(1)
    real = tf.constant(rng.uniform(-1, 1, (6,) + features.IMAGE_SHAPE).astype("float32"))
    noise = tf.constant(rng.standard_normal((6, features.LATENT_DIM)).astype("float32"))
    seeds = gan.extra_seeds(tf.constant(0, tf.int64))
    fakes = g(noise, training=True)
    out = tf.function(gan.train_step)((real, noise))

    def mean_sigmoid(x):
        return float(tf.reduce_mean(tf.sigmoid(tf.reduce_mean(x, axis=[1, 2, 3]))))

    assert float(out["d_real"]) == pytest.approx(mean_sigmoid(diff_augment(real, policy, seeds[1])),
                                                 rel=1e-5)
    assert float(out["d_fake"]) == pytest.approx(mean_sigmoid(diff_augment(fakes, policy, seeds[0])),
                                                 rel=1e-4)
    g_expected = -float(tf.reduce_mean(diff_augment(fakes, policy, seeds[3])))
    assert float(out["g_loss"]) == pytest.approx(g_expected, rel=1e-3, abs=1e-5)
    assert float(out["d_real"]) != pytest.approx(mean_sigmoid(real), rel=1e-3)


def test_diffaugment_ops():
    from trainer.augment import diff_augment, parse_policy
    x = tf.random.uniform([4, 64, 64, 3], -1, 1, seed=3)
    seed = tf.constant([4, 5], tf.int64)
    assert parse_policy("color, cutout") == ("color", "cutout") and parse_policy("") == ()
    with pytest.raises(ValueError, match="DiffAugment"):
        parse_policy("color,flip")
    np.testing.assert_array_equal(diff_augment(x, (), seed).numpy(), x.numpy())
    a, b = diff_augment(x, ("translation",), seed), diff_augment(x, ("translation",), seed)
    np.testing.assert_array_equal(a.numpy(), b.numpy())         # stateless: same seed, same draw
    # Translation moves pixels by whole steps and shifts zeros in: every output pixel is an input
    # pixel of the same image or 0, and at most 8 rows/columns (1/8 of 64) are zero-filled.
    moved = a.numpy()
    for i in range(4):
        vals = set(np.round(x.numpy()[i].ravel(), 6)) | {0.0}
        assert set(np.round(moved[i].ravel(), 6)) <= vals
    zero_rows = (np.abs(moved).sum(axis=(2, 3)) == 0).sum(axis=1)
    assert zero_rows.max() <= 8
    # Cutout zeroes one square of at most 32 x 32 pixels per image (fewer at the border).
    cut = diff_augment(tf.ones([8, 64, 64, 3]), ("cutout",), seed).numpy()
    zeros = (cut[..., 0] == 0).sum(axis=(1, 2))
    assert zeros.max() <= 32 * 32 and zeros.min() > 0
    # Differentiable: gradients reach the input through all three.
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(diff_augment(x, ("color", "translation", "cutout"), seed))
    grad = tape.gradient(y, x)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0


def test_spectral_norm_and_init_options():
    keras.utils.set_random_seed(0)
    d = M.build_discriminator(norm="none", spectral_norm=True, extra_block=True)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in d.layers)
    sn = [layer for layer in d.layers if isinstance(layer, keras.layers.SpectralNormalization)]
    assert len(sn) == 4                      # three convs and the logit
    x = tf.random.uniform([2] + list(features.IMAGE_SHAPE))
    for _ in range(30):                      # one power iteration per call converges over calls
        d(x, training=True)
    for layer in sn:                         # ... to kernels with largest singular value ~ 1
        k = layer.layer.kernel.numpy().reshape(-1, layer.layer.kernel.shape[-1])
        assert np.linalg.svd(k, compute_uv=False)[0] == pytest.approx(1.0, rel=0.05)
    g = M.build_generator(weight_init="dcgan")
    kernel = g.get_layer("up1").kernel.numpy()
    assert abs(kernel.std() - 0.02) < 0.002 and abs(kernel.mean()) < 0.002
    with pytest.raises(ValueError, match="norm"):
        M.build_discriminator(norm="layernorm")
    with pytest.raises(ValueError, match="weight_init"):
        M.build_generator(weight_init="he")
