"""Analyze and transform the ingested examples with tf.Transform, writing uncompressed TFRecords.

What TFX's stock Transform does for this pipeline, minus the one step that cost more than the rest
of the data path: the stock executor always writes the materialized examples gzip-compressed
(``WriteToTFRecord(file_name_suffix=".gz")``, zlib's default level). Our transformed example is
12,288 float32 values (48 KiB) per image; compressing it cost ~3.8 ms of CPU per image on the shared
photos, more than decoding the JPEG, and un-gzipping it again capped the Trainer's first epoch.
Here the same tf.Transform calls run (``AnalyzeDataset`` on the analyze splits,
``TransformDataset`` on every split, ``WriteTransformFn``) and the examples are written as plain
TFRecords (``.tfrecord``). Readers choose the compression from the file suffix
(``dcgan_common.features.tfrecord_compression``), so gzip files from the stock component still read.

Layout written (the same as the stock component's, so ``tft.TFTransformOutput`` and the Trainer's
``fn_args`` work unchanged):
  ``<transform_graph_uri>/transform_fn/``, ``.../transformed_metadata/`` (WriteTransformFn);
  ``<transformed_examples_uri>/Split-<split>/transformed_examples-SSSSS-of-NNNNN.tfrecord``.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Sequence

import apache_beam as beam

from dcgan_common import features
from dcgan_common.config import TransformConfig

logger = logging.getLogger(__name__)

#: File prefix and suffix of the materialized examples (the stock prefix; no compression).
EXAMPLES_PREFIX = "transformed_examples"
EXAMPLES_SUFFIX = ".tfrecord"
#: Records per tf.Transform batch (``TransformConfig.batch_size``'s default). tf.Transform would
#: otherwise tune it up to 1,000; a batch holds the stored images (~25 KB each) and their float32
#: outputs (48 KiB each), so 256 keeps a worker at ~20 MB per batch in flight whatever the size of
#: the crawl.
DEFAULT_BATCH_SIZE = TransformConfig.batch_size
COUNTER_NAMESPACE = "dcgan_tfx.transform"


def analyze_and_transform(examples_uri: str, splits: Sequence[str], schema_path: str,
                          preprocessing_fn: Callable, transform_graph_uri: str,
                          transformed_examples_uri: str, temp_dir: str,
                          make_pipeline: Callable[[], beam.Pipeline] = beam.Pipeline,
                          analyze_splits: Sequence[str] = ("train",),
                          batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, int]:
    """Run tf.Transform over an Examples artifact and materialize every split.

    Args:
      examples_uri: the raw Examples artifact's URI (``Split-<name>/`` folders of TFRecords; gzip
        or not, by suffix). Local path or gs://.
      splits: the splits to transform and write (e.g. ["train", "eval"]).
      schema_path: the raw data's schema (text ``schema.pbtxt``).
      preprocessing_fn: ``inputs -> outputs`` (custom config already bound).
      transform_graph_uri: where ``transform_fn/`` and ``transformed_metadata/`` go.
      transformed_examples_uri: where ``Split-<name>/transformed_examples-*.tfrecord`` go.
      temp_dir: tf.Transform's scratch space (deleted by the caller).
      make_pipeline: returns the (unstarted) Beam pipeline to build on; the executor passes TFX's,
        which carries ``beam_pipeline_args`` (DirectRunner mode, Dataflow settings).
      analyze_splits: splits the analyzers see (default: train only, as the stock component).
      batch_size: records per tf.Transform batch (bounds a worker's memory).
    Returns:
      ``{split: examples written}``.
    Raises:
      ValueError: no splits, an analyze split not among them, or batch_size < 1.
      FileNotFoundError: a split folder holds no files.
      Errors of the preprocessing_fn itself surface from Beam as raised there.
    """
    import tensorflow_transform.beam as tft_beam

    splits = list(splits)
    _check_arguments(splits, analyze_splits, batch_size)
    patterns = _split_patterns(examples_uri, splits)
    schema = _read_schema(schema_path)

    pipeline = make_pipeline()
    with tft_beam.Context(temp_dir=temp_dir, desired_batch_size=batch_size,
                          use_deep_copy_optimization=True):
        raw, adapter_config = _read_splits(pipeline, patterns, schema, batch_size)
        analyze_data = ([raw[s] for s in analyze_splits]
                        | "FlattenAnalyzeSplits" >> beam.Flatten(pipeline=pipeline))
        transform_fn = (analyze_data, adapter_config) | "Analyze" >> tft_beam.AnalyzeDataset(preprocessing_fn)
        _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(transform_graph_uri)
        for split in splits:
            _transform_and_write(raw[split], adapter_config, transform_fn, split, transformed_examples_uri)
    result = pipeline.run()
    result.wait_until_finish()
    counts = {split: _counter_value(result, f"examples_{split}") for split in splits}
    logger.info("Transform wrote %s examples (uncompressed TFRecords)", counts)
    return counts


def _check_arguments(splits: list[str], analyze_splits: Sequence[str], batch_size: int) -> None:
    """Raises ValueError: no splits, analyze splits empty or not among them, or batch_size < 1."""
    if not splits:
        raise ValueError("no splits to transform")
    missing = [s for s in analyze_splits if s not in splits]
    if missing or not analyze_splits:
        raise ValueError(f"analyze splits {list(analyze_splits)} must be a non-empty subset of {splits}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def _split_patterns(examples_uri: str, splits: list[str]) -> dict[str, str]:
    """{split: file glob of its folder}. Raises FileNotFoundError for a split folder with no files."""
    import tensorflow as tf

    patterns = {}
    for split in splits:
        pattern = os.path.join(features.split_dir(examples_uri, split), "*")
        if not tf.io.gfile.glob(pattern):
            raise FileNotFoundError(f"split {split!r} of {examples_uri} holds no files ({pattern})")
        patterns[split] = pattern
    return patterns


def _read_schema(schema_path: str):
    """The text ``schema.pbtxt`` at ``schema_path`` as a tensorflow_metadata Schema proto."""
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    with tf.io.gfile.GFile(schema_path) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


def _read_splits(pipeline, patterns: dict[str, str], schema, batch_size: int):
    """({split: PCollection of record batches}, the tensor adapter config they share)."""
    from tfx_bsl.public import tfxio

    raw, sources = {}, {}
    for split, pattern in patterns.items():
        sources[split] = tfxio.TFExampleRecord(file_pattern=pattern, schema=schema)
        raw[split] = pipeline | f"Read[{split}]" >> sources[split].BeamSource(batch_size)
    first = next(iter(patterns))
    return raw, sources[first].TensorAdapterConfig()


def _transform_and_write(raw_split, adapter_config, transform_fn, split: str,
                         transformed_examples_uri: str) -> None:
    """Apply ``transform_fn`` to one split and write it as uncompressed TFRecords of tf.Examples."""
    import tensorflow_transform.beam as tft_beam

    # Output feature types are static (features.py); the schema lets the encoder keep them exact.
    encoder_schema = transform_fn[1].dataset_metadata.schema
    transformed, _ = ((raw_split, adapter_config), transform_fn) | (
        f"Transform[{split}]" >> tft_beam.TransformDataset(output_record_batches=True))
    _ = (transformed
         | f"Encode[{split}]" >> beam.ParDo(_EncodeExamples(encoder_schema, split))
         | f"Write[{split}]" >> beam.io.WriteToTFRecord(
             os.path.join(features.split_dir(transformed_examples_uri, split), EXAMPLES_PREFIX),
             file_name_suffix=EXAMPLES_SUFFIX))


class _EncodeExamples(beam.DoFn):
    """(RecordBatch, passthrough) → serialized tf.Examples, counted per split."""

    def __init__(self, schema, split: str):
        self._schema = schema
        self._counter = beam.metrics.Metrics.counter(COUNTER_NAMESPACE, f"examples_{split}")
        self._encoder = None

    def setup(self):
        from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder
        self._encoder = RecordBatchToExamplesEncoder(self._schema)

    def process(self, batch_and_passthrough):
        examples = self._encoder.encode(batch_and_passthrough[0])
        self._counter.inc(len(examples))
        yield from examples


def _counter_value(result, name: str) -> int:
    query = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(COUNTER_NAMESPACE)
                                   .with_name(name))
    return int(sum(c.committed or c.attempted or 0 for c in query["counters"]))
