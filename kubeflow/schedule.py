"""Vertex AI schedules for the compiled pipeline: build, validate, print (dry run) or send the request.

``build_create_request`` turns a compiled PipelineJob JSON (``dcgan-tfx compile``) and a
:class:`ScheduleConfig` into an ``aiplatform_v1.CreateScheduleRequest``; nothing is sent until
:func:`send` is called, so the dry run exercises the same code path as the real thing.

Catch-up: in the Vertex API ``Schedule.catch_up`` is output-only; whether missed runs are
back-filled is chosen when a PAUSED schedule is resumed (``ResumeScheduleRequest.catch_up``).
So ``--catch-up`` belongs to :func:`build_resume_request`; at creation the related knobs are
``max_concurrent_run_count`` and ``allow_queueing`` (queue, rather than skip, runs that would
exceed it). Field docs: google.cloud.aiplatform_v1.types.Schedule.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dcgan_common.config import ConfigError

#: (name, lowest, highest, names) per cron field, unix-cron as used by Vertex AI and Cloud Scheduler.
_CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
    ("day of week", 0, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),  # 0 and 7 = Sunday
)
_TZ_PREFIX = re.compile(r"^(CRON_TZ|TZ)=(\S+)\s+(.*)$")
_SCHEDULE_NAME = re.compile(r"^projects/[^/]+/locations/[^/]+/schedules/[^/]+$")


def _cron_value(text: str, field: tuple) -> int:
    name, low, high, names = field
    upper = text.upper()
    if names and upper in names:
        return names.index(upper) + (1 if name == "month" else 0)
    if not text.isdigit():
        raise ConfigError(f"cron {name}: {text!r} is not a number" + (f" or one of {names}" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise ConfigError(f"cron {name}: {value} is outside {low}-{high}")
    return value


def validate_cron(cron: str) -> str:
    """Check a unix-cron expression, optionally prefixed ``TZ=<IANA zone>`` or ``CRON_TZ=<zone>``.

    Five fields (minute hour day-of-month month day-of-week); each a comma list of ``*``, ``N``,
    ``N-M``, with optional ``/step``; month and weekday also accept JAN… / SUN… names.
    Returns:
      The expression with surrounding whitespace removed.
    Raises:
      ConfigError: naming the bad field, value or time zone.
    """
    cron = (cron or "").strip()
    tz_match = _TZ_PREFIX.match(cron)
    body = cron
    if tz_match:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(tz_match.group(2))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
            raise ConfigError(f"cron time zone {tz_match.group(2)!r} is not an IANA zone name") from e
        body = tz_match.group(3)
    parts = body.split()
    if len(parts) != 5:
        raise ConfigError(f"cron needs 5 fields (minute hour day-of-month month day-of-week), got "
                          f"{len(parts)} in {cron!r}")
    for part, field in zip(parts, _CRON_FIELDS):
        for item in part.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) < 1):
                raise ConfigError(f"cron {field[0]}: bad step in {item!r}")
            if base == "*":
                continue
            low_text, dash, high_text = base.partition("-")
            low = _cron_value(low_text, field)
            if dash and low > _cron_value(high_text, field):
                raise ConfigError(f"cron {field[0]}: empty range {base!r}")
    return cron


def _rfc3339(name: str, text: str) -> str:
    if not text:
        return ""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise ConfigError(f"schedule {name} must be an RFC 3339 time like 2026-12-01T00:00:00Z, got {text!r}") from e
    if parsed.tzinfo is None:
        raise ConfigError(f"schedule {name} needs a time zone offset (e.g. Z), got {text!r}")
    return parsed.isoformat()


@dataclass(frozen=True)
class ScheduleConfig:
    """A recurring Vertex AI pipeline run.

    cron: unix-cron, optionally ``TZ=Europe/Paris 0 3 * * 1`` (default zone UTC).
    max_concurrent_run_count: runs of this schedule allowed to be started at once (>= 1; 1 keeps
      runs from overlapping — our Pusher compares each run with the last blessed model).
    allow_queueing: when the limit is reached, queue new runs instead of skipping them.
    max_run_count: stop after this many runs (0 = no limit).
    start_time / end_time: RFC 3339 with offset ("" = now / never).
    service_account: runs the pipeline ("" = the default compute service account).
    parameter_values: runtime parameter overrides of the compiled spec (usually empty).
    """

    project: str
    region: str
    display_name: str
    cron: str
    max_concurrent_run_count: int = 1
    allow_queueing: bool = False
    max_run_count: int = 0
    start_time: str = ""
    end_time: str = ""
    service_account: str = ""
    parameter_values: tuple[tuple[str, Any], ...] = ()

    def validate(self) -> "ScheduleConfig":
        """Returns self; raises ConfigError naming the bad field."""
        if not re.match(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", self.project or ""):
            raise ConfigError(f"schedule project must be a GCP project id, got {self.project!r}")
        if not re.match(r"^[a-z]+-[a-z]+[0-9]+$", self.region or ""):
            raise ConfigError(f"schedule region must look like 'europe-west4', got {self.region!r}")
        if not self.display_name or len(self.display_name) > 128:
            raise ConfigError("schedule display_name must be 1-128 characters")
        validate_cron(self.cron)
        if self.max_concurrent_run_count < 1:
            raise ConfigError(f"max_concurrent_run_count must be >= 1, got {self.max_concurrent_run_count}")
        if self.max_run_count < 0:
            raise ConfigError(f"max_run_count must be >= 0 (0 = unlimited), got {self.max_run_count}")
        start, end = _rfc3339("start_time", self.start_time), _rfc3339("end_time", self.end_time)
        if start and end and datetime.fromisoformat(start) >= datetime.fromisoformat(end):
            raise ConfigError("schedule end_time must be after start_time")
        if self.service_account and not self.service_account.endswith(".gserviceaccount.com"):
            raise ConfigError(f"service_account must end in .gserviceaccount.com, got {self.service_account!r}")
        return self

    @property
    def parent(self) -> str:
        """``projects/<project>/locations/<region>``."""
        return f"projects/{self.project}/locations/{self.region}"


def load_pipeline_job(spec_path: str) -> dict[str, Any]:
    """Read a compiled PipelineJob JSON (from ``dcgan-tfx compile``).

    Raises:
      ConfigError: missing file, not JSON, or no ``pipelineSpec`` / ``runtimeConfig.gcsOutputDirectory``.
    """
    try:
        with open(spec_path) as f:
            job = json.load(f)
    except FileNotFoundError as e:
        raise ConfigError(f"no compiled spec at {spec_path}; run `dcgan-tfx compile` first") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"{spec_path} is not JSON: {e}") from e
    if not isinstance(job, dict) or "pipelineSpec" not in job:
        raise ConfigError(f"{spec_path} is not a compiled PipelineJob (no pipelineSpec)")
    if not job.get("runtimeConfig", {}).get("gcsOutputDirectory", "").startswith("gs://"):
        raise ConfigError(f"{spec_path} has no gs:// runtimeConfig.gcsOutputDirectory (pipeline root)")
    return job


def build_create_request(sc: ScheduleConfig, job: dict[str, Any]):
    """An ``aiplatform_v1.CreateScheduleRequest`` that starts ``job`` on ``sc.cron``.

    Raises:
      ConfigError: invalid ``sc`` or job.
    """
    from google.cloud import aiplatform_v1 as v1

    sc.validate()
    runtime = job.get("runtimeConfig", {})
    parameter_values = dict(runtime.get("parameterValues", {}))
    parameter_values.update(dict(sc.parameter_values))
    pipeline_job = v1.PipelineJob(
        display_name=job.get("displayName") or sc.display_name,
        pipeline_spec=job["pipelineSpec"],
        labels=job.get("labels", {}),
        runtime_config=v1.PipelineJob.RuntimeConfig(
            gcs_output_directory=runtime["gcsOutputDirectory"], parameter_values=parameter_values),
        service_account=sc.service_account,
    )
    schedule = v1.Schedule(
        display_name=sc.display_name,
        cron=validate_cron(sc.cron),
        max_concurrent_run_count=sc.max_concurrent_run_count,
        allow_queueing=sc.allow_queueing,
        create_pipeline_job_request=v1.CreatePipelineJobRequest(parent=sc.parent, pipeline_job=pipeline_job),
    )
    if sc.max_run_count:
        schedule.max_run_count = sc.max_run_count
    if sc.start_time:
        schedule.start_time = datetime.fromisoformat(_rfc3339("start_time", sc.start_time))
    if sc.end_time:
        schedule.end_time = datetime.fromisoformat(_rfc3339("end_time", sc.end_time))
    return v1.CreateScheduleRequest(parent=sc.parent, schedule=schedule)


def build_resume_request(schedule_name: str, *, catch_up: bool):
    """``ResumeScheduleRequest`` for a paused schedule; ``catch_up`` back-fills the missed runs.

    Raises:
      ConfigError: ``schedule_name`` is not ``projects/P/locations/R/schedules/ID``.
    """
    from google.cloud import aiplatform_v1 as v1

    if not _SCHEDULE_NAME.match(schedule_name or ""):
        raise ConfigError(f"schedule name must be projects/P/locations/R/schedules/ID, got {schedule_name!r}")
    return v1.ResumeScheduleRequest(name=schedule_name, catch_up=catch_up)


def request_to_json(request) -> str:
    """The request as the JSON the REST API takes (camelCase; proto-plus ``to_json``)."""
    return type(request).to_json(request, indent=2, sort_keys=True)


def _client(region: str):
    from google.cloud import aiplatform_v1 as v1

    # Vertex AI is regional: the endpoint must match the schedule's region.
    return v1.ScheduleServiceClient(client_options={"api_endpoint": f"{region}-aiplatform.googleapis.com"})


def send(request, region: str):
    """Send a Create- or ResumeScheduleRequest to Vertex AI (needs credentials; never used in tests).

    Returns:
      The created ``Schedule`` (create) or None (resume).
    """
    from google.cloud import aiplatform_v1 as v1

    client = _client(region)
    if isinstance(request, v1.CreateScheduleRequest):
        return client.create_schedule(request=request)
    if isinstance(request, v1.ResumeScheduleRequest):
        client.resume_schedule(request=request)
        return None
    raise TypeError(f"cannot send a {type(request).__name__}")
