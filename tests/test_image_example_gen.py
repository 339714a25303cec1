"""ImageExampleGen as a TFX component: construction, executor on real artifacts, check-data CLI
(the LocalDagRunner run into the stock Transform lives in test_transform.py)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil

import pytest

from components.image_example_gen import cli, component, executor, ledger
from conftest import SAMPLE_ROOT, encode, photo_array
from dcgan_common.config import ConfigError, IngestConfig, section_to_json


def _small_crawl(root, with_junk=True):
    """Two real categories (3 photos each from data/sample) + optional junk."""
    for cat in ("dress", "hat"):
        os.makedirs(os.path.join(root, cat))
        for name in sorted(os.listdir(os.path.join(SAMPLE_ROOT, cat)))[:3]:
            shutil.copy(os.path.join(SAMPLE_ROOT, cat, name), os.path.join(root, cat, name))
    if with_junk:
        with open(os.path.join(root, "hat", "broken.jpg"), "wb") as f:
            f.write(b"\xff\xd8\xff\xe0 not really")
        with open(os.path.join(root, "hat", "Thumbs.db"), "wb") as f:
            f.write(b"x")
        with open(os.path.join(root, "dress", "gen.png"), "wb") as f:
            f.write(encode(photo_array(3), "PNG"))


def test_component_construction_validates_config():
    c = component.ImageExampleGen(data_root="/data", ingest_config=section_to_json(IngestConfig()))
    assert set(c.outputs) == {"examples", "ingestion_report"}
    assert c.outputs["ingestion_report"].type_name == "dcgan_tfx.IngestionReport"
    with pytest.raises(ConfigError):
        component.ImageExampleGen(data_root="/data", ingest_config=json.dumps({"eval_percent": 150}))
    with pytest.raises(ConfigError):
        component.ImageExampleGen(data_root="/data", ingest_config=json.dumps({"no_such_field": 1}))
    with pytest.raises(ValueError):
        component.ImageExampleGen(data_root="")


def _artifacts(tmp_path):
    from tfx.types import standard_artifacts
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    report = component.IngestionReport()
    report.uri = str(tmp_path / "report")
    os.makedirs(report.uri)
    return examples, report


def test_executor_writes_standard_examples_artifact(tmp_path):
    root = str(tmp_path / "crawl")
    _small_crawl(root)
    examples, report = _artifacts(tmp_path)
    # min_train_examples=1: 7 photos are far below one training batch.
    cfg = dataclasses.replace(IngestConfig(), max_rejected_fraction=0.5, eval_percent=30, min_train_examples=1)
    executor.Executor().Do({}, {"examples": [examples], "ingestion_report": [report]},
                           {"data_root": root, "ingest_config": section_to_json(cfg)})
    assert json.loads(examples.split_names) == ["train", "eval"]
    assert examples.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"
    assert examples.get_string_custom_property("file_format") == "tfrecords_gzip"
    for split in ("train", "eval"):
        files = os.listdir(os.path.join(examples.uri, f"Split-{split}"))
        assert files and all(f.endswith(".gz") for f in files)
    with open(os.path.join(report.uri, ledger.REPORT_FILENAME)) as f:
        rep = json.load(f)
    assert rep["counts_by_status"] == {"ingested": 7, "rejected": 1, "skipped": 1, "duplicate": 0}
    assert report.get_int_custom_property("ingested") == 7
    assert report.get_int_custom_property("policy_passed") == 1
    n_train = examples.get_int_custom_property("num_examples_train")
    assert n_train + examples.get_int_custom_property("num_examples_eval") == 7 == sum(rep["splits"].values())


def test_executor_policy_failure_raises_after_ledger(tmp_path):
    root = str(tmp_path / "crawl")
    _small_crawl(root)   # 1 of 8 rejected = 12.5 % > 5 %
    examples, report = _artifacts(tmp_path)
    with pytest.raises(ledger.IngestionPolicyError, match="max_rejected_fraction"):
        executor.Executor().Do({}, {"examples": [examples], "ingestion_report": [report]},
                               {"data_root": root, "ingest_config": ""})
    assert os.path.exists(os.path.join(report.uri, ledger.REPORT_FILENAME))
    assert report.get_int_custom_property("policy_passed") == 0


def test_check_data_cli(tmp_path, capsys):
    root = str(tmp_path / "crawl")
    _small_crawl(root)
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    report = str(tmp_path / "r.json")
    args = parser.parse_args(["check-data", root, "--report", report])
    assert args.handler(args) == cli.EXIT_POLICY_FAILED
    out = capsys.readouterr().out
    assert "dress" in out and "hat" in out and "FAILED" in out
    args = parser.parse_args(["check-data", root, "--report", report, "--max-rejected-fraction", "0.2",
                              "--min-train-examples", "1"])
    assert args.handler(args) == cli.EXIT_OK
    with open(report) as f:
        assert json.load(f)["policy"]["passed"]
    args = parser.parse_args(["check-data", str(tmp_path / "missing"), "--report", report])
    assert args.handler(args) == cli.EXIT_BAD_INPUT == 2


def test_executor_refuses_a_train_split_below_one_batch(tmp_path):
    root = str(tmp_path / "crawl")
    _small_crawl(root, with_junk=False)   # 6 photos, nothing rejected
    examples, report = _artifacts(tmp_path)
    cfg = dataclasses.replace(IngestConfig(), eval_percent=0)
    with pytest.raises(ledger.IngestionPolicyError, match="only 6 train examples, fewer than min_train_examples 32"):
        executor.Executor().Do({}, {"examples": [examples], "ingestion_report": [report]},
                               {"data_root": root, "ingest_config": section_to_json(cfg)})
    with open(os.path.join(report.uri, ledger.REPORT_FILENAME)) as f:
        rep = json.load(f)
    assert rep["counts_by_status"]["ingested"] == 6 == len(rep["files"]) and rep["splits"]["train"] == 6
    assert report.get_int_custom_property("policy_passed") == 0


def test_create_components_puts_the_batch_size_in_the_ingest_config():
    from dcgan_common.config import EvalConfig, PipelineConfig, TrainConfig
    from pipeline.pipeline import create_components

    def ingest_of(config):
        gen = create_components(config)[0]
        assert isinstance(gen, component.ImageExampleGen)
        return json.loads(gen.exec_properties["ingest_config"])

    base = PipelineConfig(eval=EvalConfig(threshold=50.0))
    assert ingest_of(base)["min_train_examples"] == 32
    assert ingest_of(dataclasses.replace(base, train=TrainConfig(batch_size=8)))["min_train_examples"] == 8
    # An explicit minimum wins over the batch size.
    explicit = dataclasses.replace(base, train=TrainConfig(batch_size=8), ingest=IngestConfig(min_train_examples=3))
    assert ingest_of(explicit)["min_train_examples"] == 3


def test_check_data_command_refuses_a_root_below_one_batch(tmp_path, capsys):
    from pipeline import cli as main_cli

    root = str(tmp_path / "crawl")
    _small_crawl(root, with_junk=False)
    report = tmp_path / "r.json"
    assert main_cli.main(["check-data", root, "--report", str(report)]) == cli.EXIT_POLICY_FAILED == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "train examples, fewer than min_train_examples 32" in out
    rep = json.loads(report.read_text())            # written although the policy failed
    assert rep["counts_by_status"]["ingested"] == 6 and not rep["policy"]["passed"]
    report.unlink()
    assert main_cli.main(["check-data", root, "--report", str(report), "--min-train-examples", "1"]) == 0
    rep = json.loads(report.read_text())
    assert rep["policy"]["passed"] and rep["config"]["min_train_examples"] == 1
    assert "policy: passed" in capsys.readouterr().out
    assert main_cli.main(["check-data", root, "--report", str(report), "--min-train-examples", "-1"]) == 2
    assert "min_train_examples" in capsys.readouterr().err


def test_cached_rerun_ingests_a_changed_crawl_again(tmp_path):
    """With caching on, an unchanged crawl is served from TFX's cache and a changed one is ingested
    again: the crawl's listing fingerprint is part of ImageExampleGen's cache key (LocalDagRunner,
    a real sqlite MLMD)."""
    from tfx import v1 as tfx

    from components.image_example_gen import storage
    from dcgan_common.config import PipelineConfig
    from pipeline.local_runner import crawl_fingerprint
    from pipeline.run_record import open_store

    root = str(tmp_path / "crawl")
    _small_crawl(root, with_junk=False)
    config = PipelineConfig(data_root=root, enable_cache=True)
    assert crawl_fingerprint(PipelineConfig(data_root=root)) == ""          # cache off: no listing
    cfg = json.dumps(dataclasses.asdict(IngestConfig(min_train_examples=1)))
    metadata = str(tmp_path / "mlmd.sqlite")

    def run() -> dict:
        gen = component.ImageExampleGen(root, cfg, input_fingerprint=crawl_fingerprint(config))
        tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
            pipeline_name="cache-test", pipeline_root=str(tmp_path / "pipeline"), components=[gen],
            enable_cache=True,
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata)))
        reports = open_store(metadata).get_artifacts_by_type(component.IngestionReport.TYPE_NAME)
        newest = max(reports, key=lambda a: a.id)
        return {"reports": len(reports), "seen": json.loads(storage.read_bytes(
            os.path.join(newest.uri, "ingestion_report.json")))["seen"]}

    first = run()
    assert run() == first                               # unchanged crawl: cached, no new report
    shutil.copy(os.path.join(root, "dress", sorted(os.listdir(os.path.join(root, "dress")))[0]),
                os.path.join(root, "hat", "copied.jpg"))
    changed = run()
    assert changed == {"reports": first["reports"] + 1, "seen": first["seen"] + 1}
