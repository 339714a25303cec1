"""ImageExampleGen as a TFX component: construction, executor on real artifacts, check-data CLI
(the LocalDagRunner run into the stock Transform lives in test_transform.py)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
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
                           {"input_base": root, "ingest_config": section_to_json(cfg)})
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
                               {"input_base": root, "ingest_config": ""})
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
                               {"input_base": root, "ingest_config": section_to_json(cfg)})
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


# --- spans, versions and the driver's fingerprint ------------------------------------------------
CATEGORIES = ("dress", "hat")


def _span_crawl(folder, start: int, count: int) -> None:
    """``folder/<dress|hat>/`` with ``count`` bundled photos each, from sorted index ``start``
    (copied, so their modification time is now)."""
    for cat in CATEGORIES:
        os.makedirs(os.path.join(folder, cat), exist_ok=True)
        for name in sorted(os.listdir(os.path.join(SAMPLE_ROOT, cat)))[start:start + count]:
            shutil.copy(os.path.join(SAMPLE_ROOT, cat, name), os.path.join(folder, cat, name))


class _LocalRuns:
    """ImageExampleGen as ``create_components`` builds it for ``config``, run alone by LocalDagRunner
    on one real sqlite MLMD; ``run()`` returns what MLMD recorded."""

    def __init__(self, tmp_path, **config_fields):
        from dcgan_common.config import EvalConfig, PipelineConfig

        self.metadata = str(tmp_path / "mlmd.sqlite")
        self.pipeline_root = str(tmp_path / "pipeline")
        self.config = PipelineConfig(enable_cache=True, eval=EvalConfig(threshold=1.0),
                                     ingest=IngestConfig(min_train_examples=1), **config_fields)

    def run(self, **overrides) -> dict:
        from tfx import v1 as tfx

        from pipeline.pipeline import create_components
        from pipeline.run_record import open_store

        gen = create_components(dataclasses.replace(self.config, **overrides))[0]
        assert isinstance(gen, component.ImageExampleGen)
        tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
            pipeline_name="span-test", pipeline_root=self.pipeline_root, components=[gen],
            enable_cache=self.config.enable_cache,
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                self.metadata)))
        store = open_store(self.metadata)
        examples = store.get_artifacts_by_type("Examples")
        newest = max(examples, key=lambda a: a.id)
        report = max(store.get_artifacts_by_type(component.IngestionReport.TYPE_NAME), key=lambda a: a.id)
        with open(os.path.join(report.uri, ledger.REPORT_FILENAME)) as f:
            rep = json.load(f)
        return {"examples": len(examples), "span": newest.properties["span"].int_value,
                "custom_span": newest.custom_properties["span"].int_value,
                "fingerprint": newest.custom_properties["input_fingerprint"].string_value,
                "data_root": rep["data_root"], "seen": rep["seen"],
                "report_span": report.custom_properties["span"].int_value}


def test_newest_span_is_ingested_and_its_number_recorded(tmp_path):
    """``crawl/span-{SPAN}`` with spans 9 and 10: TFX's FileBasedDriver picks 10 (by number, not
    by name), the executor reads only that folder, and the Examples artifact records span 10 (as
    property and as TFX's custom property) with the driver's fingerprint; ``data_span`` 9 pins the
    older one."""
    crawl = tmp_path / "crawl"
    _span_crawl(crawl / "span-9", 0, 3)
    _span_crawl(crawl / "span-10", 3, 2)
    runs = _LocalRuns(tmp_path, data_root=str(crawl), data_pattern="span-{SPAN}")
    newest = runs.run()
    assert newest["span"] == newest["custom_span"] == newest["report_span"] == 10
    assert newest["data_root"] == str(crawl / "span-10") and newest["seen"] == 4
    assert newest["fingerprint"].startswith("split:crawl,num_files:4,")
    from pipeline import summary
    from pipeline.local_runner import latest_run_id
    from pipeline.run_record import read_run

    facts = summary.collect(read_run(runs.metadata, "span-test", latest_run_id(runs.metadata, "span-test")))
    assert f"crawl {crawl / 'span-10'} (span 10)" in summary.format_summary(facts)
    pinned = runs.run(data_span=9)
    assert (pinned["span"], pinned["data_root"], pinned["seen"]) == (9, str(crawl / "span-9"), 6)
    assert pinned["examples"] == 2


def test_the_drivers_fingerprint_decides_caching(tmp_path):
    """Caching follows the driver's fingerprint of the chosen span only: unchanged → cached; a
    rewritten file in the newest span → ingested again; a file added to an older span → still
    cached; a new span → ingested, as that span."""
    crawl = tmp_path / "crawl"
    _span_crawl(crawl / "span-1", 0, 3)
    _span_crawl(crawl / "span-2", 3, 3)
    runs = _LocalRuns(tmp_path, data_root=str(crawl), data_pattern="span-{SPAN}")
    first = runs.run()
    assert first["examples"] == 1 and first["span"] == 2
    assert runs.run() == first                                     # unchanged: cached
    hat = crawl / "span-2" / "hat"
    victim = sorted(os.listdir(hat))[0]
    donor = os.path.join(SAMPLE_ROOT, "hat", sorted(os.listdir(os.path.join(SAMPLE_ROOT, "hat")))[-1])
    assert os.path.getsize(donor) != os.path.getsize(hat / victim)
    shutil.copy(donor, hat / victim)                               # same name, other photo
    rewritten = runs.run()
    assert rewritten["examples"] == 2 and rewritten["fingerprint"] != first["fingerprint"]
    assert rewritten["span"] == 2 and rewritten["seen"] == 6
    _span_crawl(crawl / "span-1", 10, 1)                           # an older span changes
    assert runs.run() == rewritten
    _span_crawl(crawl / "span-3", 20, 1)
    third = runs.run()
    assert (third["examples"], third["span"], third["seen"]) == (3, 3, 2)


def test_a_plain_root_is_span_0_and_a_touched_file_is_ingested_again(tmp_path):
    """Without a pattern the data root is the crawl (span 0). The cache key holds the driver's
    fingerprint in the graph every runner compiles (no runner adds one): a file whose modification
    time changed, same bytes, is ingested again."""
    root = tmp_path / "crawl"
    _span_crawl(root, 0, 3)
    runs = _LocalRuns(tmp_path, data_root=str(root))
    first = runs.run()
    assert (first["span"], first["data_root"], first["seen"]) == (0, str(root), 6)
    assert runs.run() == first
    photo = root / "dress" / sorted(os.listdir(root / "dress"))[0]
    stat = os.stat(photo)
    os.utime(photo, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # TFX reads whole seconds
    touched = runs.run()
    assert touched["examples"] == 2 and touched["fingerprint"] != first["fingerprint"]


def test_driver_resolves_the_newest_version_and_the_executor_reads_that_folder(tmp_path):
    """``span-{SPAN}/v{VERSION}``: the stock FileBasedDriver (real MLMD handle) resolves span 2,
    version 2; the executor on its output reads ``span-2/v2`` and records both numbers. Without
    the driver an unresolved pattern is refused, not read as a literal folder."""
    from tfx.components.example_gen.driver import FileBasedDriver
    from tfx.orchestration import metadata

    from components.image_example_gen.crawl_pattern import crawl_input_config

    crawl = tmp_path / "crawl"
    _span_crawl(crawl / "span-1" / "v3", 0, 1)
    _span_crawl(crawl / "span-2" / "v1", 1, 1)
    _span_crawl(crawl / "span-2" / "v2", 2, 2)
    gen = component.ImageExampleGen(str(crawl), section_to_json(IngestConfig(min_train_examples=1)),
                                    input_config=crawl_input_config("span-{SPAN}/v{VERSION}"))
    assert gen.driver_class is FileBasedDriver
    with metadata.Metadata(metadata.sqlite_metadata_connection_config(str(tmp_path / "m.sqlite"))) as m:
        resolved = FileBasedDriver(m).resolve_exec_properties(dict(gen.exec_properties), None, None)
    assert (resolved["span"], resolved["version"]) == (2, 2)
    examples, report = _artifacts(tmp_path)
    outputs = {"examples": [examples], "ingestion_report": [report]}
    executor.Executor().Do({}, outputs, resolved)
    assert (examples.span, examples.version) == (2, 2)
    assert examples.get_int_custom_property("version") == 2
    with open(os.path.join(report.uri, ledger.REPORT_FILENAME)) as f:
        rep = json.load(f)
    assert rep["data_root"] == str(crawl / "span-2" / "v2") and rep["seen"] == 4
    with pytest.raises(ValueError, match="unresolved span/version"):
        executor.Executor().Do({}, outputs, dict(gen.exec_properties))


def test_component_is_a_file_based_example_gen_and_refuses_bad_patterns():
    from tfx.components import FileBasedExampleGen
    from tfx.proto import range_config_pb2

    from components.image_example_gen.crawl_pattern import crawl_input_config, span_range_config

    gen = component.ImageExampleGen("/data")
    assert isinstance(gen, FileBasedExampleGen)                # what the Kubeflow V2 compiler checks
    assert json.loads(gen.exec_properties["input_config"])["splits"][0]["pattern"] == "*/*"
    for folder, span, message in [
            ("v{VERSION}", None, "needs a {SPAN} or a date"), ("span-*", None, "one folder per span"),
            ("{span}", None, "the only placeholders"), ("", 3, "data_span needs"),
            ("/abs/span-{SPAN}", None, "relative"), ("{YYYY}-{MM}", None, "exactly once"),
            ("span-{SPAN:x}", None, "positive integer"), ("a//{SPAN}", None, "empty")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            component.ImageExampleGen("/data", input_config=crawl_input_config(folder),
                                      range_config=span_range_config(span))
    rolling = range_config_pb2.RangeConfig(rolling_range=range_config_pb2.RollingRange(num_spans=2))
    with pytest.raises(ConfigError, match="single span"):
        component.ImageExampleGen("/data", input_config=crawl_input_config("s{SPAN}"), range_config=rolling)
    from tfx.proto import example_gen_pb2
    with pytest.raises(ConfigError, match="must end in"):
        component.ImageExampleGen("/data", input_config=example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="x", pattern="span-{SPAN}/*.jpg")]))


@pytest.mark.parametrize("argv, field", [
    (["--data-pattern", "span-{span}"], "data_pattern"),
    (["--span", "2"], "data_span"),
    (["--data-pattern", "span-{SPAN}", "--span", "-1"], "data_span"),
])
def test_run_refuses_bad_patterns_before_anything_runs(argv, field, capsys):
    from pipeline import cli as main_cli

    assert main_cli.main(["run", "--fid-threshold", "1", "--dry-run", *argv]) == 2
    assert field in capsys.readouterr().err


def test_run_dry_run_shows_the_pattern_and_span(capsys):
    from pipeline import cli as main_cli

    assert main_cli.main(["run", "--fid-threshold", "1", "--dry-run", "--data-pattern", "span-{SPAN}/v{VERSION}",
                          "--span", "4"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert (resolved["data_pattern"], resolved["data_span"]) == ("span-{SPAN}/v{VERSION}", 4)
