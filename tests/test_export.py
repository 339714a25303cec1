"""Export tests: both signatures (shapes, dtypes, ranges, determinism), helpers and the CLI."""
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from dcgan_common import features  # noqa: E402
from pipeline.cli import main as cli_main  # noqa: E402
from trainer.export import (export_generator, generate_images, image_grid, load_generator,  # noqa: E402
                            save_grid_png)
from trainer.model import build_generator  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    g = build_generator()
    path = str(tmp_path_factory.mktemp("export") / "generator")
    export_generator(g, path)
    return g, path


def test_serving_default(exported):
    g, path = exported
    fn = load_generator(path).signatures[features.SERVING_SIGNATURE]
    noise = tf.random.normal([3, features.LATENT_DIM], seed=1)
    out = fn(**{features.NOISE_INPUT: noise})[features.IMAGES_OUTPUT]
    assert out.dtype == tf.float32 and out.shape == (3,) + features.IMAGE_SHAPE
    assert float(tf.reduce_min(out)) >= -1.0 and float(tf.reduce_max(out)) <= 1.0
    np.testing.assert_allclose(out.numpy(), g(noise, training=False).numpy(), atol=1e-5)


def test_generate_signature_deterministic(exported):
    g, path = exported
    a = generate_images(path, 5, seed=42)
    b = generate_images(path, 5, seed=42)
    c = generate_images(path, 5, seed=43)
    assert a.dtype == np.uint8 and a.shape == (5,) + features.IMAGE_SHAPE
    np.testing.assert_array_equal(a, b)
    assert np.any(a != c)
    # Same quantiser as features.to_uint8 on the float output for the same noise.
    noise = tf.random.stateless_normal([5, features.LATENT_DIM], seed=tf.constant([42, 0], tf.int64))
    expected = features.to_uint8(g(noise, training=False).numpy())
    assert np.max(np.abs(a.astype(int) - expected.astype(int))) <= 1
    with pytest.raises(ValueError, match="num"):
        generate_images(path, 0, seed=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="count"):
        load_generator(path).signatures[features.GENERATE_SIGNATURE](
            count=tf.constant(0), seed=tf.constant(1, tf.int64))


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_generator(str(tmp_path))
    with pytest.raises(ValueError, match="expected"):
        export_generator(keras.Sequential([keras.Input((10,)), keras.layers.Dense(3)]),
                         str(tmp_path / "bad"))
    with pytest.raises(ValueError, match="uint8"):
        image_grid(np.zeros((2, 4, 4, 3), np.float32), 2)


def test_grid_png_and_cli(exported, tmp_path):
    from PIL import Image
    imgs = np.arange(5 * 4 * 4 * 3, dtype=np.uint8).reshape(5, 4, 4, 3)
    grid = image_grid(imgs, 2)
    assert grid.shape == (12, 8, 3)
    np.testing.assert_array_equal(grid[4:8, 4:8], imgs[3])
    assert not grid[8:, 4:].any()
    p = save_grid_png(imgs, str(tmp_path / "sub" / "g.png"), 3)
    np.testing.assert_array_equal(np.asarray(Image.open(p)), image_grid(imgs, 3))

    _, path = exported
    assert cli_main(["generate", path, "--num", "4", "--seed", "3", "--out",
                     str(tmp_path / "grid.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "grid.png")).shape == (128, 128, 3)
    assert cli_main(["generate", path, "--num", "3", "--out", str(tmp_path / "pngs")]) == 0
    files = sorted(os.listdir(tmp_path / "pngs"))
    assert files == ["00000.png", "00001.png", "00002.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "pngs" / "00001.png")),
                                  generate_images(path, 3, seed=0)[1])


def test_fid_evaluator_generates_with_the_models_own_latent_size(tmp_path):
    # A generator trained with latent_dim 16 must be scored with 16-d noise, not the default 100.
    from components.fid_evaluator.evaluate import generate_images as evaluator_images
    keras.utils.set_random_seed(0)
    path = str(tmp_path / "g16")
    export_generator(build_generator(latent_dim=16), path, latent_dim=16)
    images = evaluator_images(path, 5, seed=3)
    assert images.dtype == np.uint8 and images.shape == (5,) + features.IMAGE_SHAPE
