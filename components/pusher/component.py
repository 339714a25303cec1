"""AtomicPusher: the stock Pusher's spec plus an optional ``evaluation`` input, atomic executor.

A thin BaseComponent reusing ``PusherSpec`` (same parameters, inputs and ``pushed_model`` output,
so the stock blessing check and artifact layout are unchanged) with one extra optional input:
``evaluation`` (ModelEvaluation from FidEvaluator), whose metrics.json is copied into the pushed
version folder. Without it, the executor falls back to the ``evaluation_uri`` custom property of
the blessing (see executor.py).
"""
from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ComponentSpec

from components.pusher import executor

EVALUATION_KEY = executor.EVALUATION_KEY


class AtomicPusherSpec(ComponentSpec):
    """``PusherSpec`` + optional ``evaluation`` (ModelEvaluation)."""

    PARAMETERS = dict(standard_component_specs.PusherSpec.PARAMETERS)
    INPUTS = {
        **standard_component_specs.PusherSpec.INPUTS,
        EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation, optional=True),
    }
    OUTPUTS = dict(standard_component_specs.PusherSpec.OUTPUTS)


class AtomicPusher(base_component.BaseComponent):
    """Pushes a blessed model atomically (temp folder beside the destination, then rename).

    A blessed model whose files are already the live version at the destination (an identical
    re-run) is not pushed again: ``pushed_model`` records that version, with ``already_pushed`` 1.

    Args:
      model: Channel of Model (the generator).
      model_blessing: Channel of ModelBlessing; the push happens only if its ``blessed`` is 1.
      push_destination: ``pusher_pb2.PushDestination`` with ``filesystem.base_directory``: a local
        folder (each push becomes ``<base_directory>/<unix time>/``, renamed into place) or
        ``gs://bucket/prefix`` (write-once ``versions/<version>/`` + a ``LATEST`` pointer written last).
      evaluation: optional Channel of ModelEvaluation whose metrics.json travels with the model.
    Raises:
      ValueError: no model, or no filesystem push destination.
    """

    SPEC_CLASS = AtomicPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: types.BaseChannel, model_blessing: types.BaseChannel,
                 push_destination: pusher_pb2.PushDestination,
                 evaluation: types.BaseChannel | None = None):
        if model is None:
            raise ValueError("AtomicPusher needs a model channel")
        if push_destination is None or push_destination.WhichOneof("destination") != "filesystem":
            raise ValueError("AtomicPusher needs a filesystem push_destination (base_directory)")
        spec = AtomicPusherSpec(**{
            standard_component_specs.MODEL_KEY: model,
            standard_component_specs.MODEL_BLESSING_KEY: model_blessing,
            standard_component_specs.PUSH_DESTINATION_KEY: push_destination,
            EVALUATION_KEY: evaluation,
            standard_component_specs.PUSHED_MODEL_KEY: types.Channel(type=standard_artifacts.PushedModel),
        })
        super().__init__(spec=spec)

