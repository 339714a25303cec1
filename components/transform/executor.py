"""ImageTransform executor: unpack artifacts, call ``materialize.analyze_and_transform``, annotate.

Thin glue: the tf.Transform work lives in materialize.py, which never sees a TFX type.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import json
import logging
import os
from typing import Any, Callable

from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components.transform import materialize
from components.transform.constants import (EXAMPLES_KEY, PREPROCESSING_FN_KEY, SCHEMA_KEY,
                                            TRANSFORM_CONFIG_KEY, TRANSFORM_GRAPH_KEY,
                                            TRANSFORMED_EXAMPLES_KEY)
from dcgan_common.config import TransformComponentConfig, decode_section, section_to_json

_TEMP_DIRNAME = ".temp_path"


def parse_config(transform_config_json: str) -> TransformComponentConfig:
    """JSON (possibly "" or "{}") → a validated ``dcgan_common.config.TransformComponentConfig``.

    Raises:
      ConfigError (a ValueError): not JSON, unknown fields or invalid values.
    """
    return decode_section(TransformComponentConfig, transform_config_json, "transform.")


def load_preprocessing_fn(dotted_path: str, custom_config: dict) -> Callable:
    """Import ``package.module.fn``; bind ``custom_config`` when fn takes that argument.

    Raises:
      ValueError: not a dotted path. ImportError / AttributeError: module or function missing.
    """
    module_name, _, fn_name = dotted_path.rpartition(".")
    if not module_name:
        raise ValueError(f"preprocessing_fn must be a dotted module path, got {dotted_path!r}")
    fn = getattr(importlib.import_module(module_name), fn_name)
    if "custom_config" in inspect.signature(fn).parameters:
        fn = functools.partial(fn, custom_config=custom_config)
    return fn


class Executor(base_beam_executor.BaseBeamExecutor):
    """Runs tf.Transform inside TFX's Beam pipeline (``beam_pipeline_args`` apply)."""

    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list],
           exec_properties: dict[str, Any]) -> None:
        """Write ``transform_graph`` and ``transformed_examples`` (every input split).

        Raises:
          ValueError: the input Examples has no ``train`` split (the analyzers need it).
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        schema_path = io_utils.get_only_uri_in_dir(
            artifact_utils.get_single_uri(input_dict[SCHEMA_KEY]))
        graph_uri = artifact_utils.get_single_uri(output_dict[TRANSFORM_GRAPH_KEY])
        transformed = artifact_utils.get_single_instance(output_dict[TRANSFORMED_EXAMPLES_KEY])
        splits = artifact_utils.decode_split_names(examples.split_names)
        if "train" not in splits:
            raise ValueError(f"the input Examples {examples.uri} has no 'train' split (has {splits})")
        config = parse_config(exec_properties.get(TRANSFORM_CONFIG_KEY, ""))
        # The function gets the section as the stock Transform hands over custom_config: a JSON object.
        fn = load_preprocessing_fn(exec_properties[PREPROCESSING_FN_KEY],
                                   json.loads(section_to_json(config)))
        temp_dir = os.path.join(graph_uri, _TEMP_DIRNAME)

        counts = materialize.analyze_and_transform(
            examples.uri, splits, schema_path, fn, graph_uri, transformed.uri, temp_dir,
            make_pipeline=self._make_beam_pipeline, analyze_splits=["train"],
            batch_size=config.batch_size)
        io_utils.delete_dir(temp_dir)

        transformed.split_names = artifact_utils.encode_split_names(list(splits))
        transformed.set_string_custom_property(
            "payload_format", example_gen_pb2.PayloadFormat.Name(example_gen_pb2.FORMAT_TF_EXAMPLE))
        # No ``file_format`` property: TFX's default, "tfrecords_gzip", is its only TFRecord format
        # and its readers (tfx_bsl dataset_util.detect_compression_type) go by the ".gz" suffix.
        for split, n in counts.items():
            transformed.set_int_custom_property(f"num_examples_{split}", n)
        logging.getLogger(__name__).info("Transform: %s examples per split -> %s", counts, transformed.uri)
