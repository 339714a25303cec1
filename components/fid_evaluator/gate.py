"""The push gate, configured and reported in TFMA's vocabulary.

The gate is a ``tfma.MetricThreshold``:

* ``value_threshold``: ``GenericValueThreshold(upper_bound=threshold)`` - the metric (lower is
  better, e.g. FID) must be finite and <= threshold;
* ``change_threshold``: ``GenericChangeThreshold(direction=LOWER_IS_BETTER,
  absolute=-min_improvement)`` - with a baseline, ``candidate - baseline <= -min_improvement``,
  i.e. better by at least the margin. TFMA's own check (metrics_validator._check_threshold) is
  ``diff <= absolute`` for LOWER_IS_BETTER; we apply the same rule.

Optional floors on higher-is-better metrics (``min_recall`` on improved recall, ``min_coverage`` on
coverage; manifold.py) are ``GenericValueThreshold(lower_bound=floor)`` checks: the metric must be
finite and >= floor; 0 turns a floor off. Every condition is checked and every failing one is
reported (in the reason, as a ``Failure`` with its ``condition`` name, and in the ValidationResult),
so a user sees at once whether the threshold, a floor, the baseline, or several of them refused it.

Without a baseline the change threshold is skipped and the result is marked ``rubber_stamp``
(as the stock Evaluator does). When the candidate *is* the baseline (the same model artifact: an
identical re-run with the Trainer's output cached, so the latest blessed model comes back as its
own baseline) the change threshold is skipped too - a model cannot improve on itself, and it was
already blessed - and the reason says so; the value threshold still applies. Whether it is pushed
again is the Pusher's call (it does not re-push what is already live). The decision is written as
a ``ValidationResult`` proto in ``<evaluation>/validations.tfrecord`` so
``tfma.load_validation_result(uri)`` reads it.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from dcgan_common.config import FLOORS, check_floors  # noqa: F401  (one validation, re-exported)

VALIDATIONS_FILE = "validations.tfrecord"  # tfx.components.evaluator.constants.VALIDATIONS_TFRECORDS_FILE_NAME


#: Condition names (``Failure.condition``; the blessing's ``failed_conditions`` property lists them).
THRESHOLD_CONDITION = "threshold"          # gate metric finite and <= threshold
BASELINE_CONDITION = "min_improvement"     # beats the last blessed model by the margin


@dataclass
class Failure:
    """One failed check: metric name, whether it is the baseline difference, value, message, the
    condition that failed (THRESHOLD_CONDITION, BASELINE_CONDITION or a FLOORS key) and, for a
    floor, its lower bound."""

    metric: str
    is_diff: bool
    value: float
    message: str
    condition: str = THRESHOLD_CONDITION
    lower_bound: float | None = None


@dataclass
class GateDecision:
    """blessed: push allowed. reason: one human sentence. failures: the failed checks."""

    blessed: bool
    reason: str
    rubber_stamp: bool
    failures: list[Failure] = field(default_factory=list)

    @property
    def failed_conditions(self) -> list[str]:
        """Names of the failed conditions, each once, in check order (empty when blessed)."""
        return list(dict.fromkeys(f.condition for f in self.failures))


def metric_threshold(threshold: float, min_improvement: float = 0.0):
    """The gate as a ``tfma.MetricThreshold`` (see module docstring).

    Args:
      threshold: upper bound on the metric (finite). min_improvement: >= 0, metric units.
    Raises:
      ValueError: threshold not finite, or min_improvement negative or not finite.
    """
    from tensorflow_model_analysis.proto import config_pb2

    if threshold is None or not math.isfinite(float(threshold)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if not math.isfinite(float(min_improvement)) or min_improvement < 0:
        raise ValueError(f"min_improvement must be finite and >= 0, got {min_improvement!r}")
    proto = config_pb2.MetricThreshold()
    proto.value_threshold.upper_bound.value = float(threshold)
    proto.change_threshold.direction = config_pb2.MetricDirection.LOWER_IS_BETTER
    proto.change_threshold.absolute.value = -float(min_improvement)
    return proto


def decide(metric: str, value: float, baseline_value: float | None, threshold_proto,
           error: str | None = None, baseline_error: str | None = None,
           baseline_is_candidate: bool = False, floors: dict[str, float] | None = None,
           metrics: dict[str, float] | None = None) -> GateDecision:
    """Apply the gate: every condition is checked, every failing one reported.

    Args:
      metric: gate metric name; value: its candidate value (NaN if it failed).
      baseline_value: the baseline's value, or None when there is no baseline.
      threshold_proto: from :func:`metric_threshold`.
      error, baseline_error: recorded failures of the candidate/baseline scoring.
      baseline_is_candidate: the baseline is the candidate model itself; the change threshold
        is not applied (``baseline_value`` and ``baseline_error`` are then ignored).
      floors: active floors {metric key: lower bound} from :func:`check_floors` (None: none).
      metrics: the candidate's metric values (where the floored keys are read; missing = NaN).
    Returns:
      GateDecision: blessed only if value is finite, within the value threshold, every floored
      metric finite and >= its floor, and (with a baseline other than the candidate) within the
      change threshold. A baseline whose value is not finite fails the change check
      (conservative: an unscorable baseline never lets a candidate through unexamined).
    """
    failures = []
    upper = threshold_proto.value_threshold.upper_bound.value
    if value is None or not math.isfinite(value):
        why = error or f"{metric} is not finite ({value})"
        failures.append(Failure(metric, False, math.nan, why))
    elif not value <= upper:
        failures.append(Failure(metric, False, value, f"{metric} {value:.6g} > threshold {upper:.6g}"))
    floor_names = {key: name for name, (key, _) in FLOORS.items()}
    for key, floor in (floors or {}).items():
        got = (metrics or {}).get(key, math.nan)
        if got is None or not math.isfinite(got):
            failures.append(Failure(key, False, math.nan, f"{key} is not finite ({error or got}) "
                                    f"but must be >= {floor:.6g}", floor_names[key], floor))
        elif not got >= floor:
            failures.append(Failure(key, False, got, f"{key} {got:.6g} < floor {floor:.6g}",
                                    floor_names[key], floor))
    rubber_stamp = baseline_value is None and baseline_error is None and not baseline_is_candidate
    if not rubber_stamp and not baseline_is_candidate:
        absolute = threshold_proto.change_threshold.absolute.value
        if baseline_value is None or not math.isfinite(baseline_value):
            failures.append(Failure(metric, True, math.nan,
                                    f"baseline {metric} is not finite ({baseline_error or baseline_value})",
                                    BASELINE_CONDITION))
        elif value is not None and math.isfinite(value) and not (value - baseline_value) <= absolute:
            failures.append(Failure(
                metric, True, value - baseline_value,
                f"{metric} {value:.6g} does not beat baseline {baseline_value:.6g} by {-absolute:.6g}",
                BASELINE_CONDITION))
    if failures:
        reason = "; ".join(f.message for f in failures)
        failed = ", ".join(dict.fromkeys(f.condition for f in failures))
        return GateDecision(False, f"not blessed ({failed} failed): {reason}", rubber_stamp, failures)
    passed = "".join(f"; {key} {(metrics or {})[key]:.6g} >= floor {floor:.6g}"
                     for key, floor in (floors or {}).items())
    if rubber_stamp:
        reason = f"blessed: {metric} {value:.6g} <= {upper:.6g}{passed} (no baseline)"
    elif baseline_is_candidate:
        reason = (f"blessed: {metric} {value:.6g} <= {upper:.6g}{passed}; the candidate is the baseline "
                  "itself (the last blessed model), so it is not compared with itself")
    else:
        reason = (f"blessed: {metric} {value:.6g} <= {upper:.6g}{passed} and beats baseline "
                  f"{baseline_value:.6g} by >= {-threshold_proto.change_threshold.absolute.value:.6g}")
    return GateDecision(True, reason, rubber_stamp, [])


def validation_result(decision: GateDecision, threshold_proto):
    """The decision as a ``tfma`` ValidationResult proto (overall slice, one entry per failure)."""
    from tensorflow_model_analysis.proto import validation_result_pb2

    result = validation_result_pb2.ValidationResult(validation_ok=decision.blessed,
                                                    rubber_stamp=decision.rubber_stamp)
    if decision.failures:
        per_slice = result.metric_validations_per_slice.add()
        per_slice.slice_key.SetInParent()  # the overall slice
        for failure in decision.failures:
            item = per_slice.failures.add(message=failure.message)
            item.metric_key.name = failure.metric
            item.metric_key.is_diff = failure.is_diff
            if failure.lower_bound is None:
                item.metric_threshold.CopyFrom(threshold_proto)
            else:  # a floor: GenericValueThreshold(lower_bound=floor)
                item.metric_threshold.value_threshold.lower_bound.value = failure.lower_bound
            item.metric_value.double_value.value = failure.value
    details = result.validation_details.slicing_details.add()
    details.slicing_spec.SetInParent()
    details.num_matching_slices = 1
    return result


def write_validation_result(result, output_dir: str) -> str:
    """Write one ValidationResult record to ``<output_dir>/validations.tfrecord``; returns the path."""
    import tensorflow as tf

    path = os.path.join(output_dir, VALIDATIONS_FILE)
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(result.SerializeToString())
    return path
