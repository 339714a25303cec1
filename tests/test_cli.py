"""The `dcgan-tfx` command line: every subcommand's help, and `fid` on image folders."""
import json
import os
import shutil

import pytest

from pipeline import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "data", "sample")
SUBCOMMANDS = ("run", "check-data", "features", "fid", "generate", "report", "compile", "schedule")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: dcgan-tfx " + command in out
    assert "--verbose" in out          # accepted after every subcommand, so listed there too


def test_fid_scores_folders_through_the_pipeline_preprocessing(tmp_path, capsys):
    real, fake = tmp_path / "real", tmp_path / "fake"
    for folder, category in ((real, "dress"), (fake, "shoes")):
        folder.mkdir()
        for name in sorted(os.listdir(os.path.join(SAMPLE, category)))[:6]:
            shutil.copy(os.path.join(SAMPLE, category, name), folder / name)
    (fake / "broken.jpg").write_bytes(b"not an image at all")
    shutil.copy(fake / sorted(os.listdir(fake))[0], fake / "zz_copy.jpg")       # byte duplicate
    shutil.copy(fake / sorted(os.listdir(fake))[0], fake / ".hidden.jpg")       # hidden file
    code = cli.main(["fid", str(real), str(fake), "--metrics", "fid,kid", "--extractor", "downsample-8x8"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n_real"] == 6 and result["n_fake"] == 6
    assert sorted(result["fake"]["rejected"]) == sorted([
        f"{fake / 'broken.jpg'}: not_an_image", f"{fake / 'zz_copy.jpg'}: duplicate",
        f"{fake / '.hidden.jpg'}: skipped (hidden)"])
    assert result["metrics"]["fid"] > 0 and result["small_sample"] is True
    # Same folder on both sides: the distance collapses.
    assert cli.main(["fid", str(real), str(real), "--extractor", "downsample-8x8"]) == 0
    same = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(same["metrics"]["fid"]) < 1e-3 < result["metrics"]["fid"]


@pytest.mark.parametrize("threshold", ["nan", "-5", "inf"])
def test_threshold_must_be_finite_and_non_negative(threshold, capsys):
    assert cli.main(["run", "--fid-threshold", threshold, "--dry-run"]) == cli.EXIT_USAGE
    assert "threshold must be a finite number" in capsys.readouterr().err


@pytest.mark.parametrize("content,message", [
    ("[1]", "must hold a JSON object, got list"),
    ('{"transform": {"batch_size": 16.7}}', "transform.batch_size must be int, got 16.7"),
    ('{"train": {"batch_size": "16"}}', "train.batch_size must be int, got '16'"),
    ('{"train": {"epochs": true}}', "train.epochs must be int, got True"),
    ('{"transform": 5}', "transform must be a JSON object, got 5"),
    ('{"ingest": {"background": [255, 255]}}', "ingest.background must be tuple[int, int, int]"),
    ('{"pipeline_name": 3}', "pipeline_name must be str, got 3"),
])
def test_config_files_of_the_wrong_shape_are_refused_before_anything_runs(tmp_path, capsys, content, message):
    path = tmp_path / "config.json"
    path.write_text(content)
    assert cli.main(["run", "--config", str(path), "--fid-threshold", "50", "--dry-run"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_config_values_of_the_right_type_pass(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text('{"eval": {"threshold": 50}, "train": {"steps_per_epoch": null}, '
                    '"ingest": {"background": [0, 0, 0]}, "transform": {"batch_size": 16}}')
    assert cli.main(["run", "--config", str(path), "--dry-run"]) == 0
    capsys.readouterr()


def test_missing_inputs_are_usage_errors_not_tracebacks(tmp_path, capsys):
    assert cli.main(["run", "--data-root", str(tmp_path / "nope"), "--fid-threshold", "50"]) == cli.EXIT_USAGE
    assert "is not a folder" in capsys.readouterr().err
    assert cli.main(["run", "--config", str(tmp_path / "nope.json"), "--fid-threshold", "50",
                     "--dry-run"]) == cli.EXIT_USAGE
    assert "cannot read --config" in capsys.readouterr().err
    assert cli.main(["features", str(tmp_path / "nope.npy"), str(tmp_path / "out.npy")]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("dcgan-tfx features:") and "Traceback" not in err


def test_verbose_is_accepted_after_the_subcommand(capsys):
    assert cli.main(["run", "--verbose", "--fid-threshold", "50", "--dry-run"]) == 0
    assert '"threshold": 50.0' in capsys.readouterr().out
