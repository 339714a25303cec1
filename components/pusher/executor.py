"""Pusher executor: the stock blessing check, then an atomic push that carries metrics.json.

Subclasses the stock ``tfx.components.pusher.executor.Executor`` and reuses its CheckBlessing,
GetModelPath and _MarkPushed/_MarkNotPushed; only the copy step differs (publish.py).

Where metrics.json comes from: the optional ``evaluation`` input (ModelEvaluation) when the
pipeline wires it (component.AtomicPusher); otherwise the ``evaluation_uri`` custom property that
FidEvaluator sets on its ModelBlessing (so this executor also works as a ``custom_executor_spec``
of the stock Pusher). A blessing from another evaluator with neither is pushed without
metrics.json, with a warning.

An identical re-run (with caching the Trainer's model is reused, re-scored against itself as the
baseline and blessed again) must not push a second copy: when the live version at the destination
already holds exactly this model's files, the Pusher writes nothing new and records that version,
as the stock Pusher does when its destination folder exists: ``pushed`` 1 with that version's
``pushed_destination``/``pushed_version``, plus ``already_pushed`` 1 and a ``push_message``.
"""
from __future__ import annotations

import os
from typing import Any

import logging
from tfx import types
from tfx.components.pusher import executor as stock_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components.fid_evaluator import constants as fid_constants
from components.pusher import publish

log = logging.getLogger(__name__)


EVALUATION_KEY = "evaluation"
#: PushedModel custom properties besides the stock pushed/pushed_destination/pushed_version.
ALREADY_PUSHED_KEY = "already_pushed"  # int 1: the live version already held this model
PUSH_MESSAGE_KEY = "push_message"      # one human sentence: what the Pusher did and why


def find_metrics_file(input_dict: dict[str, list[types.Artifact]]) -> str | None:
    """Path of the evaluation's metrics.json (evaluation input first, then the blessing's
    ``evaluation_uri`` property), or None if unavailable."""
    evaluations = input_dict.get(EVALUATION_KEY) or []
    if evaluations:
        path = os.path.join(evaluations[0].uri, fid_constants.METRICS_FILE)
        if os.path.isfile(path):
            return path
    blessings = input_dict.get(standard_component_specs.MODEL_BLESSING_KEY) or []
    if not blessings:
        return None
    blessing = blessings[0]
    if not blessing.has_custom_property(fid_constants.EVALUATION_URI_PROPERTY):
        return None
    path = os.path.join(blessing.get_string_custom_property(fid_constants.EVALUATION_URI_PROPERTY),
                        fid_constants.METRICS_FILE)
    return path if os.path.isfile(path) else None


def push_unless_live(model_path: str, base_directory: str,
                     extra_files: dict[str, str]) -> tuple[str, str, bool]:
    """Publish ``model_path`` unless the live version at the destination already holds it.

    Args:
      model_path: the model directory to push.
      base_directory: local serving base directory or ``gs://bucket/prefix``.
      extra_files: {plain file name: local path} published beside the model (metrics.json).
    Returns:
      (published path or URI, version, already): ``already`` is True when nothing was written
      because the live version's files are identical to ``model_path``'s (metrics.json aside).
    Raises:
      publish.PublishError: an unsupported destination, or the copy failed.
    """
    # metrics.json is skipped even when this push has none: it is ours, not the model's.
    live = publish.find_live_copy(model_path, base_directory, skip=(fid_constants.METRICS_FILE,))
    if live is not None:
        return live[0], live[1], True
    serving_path, version = publish.publish(model_path, base_directory, extra_files)
    return serving_path, version, False


class Executor(stock_executor.Executor):
    """Stock Pusher semantics with an atomic local publish and metrics.json beside the model."""

    def Do(self, input_dict: dict[str, list[types.Artifact]],
           output_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
                                  destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise publish.PublishError(
                f"push destination kind {destination.WhichOneof('destination')!r} is not supported")
        extra = {}
        metrics_path = find_metrics_file(input_dict)
        if metrics_path:
            extra[fid_constants.METRICS_FILE] = metrics_path
        else:
            log.warning("no evaluation input and no %s on the blessing; pushing without "
                            "metrics.json", fid_constants.EVALUATION_URI_PROPERTY)
        serving_path, version, already = push_unless_live(
            model_path, destination.filesystem.base_directory, extra)
        io_utils.copy_dir(model_path, model_push.uri)  # archive copy, as the stock Pusher does
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
        message = (f"not pushed again: the live version {version} at {serving_path} already holds "
                   "this model (identical files)" if already
                   else f"pushed as new version {version} at {serving_path}")
        model_push.set_int_custom_property(ALREADY_PUSHED_KEY, int(already))
        model_push.set_string_custom_property(PUSH_MESSAGE_KEY, message)
        log.info("Pusher: %s.", message)
