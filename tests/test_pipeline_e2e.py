"""End-to-end: the real pipeline (LocalDagRunner, DirectRunner, MLMD sqlite, real Inception) on real photos.

Slow (minutes): marked ``slow``; CI runs it (``make test`` runs every test).
"""
import json
import os
import shutil

import pytest

from pipeline import cli
from pipeline.run_record import read_run
from pipeline.summary import EVALUATOR, PUSHER, TRAINER, collect

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "data", "sample")


def _tiny_crawl(root, per_category=4):
    """A few real photos per category from the bundled sample."""
    for category in sorted(os.listdir(SAMPLE)):
        src = os.path.join(SAMPLE, category)
        if not os.path.isdir(src):
            continue
        os.makedirs(os.path.join(root, category))
        for name in sorted(os.listdir(src))[:per_category]:
            shutil.copy(os.path.join(src, name), os.path.join(root, category, name))
    return root


def cli_report_path(printed: str) -> str:
    return [line for line in printed.splitlines() if line.startswith("report: ")][-1][len("report: "):]


@pytest.mark.slow
def test_whole_pipeline_runs_gates_and_pushes(tmp_path, capsys):
    crawl = _tiny_crawl(str(tmp_path / "crawl"))
    out = tmp_path / "out"
    common = ["run", "--data-root", crawl, "--output-root", str(out), "--epochs", "1",
              "--steps-per-epoch", "2", "--batch-size", "8", "--num-fid-samples", "16"]

    # 1) a permissive gate: the generator is blessed and pushed.
    assert cli.main(common + ["--fid-threshold", "100000"]) == 0
    printed = capsys.readouterr().out
    assert "BLESSED" in printed and "pushed generator to" in printed
    assert "per-channel mean" in printed  # Transform's analyzers, shown in the summary

    record = read_run(str(out / "metadata.sqlite"), "dcgan-tfx")
    assert all(node.state in ("COMPLETE", "CACHED") for node in record.nodes.values()), record.nodes
    facts = collect(record)
    assert facts["ingestion"]["counts_by_status"]["ingested"] == 40
    evaluation = facts["evaluation"]
    assert evaluation["n_gen"] == 16 and evaluation["n_real"] == 40
    assert evaluation["metrics"]["fid"] > 0 and evaluation["small_sample"] is True
    assert os.path.isfile(cli_report_path(printed))
    pushed = record.output(PUSHER, "pushed_model")
    assert pushed.properties["pushed"] == 1
    pushed_dir = pushed.properties["pushed_destination"]
    assert os.path.isfile(os.path.join(pushed_dir, "saved_model.pb"))
    assert os.path.isfile(os.path.join(pushed_dir, "metrics.json"))
    assert os.path.isfile(os.path.join(record.output(TRAINER, "model_run").uri, "training_summary.json"))

    # 2) the same pipeline with a gate no generator can pass: evaluated, not blessed, nothing new pushed.
    before = sorted(os.listdir(out / "serving"))
    assert cli.main(common + ["--fid-threshold", "1"]) == 0
    record2 = read_run(str(out / "metadata.sqlite"), "dcgan-tfx")
    assert record2.run_id != record.run_id
    assert record2.output(EVALUATOR, "blessing").properties["blessed"] == 0
    assert record2.output(PUSHER, "pushed_model").properties.get("pushed", 0) == 0
    assert sorted(os.listdir(out / "serving")) == before
    assert "NOT BLESSED" in capsys.readouterr().out


def test_run_without_threshold_is_a_configuration_error(tmp_path, capsys):
    code = cli.main(["run", "--output-root", str(tmp_path), "--dry-run"])
    assert code == cli.EXIT_USAGE
    assert "threshold is required" in capsys.readouterr().err


def test_dry_run_prints_resolved_config(tmp_path, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"train": {"epochs": 7, "label_smoothing": "constant"}}))
    code = cli.main(["run", "--output-root", str(tmp_path), "--config", str(cfg), "--epochs", "3",
                     "--fid-threshold", "80", "--dry-run"])
    assert code == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["train"]["epochs"] == 3                   # flag beats file
    assert resolved["train"]["label_smoothing"] == "constant"  # file beats default
    assert resolved["eval"]["threshold"] == 80
    assert resolved["pipeline_root"] == os.path.join(str(tmp_path), "pipeline")


def test_unknown_config_field_is_rejected(tmp_path, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"train": {"epoch": 7}}))
    code = cli.main(["run", "--config", str(cfg), "--fid-threshold", "80", "--dry-run"])
    assert code == cli.EXIT_USAGE
    assert "epoch" in capsys.readouterr().err
