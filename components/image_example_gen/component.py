"""ImageExampleGen: a TFX component reading ``<data_root>/<category>/<image>`` into tf.Examples.

Outputs:
  examples: a standard ``Examples`` artifact, ``split_names`` '["train", "eval"]', layout
    ``Split-train/``, ``Split-eval/``, gzip TFRecords of tf.Example (custom properties
    ``payload_format`` = FORMAT_TF_EXAMPLE and ``file_format`` = tfrecords_gzip, as TFX's own
    ExampleGen sets them), so the stock Transform reads it unchanged.
  ingestion_report: an ``IngestionReport`` artifact holding ``ingestion_report.json`` (the ledger,
    format in ledger.py), with the counts as custom properties.

Exec properties: ``data_root`` (local or gs://), ``ingest_config`` (IngestConfig as JSON) and
``input_fingerprint`` (optional, ``storage.listing_fingerprint`` of the root; not read by the
executor). Caching note: TFX's cache key is these strings, so with ``enable_cache`` a changed crawl
under the same root is re-ingested only when the fingerprint is given: ``dcgan-tfx run`` computes
it when caching is on; a compiled (Vertex/Kubeflow) pipeline cannot (its crawl is read later), so
there keep caching off for this component or change the root.
"""
from __future__ import annotations

from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import artifact, channel, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.image_example_gen import executor
from components.image_example_gen.constants import (DATA_ROOT_KEY, EXAMPLES_KEY, INGEST_CONFIG_KEY,
                                                    INGESTION_REPORT_KEY, INPUT_FINGERPRINT_KEY)


class IngestionReport(artifact.Artifact):
    """The ingestion ledger: ``{uri}/ingestion_report.json`` (format: ledger.py).

    Custom properties (int): seen, ingested, rejected, skipped, duplicate, train, eval,
    policy_passed (1/0).
    """

    # Custom artifact types need a namespaced name to compile for Kubeflow V2 / Vertex.
    TYPE_NAME = "dcgan_tfx.IngestionReport"


class ImageExampleGenSpec(ComponentSpec):
    """ImageExampleGen parameters and outputs (see the module docstring)."""

    PARAMETERS = {
        DATA_ROOT_KEY: ExecutionParameter(type=str),
        INGEST_CONFIG_KEY: ExecutionParameter(type=str),
        INPUT_FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {}
    OUTPUTS = {
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        INGESTION_REPORT_KEY: ChannelParameter(type=IngestionReport),
    }


class ImageExampleGen(base_beam_component.BaseBeamComponent):
    """Custom ExampleGen for folders of photos (one folder per category), local or gs://.

    Args:
      data_root: ``/path/to/root`` or ``gs://bucket/prefix``.
      ingest_config: ``dcgan_common.config.section_to_json(IngestConfig(...))``; "" or "{}" for
        defaults. Decoded and validated by ``executor.parse_config``, here (to fail at pipeline
        construction) and in the executor.
      input_fingerprint: ``storage.listing_fingerprint(data_root)``, or "" (see the module docstring).
    Raises:
      ConfigError (a ValueError): the config JSON has unknown fields or invalid values.
      ValueError: empty data_root.
    """

    SPEC_CLASS = ImageExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, data_root: str, ingest_config: str = "", input_fingerprint: str = ""):
        if not data_root:
            raise ValueError("ImageExampleGen needs a data_root (local directory or gs://bucket/prefix)")
        # Fail at pipeline construction, not minutes later in the executor.
        executor.parse_config(ingest_config)
        spec = ImageExampleGenSpec(
            data_root=data_root,
            ingest_config=ingest_config or "{}",
            input_fingerprint=input_fingerprint or None,
            examples=channel.Channel(type=standard_artifacts.Examples),
            ingestion_report=channel.Channel(type=IngestionReport),
        )
        super().__init__(spec=spec)
