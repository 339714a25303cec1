"""FidEvaluator + atomic Pusher through real LocalDagRunner pipelines (real MLMD sqlite, real files).

Tiny data: ~40 real photos from data/sample written as transformed examples (gzip TFRecords,
``image`` float32 [64, 64, 3] in [-1, 1]); tiny exported generators with the project's serving
signature. The evaluator uses the built-in "downsample-8x8" extractor (tests/smoke only) so each
pipeline run takes seconds; the Inception path is covered by test_inception.py.
"""
import glob
import json
import math
import os
import re

import numpy as np
import pytest
from PIL import Image

from dcgan_common import features

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "data", "sample")
EXTRACTOR = "downsample-8x8"
NUM_GENERATED = 64


def _sample_images(count: int) -> np.ndarray:
    paths = sorted(glob.glob(os.path.join(SAMPLE, "*", "*")))
    paths = [p for p in paths if p.lower().endswith((".jpg", ".jpeg", ".png"))][:count]
    assert len(paths) == count, f"need {count} photos in {SAMPLE}"
    out = []
    for path in paths:
        with Image.open(path) as image:
            out.append(np.asarray(image.convert("RGB").resize((64, 64), Image.LANCZOS)))
    return np.stack(out)


def write_transformed_examples(uri: str, images: np.ndarray) -> None:
    """Split-train / Split-eval gzip TFRecords of transformed tf.Examples (image in [-1, 1])."""
    import tensorflow as tf

    halves = {"train": images[: len(images) * 3 // 4], "eval": images[len(images) * 3 // 4:]}
    for split, part in halves.items():
        folder = os.path.join(uri, f"Split-{split}")
        os.makedirs(folder, exist_ok=True)
        options = tf.io.TFRecordOptions(compression_type="GZIP")
        with tf.io.TFRecordWriter(os.path.join(folder, "transformed_examples-00000-of-00001.gz"),
                                  options) as writer:
            for image in part:
                ex = tf.train.Example(features=tf.train.Features(feature={
                    features.IMAGE_KEY: tf.train.Feature(float_list=tf.train.FloatList(
                        value=features.from_uint8(image).ravel())),
                    features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
                }))
                writer.write(ex.SerializeToString())


def export_generator(uri: str, kind: str) -> str:
    """A tiny Keras generator exported like the Trainer's, under ``<uri>/Format-Serving``.

    kind: "good" (tanh of a seeded dense layer), "worse" (same, squashed towards black),
    "nan" (NaN output: a broken generator).
    """
    import keras
    import tensorflow as tf

    inputs = keras.Input((features.LATENT_DIM,), name=features.NOISE_INPUT)
    dense = keras.layers.Dense(int(np.prod(features.IMAGE_SHAPE)), activation="tanh",
                               kernel_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=7),
                               bias_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=8))
    x = keras.layers.Reshape(features.IMAGE_SHAPE)(dense(inputs))
    model = keras.Model(inputs, x)
    scale, shift = {"good": (1.0, 0.0), "worse": (0.1, -0.85), "nan": (math.nan, 0.0)}[kind]

    class Generator(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, features.LATENT_DIM], tf.float32,
                                                    name=features.NOISE_INPUT)])
        def serve(self, noise):
            return {features.IMAGES_OUTPUT: self.model(noise) * scale + shift}

    module = Generator()
    path = os.path.join(uri, "Format-Serving")
    tf.saved_model.save(module, path, signatures={features.SERVING_SIGNATURE: module.serve})
    return uri


def eval_config(threshold: float | None, metrics=("fid", "kid"), **fields) -> str:
    """The FidEvaluator's ``eval_config`` for these tests: an EvalConfig section with two metrics
    and every split unless told otherwise (``fields`` are further EvalConfig fields)."""
    from dcgan_common.config import EvalConfig, section_to_json

    return section_to_json(EvalConfig(threshold=threshold, metrics=tuple(metrics), splits=(), **fields))


