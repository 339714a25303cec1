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
called as ``fn(inputs, custom_config)`` when it takes a ``custom_config`` argument) and
``transform_config`` (``dcgan_common.config.TransformComponentConfig`` as JSON): its
``batch_size`` is the records per tf.Transform batch, and the preprocessing function gets the
whole section, decoded to a JSON object, as its ``custom_config`` (what the stock Transform would
pass for ``custom_config=json.loads(transform_config)``).
"""
from __future__ import annotations

from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import channel, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.transform import executor
from components.transform.constants import (EXAMPLES_KEY, PREPROCESSING_FN_KEY, SCHEMA_KEY,
                                            TRANSFORM_CONFIG_KEY, TRANSFORM_GRAPH_KEY,
                                            TRANSFORMED_EXAMPLES_KEY)


class ImageTransformSpec(ComponentSpec):
    """ImageTransform parameters, inputs and outputs (see the module docstring)."""

    PARAMETERS = {
        PREPROCESSING_FN_KEY: ExecutionParameter(type=str),
        TRANSFORM_CONFIG_KEY: ExecutionParameter(type=str),
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
      transform_config: ``dcgan_common.config.section_to_json(TransformComponentConfig(...))``;
        "" or "{}" for the defaults. Decoded and validated by ``executor.parse_config``, here (to
        fail at pipeline construction) and in the executor.
    Raises:
      ValueError: empty or undotted preprocessing_fn.
      ConfigError (a ValueError): transform_config is not JSON, has unknown fields or invalid
        values (e.g. batch_size < 1).
    """

    SPEC_CLASS = ImageTransformSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, examples, schema, preprocessing_fn: str, transform_config: str = ""):
        if not preprocessing_fn or "." not in preprocessing_fn:
            raise ValueError(f"preprocessing_fn must be a dotted module path, got {preprocessing_fn!r}")
        executor.parse_config(transform_config)
        spec = ImageTransformSpec(
            examples=examples,
            schema=schema,
            preprocessing_fn=preprocessing_fn,
            transform_config=transform_config or "{}",
            transform_graph=channel.Channel(type=standard_artifacts.TransformGraph),
            transformed_examples=channel.Channel(type=standard_artifacts.Examples),
        )
        super().__init__(spec=spec)
