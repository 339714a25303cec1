"""ImageExampleGen executor: unpack artifacts, run ``beam_ingest.IngestImages``, annotate outputs.

Thin glue: all decisions live in ingest.py / beam_ingest.py / ledger.py, which never see a TFX type.
The crawl folder comes from the input config TFX's FileBasedDriver resolved (crawl_pattern.py).
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any

from tfx.components.example_gen import driver, utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import proto_utils

from components.image_example_gen import beam_ingest, crawl_pattern, ledger, storage
from components.image_example_gen.constants import (EXAMPLES_KEY, INGEST_CONFIG_KEY, INGESTION_REPORT_KEY,
                                                    INPUT_BASE_KEY, INPUT_CONFIG_KEY)
from dcgan_common.config import IngestConfig, decode_section

#: TFX's ExampleGen custom property names and values (tfx/components/example_gen/utils.py,
#: tfx/components/util/examples_utils.py): what the stock Transform looks for.
PAYLOAD_FORMAT_PROPERTY = "payload_format"
FILE_FORMAT_PROPERTY = "file_format"
FILE_FORMAT_VALUE = "tfrecords_gzip"


def parse_config(ingest_config_json: str):
    """JSON (possibly "" or "{}") → a validated ``dcgan_common.config.IngestConfig``.

    Raises:
      ConfigError (a ValueError): not JSON, unknown fields or invalid values.
    """
    return decode_section(IngestConfig, ingest_config_json)


class Executor(base_beam_executor.BaseBeamExecutor):
    """Runs the ingestion inside TFX's Beam pipeline (``beam_pipeline_args`` apply)."""

    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list],
           exec_properties: dict[str, Any]) -> None:
        """Write Split-train/Split-eval TFRecords and the ledger for the crawl folder the driver chose.

        Raises:
          IngestionPolicyError: after everything (ledger included) is written, when the policy fails.
          ValueError: an input config the driver did not resolve (see :func:`crawl_of`).
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        config = parse_config(exec_properties.get(INGEST_CONFIG_KEY, ""))
        data_root, span, version = crawl_of(exec_properties)
        examples = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
        report_artifact = artifact_utils.get_single_instance(output_dict[INGESTION_REPORT_KEY])
        report_uri = os.path.join(report_artifact.uri, ledger.REPORT_FILENAME)

        with self._make_beam_pipeline() as pipeline:
            _ = pipeline | "IngestImages" >> beam_ingest.IngestImages(
                data_root, config, report_uri, examples.uri)

        report = json.loads(storage.read_bytes(report_uri).decode("utf-8"))
        examples.split_names = artifact_utils.encode_split_names(list(ledger.SPLITS))
        _record_span(examples, report_artifact, exec_properties, span, version)
        examples.set_string_custom_property(
            PAYLOAD_FORMAT_PROPERTY, example_gen_pb2.PayloadFormat.Name(example_gen_pb2.FORMAT_TF_EXAMPLE))
        examples.set_string_custom_property(FILE_FORMAT_PROPERTY, FILE_FORMAT_VALUE)
        for split, n in report["splits"].items():
            examples.set_int_custom_property(f"num_examples_{split}", int(n))
        for status, n in report["counts_by_status"].items():
            report_artifact.set_int_custom_property(status, int(n))
        report_artifact.set_int_custom_property("seen", int(report["seen"]))
        for split, n in report["splits"].items():
            report_artifact.set_int_custom_property(split, int(n))
        report_artifact.set_int_custom_property("policy_passed", int(bool(report["policy"]["passed"])))
        counts = report["counts_by_status"]
        logging.getLogger(__name__).info(
            "ImageExampleGen: crawl %s (span %d): %d files seen: %d ingested, %d rejected, %d duplicate, "
            "%d skipped; splits %s (ledger %s)", data_root, span, report["seen"], counts.get("ingested", 0),
            counts.get("rejected", 0), counts.get("duplicate", 0), counts.get("skipped", 0), report["splits"],
            report_uri)
        ledger.raise_if_failed(report, report_uri)


def crawl_of(exec_properties: dict[str, Any]) -> tuple[str, int, int | None]:
    """(crawl folder to read, span, version) from the driver-resolved exec properties.

    The folder is ``input_base`` joined with the resolved pattern's folder (crawl_pattern.py);
    span is the driver's ``span`` (0 when no driver ran: a plain root), version its ``version``
    (None without a ``{VERSION}`` spec). On Vertex both arrive as JSON numbers (floats): they are
    made ints here.
    Raises:
      KeyError: no ``input_base``.
      ValueError: the pattern still holds specs (the driver did not run) or is no crawl pattern.
    """
    input_config = example_gen_pb2.Input()
    encoded = exec_properties.get(INPUT_CONFIG_KEY)
    if encoded:
        proto_utils.json_to_proto(encoded, input_config)
    else:
        input_config = crawl_pattern.crawl_input_config()
    folder = crawl_pattern.crawl_folder(input_config)
    base = exec_properties[INPUT_BASE_KEY]
    version = exec_properties.get(utils.VERSION_PROPERTY_NAME)
    return (storage.join(base, folder) if folder else base,
            int(exec_properties.get(utils.SPAN_PROPERTY_NAME) or 0),
            None if version is None else int(version))


def _record_span(examples, report_artifact, exec_properties: dict[str, Any], span: int,
                 version: int | None) -> None:
    """Span, version (properties and custom properties, as TFX's driver writes them) and the input
    fingerprint on the Examples artifact; the span also on the ingestion report."""
    resolved = {utils.SPAN_PROPERTY_NAME: span, utils.VERSION_PROPERTY_NAME: version,
                utils.FINGERPRINT_PROPERTY_NAME: exec_properties.get(utils.FINGERPRINT_PROPERTY_NAME)}
    # The driver has already set these on the artifact it handed over; writing them again here
    # covers an executor run without it (tests, a plain root) and Vertex's float-typed numbers.
    driver.update_output_artifact(resolved, examples.mlmd_artifact)
    examples.span = span
    if version is not None:
        examples.version = version
    report_artifact.set_int_custom_property(utils.SPAN_PROPERTY_NAME, span)
