"""``dcgan-tfx compile`` and ``dcgan-tfx schedule``: the cloud subcommands.

``register(subparsers)`` is called by ``pipeline/cli.py``. TensorFlow/TFX and the Google Cloud
clients are imported inside the handlers only, so ``dcgan-tfx --help`` stays instant.
Errors in flags raise ``ConfigError`` (exit code 2 in pipeline/cli.py); nothing is compiled or
sent then.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from dcgan_common.config import ConfigError
from kubeflow.config import (ACCELERATOR_TYPES, BEAM_RUNNERS, DataflowConfig, TrainingConfig,
                             VertexConfig)
from pipeline.knobs import add_pipeline_knobs, config_from_knobs

EXIT_OK, EXIT_FAILED = 0, 1


def _add_compile(subparsers) -> None:
    p = subparsers.add_parser(
        "compile", help="compile the pipeline to a Vertex AI / Kubeflow Pipelines v2 spec (JSON)",
        description="Compile the same pipeline `dcgan-tfx run` runs locally into a PipelineJob JSON "
                    "for Vertex AI Pipelines (or Kubeflow Pipelines v2). Nothing is sent.")
    p.add_argument("--target", choices=("vertex", "kubeflow"), default="vertex",
                   help="vertex: Trainer as a Vertex AI custom job; kubeflow: Trainer as a pipeline step")
    p.add_argument("--out", required=True, help="output JSON file (a <out>.config.json is written beside it)")
    g = p.add_argument_group("where")
    g.add_argument("--project", required=True, help="GCP project id")
    g.add_argument("--region", required=True, help="Vertex AI / Dataflow region, e.g. europe-west4")
    g.add_argument("--pipeline-root", required=True, help="gs:// root for all artifacts")
    g.add_argument("--data-root", required=True,
                   help="gs:// crawl folder <root>/<category>/<image>, or the folder of dated/numbered "
                        "crawls with --data-pattern (<root>/span-{SPAN}/<category>/<image>)")
    g.add_argument("--serving-destination", required=True,
                   help="gs:// prefix blessed generators are published to (versions/ + LATEST pointer)")
    g.add_argument("--image", required=True, help="pipeline image URI with tag or digest (kubeflow/Dockerfile)")
    g.add_argument("--service-account", default="",
                   help="service account e-mail for steps, training, Dataflow (default: the project's "
                        "default compute service account)")
    g.add_argument("--display-name", default="", help="pipeline display name (default: the pipeline name)")
    g.add_argument("--no-cache", action="store_true", help="disable Vertex step caching")
    g.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="GCP label (repeatable; default: none)")
    d = p.add_argument_group("Beam (ImageExampleGen, Transform)")
    d.add_argument("--beam-runner", choices=BEAM_RUNNERS, default=DataflowConfig.runner,
                   help="dataflow: Dataflow jobs; direct: DirectRunner inside each component's pod")
    d.add_argument("--dataflow-machine-type", default=DataflowConfig.machine_type, help="Dataflow worker type")
    d.add_argument("--dataflow-max-workers", type=int, default=DataflowConfig.max_num_workers,
                   help="Dataflow autoscaling cap (the main cost knob)")
    d.add_argument("--dataflow-disk-gb", type=int, default=DataflowConfig.disk_size_gb,
                   help="worker boot disk, GB (default 0: Dataflow's default)")
    d.add_argument("--dataflow-temp-location", default="", help="gs:// (default: PIPELINE_ROOT/beam-tmp)")
    d.add_argument("--dataflow-pip-install", action="store_true",
                   help="workers pip-install deps from setup.py instead of starting from the pipeline image")
    d.add_argument("--network", default="", help="VPC network of Dataflow workers (default: the project's default)")
    d.add_argument("--subnetwork", default="", help="VPC subnetwork of Dataflow workers (default: none set)")
    d.add_argument("--no-public-ips", action="store_true",
                   help="Dataflow workers without external IPs (needs Private Google Access)")
    t = p.add_argument_group("training (Vertex AI custom job; --target vertex only)")
    t.add_argument("--train-in-pipeline-step", action="store_true",
                   help="run the stock Trainer inside its pipeline step instead of a custom job")
    # None = not given: --target kubeflow refuses these flags only when they are given.
    t.add_argument("--train-machine-type", default=None,
                   help=f"Vertex AI machine type of the trainer job (default {TrainingConfig.machine_type})")
    t.add_argument("--gpu-type", default=None, choices=ACCELERATOR_TYPES,
                   help=f"accelerator of the trainer job (default {TrainingConfig.accelerator_type})")
    t.add_argument("--gpu-count", type=int, default=None,
                   help=f"accelerators per trainer machine, 0 = CPU only (default {TrainingConfig.accelerator_count})")
    t.add_argument("--train-workers", type=int, default=0,
                   help="extra identical machines (multi-worker; MultiWorkerMirroredStrategy); the "
                        "batch size must be a multiple of machines x GPUs (default 0)")
    t.add_argument("--train-boot-disk-gb", type=int, default=0,
                   help="trainer boot disk, GB (default 0: Vertex's default, 100 GB)")
    e = p.add_argument_group("FID evaluator step resources (0 = Vertex default)")
    e.add_argument("--evaluator-cpu", type=float, default=0.0, help="vCPUs of the FidEvaluator step (default 0: Vertex's)")
    e.add_argument("--evaluator-memory-gb", type=float, default=0.0,
                   help="memory of the FidEvaluator step, GB (default 0: Vertex's)")
    e.add_argument("--evaluator-gpu-type", default="", choices=("",) + ACCELERATOR_TYPES,
                   help="accelerator of the FidEvaluator step (default: none)")
    e.add_argument("--evaluator-gpu-count", type=int, default=0,
                   help="accelerators of the FidEvaluator step (default 0: none)")
    add_pipeline_knobs(p.add_argument_group("pipeline knobs (as for `dcgan-tfx run`)"))
    p.add_argument("--dry-run", action="store_true", help="print the resolved configs and exit")
    p.set_defaults(handler=_handle_compile)


def _labels(items: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--label wants KEY=VALUE, got {item!r}")
        out.append((key, value))
    return tuple(out)


#: (flag, args attribute) of the Trainer flags that only shape the Vertex AI custom job.
_CUSTOM_JOB_FLAGS = (("--train-machine-type", "train_machine_type"), ("--gpu-type", "gpu_type"),
                     ("--gpu-count", "gpu_count"), ("--train-workers", "train_workers"),
                     ("--train-boot-disk-gb", "train_boot_disk_gb"))


def _refuse_custom_job_flags(args: argparse.Namespace) -> None:
    """Refuse custom-job flags for ``--target kubeflow``, where nothing in the spec would carry them.

    The kubeflow Trainer is a plain pipeline step. KFP's own backend reads a step's accelerator
    type as a Kubernetes resource name (``nvidia.com/gpu``), not a Vertex name such as
    NVIDIA_TESLA_T4, and has no machine types, so these flags cannot become a real request there.
    ``None`` and ``0`` mean "not asked for" and pass.
    Raises:
      ConfigError: naming every such flag given, and what to do instead.
    """
    given = [flag for flag, attr in _CUSTOM_JOB_FLAGS if getattr(args, attr) not in (None, 0)]
    if given:
        one = len(given) == 1
        raise ConfigError(
            f"{', '.join(given)} {'is' if one else 'are'} for the Vertex AI training job only; "
            "--target kubeflow runs the Trainer as a plain pipeline step without a GPU: "
            f"drop {'it' if one else 'them'}, or compile with --target vertex to train on a GPU machine")


def _training_config(args: argparse.Namespace) -> TrainingConfig:
    """The Trainer part of the VertexConfig from ``compile`` flags (unset flags take its defaults).

    Raises:
      ConfigError: custom-job flags with ``--target kubeflow``.
    """
    if args.target == "kubeflow":
        _refuse_custom_job_flags(args)
        # No custom job and no GPU: the side .config.json must say so, not show the Vertex defaults.
        return TrainingConfig(use_vertex=False, accelerator_count=0)
    default = TrainingConfig()
    return TrainingConfig(
        use_vertex=not args.train_in_pipeline_step,
        machine_type=args.train_machine_type or default.machine_type,
        accelerator_type=args.gpu_type or default.accelerator_type,
        accelerator_count=default.accelerator_count if args.gpu_count is None else args.gpu_count,
        worker_count=args.train_workers, boot_disk_size_gb=args.train_boot_disk_gb)


def vertex_config_from_args(args: argparse.Namespace) -> VertexConfig:
    """Build and validate the VertexConfig from ``compile`` flags. Raises ConfigError."""
    return VertexConfig(
        project=args.project, region=args.region, pipeline_root=args.pipeline_root,
        data_root=args.data_root, serving_destination=args.serving_destination,
        image_uri=args.image, service_account=args.service_account,
        display_name=args.display_name, enable_cache=not args.no_cache,
        dataflow=DataflowConfig(
            runner=args.beam_runner, machine_type=args.dataflow_machine_type,
            max_num_workers=args.dataflow_max_workers, disk_size_gb=args.dataflow_disk_gb,
            temp_location=args.dataflow_temp_location, use_pipeline_image=not args.dataflow_pip_install,
            network=args.network, subnetwork=args.subnetwork, no_public_ips=args.no_public_ips),
        training=_training_config(args),
        evaluator_cpu=args.evaluator_cpu, evaluator_memory_gb=args.evaluator_memory_gb,
        evaluator_accelerator_type=args.evaluator_gpu_type,
        evaluator_accelerator_count=args.evaluator_gpu_count,
        labels=_labels(args.label),
    ).validate()


def _handle_compile(args: argparse.Namespace) -> int:
    vc = vertex_config_from_args(args)
    from kubeflow.vertex_runner import cloud_pipeline_config, compile_pipeline

    pc = config_from_knobs(args)  # paths come from the VertexConfig
    if args.dry_run:
        resolved = {"target": args.target, "pipeline": dataclasses.asdict(cloud_pipeline_config(pc, vc)),
                    "vertex": dataclasses.asdict(vc)}
        print(json.dumps(resolved, indent=2, sort_keys=True))
        return EXIT_OK
    job = compile_pipeline(pc, vc, args.out, target=args.target)
    tasks = sorted(job["pipelineSpec"]["root"]["dag"]["tasks"])
    print(f"dcgan-tfx: wrote {os.path.abspath(args.out)} ({len(tasks)} tasks: {', '.join(tasks)})")
    print(f"  image {vc.image_uri}; pipeline root {vc.pipeline_root}")
    return EXIT_OK


def _add_schedule(subparsers) -> None:
    p = subparsers.add_parser(
        "schedule", help="create a Vertex AI schedule for a compiled spec (or resume one)",
        description="Build a Vertex AI CreateScheduleRequest for a spec from `dcgan-tfx compile` and send "
                    "it (needs Google Cloud credentials), or print it with --dry-run. With --resume, "
                    "resume a paused schedule; --catch-up back-fills the runs missed while paused.")
    p.add_argument("--spec", help="compiled PipelineJob JSON (dcgan-tfx compile --out); needed, no default, "
                                  "unless --resume")
    p.add_argument("--cron", help='unix-cron, e.g. "TZ=Europe/Paris 0 3 * * 1" (Mondays 03:00); '
                                  "needed, no default, unless --resume")
    p.add_argument("--project", required=True, help="GCP project id the schedule is created in")
    p.add_argument("--region", required=True, help="Vertex AI region, e.g. europe-west4")
    p.add_argument("--display-name", default="", help="schedule name (default: <pipeline>-schedule)")
    p.add_argument("--max-concurrent-runs", type=int, default=1, help="runs started at once (default 1)")
    p.add_argument("--allow-queueing", action="store_true",
                   help="queue runs that would exceed --max-concurrent-runs instead of skipping them")
    p.add_argument("--max-runs", type=int, default=0, help="stop after N runs (0 = no limit)")
    p.add_argument("--start-time", default="", help="first run, RFC 3339, e.g. 2026-12-01T00:00:00Z (default: now)")
    p.add_argument("--end-time", default="", help="no runs after this, RFC 3339 (default: never)")
    p.add_argument("--service-account", default="",
                   help="service account the runs use (default: the project's default compute service account)")
    p.add_argument("--resume", metavar="SCHEDULE_NAME",
                   help="projects/P/locations/R/schedules/ID to resume instead of creating one (default: create)")
    p.add_argument("--catch-up", action="store_true", help="with --resume: back-fill missed runs")
    p.add_argument("--dry-run", action="store_true", help="print the request as JSON; send nothing")
    p.set_defaults(handler=_handle_schedule)


def _handle_schedule(args: argparse.Namespace) -> int:
    from kubeflow import schedule

    if args.resume:
        request = schedule.build_resume_request(args.resume, catch_up=args.catch_up)
    else:
        if args.catch_up:
            raise ConfigError("--catch-up applies when resuming a paused schedule (use with --resume); "
                              "Vertex sets catch-up on resume, not on create")
        if not args.spec or not args.cron:
            raise ConfigError("schedule needs --spec FILE and --cron EXPR (or --resume NAME)")
        job = schedule.load_pipeline_job(args.spec)
        name = args.display_name or f"{job.get('displayName', 'dcgan-tfx')}-schedule"
        sc = schedule.ScheduleConfig(
            project=args.project, region=args.region, display_name=name, cron=args.cron,
            max_concurrent_run_count=args.max_concurrent_runs, allow_queueing=args.allow_queueing,
            max_run_count=args.max_runs, start_time=args.start_time, end_time=args.end_time,
            service_account=args.service_account)
        request = schedule.build_create_request(sc, job)
    if args.dry_run:
        print(schedule.request_to_json(request))
        return EXIT_OK
    from google.auth.exceptions import DefaultCredentialsError

    try:
        result = schedule.send(request, args.region)
    except DefaultCredentialsError as e:  # raised while building the client, before any request
        print(f"dcgan-tfx schedule: no Google Cloud credentials found ({e}); provide Application "
              "Default Credentials (`gcloud auth application-default login`) or set "
              "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or use --dry-run",
              file=sys.stderr)
        return EXIT_FAILED
    print(f"dcgan-tfx: {'created schedule ' + result.name if result is not None else 'resumed ' + args.resume}")
    return EXIT_OK


def register(subparsers) -> None:
    """Add ``compile`` and ``schedule`` to the ``dcgan-tfx`` sub-command parser."""
    _add_compile(subparsers)
    _add_schedule(subparsers)
