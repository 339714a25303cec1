"""``create_pipeline(config)``: the one pipeline definition every runner compiles.

ImageExampleGen → ImportSchemaGen → Transform → Trainer → (Resolver: latest blessed model) →
FidEvaluator → Pusher. Runners (pipeline/local_runner.py, kubeflow/vertex_runner.py) only choose
paths, the orchestrator and Beam arguments; they never change the graph.
"""
from __future__ import annotations

import dataclasses
import os

from tfx import v1 as tfx

from components.fid_evaluator import constants as fid_constants
from components.fid_evaluator.component import FidEvaluator
from components.image_example_gen import crawl_pattern
from components.image_example_gen.component import ImageExampleGen
from components.pusher.component import AtomicPusher
from components.transform.component import ImageTransform
from dcgan_common.config import PipelineConfig, TransformComponentConfig, section_to_json

RAW_SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "raw_schema.pbtxt")
PREPROCESSING_FN = "trainer.preprocessing.preprocessing_fn"
RUN_FN = "trainer.run_fn.run_fn"


def create_components(config: PipelineConfig, *, serving_destination=None,
                      trainer_class=None, trainer_extra_config: dict | None = None) -> list:
    """The pipeline's components, in topological order.

    Args:
      config: a validated PipelineConfig.
      serving_destination: optional ``tfx.proto.PushDestination``; default: ``config.serving_dir``
        on the filesystem.
      trainer_class: Trainer component class (default the stock ``tfx.components.Trainer``; the
        Vertex runner passes the Vertex AI Trainer extension).
      trainer_extra_config: extra ``custom_config`` keys for that Trainer (e.g. Vertex job args).
    Raises:
      ConfigError: when the config is invalid (e.g. no FID threshold).
    """
    config.validate()
    example_gen = _ingestion(config)
    schema_gen = tfx.components.ImportSchemaGen(schema_file=RAW_SCHEMA_PATH)
    transform = _transform(config, example_gen, schema_gen)
    trainer = _trainer(config, transform, trainer_class, trainer_extra_config)
    latest_blessed = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = _evaluator(config, trainer, transform, latest_blessed)
    pusher = AtomicPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        evaluation=evaluator.outputs["evaluation"],
        push_destination=serving_destination or tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_dir)),
    )
    return [example_gen, schema_gen, transform, trainer, latest_blessed, evaluator, pusher]


def _ingestion(config: PipelineConfig) -> ImageExampleGen:
    # The crawl folder pattern goes to TFX's FileBasedDriver as a standard input config: it picks
    # the span (the newest, or data_span) and fingerprints its files for the cache key.
    return ImageExampleGen(
        data_root=config.data_root,
        # min_train_examples 0 becomes this run's batch size: fewer train images cannot train.
        ingest_config=section_to_json(config.ingest.resolve_min_train_examples(config.train.batch_size)),
        input_config=crawl_pattern.crawl_input_config(config.data_pattern),
        range_config=crawl_pattern.span_range_config(config.data_span),
    )


def _transform(config: PipelineConfig, example_gen, schema_gen) -> ImageTransform:
    # tf.Transform as the stock component runs it, materializing uncompressed TFRecords
    # (components/transform/materialize.py says why); the id keeps the stock component's name.
    return ImageTransform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        transform_config=section_to_json(
            TransformComponentConfig.from_sections(config.transform, config.ingest)),
    ).with_id("Transform")


def _trainer(config: PipelineConfig, transform, trainer_class, trainer_extra_config: dict | None):
    return (trainer_class or tfx.components.Trainer)(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        # Epochs and steps come from TrainConfig; TFX's step counts are not used by run_fn.
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        custom_config={"train": dataclasses.asdict(config.train),
                       # The in-training KID reads the evaluator's real statistics (same cache).
                       "kid": {"cache_dir": fid_cache_dir(config), "splits": list(config.eval.splits),
                               "max_real": config.eval.max_real,
                               "weights_uri": config.eval.weights_uri},
                       **(trainer_extra_config or {})},
    )


def _evaluator(config: PipelineConfig, trainer, transform, latest_blessed) -> FidEvaluator:
    return FidEvaluator(
        model=trainer.outputs["model"],
        examples=transform.outputs["transformed_examples"],
        baseline_model=latest_blessed.outputs["model"],
        eval_config=section_to_json(config.eval),
        cache_dir=fid_cache_dir(config),
    )


def fid_cache_dir(config: PipelineConfig) -> str:
    """The real-image statistics cache: under the pipeline root, so every run of this pipeline
    (its Trainer's KID and its FidEvaluator) shares it."""
    return os.path.join(config.pipeline_root, fid_constants.DEFAULT_CACHE_SUBDIR)


def create_pipeline(config: PipelineConfig, *, metadata_connection_config=None,
                    beam_pipeline_args: list[str] | None = None,
                    serving_destination=None, trainer_class=None,
                    trainer_extra_config: dict | None = None) -> tfx.dsl.Pipeline:
    """Build the TFX pipeline for ``config``.

    Args:
      config: the run's configuration (validated here).
      metadata_connection_config: MLMD connection; None lets the orchestrator choose (Vertex).
      beam_pipeline_args: passed to every Beam-based component (ExampleGen, Transform).
      serving_destination: optional push destination proto (default: ``config.serving_dir``).
      trainer_class, trainer_extra_config: see :func:`create_components`.
    Returns:
      A ``tfx.dsl.Pipeline``.
    """
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=create_components(config, serving_destination=serving_destination,
                                     trainer_class=trainer_class,
                                     trainer_extra_config=trainer_extra_config),
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )
