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
    assert "usage: dcgan-tfx " + command in capsys.readouterr().out


def test_fid_scores_folders_through_the_pipeline_preprocessing(tmp_path, capsys):
    real, fake = tmp_path / "real", tmp_path / "fake"
    for folder, category in ((real, "dress"), (fake, "shoes")):
        folder.mkdir()
        for name in sorted(os.listdir(os.path.join(SAMPLE, category)))[:6]:
            shutil.copy(os.path.join(SAMPLE, category, name), folder / name)
    (fake / "broken.jpg").write_bytes(b"not an image at all")
    code = cli.main(["fid", str(real), str(fake), "--metrics", "fid,kid", "--extractor", "downsample-8x8"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n_real"] == 6 and result["n_fake"] == 6
    assert result["fake"]["rejected"] == [f"{fake / 'broken.jpg'}: not_an_image"]
    assert result["metrics"]["fid"] > 0 and result["small_sample"] is True
    # Same folder on both sides: the distance collapses.
    assert cli.main(["fid", str(real), str(real), "--extractor", "downsample-8x8"]) == 0
    same = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(same["metrics"]["fid"]) < 1e-3 < result["metrics"]["fid"]
