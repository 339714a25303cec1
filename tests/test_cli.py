"""The `dcgan-tfx` command line: every subcommand's help, and `fid` on image folders."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

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
    os.symlink(tmp_path / "nowhere.jpg", fake / "dangling.jpg")                # read as ingestion
    os.mkfifo(fake / "pipe.jpg")                                               # reads: recorded
    os.symlink(fake, fake / "loop")
    code = cli.main(["fid", str(real), str(fake), "--metrics", "fid,kid", "--extractor", "downsample-8x8"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n_real"] == 6 and result["n_fake"] == 6
    assert {f"{fake / '.hidden.jpg'}: skipped (hidden)", f"{fake / 'loop'}: skipped (linked_folder)",
            f"{fake / 'broken.jpg'}: not_an_image"} < set(result["fake"]["rejected"])
    reasons = {r.split(": ")[0]: r.split(": ")[1].split(" ")[0] for r in result["fake"]["rejected"]}
    assert reasons == {str(fake / n): why for n, why in (
        ("broken.jpg", "not_an_image"), ("zz_copy.jpg", "duplicate"), (".hidden.jpg", "skipped"),
        ("loop", "skipped"), ("dangling.jpg", "unreadable"), ("pipe.jpg", "unreadable"))}
    assert result["metrics"]["fid"] > 0 and result["small_sample"] is True
    # Same folder on both sides: the distance collapses.
    assert cli.main(["fid", str(real), str(real), "--extractor", "downsample-8x8"]) == 0
    same = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(same["metrics"]["fid"]) < 1e-3 < result["metrics"]["fid"]
    # The k-NN metrics by name: one folder against itself is the identical-sets case (all 1).
    assert cli.main(["fid", str(real), str(real), "--metrics", "precision_recall,density_coverage",
                     "--extractor", "downsample-8x8"]) == 0
    manifold = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["metrics"]
    assert manifold == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}


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
    # Values a component would refuse minutes into a run are refused up front too.
    ('{"train": {"latent_dim": 0}}', "train.latent_dim"),
    ('{"transform": {"image_size": 32}}', "transform.image_size"),
    ('{"eval": {"metrics": ["fid", "fdi"]}}', "eval.metrics"),
    ('{"eval": {"min_coverage": 0.2, "metrics": ["fid", "kid"]}}',
     "eval.min_coverage needs the 'density_coverage' metric"),
    ('{"eval": {"num_generated": 5}}', "eval.num_generated must be > 5 for density_coverage"),
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


@pytest.mark.parametrize("argv,field", [
    (["--min-improvement", "-1"], "eval.min_improvement"),
    (["--min-improvement", "nan"], "eval.min_improvement"),
    (["--max-real", "-3"], "eval.max_real"),
    (["--min-recall", "1.5"], "eval.min_recall must be a number in [0, 1]"),
    (["--min-coverage", "-0.1"], "eval.min_coverage must be a number in [0, 1]"),
    (["--min-recall", "nan"], "eval.min_recall must be a number in [0, 1]"),
])
def test_eval_flags_the_evaluator_would_refuse_are_refused_up_front(argv, field, capsys):
    assert cli.main(["run", "--fid-threshold", "400", *argv, "--dry-run"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err


def test_empty_npy_is_a_usage_error(tmp_path, capsys):
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    assert cli.main(["features", str(empty), str(tmp_path / "out.npy")]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("dcgan-tfx features:") and "is empty" in err and "Traceback" not in err
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize("argv,message", [
    (["--num", "0"], "--num must be >= 1, got 0"),
    (["--ncols", "-1"], "--ncols must be >= 0"),
])
def test_generate_checks_its_flags_before_loading_the_model(tmp_path, capsys, argv, message):
    # The model folder does not exist: the flag error must come first.
    code = cli.main(["generate", str(tmp_path / "no-model"), *argv, "--out", str(tmp_path / "g.png")])
    assert code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("dcgan-tfx generate:") and message in err


def _dry_run_config(capsys, *argv) -> dict:
    assert cli.main(["run", "--fid-threshold", "50", *argv, "--dry-run"]) == 0
    return json.loads(capsys.readouterr().out)


def test_enable_cache_flag_reaches_the_config(tmp_path, capsys):
    assert _dry_run_config(capsys)["enable_cache"] is False
    assert _dry_run_config(capsys, "--enable-cache")["enable_cache"] is True
    # Without the flag a --config file's value stands (the flag's absence is not "False").
    path = tmp_path / "config.json"
    path.write_text('{"enable_cache": true}')
    assert _dry_run_config(capsys, "--config", str(path))["enable_cache"] is True


def _interrupt_while_reading(tmp_path, argv: list[str]) -> subprocess.CompletedProcess:
    """Run ``python -m pipeline.cli argv`` where ``{fifo}`` in argv is a FIFO the command reads,
    and send it SIGINT while it is blocked reading: a real Ctrl-C at a known point."""
    fifo = str(tmp_path / "input.json")
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *(a.replace("{fifo}", fifo) for a in argv)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while True:  # opening the write end succeeds once the command has opened the read end
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
    try:
        time.sleep(0.5)   # let it enter read(); nothing will ever be written
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(fd)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("argv,hint", [
    (["run", "--config", "{fifo}", "--fid-threshold", "50", "--dry-run"], True),
    (["schedule", "--spec", "{fifo}", "--cron", "0 3 * * 1", "--project", "p", "--region", "r",
      "--dry-run"], False),
])
def test_ctrl_c_ends_in_one_line_and_exit_130(tmp_path, argv, hint):
    result = _interrupt_while_reading(tmp_path, argv)
    assert result.returncode == 130, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"dcgan-tfx {argv[0]}: interrupted" and "Traceback" not in result.stderr
    assert ("--enable-cache" in result.stderr) is hint and len(lines) == 1 + hint


def test_ctrl_c_with_verbose_keeps_the_traceback(tmp_path):
    result = _interrupt_while_reading(tmp_path, ["run", "--verbose", "--config", "{fifo}",
                                                 "--fid-threshold", "50", "--dry-run"])
    assert result.returncode == 130
    assert "Traceback" in result.stderr and "KeyboardInterrupt" in result.stderr
    assert "dcgan-tfx run: interrupted" in result.stderr


def test_gate_floor_flags_reach_the_config(capsys):
    assert cli.main(["run", "--fid-threshold", "400", "--min-recall", "0.25", "--min-coverage", "0.5",
                     "--dry-run"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["eval"]["min_recall"] == 0.25 and config["eval"]["min_coverage"] == 0.5
    assert {"precision_recall", "density_coverage"} <= set(config["eval"]["metrics"])
    assert cli.main(["run", "--fid-threshold", "400", "--dry-run"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["eval"]["min_recall"] == 0.0 and config["eval"]["min_coverage"] == 0.0  # off


def _all_parsers():
    import argparse
    parser = cli.build_parser()
    yield "dcgan-tfx", parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub


def test_every_flag_has_help_and_a_shown_default():
    import argparse
    missing = []
    for name, parser in _all_parsers():
        formatter = parser.formatter_class(prog=parser.prog)
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if not action.help or action.help is argparse.SUPPRESS:
                missing.append(f"{label}: no help")
                continue
            rendered = formatter._get_help_string(action) % {**vars(action), "prog": parser.prog}
            needs_default = action.option_strings and action.nargs != 0 and not action.required
            if needs_default and "default" not in rendered.lower():
                missing.append(f"{label}: no default shown")
    assert not missing, missing
    # The raw value is shown where the help does not word its default itself.
    fid_help = dict(_all_parsers())["fid"].format_help()
    assert "(default: 1000)" in " ".join(fid_help.split())


def test_extractor_choices_come_from_the_registry(capsys):
    from components.fid_evaluator import extractors
    fid = dict(_all_parsers())["fid"]
    action = next(a for a in fid._actions if "--extractor" in a.option_strings)
    assert list(action.choices) == extractors.list_extractors()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fid", "a", "b", "--extractor", "inceptoin"])
    assert exit_info.value.code == 2 and "invalid choice: 'inceptoin'" in capsys.readouterr().err


def test_version_is_the_installed_distributions(capsys, tmp_path):
    import importlib.metadata
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"dcgan-tfx {importlib.metadata.version('dcgan-tfx')}"
    # Without an installed distribution the source tree's setup.py answers.
    assert cli.version_from_setup_py() == importlib.metadata.version("dcgan-tfx")
    fake = tmp_path / "setup.py"
    fake.write_text('setup(name="x",\n      version="9.8.7rc1",\n)\n')
    assert cli.version_from_setup_py(str(fake)) == "9.8.7rc1"
    assert cli.version_from_setup_py(str(tmp_path / "absent.py")) == "unknown"
