"""FidEvaluator: a TFX component that scores a generator with FID/KID and emits a ModelBlessing.

Inputs:  ``model`` (Model: the generator SavedModel), ``examples`` (Examples: the *transformed*
examples, feature ``image`` float32 [64, 64, 3] in [-1, 1]), optional ``baseline_model`` (Model:
the latest blessed one, from a Resolver with LatestBlessedModelStrategy).
Outputs: ``evaluation`` (ModelEvaluation: metrics.json, samples.png, validations.tfrecord) and
``blessing`` (ModelBlessing: int custom property ``blessed`` 1/0 and a BLESSED / NOT_BLESSED file,
plus ``current_model``/``current_model_id``/``baseline_model``/``baseline_model_id`` as the stock
Evaluator sets them, so LatestBlessedModelStrategy and the stock Pusher work unchanged).

Exec properties: ``eval_config`` (``dcgan_common.config.EvalConfig`` as JSON: the gate, metrics,
sample sizes, splits, seed and Inception weights), ``cache_dir`` and ``extractor``.

Example::

    evaluator = FidEvaluator(model=trainer.outputs["model"],
                             examples=transform.outputs["transformed_examples"],
                             baseline_model=resolver.outputs["model"],
                             eval_config=section_to_json(EvalConfig(threshold=50.0)))
"""
from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.fid_evaluator import executor
from components.fid_evaluator.constants import (  # keys live in constants.py (shared with the executor)
    MODEL_KEY,
    EXAMPLES_KEY,
    BASELINE_MODEL_KEY,
    EVALUATION_KEY,
    BLESSING_KEY,
    EVAL_CONFIG_PARAM,
    CACHE_DIR_PARAM,
    EXTRACTOR_PARAM,
)
from components.fid_evaluator.extractors import DEFAULT_EXTRACTOR, list_extractors


class FidEvaluatorSpec(ComponentSpec):
    """Inputs, outputs and execution parameters of :class:`FidEvaluator` (keys above)."""

    PARAMETERS = {
        EVAL_CONFIG_PARAM: ExecutionParameter(type=str),
        CACHE_DIR_PARAM: ExecutionParameter(type=str),
        EXTRACTOR_PARAM: ExecutionParameter(type=str),
    }
    INPUTS = {
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        BASELINE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {
        EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
        BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
    }


class FidEvaluator(base_component.BaseComponent):
    """Scores a generator against real images and blesses it through an FID (or KID) gate.

    Args:
      model: Channel of Model (generator SavedModel; ``serving_default`` noise f32 [N, 100] ->
        images f32 [N, 64, 64, 3] in [-1, 1]).
      examples: Channel of transformed Examples.
      eval_config: ``dcgan_common.config.section_to_json(EvalConfig(...))``: threshold (required),
        metrics, gate_metric, min_improvement, min_recall/min_coverage floors, num_generated,
        max_real, splits (empty: all), seed, allow_small_sample, weights_uri (EvalConfig documents
        each). Decoded and validated by ``executor.parse_config``, here (to fail at pipeline
        construction) and in the executor.
      baseline_model: optional Channel of Model (latest blessed), scored with the same noise and
        real statistics.
      cache_dir: real-statistics cache ("" = ``<pipeline root>/fid_stats_cache``).
      extractor: "inception" (the standard protocol) or "downsample-8x8" (tests/smoke only).
    Raises:
      ConfigError (a ValueError): eval_config is not JSON, has unknown fields or a value EvalConfig
        refuses (no threshold, unknown metric, gate_metric not in metrics, a floor without its
        metric, num_generated < 2, ...); the message names ``eval.<field>``.
      ValueError: unknown extractor.
    """

    SPEC_CLASS = FidEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: types.BaseChannel, examples: types.BaseChannel, eval_config: str,
                 baseline_model: types.BaseChannel | None = None, cache_dir: str = "",
                 extractor: str = DEFAULT_EXTRACTOR):
        executor.parse_config(eval_config)
        if extractor not in list_extractors():
            raise ValueError(f"unknown extractor {extractor!r}; valid: {list_extractors()}")
        spec = FidEvaluatorSpec(**{
            MODEL_KEY: model,
            EXAMPLES_KEY: examples,
            BASELINE_MODEL_KEY: baseline_model,
            EVAL_CONFIG_PARAM: eval_config,
            CACHE_DIR_PARAM: cache_dir,
            EXTRACTOR_PARAM: extractor,
            EVALUATION_KEY: types.Channel(type=standard_artifacts.ModelEvaluation),
            BLESSING_KEY: types.Channel(type=standard_artifacts.ModelBlessing),
        })
        super().__init__(spec=spec)
