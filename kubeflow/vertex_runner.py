"""Compile the one pipeline (``pipeline.pipeline.create_pipeline``) for Vertex AI / Kubeflow Pipelines v2.

``compile_pipeline(pipeline_config, vertex_config, out_path)`` writes a PipelineJob JSON
(``KubeflowV2DagRunner``, pipeline spec schema 2.1) that Vertex AI Pipelines runs as is, and that
``kubeflow/schedule.py`` turns into a schedule. The graph is never changed here; the runner only
chooses paths, the image, Beam arguments and where the Trainer runs:

* Beam (ImageExampleGen, Transform): DataflowRunner arguments from :class:`DataflowConfig`
  (project, region, temp location, ``--setup_file=/pipeline/setup.py`` inside the image, worker
  machine type, max workers, optionally the pipeline image as the worker container), or the
  DirectRunner arguments the local runner uses.
* Trainer: with ``training.use_vertex`` it runs as a Vertex AI custom job through TFX's
  ``google_cloud_ai_platform`` Trainer extension: the pipeline step only submits the job and waits;
  the job runs our image on a GPU machine (MirroredStrategy across its GPUs) and optionally extra
  worker replicas (TF_CONFIG set by Vertex → MultiWorkerMirroredStrategy).

How the Trainer is swapped: ``create_pipeline`` takes ``trainer_class`` and
``trainer_extra_config``; for Vertex this module passes the extension's ``Trainer`` (the stock
Trainer with ``...google_cloud_ai_platform.trainer.executor.GenericExecutor``) and its three
``custom_config`` keys, so the graph is built once, with the same node id and channels.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

from kubeflow.config import IMAGE_SETUP_FILE, IMAGE_SOURCE_ROOT, VertexConfig
from dcgan_common.config import ConfigError, PipelineConfig
from dcgan_common.fileio import atomic_write

log = logging.getLogger(__name__)

#: The repository root on the machine that compiles (the parent of this package).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TARGETS = ("vertex", "kubeflow")


def dataflow_beam_args(vc: VertexConfig) -> list[str]:
    """``beam_pipeline_args`` for DataflowRunner (list of ``--flag=value`` strings).

    Flags (Apache Beam GoogleCloudOptions / WorkerOptions / SetupOptions):
    ``--runner --project --region --temp_location --setup_file --machine_type --max_num_workers``
    and, when configured, ``--disk_size_gb --sdk_container_image --service_account_email
    --network --subnetwork --no_use_public_ips``.
    """
    df = vc.dataflow
    args = [
        "--runner=DataflowRunner",
        f"--project={vc.project}",
        f"--region={vc.region}",
        f"--temp_location={vc.beam_temp_location}",
        # Beam builds an sdist of our package from this setup.py and installs it on every worker,
        # so DoFns and the preprocessing_fn import the same code as the pipeline step.
        f"--setup_file={IMAGE_SETUP_FILE}",
        f"--machine_type={df.machine_type}",
        f"--max_num_workers={df.max_num_workers}",
    ]
    if df.disk_size_gb:
        args.append(f"--disk_size_gb={df.disk_size_gb}")
    if df.use_pipeline_image:
        # Workers start from our image (TFX, tf.Transform, TF already installed) instead of
        # pip-installing the whole stack on each worker at start-up.
        args.append(f"--sdk_container_image={vc.image_uri}")
    if vc.service_account:
        args.append(f"--service_account_email={vc.service_account}")
    if df.network:
        args.append(f"--network={df.network}")
    if df.subnetwork:
        args.append(f"--subnetwork={df.subnetwork}")
    if df.no_public_ips:
        args.append("--no_use_public_ips")
    return args


def beam_args_for(pipeline_config: PipelineConfig, vc: VertexConfig) -> list[str]:
    """Dataflow arguments, or the local runner's DirectRunner ones when ``dataflow.runner == 'direct'``."""
    if vc.dataflow.runner == "dataflow":
        return dataflow_beam_args(vc)
    from pipeline.local_runner import beam_args

    return beam_args(pipeline_config)


def _machine_spec(machine_type: str, accelerator_type: str, accelerator_count: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"machine_type": machine_type}
    if accelerator_count:
        spec["accelerator_type"] = accelerator_type
        spec["accelerator_count"] = accelerator_count
    return spec


