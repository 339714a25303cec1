"""The Transform component (components/transform): same results as TFX's stock Transform,
written as uncompressed TFRecords; its plain functions' errors."""
from __future__ import annotations

import functools
import glob
import json
import os
import shutil

import pytest

from components.transform import component, executor, materialize
from conftest import REPO_ROOT, SAMPLE_ROOT
from dcgan_common import features
from dcgan_common.config import TransformComponentConfig, section_to_json

TRANSFORM_CONFIG = section_to_json(TransformComponentConfig(aspect="squash", background=(255, 255, 255)))
CUSTOM_CONFIG = json.loads(TRANSFORM_CONFIG)   # what the stock Transform takes


def test_tfrecord_compression_goes_by_suffix():
    assert features.tfrecord_compression(["a/x-00000-of-00001.gz"]) == "GZIP"
    assert features.tfrecord_compression(["a/x.tfrecord", "a/y.tfrecord"]) == ""
    with pytest.raises(ValueError, match="mixed"):
        features.tfrecord_compression(["a.gz", "b.tfrecord"])
    with pytest.raises(ValueError, match="no TFRecord"):
        features.tfrecord_compression([])


def test_load_preprocessing_fn_binds_custom_config_only_when_accepted():
    fn = executor.load_preprocessing_fn("trainer.preprocessing.preprocessing_fn", CUSTOM_CONFIG)
    assert isinstance(fn, functools.partial) and fn.keywords == {"custom_config": CUSTOM_CONFIG}
    plain = executor.load_preprocessing_fn("os.path.basename", CUSTOM_CONFIG)
    assert plain is os.path.basename
    with pytest.raises(ValueError, match="dotted"):
        executor.load_preprocessing_fn("preprocessing_fn", {})
    with pytest.raises(AttributeError):
        executor.load_preprocessing_fn("trainer.preprocessing.no_such_fn", {})


def test_component_construction_checks_its_arguments():
    from tfx.types import channel, standard_artifacts
    examples = channel.Channel(type=standard_artifacts.Examples)
    schema = channel.Channel(type=standard_artifacts.Schema)
    c = component.ImageTransform(examples, schema, "trainer.preprocessing.preprocessing_fn", TRANSFORM_CONFIG)
    assert set(c.outputs) == {"transform_graph", "transformed_examples"}
    assert executor.parse_config(c.exec_properties["transform_config"]).batch_size \
        == materialize.DEFAULT_BATCH_SIZE
    defaults = component.ImageTransform(examples, schema, "trainer.preprocessing.preprocessing_fn")
    assert executor.parse_config(defaults.exec_properties["transform_config"]) == TransformComponentConfig()
    with pytest.raises(ValueError, match="dotted"):
        component.ImageTransform(examples, schema, "")
    with pytest.raises(ValueError, match="transform.batch_size must be >= 1"):
        component.ImageTransform(examples, schema, "trainer.preprocessing.preprocessing_fn",
                                 section_to_json(TransformComponentConfig(batch_size=0)))
    with pytest.raises(ValueError, match="transform.background must be three ints"):
        component.ImageTransform(examples, schema, "trainer.preprocessing.preprocessing_fn",
                                 '{"background": [0, 0, 256]}')
    with pytest.raises(ValueError, match="unknown TransformComponentConfig fields"):
        component.ImageTransform(examples, schema, "trainer.preprocessing.preprocessing_fn",
                                 '{"transform": {"aspect": "pad"}}')


def test_analyze_and_transform_refuses_bad_splits(tmp_path):
    def call(examples_uri, splits, analyze=("train",), batch_size=8):
        materialize.analyze_and_transform(
            str(examples_uri), splits, os.path.join(REPO_ROOT, "pipeline", "raw_schema.pbtxt"),
            lambda x: x, str(tmp_path / "graph"), str(tmp_path / "out"), str(tmp_path / "tmp"),
            analyze_splits=analyze, batch_size=batch_size)

    os.makedirs(tmp_path / "examples" / "Split-train")
    with pytest.raises(ValueError, match="no splits"):
        call(tmp_path / "examples", [])
    with pytest.raises(ValueError, match="analyze splits"):
        call(tmp_path / "examples", ["eval"])
    with pytest.raises(ValueError, match="batch_size"):
        call(tmp_path / "examples", ["train"], batch_size=0)
    with pytest.raises(FileNotFoundError, match="holds no files"):
        call(tmp_path / "examples", ["train"])


def _read_examples(paths: list[str], compression: str) -> list[tuple[bytes, int]]:
    import numpy as np
    import tensorflow as tf
    spec = {features.IMAGE_KEY: tf.io.FixedLenFeature(features.IMAGE_SHAPE, tf.float32),
            features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)}
    out = []
    for rec in tf.data.TFRecordDataset(paths, compression_type=compression):
        ex = tf.io.parse_single_example(rec, spec)
        out.append((np.asarray(ex[features.IMAGE_KEY]).tobytes(), int(ex[features.LABEL_KEY])))
    return sorted(out)


def _only_dir(pattern: str) -> str:
    found = glob.glob(pattern)
    assert len(found) == 1, (pattern, found)
    return found[0]


