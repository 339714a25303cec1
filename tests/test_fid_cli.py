"""`dcgan-tfx fid` as a researcher uses it: whole folders, named protocol steps, strict JSON,
.npz statistics on either side, and inputs refused before TensorFlow loads.

The downsample-8x8 extractor keeps these fast; with 8x8 lossless PNGs at --folder-size native its
features are the pixels themselves, (x - 128) / 128, so statistics can be computed by hand.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dcgan_common.fid import metrics, stats_npz
from pipeline import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--extractor", "downsample-8x8"]


def _reject_constant(token):
    raise ValueError(f"non-standard JSON token {token}")


def strict_loads(text: str):
    """json.loads that refuses NaN / Infinity (Python's json accepts them by default)."""
    return json.loads(text, parse_constant=_reject_constant)


def write_pngs(folder, count: int, seed: int, side: int = 8) -> np.ndarray:
    """``count`` random side x side RGB PNGs (lossless); returns their pixels uint8 [count, side, side, 3]."""
    os.makedirs(folder, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (count, side, side, 3), dtype=np.uint8)
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(os.path.join(folder, f"{i:05d}.png"))
    return pixels


def hand_features(pixels: np.ndarray) -> np.ndarray:
    """downsample-8x8 features of 8x8 images: the pixels scaled by the protocol, float32 as the extractor gives them."""
    return ((pixels.astype(np.float64) - 128.0) / 128.0).reshape(len(pixels), -1).astype(np.float32)


def run_fid(capsys, *argv) -> dict:
    capsys.readouterr()
    assert cli.main(["fid", *map(str, argv)]) == 0
    return strict_loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("fidcli")
    a, b = root / "a", root / "b"
    return {"a": a, "b": b, "pixels_a": write_pngs(a, 40, 1), "pixels_b": write_pngs(b, 30, 2)}


def test_output_is_strict_json_with_null_for_undefined_values(folders, capsys):
    # 40 images a side, KID subsets of 1000: every subset is the whole set, so kid_std is undefined.
    result = run_fid(capsys, folders["a"], folders["a"], *FAST, "--metrics", "fid,kid")
    assert "kid_std" in result["metrics"] and result["metrics"]["kid_std"] is None
    assert isinstance(result["metrics"]["kid"], float) and result["metrics"]["fid"] == pytest.approx(0.0, abs=1e-9)


def test_strict_json_maps_every_non_finite_value_to_null():
    from components.fid_evaluator.cli import strict_json
    text = strict_json({"a": float("nan"), "b": [float("inf"), np.float32(-np.inf)], "c": np.float64(1.5),
                        "d": (np.int64(3),)})
    assert strict_loads(text) == {"a": None, "b": [None, None], "c": 1.5, "d": [3]}


def test_protocol_names_the_folder_resize_and_native_size_skips_it(folders, capsys):
    default = run_fid(capsys, folders["a"], folders["b"], *FAST, "--metrics", "fid")
    steps, _, features = default["protocol"].partition(" -> ")
    assert "squash-antialias-bilinear-64x64" in steps and steps.startswith("folder/pipeline-ingest")
    assert features == "block-mean-8x8/pixels (tests and smoke runs only, not FID)"
    assert default["real"]["folder_size"] == "64" and default["protocols_match"] is True
    native = run_fid(capsys, folders["a"], folders["b"], *FAST, "--metrics", "fid", "--folder-size", "native")
    assert "native-size" in native["protocol"] and "64x64" not in native["protocol"]
    # Native 8x8 PNGs: the features are the pixels, so FID is the hand-computed one.
    x, y = (hand_features(folders[k]).astype(np.float64) for k in ("pixels_a", "pixels_b"))
    expected = metrics.frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert native["metrics"]["fid"] == pytest.approx(expected, rel=1e-9)
    assert native["metrics"]["fid"] != pytest.approx(default["metrics"]["fid"], rel=1e-3)


def test_inception_protocol_names_its_own_resize():
    from components.fid_evaluator import extractors
    _, protocol = extractors.extractor_spec("inception")
    assert protocol.startswith("tf1-bilinear-299/")


def test_a_folder_of_more_than_1000_images_is_scored_whole(tmp_path, capsys):
    big, small = tmp_path / "big", tmp_path / "small"
    write_pngs(big, 1003, 3)
    write_pngs(small, 5, 4)
    result = run_fid(capsys, big, small, *FAST, "--metrics", "fid")
    assert result["n_real"] == 1003 and result["real"]["n"] == 1003 and result["n_fake"] == 5
    capped = run_fid(capsys, big, small, *FAST, "--metrics", "fid", "--max-images", "10")
    assert capped["n_real"] == 10


def test_save_stats_round_trip_against_hand_computed_mu_sigma(folders, tmp_path, capsys):
    out = tmp_path / "a.npz"
    summary = run_fid(capsys, folders["a"], *FAST, "--folder-size", "native", "--save-stats", out)
    assert summary["saved_stats"] == str(out) and summary["n"] == 40
    x = hand_features(folders["pixels_a"]).astype(np.float64)
    with np.load(out, allow_pickle=False) as data:      # the TTUR / pytorch-fid key names
        assert {"mu", "sigma", "n", "protocol"} <= set(data.files)
        assert data["mu"].dtype == np.float64 and data["sigma"].dtype == np.float64
        np.testing.assert_allclose(data["mu"], x.mean(axis=0), rtol=0, atol=1e-12)
        np.testing.assert_allclose(data["sigma"], np.cov(x, rowvar=False, ddof=1), rtol=0, atol=1e-12)
        assert int(data["n"]) == 40 and str(data["protocol"]) == summary["protocol"]
    stats, info = stats_npz.load_stats(str(out))
    assert stats.count == 40 and info["protocol"] == summary["protocol"] and info["extractor"] == "downsample-8x8"


def test_stats_file_round_trip_of_a_feature_stats(tmp_path):
    feats = np.random.default_rng(5).normal(size=(50, 6))
    s = metrics.FeatureStats.from_features(feats)
    path = str(tmp_path / "s.npz")
    stats_npz.save_stats(path, s.mean, s.cov, s.count, "p", "e", "h")
    back, info = stats_npz.load_stats(path)
    np.testing.assert_allclose(back.mean, feats.mean(axis=0), rtol=0, atol=1e-13)
    np.testing.assert_allclose(back.cov, np.cov(feats, rowvar=False), rtol=0, atol=1e-13)
    assert back.count == 50 and info == {"protocol": "p", "extractor": "e", "extractor_hash": "h"}
    with pytest.raises(metrics.MetricError, match="only mu/sigma"):
        back.features


def test_npz_statistics_work_as_either_side(folders, tmp_path, capsys):
    a_npz, b_npz = tmp_path / "a.npz", tmp_path / "b.npz"
    run_fid(capsys, folders["a"], *FAST, "--save-stats", a_npz)
    run_fid(capsys, folders["b"], *FAST, "--save-stats", b_npz)
    direct = run_fid(capsys, folders["a"], folders["b"], *FAST, "--metrics", "fid")["metrics"]["fid"]
    for real, fake in ((a_npz, folders["b"]), (folders["a"], b_npz), (a_npz, b_npz)):
        result = run_fid(capsys, real, fake, *FAST)        # default metrics: fid only with a .npz side
        assert set(result["metrics"]) == {"fid"}
        assert result["metrics"]["fid"] == pytest.approx(direct, rel=1e-9)
        assert result["protocols_match"] is True and result["n_real"] == 40 and result["n_fake"] == 30
    assert result["real"]["kind"] == "stats" and result["extractor"] is None


def test_ttur_style_npz_without_n_or_protocol_is_read_and_flagged(folders, tmp_path, capsys):
    x = hand_features(folders["pixels_a"]).astype(np.float64)
    ttur = tmp_path / "fid_stats_ttur.npz"
    np.savez(ttur, mu=x.mean(0), sigma=np.cov(x, rowvar=False))
    capsys.readouterr()
    assert cli.main(["fid", str(ttur), str(folders["b"]), *FAST, "--folder-size", "native"]) == 0
    captured = capsys.readouterr()
    result = strict_loads(captured.out.strip().splitlines()[-1])
    assert result["n_real"] is None and result["small_sample"] is True     # from the known side
    assert result["real"]["protocol"] == stats_npz.UNKNOWN_PROTOCOL and result["protocols_match"] is False
    assert "not made with the same protocol" in captured.err
    y = hand_features(folders["pixels_b"]).astype(np.float64)
    expected = metrics.frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert result["metrics"]["fid"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("metric", ["kid", "precision_recall", "density_coverage"])
def test_raw_feature_metrics_on_a_stats_side_are_refused_by_name(folders, tmp_path, capsys, metric):
    npz = tmp_path / "a.npz"
    run_fid(capsys, folders["a"], *FAST, "--save-stats", npz)
    assert cli.main(["fid", str(folders["b"]), str(npz), *FAST, "--metrics", f"fid,{metric}"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"metric(s) {metric} need raw features" in err and str(npz) in err


def test_bad_inputs_are_refused_before_tensorflow_is_imported(tmp_path):
    one = tmp_path / "one"
    write_pngs(one, 1, 6)
    two = tmp_path / "two"
    write_pngs(two, 2, 7)
    np.savez(tmp_path / "nosigma.npz", mu=np.zeros(2048))
    np.savez(tmp_path / "n1.npz", mu=np.zeros(2048), sigma=np.eye(2048), n=1)
    np.savez(tmp_path / "small.npz", mu=np.zeros(3), sigma=np.eye(3))
    (tmp_path / "file.txt").write_text("x")
    cases = [
        ([str(tmp_path / "absent"), str(two)], "REAL"),
        ([str(two), str(tmp_path / "absent.npz")], "does not exist"),
        ([str(one), str(two)], "holds 1 candidate image file"),
        ([str(two), str(tmp_path / "file.txt")], "neither an image folder"),
        ([str(tmp_path / "nosigma.npz"), str(two)], "no sigma"),
        ([str(tmp_path / "n1.npz"), str(two)], "n=1"),
        ([str(tmp_path / "small.npz"), str(two)], "3-d statistics"),
        ([str(two), str(two), "--metrics", "fid,fdi"], "unknown metric"),
        ([str(two), str(two), "--save-stats", str(tmp_path / "out.txt")], "must end in .npz"),
        ([str(two), str(two), "--save-stats", str(tmp_path / "nowhere" / "s.npz")], "does not exist"),
        ([str(two)], "FAKE is required"),
        ([str(two), str(two), "--max-images", "1"], "--max-images 1"),
    ]
    code = ("import sys, contextlib, io\n"
            "from pipeline import cli\n"
            f"for argv, message in {cases!r}:\n"
            "    err = io.StringIO()\n"
            "    with contextlib.redirect_stderr(err):\n"
            "        rc = cli.main(['fid', *argv])\n"
            "    assert rc == 2 and message in err.getvalue(), (argv, rc, err.getvalue())\n"
            "print('tensorflow loaded:', 'tensorflow' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "tensorflow loaded: False" in proc.stdout
