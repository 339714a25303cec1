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
    cfg = TrainConfig(batch_size=8, seed=3, label_smoothing="uniform")
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
def test_two_logical_cpus_equal_one_device():
    """One step on 2 logical CPUs (MirroredStrategy, synced BN) == one step on one device for the
    same global batch and noise. Runs in a subprocess: logical devices must be set before TF
    initialises its devices."""
    import json
    proc = subprocess.run([sys.executable, "-c", _TWO_DEVICE_SCRIPT], cwd=REPO, capture_output=True,
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