def vertex_training_job_args(vc: VertexConfig) -> dict[str, Any]:
    """The ``ai_platform_training_args`` value: project + a Vertex ``CustomJob`` (snake_case dict).

    ``job_spec.worker_pool_specs[0]`` is the chief (1 replica); with ``training.worker_count`` > 0
    a second pool of identical machines. TFX replaces each pool's container command with its own
    ``run_executor`` entry point, so only ``image_uri`` is set. Schema:
    https://cloud.google.com/vertex-ai/docs/reference/rest/v1/CustomJobSpec

    What the trainer expects of it: Vertex sets TF_CONFIG on every replica, naming pool 0 "chief"
    and pool 1's replicas "worker" 0..N-1, so ``trainer.train.strategy_kind`` picks
    MultiWorkerMirroredStrategy and ``is_chief`` makes the pool-0 replica the only writer; the
    pools are identical because that strategy needs as many GPUs on every machine; no
    parameter-server pool (MultiWorkerMirroredStrategy has none).
    """
    t = vc.training
    pool = {
        "machine_spec": _machine_spec(t.machine_type, t.accelerator_type, t.accelerator_count),
        "replica_count": 1,
        "container_spec": {"image_uri": vc.image_uri},
    }
    if t.boot_disk_size_gb:
        pool["disk_spec"] = {"boot_disk_type": "pd-ssd", "boot_disk_size_gb": t.boot_disk_size_gb}
    pools = [pool]
    if t.worker_count:
        pools.append({**json.loads(json.dumps(pool)), "replica_count": t.worker_count})
    job_spec: dict[str, Any] = {"worker_pool_specs": pools}
    if vc.service_account:
        job_spec["service_account"] = vc.service_account
    job: dict[str, Any] = {"project": vc.project, "job_spec": job_spec}
    if vc.labels:
        job["labels"] = dict(vc.labels)
    return job


def vertex_trainer_custom_config(vc: VertexConfig) -> dict[str, Any]:
    """The custom_config keys TFX's Vertex Trainer extension reads (enable, region, job args)."""
    from tfx.v1.extensions import google_cloud_ai_platform as gcai

    return {
        gcai.ENABLE_VERTEX_KEY: True,
        gcai.VERTEX_REGION_KEY: vc.region,
        gcai.TRAINING_ARGS_KEY: vertex_training_job_args(vc),
    }


def relocate_repo_paths(pipeline, *, repo_root: str = REPO_ROOT,
                        image_root: str = IMAGE_SOURCE_ROOT) -> list[str]:
    """Rewrite exec properties that are absolute paths inside this checkout to the image's copy.

    ``create_pipeline`` names files next to the code by absolute path (ImportSchemaGen's
    ``schema_file`` = ``<repo>/pipeline/raw_schema.pbtxt``); that path means nothing inside the
    container, where the same tree sits at ``/pipeline`` (kubeflow/Dockerfile). Config sections
    travel as JSON objects in one property (the FidEvaluator's ``eval_config``, the Trainer's
    ``custom_config``), so a path among their values (e.g. ``weights_uri``) is rewritten too, and
    the property re-encoded with sorted keys.
    Returns:
      ``"<node id>.<property>"`` of every rewritten property, ``"<node id>.<property>.<key>..."``
      for a value inside a JSON object (for the log and tests).
    """
    prefix = repo_root.rstrip(os.sep) + os.sep

    def relocate(value, where: str, changed: list[str]):
        if isinstance(value, str) and value.startswith(prefix):
            changed.append(where)
            rel = os.path.relpath(value, repo_root).replace(os.sep, "/")
            return f"{image_root.rstrip('/')}/{rel}"
        if isinstance(value, dict):
            return {k: relocate(v, f"{where}.{k}", changed) for k, v in value.items()}
        if isinstance(value, list):
            return [relocate(v, f"{where}[{i}]", changed) for i, v in enumerate(value)]
        return value

    changed: list[str] = []
    for node in pipeline.components:
        for key, value in list(node.exec_properties.items()):
            where = f"{node.id}.{key}"
            section = _json_object(value)
            if section is not None:
                inside: list[str] = []
                section = relocate(section, where, inside)
                if inside:
                    node.exec_properties[key] = json.dumps(section, sort_keys=True)
                    changed.extend(inside)
                continue
            relocated = relocate(value, where, changed)
            if relocated is not value:
                node.exec_properties[key] = relocated
    return changed


def _json_object(value) -> dict | None:
    """``value`` decoded when it is a string holding a JSON object, else None."""
    if not (isinstance(value, str) and value.lstrip().startswith("{")):
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


def evaluator_resources(vc: VertexConfig):
    """A KFP ``ResourceSpec`` for the FidEvaluator step, or None when every evaluator_* is unset.

    Both the older numeric fields (cpu_limit, memory_limit in GB, accelerator type/count) and the
    newer string fields are filled, as the KFP SDK does, so old and new backends read them.
    """
    if not (vc.evaluator_cpu or vc.evaluator_memory_gb or vc.evaluator_accelerator_count):
        return None
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec()
    if vc.evaluator_cpu:
        spec.cpu_limit = vc.evaluator_cpu
        spec.resource_cpu_limit = f"{vc.evaluator_cpu:g}"
    if vc.evaluator_memory_gb:
        spec.memory_limit = vc.evaluator_memory_gb
        spec.resource_memory_limit = f"{vc.evaluator_memory_gb:g}G"
    if vc.evaluator_accelerator_count:
        spec.accelerator.type = vc.evaluator_accelerator_type
        spec.accelerator.count = vc.evaluator_accelerator_count
        spec.accelerator.resource_type = vc.evaluator_accelerator_type
        spec.accelerator.resource_count = str(vc.evaluator_accelerator_count)
    return spec


