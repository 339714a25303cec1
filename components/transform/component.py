"""ImageTransform: TFX's Transform for this pipeline, writing uncompressed transformed examples.

Same inputs, outputs and preprocessing_fn contract as the stock ``tfx.components.Transform``
(analyze the train split, transform every split, ``transform_graph`` readable by
``tft.TFTransformOutput``), without its optional extras (analyzer cache, TFDV statistics, module
files). The one difference in behaviour is the file format of ``transformed_examples``: plain
TFRecords, not gzip (materialize.py says why). The pipeline gives it the id ``Transform``.

Inputs: ``examples`` (Examples, from ImageExampleGen), ``schema`` (the raw schema).
Outputs: ``transform_graph`` (TransformGraph), ``transformed_examples`` (Examples; custom properties
``num_examples_<split>``).
Exec properties: ``preprocessing_fn`` (module path, e.g. ``trainer.preprocessing.preprocessing_fn``;
called as ``fn(inputs, custom_config)`` when it takes a ``custom_config`` argument),
``custom_config`` (JSON object), ``batch_size`` (records per tf.Transform batch).
"""
from __future__ import annotations

import json

from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import channel, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.transform import executor, materialize
from components.transform.constants import (BATCH_SIZE_KEY, CUSTOM_CONFIG_KEY, EXAMPLES_KEY,
                                            PREPROCESSING_FN_KEY, SCHEMA_KEY, TRANSFORM_GRAPH_KEY,
                                            TRANSFORMED_EXAMPLES_KEY)


class ImageTransformSpec(ComponentSpec):
    """ImageTransform parameters, inputs and outputs (see the module docstring)."""

    PARAMETERS = {
        PREPROCESSING_FN_KEY: ExecutionParameter(type=str),
        CUSTOM_CONFIG_KEY: ExecutionParameter(type=str, optional=True),
        BATCH_SIZE_KEY: ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema),
    }
    OUTPUTS = {
        TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph),
        TRANSFORMED_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
    }


class ImageTransform(base_beam_component.BaseBeamComponent):
    """tf.Transform over the ingested images; materializes uncompressed TFRecords.

    Args:
      examples: channel of the raw Examples.
      schema: channel of the raw Schema.
      preprocessing_fn: dotted path of the preprocessing function.
      custom_config: dict passed to the preprocessing function (JSON-serialisable).
      batch_size: records per tf.Transform batch (default materialize.DEFAULT_BATCH_SIZE).
    Raises:
      ValueError: empty preprocessing_fn, batch_size < 1, or a custom_config that is not JSON.
    """

    SPEC_CLASS = ImageTransformSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, examples, schema, preprocessing_fn: str, custom_config: dict | None = None,
                 batch_size: int = materialize.DEFAULT_BATCH_SIZE):
        if not preprocessing_fn or "." not in preprocessing_fn:
            raise ValueError(f"preprocessing_fn must be a dotted module path, got {preprocessing_fn!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        spec = ImageTransformSpec(
            examples=examples,
            schema=schema,
            preprocessing_fn=preprocessing_fn,
            custom_config=json.dumps(custom_config or {}, sort_keys=True),
            batch_size=batch_size,
            transform_graph=channel.Channel(type=standard_artifacts.TransformGraph),
            transformed_examples=channel.Channel(type=standard_artifacts.Examples),
        )
        super().__init__(spec=spec)