def build_pipeline(root: str, model_uri: str, examples_uri: str, serving_dir: str,
                   threshold: float, name: str = "fidtest", metrics=("fid", "kid"), **gate_kwargs):
    import tfx
    from tfx import v1 as tfx_v1
    from tfx.types import standard_artifacts

    from components.fid_evaluator.component import FidEvaluator
    from components.pusher.component import AtomicPusher

    version = {"tfx_version": tfx.__version__}
    examples = tfx_v1.dsl.Importer(
        source_uri=examples_uri, artifact_type=standard_artifacts.Examples,
        properties={"split_names": json.dumps(["train", "eval"])},
        custom_properties=version).with_id("examples_importer")
    model = tfx_v1.dsl.Importer(source_uri=model_uri, artifact_type=standard_artifacts.Model,
                                custom_properties=version).with_id("model_importer")
    baseline = tfx_v1.dsl.Resolver(
        strategy_class=tfx_v1.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx_v1.dsl.Channel(type=standard_artifacts.Model),
        model_blessing=tfx_v1.dsl.Channel(type=standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model")
    evaluator = FidEvaluator(
        model=model.outputs["result"], examples=examples.outputs["result"],
        baseline_model=baseline.outputs["model"], extractor=EXTRACTOR,
        eval_config=eval_config(threshold, metrics, num_generated=NUM_GENERATED, seed=3, **gate_kwargs))
    pusher = AtomicPusher(
        model=model.outputs["result"], model_blessing=evaluator.outputs["blessing"],
        evaluation=evaluator.outputs["evaluation"],
        push_destination=tfx_v1.proto.PushDestination(
            filesystem=tfx_v1.proto.PushDestination.Filesystem(base_directory=serving_dir)))
    return tfx_v1.dsl.Pipeline(
        pipeline_name=name, pipeline_root=os.path.join(root, "pipeline"),
        metadata_connection_config=tfx_v1.orchestration.metadata.sqlite_metadata_connection_config(
            os.path.join(root, "metadata.sqlite")),
        components=[examples, model, baseline, evaluator, pusher])


def run(pipeline):
    from tfx import v1 as tfx_v1
    tfx_v1.orchestration.LocalDagRunner().run(pipeline)


def latest_blessing(root: str) -> tuple[dict, dict]:
    """(metrics.json of the newest evaluation, blessing marker names) from the pipeline root."""
    evals = sorted(glob.glob(os.path.join(root, "pipeline", "FidEvaluator", "evaluation", "*")),
                   key=lambda p: int(os.path.basename(p)))
    blessings = sorted(glob.glob(os.path.join(root, "pipeline", "FidEvaluator", "blessing", "*")),
                       key=lambda p: int(os.path.basename(p)))
    with open(os.path.join(evals[-1], "metrics.json")) as handle:
        metrics = json.load(handle)
    return metrics, {"markers": sorted(os.listdir(blessings[-1])), "evaluation_dir": evals[-1]}


def pushed_versions(serving_dir: str) -> list[str]:
    if not os.path.isdir(serving_dir):
        return []
    return sorted(os.listdir(serving_dir))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Examples + three generators, and the good/worse FID computed by the pure function."""
    from components.fid_evaluator import evaluate

    base = tmp_path_factory.mktemp("fid_data")
    examples = str(base / "examples")
    write_transformed_examples(examples, _sample_images(40))
    models = {kind: export_generator(str(base / f"model_{kind}"), kind) for kind in ("good", "worse", "nan")}
    fid, manifold = {}, {}
    for kind in ("good", "worse"):
        result = evaluate.evaluate_generator(
            os.path.join(models[kind], "Format-Serving"), examples, metric_names=["fid", "kid"],
            num_generated=NUM_GENERATED, seed=3, extractor_name=EXTRACTOR)
        assert result.error is None and result.n_real == 40 and result.n_gen == NUM_GENERATED
        fid[kind] = result.metrics["fid"]
    assert fid["worse"] > fid["good"] > 0, fid
    result = evaluate.evaluate_generator(
        os.path.join(models["good"], "Format-Serving"), examples,
        metric_names=["precision_recall", "density_coverage"], num_generated=NUM_GENERATED, seed=3,
        extractor_name=EXTRACTOR)
    manifold = result.metrics
    # The tiny dense generator reaches no real image (recall 0) but lies among them (coverage
    # strictly inside (0, 1), so floors just above and below it are meaningful).
    assert manifold["recall"] < 0.5 and 0 < manifold["coverage"] < 1, manifold
    return {"examples": examples, "models": models, "fid": fid, "manifold": manifold}


def test_threshold_unset_is_a_construction_error():
    from tfx import v1 as tfx_v1
    from tfx.types import standard_artifacts

    from components.fid_evaluator.component import FidEvaluator
    model = tfx_v1.dsl.Channel(type=standard_artifacts.Model)
    examples = tfx_v1.dsl.Channel(type=standard_artifacts.Examples)
    with pytest.raises(ValueError, match="threshold"):
        FidEvaluator(model=model, examples=examples, eval_config=eval_config(None))
    with pytest.raises(ValueError, match="gate_metric"):
        FidEvaluator(model=model, examples=examples, eval_config=eval_config(1.0, metrics=["kid"]))
    with pytest.raises(ValueError, match=r"unknown names \['bogus'\]; valid"):
        FidEvaluator(model=model, examples=examples, eval_config=eval_config(1.0, metrics=["fid", "bogus"]))
    with pytest.raises(ValueError, match="unknown extractor"):
        FidEvaluator(model=model, examples=examples, eval_config=eval_config(1.0), extractor="pixels")


def test_nan_generator_is_not_pushed(tmp_path, data):
    serving = str(tmp_path / "serving")
    run(build_pipeline(str(tmp_path), data["models"]["nan"], data["examples"], serving, threshold=1e9))
    metrics, blessing = latest_blessing(str(tmp_path))
    assert blessing["markers"] == ["NOT_BLESSED"]
    assert metrics["gate"]["blessed"] is False and "generation failed" in metrics["error"]
    assert metrics["metrics"]["fid"] is None          # NaN is written as null, never as a number
    assert pushed_versions(serving) == []


def test_just_above_threshold_is_not_pushed(tmp_path, data):
    serving = str(tmp_path / "serving")
    threshold = data["fid"]["good"] - 1e-4
    run(build_pipeline(str(tmp_path), data["models"]["good"], data["examples"], serving, threshold))
    metrics, blessing = latest_blessing(str(tmp_path))
    assert blessing["markers"] == ["NOT_BLESSED"]
    assert metrics["metrics"]["fid"] == pytest.approx(data["fid"]["good"], rel=1e-9)
    assert "> threshold" in metrics["gate"]["reason"]
    assert pushed_versions(serving) == []


def test_just_below_then_worse_second_run(tmp_path, data):
    import tensorflow as tf
    import tensorflow_model_analysis as tfma

    serving = str(tmp_path / "serving")
    root = str(tmp_path)
    # Run 1: just below the threshold, no baseline yet -> pushed, atomically, with metrics.json.
    run(build_pipeline(root, data["models"]["good"], data["examples"], serving,
                       threshold=data["fid"]["good"] + 1e-4))
    metrics, blessing = latest_blessing(root)
    assert blessing["markers"] == ["BLESSED"] and metrics["gate"]["rubber_stamp"] is True
    versions = pushed_versions(serving)
    assert len(versions) == 1 and versions[0].isdigit()      # no .tmp-* folder left behind
    pushed = os.path.join(serving, versions[0])
    with open(os.path.join(pushed, "metrics.json")) as handle:
        pushed_metrics = json.load(handle)
    assert pushed_metrics["metrics"]["fid"] == pytest.approx(data["fid"]["good"], rel=1e-9)
    assert pushed_metrics["n_real"] == 40 and pushed_metrics["n_gen"] == NUM_GENERATED
    assert pushed_metrics["protocol"] and pushed_metrics["extractor_hash"]
    generator = tf.saved_model.load(pushed).signatures[features.SERVING_SIGNATURE]
    out = generator(**{features.NOISE_INPUT: tf.zeros([2, features.LATENT_DIM])})
    assert out[features.IMAGES_OUTPUT].shape == (2, *features.IMAGE_SHAPE)
    validation = tfma.load_validation_result(blessing["evaluation_dir"])
    assert validation.validation_ok and validation.rubber_stamp
    assert os.path.getsize(os.path.join(blessing["evaluation_dir"], "samples.png")) > 0

    # Run 2: a worse generator under a generous threshold; the baseline (run 1) wins -> not pushed.
    run(build_pipeline(root, data["models"]["worse"], data["examples"], serving, threshold=1e9))
    metrics, blessing = latest_blessing(root)
    assert blessing["markers"] == ["NOT_BLESSED"]
    assert metrics["baseline_metrics"]["fid"] == pytest.approx(data["fid"]["good"], rel=1e-9)
    assert metrics["metrics"]["fid"] == pytest.approx(data["fid"]["worse"], rel=1e-9)
    assert metrics["real_stats_cached"] is True               # second evaluation skipped real extraction
    assert "does not beat baseline" in metrics["gate"]["reason"]
    assert pushed_versions(serving) == versions
    validation = tfma.load_validation_result(blessing["evaluation_dir"])
    assert not validation.validation_ok
    assert validation.metric_validations_per_slice[0].failures[0].metric_key.is_diff


def test_candidate_that_is_the_baseline_skips_the_change_threshold():
    """A model compared with itself neither 'beats' nor fails to beat itself: only the bound counts."""
    from components.fid_evaluator import gate

    proto = gate.metric_threshold(400.0, min_improvement=5.0)
    same = gate.decide("fid", 382.576, 382.576, proto, baseline_is_candidate=True)
    assert same.blessed and not same.rubber_stamp and not same.failures
    assert "is the baseline itself" in same.reason and "beats" not in same.reason
    assert not gate.validation_result(same, proto).rubber_stamp
    # The value threshold still applies (e.g. tightened since the model was blessed).
    tight = gate.decide("fid", 382.576, 382.576, gate.metric_threshold(300.0), baseline_is_candidate=True)
    assert not tight.blessed and "> threshold" in tight.reason
    # A different model with the same score must still beat the baseline by the margin.
    other = gate.decide("fid", 382.576, 382.576, proto)
    assert not other.blessed and "does not beat baseline" in other.reason


def test_identical_rerun_does_not_push_the_same_generator_again(tmp_path, data):
    """Run twice with the same model artifact: run 2 finds it as its own baseline (latest blessed)
    and the Pusher records the live version instead of pushing a copy; the summary says where."""
    from pipeline import run_record, summary

    serving, root = str(tmp_path / "serving"), str(tmp_path)
    threshold = data["fid"]["good"] + 1e-4
    run(build_pipeline(root, data["models"]["good"], data["examples"], serving, threshold))
    versions = pushed_versions(serving)
    assert len(versions) == 1

    run(build_pipeline(root, data["models"]["good"], data["examples"], serving, threshold))
    metrics, blessing = latest_blessing(root)
    assert blessing["markers"] == ["BLESSED"]
    assert metrics["gate"]["baseline_is_candidate"] is True
    assert "is the baseline itself" in metrics["gate"]["reason"]
    assert metrics["baseline_metrics"]["fid"] == metrics["metrics"]["fid"]
    assert pushed_versions(serving) == versions                # no second copy

    record = run_record.read_run(os.path.join(root, "metadata.sqlite"), "fidtest")
    push = record.output(summary.PUSHER, "pushed_model").properties
    assert push["pushed"] == 1 and push["already_pushed"] == 1
    assert push["pushed_version"] == versions[0]
    assert push["pushed_destination"] == os.path.join(serving, versions[0])
    assert "not pushed again" in push["push_message"]
    text = summary.format_summary(summary.collect(record))
    assert f"generator already live at {os.path.join(serving, versions[0])}; not pushed again" in text
    assert "the candidate is the baseline itself" in text


def test_recall_and_coverage_floors_through_the_pipeline(tmp_path, data):
    """Floors just above the measured recall and coverage refuse a model the FID threshold would
    pass; the blessing (stock ModelBlessing) says which conditions failed. Just below: blessed."""
    import tensorflow_model_analysis as tfma
    from pipeline import run_record, summary

    serving, root = str(tmp_path / "serving"), str(tmp_path)
    recall, coverage = data["manifold"]["recall"], data["manifold"]["coverage"]
    metrics = ("fid", "kid", "precision_recall", "density_coverage")
    run(build_pipeline(root, data["models"]["good"], data["examples"], serving,
                       threshold=data["fid"]["good"] + 1e-4, metrics=metrics,
                       min_recall=0.5, min_coverage=coverage + 1e-6))
    evaluation, blessing = latest_blessing(root)
    assert blessing["markers"] == ["NOT_BLESSED"] and pushed_versions(serving) == []
    assert evaluation["metrics"]["recall"] == pytest.approx(recall, abs=0)
    assert evaluation["gate"]["failed_conditions"] == ["min_recall", "min_coverage"]
    assert evaluation["gate"]["min_recall"] == 0.5
    reason = evaluation["gate"]["reason"]
    assert reason.startswith("not blessed (min_recall, min_coverage failed):")
    assert f"recall {recall:.6g} < floor" in reason and f"coverage {coverage:.6g} < floor" in reason
    assert "threshold" not in reason.split(":", 1)[1]    # the FID condition passed
    validation = tfma.load_validation_result(blessing["evaluation_dir"])
    failures = validation.metric_validations_per_slice[0].failures
    assert [f.metric_key.name for f in failures] == ["recall", "coverage"]
    assert failures[1].metric_threshold.value_threshold.lower_bound.value == pytest.approx(coverage + 1e-6)
    record = run_record.read_run(os.path.join(root, "metadata.sqlite"), "fidtest")
    props = record.output(summary.EVALUATOR, "blessing").properties
    assert props["blessed"] == 0 and props["failed_conditions"] == "min_recall,min_coverage"
    assert props["blessing_message"] == reason
    text = summary.format_summary(summary.collect(record))
    assert "gate: NOT BLESSED — not blessed (min_recall, min_coverage failed)" in text
    assert f"coverage = {coverage:.4g}" in text

    run(build_pipeline(root, data["models"]["good"], data["examples"], serving,
                       threshold=data["fid"]["good"] + 1e-4, metrics=metrics,
                       min_coverage=coverage - 1e-6))
    evaluation, blessing = latest_blessing(root)
    assert blessing["markers"] == ["BLESSED"] and evaluation["gate"]["failed_conditions"] == []
    assert f"coverage {coverage:.6g} >= floor" in evaluation["gate"]["reason"]
    assert "recall" not in evaluation["gate"]["reason"]    # min_recall 0: off
    assert len(pushed_versions(serving)) == 1


def test_floors_need_their_metric_and_a_share():
    from tfx import v1 as tfx_v1
    from tfx.types import standard_artifacts

    from components.fid_evaluator.component import FidEvaluator
    model = tfx_v1.dsl.Channel(type=standard_artifacts.Model)
    examples = tfx_v1.dsl.Channel(type=standard_artifacts.Examples)
    with pytest.raises(ValueError, match="min_recall needs the 'precision_recall' metric"):
        FidEvaluator(model=model, examples=examples, eval_config=eval_config(1.0, min_recall=0.1))
    with pytest.raises(ValueError, match=r"min_coverage must be a number in \[0, 1\]"):
        FidEvaluator(model=model, examples=examples,
                     eval_config=eval_config(1.0, metrics=["fid", "density_coverage"], min_coverage=1.5))
    # 0 = off: no metric needed
    FidEvaluator(model=model, examples=examples, eval_config=eval_config(1.0, min_recall=0.0))


GATE_CASES = {
    # name: (fid, recall, coverage, baseline fid) with threshold 100, floors 0.3 / 0.4, margin 1
    "all pass": ((80.0, 0.5, 0.6, 90.0), []),
    "threshold": ((120.0, 0.5, 0.6, 130.0), ["threshold"]),
    "min_recall": ((80.0, 0.2, 0.6, 90.0), ["min_recall"]),
    "min_coverage": ((80.0, 0.5, 0.1, 90.0), ["min_coverage"]),
    "min_improvement": ((80.0, 0.5, 0.6, 80.5), ["min_improvement"]),
    "all four": ((120.0, 0.2, 0.1, 110.0), ["threshold", "min_recall", "min_coverage", "min_improvement"]),
    "recall not computed": ((80.0, float("nan"), 0.6, 90.0), ["min_recall"]),
}


@pytest.mark.parametrize("case", sorted(GATE_CASES))
def test_gate_reports_every_failing_condition(case):
    from components.fid_evaluator import gate

    (fid, recall, coverage, baseline), expected = GATE_CASES[case]
    proto = gate.metric_threshold(100.0, min_improvement=1.0)
    floors = gate.check_floors({"min_recall": 0.3, "min_coverage": 0.4}, ["fid", "precision_recall",
                                                                          "density_coverage"])
    assert floors == {"recall": 0.3, "coverage": 0.4}
    decision = gate.decide("fid", fid, baseline, proto, floors=floors,
                           metrics={"fid": fid, "recall": recall, "coverage": coverage})
    assert decision.failed_conditions == expected
    assert decision.blessed is (not expected)
    marks = {"threshold": r"> threshold", "min_recall": r"recall (\S+ < floor|is not finite)",
             "min_coverage": r"coverage (\S+ < floor|is not finite)",
             "min_improvement": r"does not beat baseline"}
    for condition, mark in marks.items():
        assert bool(re.search(mark, decision.reason)) is (condition in expected), decision.reason
    if expected:
        assert decision.reason.startswith(f"not blessed ({', '.join(expected)} failed): ")
        result = gate.validation_result(decision, proto)
        assert not result.validation_ok
        assert len(result.metric_validations_per_slice[0].failures) == len(expected)
    else:
        assert "recall 0.5 >= floor 0.3; coverage 0.6 >= floor 0.4" in decision.reason
    # Without floors the same inputs only see the threshold and the baseline.
    plain = gate.decide("fid", fid, baseline, proto)
    assert plain.failed_conditions == [c for c in expected if c in ("threshold", "min_improvement")]