def cloud_pipeline_config(pipeline_config: PipelineConfig, vc: VertexConfig) -> PipelineConfig:
    """``pipeline_config`` with the cloud paths and caching of ``vc`` (validated).

    data_root, pipeline_root and serving_dir come from ``vc``; the FID cache therefore lives under
    the gs:// pipeline root. metadata_path is unused on Vertex (Vertex ML Metadata is managed).
    Raises:
      ConfigError: an invalid config, or (with the custom job) a ``train.batch_size`` that the
        job's replicas cannot share evenly, which the trainer would refuse once the machines are up.
    """
    config = dataclasses.replace(
        pipeline_config, data_root=vc.data_root, pipeline_root=vc.pipeline_root,
        serving_dir=vc.serving_destination, enable_cache=vc.enable_cache).validate()
    t = vc.training
    if t.use_vertex and config.train.batch_size % t.replicas:
        raise ConfigError(
            f"train.batch_size {config.train.batch_size} does not split evenly over the training "
            f"job's {t.replicas} replicas ({t.machines} machine(s) x "
            f"{max(1, t.accelerator_count)} replica(s) each): the trainer refuses such a batch "
            f"at start; use a multiple of {t.replicas}, or change --train-workers / --gpu-count")
    return config


def build_cloud_pipeline(pipeline_config: PipelineConfig, vc: VertexConfig, *, target: str = "vertex"):
    """The TFX pipeline for Vertex (``target='vertex'``) or plain Kubeflow Pipelines v2.

    ``kubeflow`` differs in one way: the Trainer stays a pipeline step (no Vertex custom job, which
    needs Vertex AI); Dataflow is still used if configured.
    Raises:
      ConfigError: invalid configs or unknown target.
    """
    if target not in TARGETS:
        raise ConfigError(f"target must be one of {TARGETS}, got {target!r}")
    vc.validate()
    config = cloud_pipeline_config(pipeline_config, vc)
    from tfx import v1 as tfx

    from pipeline.pipeline import create_pipeline

    on_vertex = target == "vertex" and vc.training.use_vertex
    pipeline = create_pipeline(
        config,
        metadata_connection_config=None,  # Vertex/KFP provide ML Metadata
        beam_pipeline_args=beam_args_for(config, vc),
        serving_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=vc.serving_destination)),
        trainer_class=tfx.extensions.google_cloud_ai_platform.Trainer if on_vertex else None,
        trainer_extra_config=vertex_trainer_custom_config(vc) if on_vertex else None,
    )
    relocated = relocate_repo_paths(pipeline)
    if relocated:
        log.info("pointed %s at the image's copy under %s", ", ".join(relocated), IMAGE_SOURCE_ROOT)
    resources = evaluator_resources(vc)
    if resources is not None:
        from components.fid_evaluator.component import FidEvaluator

        evaluators = [n for n in pipeline.components if isinstance(n, FidEvaluator)]
        if len(evaluators) != 1:
            raise ConfigError(f"expected one FidEvaluator node, found {len(evaluators)}")
        evaluators[0].with_platform_config(resources)
    return pipeline


def compile_pipeline(pipeline_config: PipelineConfig, vc: VertexConfig, out_path: str, *,
                     target: str = "vertex") -> dict[str, Any]:
    """Compile to a PipelineJob JSON at ``out_path``; also write ``<out_path>.config.json``.

    The side file holds the resolved PipelineConfig and VertexConfig (what produced the spec).
    Returns:
      The PipelineJob as a dict (``displayName``, ``pipelineSpec``, ``runtimeConfig``, ``labels``).
    Raises:
      ConfigError: invalid configuration or target (nothing written).
      OSError: the output cannot be written.
    """
    cloud_pipeline_config(pipeline_config, vc.validate())  # fail on bad config before importing TFX
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as kfv2

    pipeline = build_cloud_pipeline(pipeline_config, vc, target=target)
    runner_config = kfv2.KubeflowV2DagRunnerConfig(
        display_name=vc.display_name or pipeline_config.pipeline_name,
        default_image=vc.image_uri,
        use_pipeline_spec_2_1=True)
    job = kfv2.KubeflowV2DagRunner(config=runner_config).run(pipeline, write_out=False)
    if vc.labels:
        job.setdefault("labels", {}).update(dict(vc.labels))
    # Atomic: never leave a half-written spec where a scheduler may pick it up.
    atomic_write(out_path, json.dumps(job, indent=2, sort_keys=True).encode())
    atomic_write(f"{out_path}.config.json", json.dumps(
        {"target": target, "pipeline": json.loads(cloud_pipeline_config(pipeline_config, vc).to_json()),
         "vertex": json.loads(vc.to_json())}, indent=2, sort_keys=True).encode())
    log.info("wrote %s (%d tasks)", out_path, len(job["pipelineSpec"]["root"]["dag"]["tasks"]))
    return job