@pytest.mark.slow
def test_same_examples_and_analyzer_outputs_as_the_stock_transform(tmp_path):
    """ImageExampleGen → ImportSchemaGen → {stock Transform, ImageTransform} with LocalDagRunner and
    sqlite MLMD: identical transformed examples and analyzer assets; ours uncompressed."""
    import dataclasses

    import tensorflow_transform as tft
    from tfx import v1 as tfx

    from components.image_example_gen.component import ImageExampleGen
    from dcgan_common.config import IngestConfig
    from trainer import preprocessing

    root = str(tmp_path / "crawl")
    for cat in ("dress", "hat", "shoes"):
        os.makedirs(os.path.join(root, cat))
        for name in sorted(os.listdir(os.path.join(SAMPLE_ROOT, cat)))[:4]:
            shutil.copy(os.path.join(SAMPLE_ROOT, cat, name), os.path.join(root, cat, name))
    cfg = dataclasses.replace(IngestConfig(), eval_percent=30, min_train_examples=1)
    gen = ImageExampleGen(data_root=root, ingest_config=section_to_json(cfg))
    schema = tfx.components.ImportSchemaGen(schema_file=os.path.join(REPO_ROOT, "pipeline", "raw_schema.pbtxt"))
    stock = tfx.components.Transform(
        examples=gen.outputs["examples"], schema=schema.outputs["schema"],
        preprocessing_fn="trainer.preprocessing.preprocessing_fn", custom_config=CUSTOM_CONFIG,
        disable_statistics=True)
    ours = component.ImageTransform(   # batches smaller than a split: several per split
        examples=gen.outputs["examples"], schema=schema.outputs["schema"],
        preprocessing_fn="trainer.preprocessing.preprocessing_fn",
        transform_config=section_to_json(TransformComponentConfig(batch_size=5)),
    ).with_id("ImageTransform")
    mlmd_path = str(tmp_path / "mlmd.sqlite")
    pipe = tfx.dsl.Pipeline(
        pipeline_name="transform-test", pipeline_root=str(tmp_path / "root"),
        components=[gen, schema, stock, ours],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(mlmd_path),
        beam_pipeline_args=["--direct_running_mode=in_memory", "--direct_num_workers=1"])
    tfx.orchestration.LocalDagRunner().run(pipe)

    run_root = str(tmp_path / "root")
    for split in ("train", "eval"):
        stock_files = glob.glob(os.path.join(run_root, "Transform", "transformed_examples", "*",
                                             f"Split-{split}", "*"))
        our_files = glob.glob(os.path.join(run_root, "ImageTransform", "transformed_examples", "*",
                                           f"Split-{split}", "*"))
        assert stock_files and all(f.endswith(".gz") for f in stock_files)
        assert our_files and all(f.endswith(materialize.EXAMPLES_SUFFIX) for f in our_files)
        for f in our_files:   # really uncompressed: no gzip magic number
            with open(f, "rb") as fh:
                assert fh.read(2) != b"\x1f\x8b"
        ours_examples = _read_examples(our_files, features.tfrecord_compression(our_files))
        assert ours_examples == _read_examples(stock_files, "GZIP")
        assert len(ours_examples) >= 1

    stock_graph = tft.TFTransformOutput(_only_dir(os.path.join(run_root, "Transform", "transform_graph", "*")))
    our_graph = tft.TFTransformOutput(_only_dir(os.path.join(run_root, "ImageTransform", "transform_graph", "*")))
    assert our_graph.transformed_feature_spec() == stock_graph.transformed_feature_spec()
    assert preprocessing.read_analyzer_outputs(our_graph) == preprocessing.read_analyzer_outputs(stock_graph)
    assert not glob.glob(os.path.join(run_root, "ImageTransform", "transform_graph", "*",
                                      executor._TEMP_DIRNAME))

    # The artifact as MLMD records it: split names and per-split counts.
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2
    conn = metadata_store_pb2.ConnectionConfig()
    conn.sqlite.filename_uri = mlmd_path
    store = metadata_store.MetadataStore(conn)
    ours_art = [a for a in store.get_artifacts_by_type("Examples") if "/ImageTransform/" in a.uri]
    assert len(ours_art) == 1
    props = ours_art[0].custom_properties
    assert ours_art[0].properties["split_names"].string_value == '["train", "eval"]'
    counted = props["num_examples_train"].int_value + props["num_examples_eval"].int_value
    assert counted == 12


def test_pipeline_passes_the_transform_config():
    import dataclasses

    from dcgan_common.config import (ConfigError, EvalConfig, IngestConfig, PipelineConfig,
                                     TransformConfig)
    from pipeline.pipeline import create_components

    config = PipelineConfig(eval=EvalConfig(threshold=50.0), ingest=IngestConfig(background=(0, 10, 20)),
                            transform=TransformConfig(aspect="pad", batch_size=64))
    transform = create_components(config)[2]
    assert isinstance(transform, component.ImageTransform) and transform.id == "Transform"
    assert executor.parse_config(transform.exec_properties["transform_config"]) == \
        TransformComponentConfig(aspect="pad", batch_size=64, background=(0, 10, 20))
    with pytest.raises(ConfigError, match="batch_size"):
        create_components(dataclasses.replace(config, transform=TransformConfig(batch_size=0)))
