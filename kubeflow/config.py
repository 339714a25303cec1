"""One typed configuration for running the pipeline on Vertex AI Pipelines (Kubeflow Pipelines v2).

``VertexConfig`` holds every cloud knob (where things live, which image runs, what machines);
the DCGAN/FID knobs stay in :class:`dcgan_common.config.PipelineConfig`. ``kubeflow/cli.py`` fills
both from flags; :func:`kubeflow.vertex_runner.compile_pipeline` combines them.

Machine and accelerator names are Compute Engine / Vertex AI names, e.g. ``n1-standard-8`` and
``NVIDIA_TESLA_T4`` (the ``AcceleratorType`` enum of the Vertex AI API, see
https://cloud.google.com/vertex-ai/docs/reference/rest/v1/MachineSpec).
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field

from dcgan_common.config import ConfigError

#: Where the project's source tree sits inside the pipeline image (kubeflow/Dockerfile copies it).
IMAGE_SOURCE_ROOT = "/pipeline"
IMAGE_SETUP_FILE = IMAGE_SOURCE_ROOT + "/setup.py"

#: Vertex AI ``AcceleratorType`` values for GPUs usable in custom training (MachineSpec enum).
ACCELERATOR_TYPES = (
    "NVIDIA_TESLA_T4", "NVIDIA_TESLA_V100", "NVIDIA_TESLA_P100", "NVIDIA_TESLA_P4",
    "NVIDIA_TESLA_A100", "NVIDIA_A100_80GB", "NVIDIA_L4", "NVIDIA_H100_80GB",
)
#: GPU counts one Vertex machine accepts (the allowed set depends on the type; these are the union).
ACCELERATOR_COUNTS = (0, 1, 2, 4, 8, 16)
#: Machine family each GPU attaches to on Compute Engine / Vertex AI (other pairings are rejected
#: by the API at submit time, hours into a run; we reject them at compile time).
ACCELERATOR_MACHINE_FAMILY = {
    "NVIDIA_TESLA_T4": "n1-", "NVIDIA_TESLA_V100": "n1-", "NVIDIA_TESLA_P100": "n1-",
    "NVIDIA_TESLA_P4": "n1-", "NVIDIA_TESLA_A100": "a2-highgpu-", "NVIDIA_A100_80GB": "a2-ultragpu-",
    "NVIDIA_L4": "g2-", "NVIDIA_H100_80GB": "a3-",
}
BEAM_RUNNERS = ("dataflow", "direct")

_REGION_RE = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")            # e.g. europe-west4, us-central1
_PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")    # GCP project id rules
_MACHINE_RE = re.compile(r"^[a-z][a-z0-9]*-[a-z0-9-]+$")       # n1-standard-8, a2-highgpu-1g …


def _require_gs(name: str, value: str) -> None:
    if not value.startswith("gs://") or len(value) <= len("gs://"):
        raise ConfigError(f"vertex.{name} must be a gs://bucket/path URI, got {value!r}")


@dataclass(frozen=True)
class DataflowConfig:
    """Beam on Dataflow for ImageExampleGen and Transform.

    runner: ``dataflow`` (DataflowRunner) or ``direct`` (DirectRunner inside the component's pod —
      fine for the 300-photo sample, slow for real crawls).
    machine_type: Dataflow worker type (``--machine_type``); n1-standard-4 = 4 vCPU, 15 GB.
    max_num_workers: autoscaling cap (``--max_num_workers``); the main cost knob.
    disk_size_gb: worker boot disk (``--disk_size_gb``); 0 = Dataflow's default.
    temp_location: ``--temp_location``; "" = ``<pipeline_root>/beam-tmp``.
    use_pipeline_image: run workers in the pipeline image (``--sdk_container_image``) so they have
      exactly our dependencies; otherwise workers pip-install them from ``--setup_file`` at start.
    network / subnetwork: optional VPC placement (``--network``, ``--subnetwork``).
    no_public_ips: workers without external IPs (``--no_use_public_ips``; needs Private Google Access).
    """

    runner: str = "dataflow"
    machine_type: str = "n1-standard-4"
    max_num_workers: int = 4
    disk_size_gb: int = 0
    temp_location: str = ""
    use_pipeline_image: bool = True
    network: str = ""
    subnetwork: str = ""
    no_public_ips: bool = False

    def validate(self) -> None:
        """Raises ConfigError naming the bad field."""
        if self.runner not in BEAM_RUNNERS:
            raise ConfigError(f"vertex.dataflow.runner must be one of {BEAM_RUNNERS}, got {self.runner!r}")
        if not _MACHINE_RE.match(self.machine_type):
            raise ConfigError(f"vertex.dataflow.machine_type looks wrong: {self.machine_type!r}")
        if self.max_num_workers < 1:
            raise ConfigError(f"vertex.dataflow.max_num_workers must be >= 1, got {self.max_num_workers}")
        if self.disk_size_gb < 0:
            raise ConfigError("vertex.dataflow.disk_size_gb must be >= 0")
        if self.temp_location:
            _require_gs("dataflow.temp_location", self.temp_location)


@dataclass(frozen=True)
class TrainingConfig:
    """The Trainer as a Vertex AI custom job (TFX's google_cloud_ai_platform Trainer extension).

    use_vertex: False keeps the stock Trainer running inside its pipeline step (no GPU unless
      ``step_accelerator_*`` is set on the step).
    machine_type / accelerator_type / accelerator_count: the chief's MachineSpec. Several GPUs on
      one machine → the trainer's MirroredStrategy.
    worker_count: extra machines of the same spec (a second worker pool); > 0 → Vertex sets
      TF_CONFIG for every replica and the trainer picks MultiWorkerMirroredStrategy.
    boot_disk_size_gb: 0 = Vertex's default (100 GB).
    """

    use_vertex: bool = True
    machine_type: str = "n1-standard-8"
    accelerator_type: str = "NVIDIA_TESLA_T4"
    accelerator_count: int = 1
    worker_count: int = 0
    boot_disk_size_gb: int = 0

    def validate(self) -> None:
        """Raises ConfigError naming the bad field."""
        if not _MACHINE_RE.match(self.machine_type):
            raise ConfigError(f"vertex.training.machine_type looks wrong: {self.machine_type!r}")
        if self.accelerator_count not in ACCELERATOR_COUNTS:
            raise ConfigError(f"vertex.training.accelerator_count must be one of {ACCELERATOR_COUNTS}, "
                              f"got {self.accelerator_count}")
        if self.accelerator_count and self.accelerator_type not in ACCELERATOR_TYPES:
            raise ConfigError(f"vertex.training.accelerator_type must be one of {ACCELERATOR_TYPES}, "
                              f"got {self.accelerator_type!r}")
        family = ACCELERATOR_MACHINE_FAMILY.get(self.accelerator_type, "")
        if self.accelerator_count and not self.machine_type.startswith(family):
            raise ConfigError(f"vertex.training: {self.accelerator_type} attaches to {family}* machines, "
                              f"not {self.machine_type}")
        if self.worker_count < 0:
            raise ConfigError("vertex.training.worker_count must be >= 0")
        if self.worker_count and not self.use_vertex:
            raise ConfigError("vertex.training.worker_count > 0 needs use_vertex (a custom job)")
        if self.boot_disk_size_gb < 0:
            raise ConfigError("vertex.training.boot_disk_size_gb must be >= 0")

    @property
    def machines(self) -> int:
        """Machines of the custom job: the chief and ``worker_count`` more."""
        return 1 + self.worker_count

    @property
    def replicas(self) -> int:
        """tf.distribute replicas of the custom job: one per GPU (one per CPU-only machine) on
        every machine, which the trainer's global batch is split over."""
        return self.machines * max(1, self.accelerator_count)


@dataclass(frozen=True)
class VertexConfig:
    """Where and how the pipeline runs on Vertex AI Pipelines.

    project / region: GCP project id and Vertex region (e.g. ``europe-west4``); the region must
      offer the chosen GPU type.
    pipeline_root: ``gs://`` root for every artifact (also the KFP ``gcsOutputDirectory``).
    data_root: ``gs://`` crawl folder ``<root>/<category>/<image>``, or the folder holding one crawl
      per span when the pipeline config has a ``data_pattern`` (``<root>/span-{SPAN}/<category>/<image>``).
    serving_destination: ``gs://`` prefix the Pusher publishes blessed generators to
      (components/pusher/gcs_publish.py layout: ``versions/<v>/`` + ``LATEST`` pointer).
    image_uri: the pipeline image (kubeflow/Dockerfile), e.g.
      ``europe-west4-docker.pkg.dev/PROJECT/dcgan/dcgan-tfx:0.1.0``. Pin a tag or digest.
    service_account: runs the pipeline steps, the training job and Dataflow workers; "" = the
      project's default compute service account.
    display_name: "" = the pipeline name.
    enable_cache: Vertex step caching (reuses a step's outputs when its inputs and parameters match;
      for ImageExampleGen these include the span and input fingerprint its pre-cache-check driver
      computes, so a new or changed crawl is ingested again).
    evaluator_*: resources for the FidEvaluator step (Inception over thousands of 299×299 images);
      cpu 0 / memory 0 = Vertex's default machine for pipeline steps.
    """

    project: str
    region: str
    pipeline_root: str
    data_root: str
    serving_destination: str
    image_uri: str
    service_account: str = ""
    display_name: str = ""
    enable_cache: bool = True
    dataflow: DataflowConfig = field(default_factory=DataflowConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluator_cpu: float = 0.0
    evaluator_memory_gb: float = 0.0
    evaluator_accelerator_type: str = ""
    evaluator_accelerator_count: int = 0
    labels: tuple[tuple[str, str], ...] = ()

    def validate(self) -> "VertexConfig":
        """Check every field; returns self. Raises ConfigError naming the bad field."""
        if not _PROJECT_RE.match(self.project or ""):
            raise ConfigError(f"vertex.project must be a GCP project id (6-30 chars, a-z 0-9 -), "
                              f"got {self.project!r}")
        if not _REGION_RE.match(self.region or ""):
            raise ConfigError(f"vertex.region must look like 'europe-west4', got {self.region!r}")
        for name in ("pipeline_root", "data_root", "serving_destination"):
            _require_gs(name, getattr(self, name))
        # A floating image (no tag or digest) makes runs irreproducible; ":latest" is at least explicit.
        pinned = "@sha256:" in self.image_uri or ":" in self.image_uri.rsplit("/", 1)[-1]
        if not self.image_uri or any(c.isspace() for c in self.image_uri) or not pinned:
            raise ConfigError(f"vertex.image_uri must name a tag or digest (…/dcgan-tfx:0.1.0), "
                              f"got {self.image_uri!r}")
        if self.service_account and not self.service_account.endswith(".gserviceaccount.com"):
            raise ConfigError(f"vertex.service_account must be an e-mail ending in "
                              f".gserviceaccount.com, got {self.service_account!r}")
        if self.evaluator_cpu < 0 or self.evaluator_memory_gb < 0:
            raise ConfigError("vertex.evaluator_cpu / evaluator_memory_gb must be >= 0")
        if self.evaluator_accelerator_count:
            if self.evaluator_accelerator_count not in ACCELERATOR_COUNTS:
                raise ConfigError(f"vertex.evaluator_accelerator_count must be one of {ACCELERATOR_COUNTS}")
            if self.evaluator_accelerator_type not in ACCELERATOR_TYPES:
                raise ConfigError(f"vertex.evaluator_accelerator_type must be one of {ACCELERATOR_TYPES}")
        for key, value in self.labels:
            if not re.match(r"^[a-z][a-z0-9_-]{0,62}$", key) or not re.match(r"^[a-z0-9_-]{0,63}$", value):
                raise ConfigError(f"vertex label {key}={value} breaks GCP label rules (lower-case, ≤ 63 chars)")
        self.dataflow.validate()
        self.training.validate()
        return self

    @property
    def beam_temp_location(self) -> str:
        """``--temp_location`` for Dataflow: the configured one or ``<pipeline_root>/beam-tmp``."""
        return self.dataflow.temp_location or self.pipeline_root.rstrip("/") + "/beam-tmp"

    def to_json(self) -> str:
        """The resolved config as sorted JSON (saved beside the compiled spec)."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)
