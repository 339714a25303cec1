"""Run the pipeline locally: TFX LocalDagRunner, Beam DirectRunner, MLMD in a sqlite file."""
from __future__ import annotations

import logging
import os
import time

from dcgan_common.config import PipelineConfig

log = logging.getLogger(__name__)


def beam_args(config: PipelineConfig) -> list[str]:
    """DirectRunner arguments for ``config.beam_mode`` (in_memory or multi_processing)."""
    args = ["--runner=DirectRunner", f"--direct_running_mode={config.beam_mode}"]
    if config.beam_mode == "multi_processing":
        args.append(f"--direct_num_workers={config.beam_workers}")
    return args


def run_local(config: PipelineConfig) -> str:
    """Run the whole pipeline once with LocalDagRunner.

    Writes the resolved config as ``run_config.json`` under the pipeline root before running.
    Returns:
      The MLMD ``pipeline_run`` context name of this run (used by pipeline/summary.py).
    Raises:
      ConfigError: invalid configuration (before anything runs).
      Exception: whatever a failing component raised (LocalDagRunner re-raises it; the CLI turns it
        into exit code 1).
    """
    from tfx import v1 as tfx  # heavy: imported only when a run starts

    from pipeline.pipeline import create_pipeline

    config.validate()
    os.makedirs(config.pipeline_root, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(config.metadata_path)), exist_ok=True)
    with open(os.path.join(config.pipeline_root, "run_config.json"), "w") as f:
        f.write(config.to_json())
    pipeline = create_pipeline(
        config,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            config.metadata_path),
        beam_pipeline_args=beam_args(config),
    )
    started = time.time()
    tfx.orchestration.LocalDagRunner().run(pipeline)
    log.info("pipeline finished in %.1f s", time.time() - started)
    return latest_run_id(config.metadata_path, config.pipeline_name)


def latest_run_id(metadata_path: str, pipeline_name: str) -> str:
    """Name of the newest ``pipeline_run`` context of ``pipeline_name`` in an MLMD sqlite file.

    Raises:
      LookupError: no run of that pipeline is recorded.
    """
    from pipeline.run_record import open_store, runs_of_pipeline

    runs = runs_of_pipeline(open_store(metadata_path), pipeline_name)
    if not runs:
        raise LookupError(f"no run of pipeline {pipeline_name!r} in {metadata_path}")
    return runs[-1].name
