"""MultiWorkerMirroredStrategy for real: two worker processes on loopback ports, TF_CONFIG laid out
as Vertex AI lays it (a "chief" task and a "worker" task), each running the Trainer's ``run_fn``
(strategy, input pipeline over TFRecord files, ``trainer.train.train``) on the same small data
as one process."""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from dcgan_common import features  # noqa: E402
from loopback_cluster import chief_and_worker_tf_configs  # noqa: E402
from test_train import _real_images, _write_transformed  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS = 4
TRAIN = {"recipe": "seed", "epochs": EPOCHS, "batch_size": 4, "steps_per_epoch": 2, "seed": 5,
         "sample_grid_size": 4, "kid_every_epochs": 0, "export_best": False}
#: Wall-clock limit for one attempt of the two workers (100-120 s here with the two cores shared
#: with another training: TF's start-up and the first collectives are slow); past it the test
#: fails instead of blocking CI. A machine busier than that may need more: DCGAN_MW_TEST_TIMEOUT_S.
ATTEMPT_TIMEOUT_S = float(os.environ.get("DCGAN_MW_TEST_TIMEOUT_S", 420))

# One worker: run_fn on FnArgs from argv[1]; writes what run_fn returned and whether the serving
# dir exists then (TFX's Trainer executor raises on any worker where it does not).
_WORKER = """
import json, sys
import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs
from trainer.run_fn import run_fn
spec = json.loads(sys.argv[1])
summary = run_fn(FnArgs(**spec["fn_args"]))
with open(spec["out"], "w") as f:
    json.dump({"summary": summary,
               "serving_exists": tf.io.gfile.exists(spec["fn_args"]["serving_model_dir"])},
              f, default=str)
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """16 real photos as two gzip TFRecord files of transformed examples (two files, so TF's
    default auto-sharding would hand each worker its own file) and a transform output holding
    the transformed schema, which is all ``run_fn`` reads from it."""
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    root = tmp_path_factory.mktemp("mw_inputs")
    split = root / "Split-train"
    split.mkdir()
    images = _real_images(16)
    for i in range(2):
        _write_transformed(str(split / f"part-{i}.gz"), images[8 * i:8 * (i + 1)], [0] * 8)
    spec = {features.IMAGE_KEY: tf.io.FixedLenFeature(features.IMAGE_SHAPE, tf.float32),
            features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)}
    transform = root / "transform_graph"
    metadata_io.write_metadata(
        dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec)),
        str(transform / "transformed_metadata"))
    return {"train_files": [str(split / "*")], "transform_output": str(transform)}


def _fn_args(inputs, out_dir):
    return {"train_files": inputs["train_files"], "transform_output": inputs["transform_output"],
            "serving_model_dir": str(out_dir / "serving"),
            "model_run_dir": str(out_dir / "model_run"),
            "custom_config": {"train": TRAIN}}


def _start_workers(inputs, out_dir, attempt):
    """Start the chief and the worker; each gets its own TMPDIR, to see what it leaves there."""
    procs = []
    for role, tf_config in zip(("chief", "worker"), chief_and_worker_tf_configs()):
        tmp = out_dir / f"tmp-{attempt}-{role}"
        tmp.mkdir()
        spec = {"fn_args": _fn_args(inputs, out_dir), "out": str(out_dir / f"{attempt}-{role}.json")}
        env = {**os.environ, "PYTHONPATH": REPO, "TF_CONFIG": tf_config, "TMPDIR": str(tmp),
               "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
        log = open(out_dir / f"{attempt}-{role}.log", "w")
        procs.append(subprocess.Popen([sys.executable, "-c", _WORKER, json.dumps(spec)],
                                      cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


def _wait_all(procs, out_dir, attempt):
    deadline = time.monotonic() + ATTEMPT_TIMEOUT_S
    try:
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        _kill(procs)
    for role, p in zip(("chief", "worker"), procs):
        log = (out_dir / f"{attempt}-{role}.log").read_text()
        assert p.returncode == 0, f"{attempt} {role} exited {p.returncode}:\n{log[-4000:]}"
    return [json.loads((out_dir / f"{attempt}-{r}.json").read_text()) for r in ("chief", "worker")]


def _kill(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()


def _epochs_recorded(run_dir):
    """(epochs in the chief's summary, epoch of its latest checkpoint); the summary is written
    after the checkpoint, so it may lag by one epoch."""
    try:
        with open(os.path.join(run_dir, "training_summary.json")) as f:
            summary_epochs = json.load(f).get("epochs_completed", 0)
    except (OSError, ValueError):
        summary_epochs = 0
    prefix = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    return summary_epochs, int(prefix.rsplit("-", 1)[1]) if prefix else 0


def _wait_for(condition, procs, timeout, what):
    """Poll ``condition()`` until true; fails when time runs out or a process in ``procs`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        dead = [p.returncode for p in procs if p.poll() is not None]
        assert not dead, f"a worker exited ({dead}) while waiting for {what}"
        time.sleep(0.1)
    raise AssertionError(f"no {what} after {timeout} s")


def _event_file_pids(run_dir):
    """The process id in each TensorBoard event file's name
    (events.out.tfevents.<time>.<host>.<pid>.<n>.v2)."""
    names = [os.path.basename(p) for p in glob.glob(os.path.join(run_dir, "logs", "events.*"))]
    return sorted(int(re.fullmatch(r"events\.out\.tfevents\.\d+\..+\.(\d+)\.\d+\.v2", n)[1])
                  for n in names)


@pytest.mark.slow
def test_two_workers_match_one_process_and_resume_after_a_kill(inputs, tmp_path):
    """Two workers (one CPU replica each) train on the same global batches as one process, only
    the chief writes, and after SIGKILL of the worker mid-training a restart of both resumes
    from the chief's last checkpoint and finishes with the one-process losses and weights."""
    from trainer.run_fn import run_fn
    from tfx.components.trainer.fn_args_utils import FnArgs

    one = run_fn(FnArgs(**_fn_args(inputs, tmp_path / "one")))
    assert one["replicas"] == 1 and one["worker"]["workers"] == 1

    mw = tmp_path / "mw"
    mw.mkdir()
    run_dir = str(mw / "model_run")
    # Attempt 1: SIGKILL the worker (no clean-up) once the chief has recorded an epoch, so
    # training is under way; the chief then finishes what it does without its peer (at most the
    # summary of an epoch it has checkpointed) and blocks in the next all-reduce, where it is
    # killed too, as a job restart stops both.
    procs = _start_workers(inputs, mw, "a1")
    try:
        _wait_for(lambda: _epochs_recorded(run_dir)[0] >= 1, procs, ATTEMPT_TIMEOUT_S,
                  "epoch in the chief's summary")
        procs[1].send_signal(signal.SIGKILL)
        procs[1].wait()
        _wait_for(lambda: len(set(_epochs_recorded(run_dir))) == 1, procs[:1], 60,
                  "summary of the chief's last checkpoint")
    finally:
        _kill(procs)
    killed_at = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    killed_epoch = _epochs_recorded(run_dir)[1]
    assert 1 <= killed_epoch < EPOCHS, "the kill came after training had finished"
    assert not os.path.exists(mw / "serving")
    # The killed worker wrote its own copy of the run under its TMPDIR (left behind by SIGKILL).
    (left,) = glob.glob(str(mw / "tmp-a1-worker" / "dcgan-worker0-*"))
    assert glob.glob(os.path.join(left, "checkpoints", "ckpt-*"))
    pids_a1 = _event_file_pids(run_dir)
    assert pids_a1 == [procs[0].pid]                        # TensorBoard logs: the chief's only

    # Attempt 2: both restart with the same arguments.
    procs = _start_workers(inputs, mw, "a2")
    chief, worker = _wait_all(procs, mw, "a2")
    for out in (chief, worker):
        s = out["summary"]
        assert s["status"] == "complete" and s["replicas"] == 2 and s["worker"]["workers"] == 2
        assert s["restored_from"] == killed_at               # both restored the chief's checkpoint
        assert s["restored_epoch"] == killed_epoch
        assert s["history"][0]["epoch"] == 0 and len(s["history"]) == EPOCHS
        assert out["serving_exists"]          # TFX's check on each worker after run_fn returns
    assert chief["summary"]["worker"] == {"chief": True, "task_type": "chief", "task_id": 0,
                                          "workers": 2}
    assert worker["summary"]["worker"]["chief"] is False
    assert worker["summary"]["exported_to"] != str(mw / "serving")
    assert os.listdir(mw / "tmp-a2-worker") == []            # its temporary copy is removed

    # Only the chief wrote the run dir and the export.
    on_disk = json.loads((mw / "model_run" / "training_summary.json").read_text())
    assert on_disk["worker"]["task_type"] == "chief" and on_disk["status"] == "complete"
    assert _event_file_pids(run_dir) == sorted(pids_a1 + [procs[0].pid])
    assert sorted(os.listdir(mw / "model_run" / "samples")) == [
        f"epoch_{e:03d}.png" for e in range(1, EPOCHS + 1)]
    assert os.path.exists(mw / "serving" / "saved_model.pb")

    # Same global-batch losses and the same exported generator as one process. Tolerance 1e-5:
    # the all-reduce sums the two replicas' gradients and BatchNorm moments in another order than
    # one device sums the batch, so float32 rounding (6e-8 relative) differs from the first step
    # on and grows over the 8 Adam steps; measured here: 2e-7 in the losses, 3e-7 in the pixels.
    # A global batch split another way (other images or noise rows on a replica) is off by more
    # than 1e-2.
    for h1, h2 in zip(one["history"], chief["summary"]["history"]):
        for k in ("d_loss", "g_loss", "d_real", "d_fake"):
            np.testing.assert_allclose(h2[k], h1[k], rtol=1e-5, err_msg=f"epoch {h1['epoch']} {k}")
    noise = tf.random.stateless_normal([8, features.LATENT_DIM], seed=[1, 2])
    images = [tf.saved_model.load(str(d / "serving")).signatures[features.SERVING_SIGNATURE](
        **{features.NOISE_INPUT: noise})[features.IMAGES_OUTPUT].numpy()
        for d in (tmp_path / "one", mw)]
    np.testing.assert_allclose(images[1], images[0], atol=1e-5)
