"""ImageExampleGen: a TFX file-based ExampleGen reading ``<crawl>/<category>/<image>`` into tf.Examples.

It is a ``FileBasedExampleGen`` with its own spec and executor, so TFX treats it as one: its
driver is TFX's ``FileBasedDriver``, run by LocalDagRunner before the cache check and compiled by
the Kubeflow V2 runner into the step's pre-cache-check hook, exactly as for the stock component.

Exec properties: ``input_base`` (the data root, local or gs://), ``input_config`` (a standard
``example_gen_pb2.Input`` with one split, ``<folder>/*/*``, see crawl_pattern.py), optional
``range_config`` (``RangeConfig``: a static span), ``ingest_config`` (IngestConfig as JSON). The
driver adds ``span``, ``version`` and ``input_fingerprint`` and resolves the pattern's
``{SPAN}``/``{VERSION}``/date specs; TFX's cache key includes them, so a new span, a new version or a
changed file set in the chosen crawl folder runs the executor again, and an unchanged one is cached.

Outputs:
  examples: a standard ``Examples`` artifact, ``split_names`` '["train", "eval"]', layout
    ``Split-train/``, ``Split-eval/``, gzip TFRecords of tf.Example (custom properties
    ``payload_format`` = FORMAT_TF_EXAMPLE and ``file_format`` = tfrecords_gzip, as TFX's own
    ExampleGen sets them), so the stock Transform reads it unchanged. ``span`` and ``version`` (as
    properties and, as the driver sets them, custom properties) and ``input_fingerprint`` record
    which crawl it holds.
  ingestion_report: an ``IngestionReport`` artifact holding ``ingestion_report.json`` (the ledger,
    format in ledger.py; its ``data_root`` is the crawl folder read), with the counts as custom
    properties.
"""
from __future__ import annotations

from tfx.components.example_gen import driver
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import artifact, channel, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.image_example_gen import crawl_pattern, executor
from components.image_example_gen.constants import (EXAMPLES_KEY, INGEST_CONFIG_KEY, INGESTION_REPORT_KEY,
                                                    INPUT_BASE_KEY, INPUT_CONFIG_KEY, RANGE_CONFIG_KEY)


class IngestionReport(artifact.Artifact):
    """The ingestion ledger: ``{uri}/ingestion_report.json`` (format: ledger.py).

    Custom properties (int): seen, ingested, rejected, skipped, duplicate, train, eval,
    policy_passed (1/0), span.
    """

    # Custom artifact types need a namespaced name to compile for Kubeflow V2 / Vertex.
    TYPE_NAME = "dcgan_tfx.IngestionReport"


class ImageExampleGenSpec(ComponentSpec):
    """ImageExampleGen parameters and outputs (see the module docstring)."""

    PARAMETERS = {
        INPUT_BASE_KEY: ExecutionParameter(type=str),
        INPUT_CONFIG_KEY: ExecutionParameter(type=example_gen_pb2.Input),
        RANGE_CONFIG_KEY: ExecutionParameter(type=range_config_pb2.RangeConfig, optional=True),
        INGEST_CONFIG_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {}
    OUTPUTS = {
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        INGESTION_REPORT_KEY: ChannelParameter(type=IngestionReport),
    }


class ImageExampleGen(FileBasedExampleGen):
    """Custom file-based ExampleGen for folders of photos (one folder per category), local or gs://.

    Args:
      data_root: ``/path/to/root`` or ``gs://bucket/prefix`` (stored as ``input_base``).
      ingest_config: ``dcgan_common.config.section_to_json(IngestConfig(...))``; "" or "{}" for
        defaults. Decoded and validated by ``executor.parse_config``, here (to fail at pipeline
        construction) and in the executor.
      input_config: which folder under ``data_root`` is the crawl:
        ``crawl_pattern.crawl_input_config("span-{SPAN}")`` for ``<data_root>/span-<N>/<category>/<image>``
        (the newest N is ingested); default ``crawl_input_config()``, the data root itself as span 0.
      range_config: ``crawl_pattern.span_range_config(N)`` to ingest span N instead of the newest;
        None for the newest.
    Raises:
      ConfigError (a ValueError): invalid ingest config JSON, or an input/range config the driver
        or executor would refuse (``crawl_pattern.check_input``).
      ValueError: empty data_root.
    """

    SPEC_CLASS = ImageExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
    # FileBasedExampleGen's own driver: span/version resolution and the input fingerprint.
    DRIVER_CLASS = driver.FileBasedDriver

    def __init__(self, data_root: str, ingest_config: str = "",
                 input_config: example_gen_pb2.Input | None = None,
                 range_config: range_config_pb2.RangeConfig | None = None):
        if not data_root:
            raise ValueError("ImageExampleGen needs a data_root (local directory or gs://bucket/prefix)")
        input_config = input_config or crawl_pattern.crawl_input_config()
        # Fail at pipeline construction, not minutes later in the driver or executor.
        executor.parse_config(ingest_config)
        crawl_pattern.check_input(data_root, input_config, range_config)
        spec = ImageExampleGenSpec(
            input_base=data_root,
            input_config=input_config,
            range_config=range_config,
            ingest_config=ingest_config or "{}",
            examples=channel.Channel(type=standard_artifacts.Examples),
            ingestion_report=channel.Channel(type=IngestionReport),
        )
        # FileBasedExampleGen.__init__ builds the stock spec (no ingestion report, output_config
        # splits); the base component's takes ours.
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
