"""FidEvaluator executor: unpack artifacts, call ``evaluate.evaluate_generator``, write outputs.

All logic lives in plain functions (evaluate.py, gate.py); this module only turns TFX artifacts
into paths and values, and the results back into files and custom properties.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from components.fid_evaluator import constants as C
from components.fid_evaluator import evaluate, gate
from dcgan_common.config import EvalConfig, decode_section

log = logging.getLogger(__name__)


def parse_config(eval_config_json: str) -> EvalConfig:
    """JSON → a validated ``dcgan_common.config.EvalConfig`` (its threshold is required).

    Raises:
      ConfigError (a ValueError): not JSON, unknown fields or invalid values (named ``eval.<field>``).
    """
    return decode_section(EvalConfig, eval_config_json, "eval.")


def default_cache_dir(output_uri: str) -> str:
    """``<pipeline_root>/fid_stats_cache`` from an output artifact URI.

    TFX lays artifacts out as ``<pipeline_root>/<component id>/<output key>/<execution id>``, so
    the pipeline root is three levels up; the cache then survives across runs of the pipeline.
    """
    root = output_uri.rstrip("/")
    for _ in range(3):
        root = os.path.dirname(root)
    return os.path.join(root, C.DEFAULT_CACHE_SUBDIR)


def _model_dir(model: types.Artifact) -> str:
    return path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))


def is_same_model(model: types.Artifact, baseline: types.Artifact | None) -> bool:
    """Whether the baseline is the candidate artifact itself (same MLMD id, or same URI).

    Happens on an identical re-run with caching: the Trainer's cached model is the latest blessed
    one, so the Resolver hands it back as its own baseline.
    """
    if baseline is None:
        return False
    if model.id and model.id == baseline.id:
        return True
    # A re-imported artifact has a new id but the same files.
    return model.uri.rstrip("/") == baseline.uri.rstrip("/")


class Executor(base_executor.BaseExecutor):
    """Runs :func:`evaluate.evaluate_generator` and writes the evaluation and blessing."""

    def Do(self, input_dict: dict[str, list[types.Artifact]],
           output_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model = artifact_utils.get_single_instance(input_dict[C.MODEL_KEY])
        examples = artifact_utils.get_single_instance(input_dict[C.EXAMPLES_KEY])
        baselines = input_dict.get(C.BASELINE_MODEL_KEY) or []
        baseline = baselines[0] if baselines else None
        evaluation = artifact_utils.get_single_instance(output_dict[C.EVALUATION_KEY])
        blessing = artifact_utils.get_single_instance(output_dict[C.BLESSING_KEY])

        config = parse_config(exec_properties[C.EVAL_CONFIG_PARAM])
        gate_metric, threshold = config.gate_metric, float(config.threshold)
        splits = list(config.splits) or None
        cache_dir = exec_properties.get(C.CACHE_DIR_PARAM) or default_cache_dir(evaluation.uri)
        threshold_proto = gate.metric_threshold(threshold, float(config.min_improvement))
        floor_settings = config.floor_settings()
        same_model = is_same_model(model, baseline)

        result = evaluate.evaluate_generator(
            _model_dir(model), examples.uri, splits=splits, metric_names=list(config.metrics),
            num_generated=config.num_generated, max_real=config.max_real, seed=config.seed,
            extractor_name=exec_properties.get(C.EXTRACTOR_PARAM) or "inception",
            weights_uri=config.weights_uri,
            cache_dir=cache_dir,
            # The candidate as its own baseline would score identically: do not score it twice.
            baseline_model_dir=_model_dir(baseline) if baseline is not None and not same_model else None,
            allow_small_sample=config.allow_small_sample,
            samples_png=os.path.join(evaluation.uri, C.SAMPLES_FILE))

        value = result.metrics.get(gate_metric, math.nan)
        if same_model:
            result.baseline_metrics, result.baseline_error = dict(result.metrics), result.error
        if baseline is None:
            baseline_value, baseline_error = None, None
        else:
            baseline_value = (result.baseline_metrics or {}).get(gate_metric, math.nan)
            baseline_error = result.baseline_error
        decision = gate.decide(gate_metric, value, baseline_value, threshold_proto,
                               result.error, baseline_error, baseline_is_candidate=same_model,
                               floors=config.active_floors(), metrics=result.metrics)

        record = result.to_json_dict()
        record.update({
            "gate": {"metric": gate_metric, "threshold": threshold,
                     "min_improvement": float(config.min_improvement),
                     **floor_settings, "failed_conditions": decision.failed_conditions,
                     "blessed": decision.blessed, "reason": decision.reason,
                     "rubber_stamp": decision.rubber_stamp, "baseline_is_candidate": same_model},
            "model_uri": model.uri, "examples_uri": examples.uri,
            "baseline_model_uri": baseline.uri if baseline is not None else None,
            "splits": splits or "all", "cache_dir": cache_dir,
        })
        io_utils.write_string_file(os.path.join(evaluation.uri, C.METRICS_FILE),
                                   json.dumps(record, indent=2, sort_keys=True))
        gate.write_validation_result(gate.validation_result(decision, threshold_proto), evaluation.uri)
        _set_blessing(blessing, decision, model, baseline, evaluation.uri, gate_metric, value, threshold)
        log.info("FidEvaluator: %s (metrics %s, N_real=%d, N_gen=%d)", decision.reason,
                     result.metrics, result.n_real, result.n_gen)


def _set_blessing(blessing: types.Artifact, decision: gate.GateDecision, model: types.Artifact,
                  baseline: types.Artifact | None, evaluation_uri: str, gate_metric: str,
                  value: float, threshold: float) -> None:
    """Marker file + custom properties, named exactly as the stock Evaluator names them, plus ours
    (``failed_conditions``: which gate conditions refused the model, comma-separated)."""
    blessed, reason = decision.blessed, decision.reason
    marker = C.BLESSED_FILE if blessed else C.NOT_BLESSED_FILE
    io_utils.write_string_file(os.path.join(blessing.uri, marker), "")
    blessing.set_int_custom_property(C.BLESSED_PROPERTY, 1 if blessed else 0)
    blessing.set_string_custom_property(C.CURRENT_MODEL_PROPERTY, model.uri)
    blessing.set_int_custom_property(C.CURRENT_MODEL_ID_PROPERTY, model.id)
    if baseline is not None:
        blessing.set_string_custom_property(C.BASELINE_MODEL_PROPERTY, baseline.uri)
        blessing.set_int_custom_property(C.BASELINE_MODEL_ID_PROPERTY, baseline.id)
    blessing.set_string_custom_property(C.BLESSING_MESSAGE_PROPERTY, reason)
    blessing.set_string_custom_property(C.EVALUATION_URI_PROPERTY, evaluation_uri)
    blessing.set_string_custom_property(C.GATE_METRIC_PROPERTY, gate_metric)
    blessing.set_float_custom_property(C.THRESHOLD_PROPERTY, threshold)
    blessing.set_string_custom_property(C.FAILED_CONDITIONS_PROPERTY, ",".join(decision.failed_conditions))
    if math.isfinite(value):
        blessing.set_float_custom_property(C.GATE_VALUE_PROPERTY, value)
