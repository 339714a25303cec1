"""The DCGAN training loop: strategy, checkpoints and resume, divergence stop, monitors, export.

``train(config, train_ds, model_run_dir, serving_model_dir)`` never sees a TFX type; ``run_fn``
(trainer/run_fn.py) is the thin TFX glue around it.

What lands in ``model_run_dir`` (local or gs://):

* ``checkpoints/``: tf.train.Checkpoint with G, D, the EMA generator (when ``ema_decay`` > 0),
  both Adam states (D's ``iterations`` is the global step, which also keys every stateless draw:
  noise, smoothing, DiffAugment, penalty), the finished-epoch counter, the fixed sample noise, the
  best KID so far; one per epoch, written only after the epoch's losses and samples were checked
  finite.
* ``logs/``: TensorBoard scalars (d_loss, g_loss, D(x), D(G(z)), learning rates, images/s, KID)
  and the fixed-noise grid as an image, every epoch.
* ``samples/epoch_NNN.png`` (NNN = 001, 002, ...): the same grid (1-based epoch numbers), as the seed's GANMonitor did.
* ``training_summary.json``: status, epochs, steps, throughput, per-epoch history (with ``kid``
  and ``kid_seconds`` on check epochs), monitor warnings, resume source and epoch, the worker's
  role, exported path, epoch and weights ("ema" or "raw").
* ``discriminator.keras`` (and ``best_generator/`` with export_best): the networks not exported.

With several workers (MultiWorkerMirroredStrategy from TF_CONFIG) every worker runs the same
steps, because saving, exporting and reading the loss trackers hold collective ops that all
workers must enter; only the chief (``is_chief``) writes to ``model_run_dir`` and
``serving_model_dir``. The others write the same files into a local temporary folder that is
removed when ``train`` returns or raises, and restore from the chief's checkpoints.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from typing import Callable, Iterable

import numpy as np

from dcgan_common.config import TrainConfig
from dcgan_common.fileio import atomic_write
from dcgan_common import features
from trainer.monitors import (FeatureFn, TrainingMonitor, kernel_inception_distance,
                              pixel_features)

log = logging.getLogger(__name__)

SUMMARY_FILE = "training_summary.json"
CHECKPOINT_SUBDIR = "checkpoints"
FIXED_NOISE_SEED_OFFSET = 7919   # a separate stream for the sample-grid noise (any constant)
KID_NOISE_SEED_OFFSET = 104729   # and one for the KID samples


class TrainingDiverged(RuntimeError):
    """A loss or generated image became NaN/Inf. The last healthy checkpoint is kept; nothing is
    exported."""


def strategy_kind(num_gpus: int, tf_config: str | None) -> str:
    """Which tf.distribute strategy fits this process.

    Args:
      num_gpus: GPUs visible to TensorFlow.
      tf_config: the TF_CONFIG JSON string (or None/"").
    Returns:
      "multi_worker" when TF_CONFIG's cluster names more than one worker task (chief and workers
      together), else "mirrored" when more than one GPU is visible, else "default".
    Raises:
      ValueError: TF_CONFIG is not valid JSON or its cluster is not a mapping of lists.
    """
    if tf_config:
        try:
            cluster = json.loads(tf_config).get("cluster", {})
        except (json.JSONDecodeError, AttributeError) as e:
            raise ValueError(f"TF_CONFIG is not a JSON object: {e}") from e
        if not isinstance(cluster, dict) or not all(isinstance(v, list) for v in cluster.values()):
            raise ValueError("TF_CONFIG['cluster'] must map task types to lists of addresses")
        workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
        if workers > 1:
            return "multi_worker"
    if num_gpus > 1:
        return "mirrored"
    return "default"


def is_chief(cluster: dict | None, task_type: str | None, task_id: int | None) -> bool:
    """Whether this task writes the run's outputs (TensorFlow's multi-worker convention).

    Args:
      cluster: TF_CONFIG's ``cluster`` (task type -> list of "host:port"); None/{}: no cluster.
      task_type / task_id: this task's ``task.type`` and ``task.index``.
    Returns:
      True without a cluster; else True for the "chief" (or legacy "master") task when the
      cluster has one (Vertex AI names its first worker pool so), else for "worker" 0.
    """
    if not cluster:
        return True
    for lead in ("chief", "master"):
        if cluster.get(lead):
            return task_type == lead
    return task_type == "worker" and int(task_id or 0) == 0


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """This process's place in the training cluster.

    chief: writes the run's outputs (``is_chief``). task_type / task_id: from TF_CONFIG (None in
    one process). workers: training tasks in the cluster (chief and workers; 1 in one process).
    """

    chief: bool = True
    task_type: str | None = None
    task_id: int | None = None
    workers: int = 1


def worker_role(strategy) -> WorkerRole:
    """The ``WorkerRole`` of this process under ``strategy`` (its ``cluster_resolver``, which only
    the multi-worker strategies have)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return WorkerRole()
    cluster = resolver.cluster_spec().as_dict()
    if not cluster:
        return WorkerRole()
    task_type, task_id = resolver.task_type, resolver.task_id
    workers = sum(len(cluster.get(k, [])) for k in ("chief", "master", "worker"))
    return WorkerRole(chief=is_chief(cluster, task_type, task_id), task_type=task_type,
                      task_id=None if task_id is None else int(task_id), workers=workers)


def select_strategy(tf_config: str | None = None, devices: Iterable[str] | None = None):
    """Build the strategy ``strategy_kind`` picks.

    Args:
      tf_config: TF_CONFIG JSON; None reads the environment variable (at call time, not import).
      devices: explicit device names (e.g. two logical CPUs in tests) -> MirroredStrategy on them.
    Returns:
      a ``tf.distribute.Strategy``.
    Raises:
      RuntimeError: (from TensorFlow) the multi-worker strategy is built after the first TF
        operation of the process; build it before any dataset or model.
    """
    import tensorflow as tf

    if devices is not None:
        return tf.distribute.MirroredStrategy(list(devices))
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG")
    kind = strategy_kind(len(tf.config.list_physical_devices("GPU")), tf_config)
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def build_gan(config: TrainConfig, num_replicas: int = 1):
    """G, D, DCGAN and both Adam optimizers (slots built), in the current strategy scope.

    Initial weights follow ``keras.utils.set_random_seed(config.seed)`` (sets the global Python,
    numpy and TF seeds). BatchNorm is synchronised across replicas when ``num_replicas`` > 1.
    """
    import keras
    from trainer.augment import parse_policy
    from trainer.model import DCGAN, build_discriminator

    keras.utils.set_random_seed(config.seed)
    sync = num_replicas > 1
    generator = _build_generator(config, sync)
    discriminator = build_discriminator(extra_block=config.extra_discriminator_block,
                                        dropout=config.discriminator_dropout,
                                        sync_batchnorm=sync, precision=config.precision,
                                        norm=config.discriminator_norm,
                                        spectral_norm=config.spectral_norm,
                                        weight_init=config.weight_init)
    gan = DCGAN(generator, discriminator, latent_dim=config.latent_dim,
                label_smoothing=config.label_smoothing, seed=config.seed, loss=config.loss,
                gp_weight=config.gp_weight, separate_passes=config.separate_passes,
                augment=parse_policy(config.diffaugment))
    gan.compile(
        d_optimizer=keras.optimizers.Adam(config.d_learning_rate, beta_1=config.beta_1,
                                          beta_2=config.beta_2),
        g_optimizer=keras.optimizers.Adam(config.g_learning_rate, beta_1=config.beta_1,
                                          beta_2=config.beta_2))
    gan.build_optimizers()
    return gan


def _build_generator(config: TrainConfig, sync: bool):
    from trainer.model import build_generator

    return build_generator(config.latent_dim, batchnorm=config.generator_batchnorm,
                           sync_batchnorm=sync, precision=config.precision,
                           weight_init=config.weight_init)


class GeneratorEMA:
    """An exponential moving average of the generator's weights (Yazici et al. 2019, "The unusual
    effectiveness of averaging in GAN training"; StyleGAN2-ADA exports such a ``G_ema``).

    ``average`` is a second generator of the same architecture. After each G update,
    ``update()`` sets every trainable weight to ``d * ema + (1 - d) * w`` with the warmed-up decay
    ``d = min(decay, (1 + t) / (10 + t))`` at G step t (``tf.train.ExponentialMovingAverage``'s
    ``num_updates`` rule: early averages are not dominated by the random initialisation), and
    copies non-trainable weights (BatchNorm moving statistics) as they are. Runs in cross-replica
    context, where every replica's copy receives the same value.
    """

    def __init__(self, generator, average, decay: float, step):
        self.generator, self.average, self.decay, self.step = generator, average, decay, step
        average.set_weights(generator.get_weights())

    def update(self) -> None:
        """Move the average one G step towards the current weights (inside a tf.function)."""
        import tensorflow as tf

        t = tf.cast(self.step, tf.float32)
        d = tf.minimum(tf.constant(self.decay, tf.float32), (1.0 + t) / (10.0 + t))
        for avg, w in zip(self.average.trainable_variables, self.generator.trainable_variables):
            avg.assign(d * avg + (1.0 - d) * tf.cast(w, avg.dtype))
        for avg, w in zip(self.average.non_trainable_variables,
                          self.generator.non_trainable_variables):
            avg.assign(w)


def make_step_fn(gan, strategy, update_generator: bool = True, ema: GeneratorEMA | None = None):
    """A tf.function running ``gan.train_step`` on every replica.

    Args:
      gan: the DCGAN. strategy: its tf.distribute strategy.
      update_generator: False gives a D-only step (the n_critic - 1 extra critic steps).
      ema: moved after each G update (cross-replica context), when given.
    Returns:
      fn(distributed_batch) -> float32 scalar: mean over replicas of the ``finite`` flag
      (1.0 = healthy). Losses accumulate in ``gan.metrics``. XLA (jit_compile) was measured slower
      than the default on CPU here (benchmarks/train_step.py), so it is not used.
    """
    import tensorflow as tf

    @tf.function
    def step(batch):
        out = strategy.run(gan.train_step, args=(batch,),
                           kwargs={"update_generator": update_generator})
        if ema is not None and update_generator:
            ema.update()
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, out["finite"], axis=None)

    return step


def _write_json(path: str, data: dict) -> None:
    """Write ``data`` as indented JSON atomically (``dcgan_common.fileio.atomic_write``: local or gs://)."""
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True, default=str).encode())


def _read_json(path: str) -> dict | None:
    import tensorflow as tf

    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.loads(f.read())


def find_resume_checkpoint(candidates: Iterable[str], fingerprint: str) -> str | None:
    """Latest checkpoint among earlier run directories whose summary has the same fingerprint.

    Args:
      candidates: model_run_dir paths of earlier attempts (missing ones are skipped).
      fingerprint: identifies config + input data; runs with another fingerprint are ignored.
    Returns:
      a checkpoint prefix (for ``tf.train.Checkpoint.restore``) or None.
    """
    import tensorflow as tf

    best = None
    for run_dir in candidates:
        summary = _read_json(os.path.join(run_dir, SUMMARY_FILE))
        if not summary or summary.get("fingerprint") != fingerprint:
            continue
        prefix = tf.train.latest_checkpoint(os.path.join(run_dir, CHECKPOINT_SUBDIR))
        if prefix is None:
            continue
        epoch = summary.get("epochs_completed", 0)
        if best is None or epoch > best[0]:
            best = (epoch, prefix)
    return best[1] if best else None


def _epoch_dataset(train_ds, epoch: int, steps_per_epoch: int | None):
    """The epoch's dataset: ``train_ds(epoch)`` if callable, else ``train_ds``; with
    ``steps_per_epoch`` it repeats and takes exactly that many batches.

    Sharded across workers by data (``AutoShardPolicy.DATA``): every worker reads the whole input
    and keeps its replicas' rows of each global batch, so the batches are one process's and every
    worker has as many steps as the others. TF's default would shard by file when there are
    several: each worker would batch other images, and a worker whose files hold fewer batches
    would leave the rest waiting in a collective.
    """
    import tensorflow as tf

    ds = train_ds(epoch) if callable(train_ds) else train_ds
    if steps_per_epoch:
        ds = ds.repeat().take(steps_per_epoch)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def _check_element_spec(ds, batch_size: int) -> None:
    """Raise ValueError unless elements are float32 [batch_size, 64, 64, 3] (or (images, noise))."""
    spec = ds.element_spec
    image_spec = spec[0] if isinstance(spec, tuple) else spec
    shape = tuple(image_spec.shape)
    if image_spec.dtype.name != "float32" or shape[1:] != features.IMAGE_SHAPE or (
            shape[0] not in (None, batch_size)):
        raise ValueError(f"train_ds must yield float32 [{batch_size}, 64, 64, 3] batches in [-1, 1];"
                         f" got {image_spec.dtype.name} {shape}")


@dataclasses.dataclass
class _Run:
    """The state one ``train`` call threads through its steps (setup, epochs, export)."""

    config: TrainConfig
    strategy: object
    gan: object
    ema: GeneratorEMA | None
    ckpt: object
    manager: object
    fixed_noise: object
    epoch_var: object
    best_kid: object
    best_epoch: object
    model_run_dir: str      # where this process writes: the chief's run dir or a temporary one
    shared_dir: str         # the chief's run dir, which every worker resumes from
    role: WorkerRole = WorkerRole()
    summary: dict = dataclasses.field(default_factory=dict)
    history: list = dataclasses.field(default_factory=list)
    monitor: TrainingMonitor = dataclasses.field(default_factory=TrainingMonitor)
    epoch_times: list = dataclasses.field(default_factory=list)
    writer: object = None
    step_fns: tuple = ()
    kid_noise: object = None
    kid_real: np.ndarray | None = None     # real features for the in-training KID
    feature_fn: FeatureFn | None = None
    barrier_fn: Callable[[], object] | None = None   # built by the first _barrier

    @property
    def sampler(self):
        """The generator that is sampled, scored and exported: the EMA one when EMA is on."""
        return self.ema.average if self.ema is not None else self.gan.generator

    @property
    def summary_path(self) -> str:
        return os.path.join(self.model_run_dir, SUMMARY_FILE)

    @property
    def best_dir(self) -> str:
        return os.path.join(self.model_run_dir, "best_generator")

    @property
    def step(self) -> int:
        """Batches trained so far (D updates; G updates are step / n_critic)."""
        return int(self.gan.d_optimizer.iterations.numpy())


def train(config: TrainConfig, train_ds, model_run_dir: str, serving_model_dir: str | None,
          *, strategy=None, fingerprint: str = "", resume_dirs: Iterable[str] = (),
          kid_real_images: np.ndarray | None = None, kid_feature_fn: FeatureFn | None = None,
          kid_real_features: np.ndarray | None = None, kid_features_name: str = "",
          on_epoch_end: Callable[[int, dict], None] | None = None) -> dict:
    """Train the DCGAN, checkpointing every epoch, and export the generator.

    Steps: ``_setup`` (networks, EMA, checkpoint), ``_resume`` (this run's or an earlier
    attempt's checkpoint), per epoch ``_train_epoch`` then ``_end_of_epoch`` (finite checks,
    samples, KID and the best epoch, monitors, TensorBoard, checkpoint, summary), ``_export``.

    Args:
      config: the recipe (dcgan_common.config.TrainConfig); validated here.
      train_ds: ``tf.data.Dataset`` of float32 [B, 64, 64, 3] batches in [-1, 1] (B = the global
        ``config.batch_size``, full batches only), or a callable ``epoch -> Dataset`` (so each
        epoch's shuffle is reproducible after a resume). Elements may be ``(images, noise)`` with
        noise float32 [B, latent_dim] to inject the latent batch.
      model_run_dir: output folder (see module docstring); resumes from its own checkpoints.
        Written by the chief only; every worker resumes from it.
      serving_model_dir: where the generator SavedModel goes (trainer/export.py); None: no export.
        With ``config.ema_decay`` > 0 that is the EMA generator. Written by the chief only; on
        the other workers ``train`` returns once the chief has written it.
      strategy: a tf.distribute strategy; None -> ``select_strategy()``.
      fingerprint: string identifying config + data; written to the summary and required to match
        when resuming from ``resume_dirs`` (earlier attempts' run dirs, e.g. a crashed Trainer run).
      kid_real_images: uint8 [M, 64, 64, 3] real sample for the in-training KID (every
        ``config.kid_every_epochs``); this or ``kid_real_features`` is required when that is > 0.
      kid_feature_fn: uint8 images -> float [N, d] features; default ``monitors.pixel_features``.
        The Trainer passes the evaluator's Inception pool_3 extractor (trainer/run_fn.py).
      kid_real_features: float [M, d] features of real images from ``kid_feature_fn`` (e.g. the
        evaluator's cached ones), used instead of extracting ``kid_real_images``.
      kid_features_name: what the features are, for the summary and TensorBoard ("" = "pixel"
        with the default extractor, else "custom").
      on_epoch_end: called with (epoch index, epoch record) after each checkpoint (tests, hooks).
    Returns:
      the summary dict also written to ``training_summary.json``.
    Raises:
      TrainingDiverged: NaN/Inf in a loss or a generated image; the summary says where, the last
        healthy checkpoint stays, nothing is exported.
      ValueError: bad config, a batch size the replicas cannot split evenly, an empty dataset, a
        dataset of the wrong shape, or KID without real images.
    """
    config.validate()
    strategy = strategy or select_strategy()
    if config.batch_size % strategy.num_replicas_in_sync:
        raise ValueError(f"batch_size {config.batch_size} is not divisible by the "
                         f"{strategy.num_replicas_in_sync} replicas")
    has_real = (kid_real_features is not None and len(kid_real_features) >= 2) or (
        kid_real_images is not None and len(kid_real_images) >= 2)
    if config.kid_checks and not has_real:
        raise ValueError("kid_every_epochs > 0 needs kid_real_images (uint8 [M, 64, 64, 3], M >= 2)"
                         " or kid_real_features")
    role = worker_role(strategy)
    write_dir = model_run_dir
    if not role.chief:
        write_dir = tempfile.mkdtemp(prefix=f"dcgan-{role.task_type}{role.task_id}-")
        serving_model_dir = os.path.join(write_dir, "serving") if serving_model_dir else None
    try:
        run = _setup(config, strategy, write_dir, shared_dir=model_run_dir, role=role)
        _resume(run, resume_dirs, fingerprint)
        run.feature_fn = kid_feature_fn or pixel_features
        name = kid_features_name or ("pixel" if kid_feature_fn is None else "custom")
        run.summary["kid_features"] = name
        _write_json(run.summary_path, run.summary)
        if config.kid_checks:   # its cost reaches the summary with the first epoch's record
            t0 = time.perf_counter()
            run.kid_real = (np.asarray(kid_real_features) if kid_real_features is not None
                            else run.feature_fn(kid_real_images))
            run.summary["kid_real_features_seconds"] = round(time.perf_counter() - t0, 3)
        for epoch in range(int(run.epoch_var.numpy()), config.epochs):
            record = _train_epoch(run, train_ds, epoch)
            _end_of_epoch(run, epoch, record)
            if on_epoch_end is not None:
                on_epoch_end(epoch, record)
        summary = _export(run, serving_model_dir)
        # TFX's Trainer executor checks on every worker that the serving dir exists when run_fn
        # returns: the others wait here until the chief has written it.
        _barrier(run)
        return summary
    finally:
        if not role.chief:
            shutil.rmtree(write_dir, ignore_errors=True)


def _setup(config: TrainConfig, strategy, model_run_dir: str, *, shared_dir: str | None = None,
           role: WorkerRole = WorkerRole()) -> _Run:
    """Build the networks (and the EMA copy), the run's variables and the checkpoint manager.

    ``model_run_dir`` is where this process writes; ``shared_dir`` (default: the same) is the
    chief's run dir it resumes from.

    The checkpoint holds G, D, both Adam states (their ``iterations`` count the steps, which also
    key every stateless draw: noise, smoothing, DiffAugment, penalty), the EMA generator, the
    finished-epoch counter, the fixed sample noise and the best KID so far.
    """
    import tensorflow as tf

    tf.io.gfile.makedirs(model_run_dir)
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        gan = build_gan(config, replicas)
        ema = None
        if config.ema_decay > 0:
            ema = GeneratorEMA(gan.generator, _build_generator(config, replicas > 1),
                               config.ema_decay, gan.g_optimizer.iterations)
        fixed_noise = tf.Variable(tf.random.stateless_normal(
            [config.sample_grid_size, config.latent_dim],
            seed=[config.seed, FIXED_NOISE_SEED_OFFSET]), trainable=False, name="fixed_noise")
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epochs_completed")
        best_kid = tf.Variable(np.inf, dtype=tf.float64, trainable=False, name="best_kid")
        best_epoch = tf.Variable(-1, dtype=tf.int64, trainable=False, name="best_epoch")
    parts = dict(generator=gan.generator, discriminator=gan.discriminator,
                 g_optimizer=gan.g_optimizer, d_optimizer=gan.d_optimizer,
                 fixed_noise=fixed_noise, epochs_completed=epoch_var,
                 best_kid=best_kid, best_epoch=best_epoch)
    if ema is not None:
        parts["ema_generator"] = ema.average
    ckpt = tf.train.Checkpoint(**parts)
    manager = tf.train.CheckpointManager(ckpt, os.path.join(model_run_dir, CHECKPOINT_SUBDIR),
                                         max_to_keep=3)
    run = _Run(config=config, strategy=strategy, gan=gan, ema=ema, ckpt=ckpt, manager=manager,
               fixed_noise=fixed_noise, epoch_var=epoch_var, best_kid=best_kid,
               best_epoch=best_epoch, model_run_dir=model_run_dir,
               shared_dir=shared_dir or model_run_dir, role=role)
    run.step_fns = (make_step_fn(gan, strategy, False, ema), make_step_fn(gan, strategy, True, ema))
    run.kid_noise = tf.random.stateless_normal([config.kid_num_samples, config.latent_dim],
                                               seed=[config.seed, KID_NOISE_SEED_OFFSET])
    run.writer = tf.summary.create_file_writer(os.path.join(model_run_dir, "logs"))
    return run


def _resume(run: _Run, resume_dirs: Iterable[str], fingerprint: str) -> None:
    """Restore the run dir's latest checkpoint (the chief's, on every worker), else an earlier
    attempt's with the same fingerprint; carry over its history, monitor state and best
    generator; start the summary (``train`` writes it)."""
    import tensorflow as tf

    previous = _read_json(os.path.join(run.shared_dir, SUMMARY_FILE)) or {}
    restored_from = (tf.train.latest_checkpoint(os.path.join(run.shared_dir, CHECKPOINT_SUBDIR))
                     or find_resume_checkpoint(resume_dirs, fingerprint))
    # Every worker has read the chief's files before the chief rewrites its summary.
    _barrier(run)
    if restored_from:
        run.ckpt.restore(restored_from).assert_existing_objects_matched()
        log.info("resumed from %s at epoch %d", restored_from, int(run.epoch_var.numpy()))
        source_dir = os.path.dirname(os.path.dirname(restored_from))
        if not previous.get("history"):
            previous = _read_json(os.path.join(source_dir, SUMMARY_FILE)) or {}
        if run.config.export_best and int(run.best_epoch.numpy()) >= 0:
            # Carry the best generator of an earlier attempt along.
            src = os.path.join(source_dir, "best_generator")
            if src != run.best_dir and tf.io.gfile.exists(src):
                _copy_tree(src, run.best_dir)
    run.monitor.restore(previous.get("monitor", {}))
    run.history = [h for h in previous.get("history", [])
                   if h["epoch"] < int(run.epoch_var.numpy())]
    run.summary = {
        "status": "running", "fingerprint": fingerprint,
        "config": dataclasses.asdict(run.config), "strategy": type(run.strategy).__name__,
        "replicas": run.strategy.num_replicas_in_sync, "restored_from": restored_from,
        "restored_epoch": int(run.epoch_var.numpy()) if restored_from else None,
        "worker": dataclasses.asdict(run.role),
        "epochs_requested": run.config.epochs, "epochs_completed": int(run.epoch_var.numpy()),
        "history": run.history,
    }


def _barrier(run: _Run) -> None:
    """Wait until every worker gets here (an all-reduce of one number); nothing in one process."""
    if run.role.workers < 2:
        return
    if run.barrier_fn is None:
        import tensorflow as tf

        strategy = run.strategy

        @tf.function   # in a graph: the strategy warns about eager collectives
        def barrier():
            return strategy.reduce(tf.distribute.ReduceOp.SUM,
                                   strategy.run(lambda: tf.constant(1.0)), axis=None)
        run.barrier_fn = barrier
    run.barrier_fn()


def _fail(run: _Run, reason: str, epoch: int) -> None:
    """Record the divergence in the summary and raise TrainingDiverged."""
    step = run.step
    run.summary.update(status="diverged", error=reason, failed_epoch=epoch + 1, failed_step=step,
                       monitor=run.monitor.state(),
                       last_healthy_checkpoint=run.manager.latest_checkpoint)
    _write_json(run.summary_path, run.summary)
    raise TrainingDiverged(f"{reason} at epoch {epoch + 1}, step {step}; training stopped, "
                           f"last healthy checkpoint: {run.manager.latest_checkpoint}; "
                           "nothing exported")


def _train_epoch(run: _Run, train_ds, epoch: int) -> dict:
    """One pass of steps; returns the epoch record (losses, steps, seconds, images/s).

    With ``n_critic`` > 1 only every n-th batch also updates G (counted over the whole run, so a
    resume keeps the rhythm). Raises TrainingDiverged on a non-finite step, ValueError on an
    epoch without a full batch.
    """
    config, gan = run.config, run.gan
    ds = _epoch_dataset(train_ds, epoch, config.steps_per_epoch)
    _check_element_spec(ds, config.batch_size)
    dist_ds = run.strategy.experimental_distribute_dataset(ds)
    for m in gan.metrics:
        m.reset_state()
    d_only, with_g = run.step_fns
    batch_index = run.step
    t0, steps = time.perf_counter(), 0
    for batch in dist_ds:
        fn = with_g if (batch_index + 1) % config.n_critic == 0 else d_only
        finite = float(fn(batch))
        steps += 1
        batch_index += 1
        if finite < 1.0:
            _fail(run, "NaN/Inf in a loss or in generated images", epoch)
    if steps == 0:
        raise ValueError(f"epoch {epoch + 1} had no full batch of {config.batch_size} images: "
                         "the training split is smaller than one batch")
    seconds = time.perf_counter() - t0
    run.epoch_times.append(seconds)
    metrics = {m.name: float(m.result()) for m in gan.metrics}
    return {"epoch": epoch, **metrics, "steps": steps, "seconds": round(seconds, 3),
            "images_per_second": steps * config.batch_size / seconds}


def _end_of_epoch(run: _Run, epoch: int, record: dict) -> None:
    """Checks and records after an epoch; the checkpoint is written only once all passed."""
    from trainer.export import image_grid, save_grid_png

    config = run.config
    metrics = {k: record[k] for k in ("d_loss", "g_loss", "d_real", "d_fake")}
    samples = run.sampler(run.fixed_noise, training=False).numpy().astype(np.float32)
    if not all(np.isfinite(v) for v in metrics.values()) or not np.all(np.isfinite(samples)):
        _fail(run, "NaN/Inf in the epoch's losses or fixed-noise samples", epoch)
    grid_u8 = features.to_uint8(samples)
    ncols = int(np.ceil(np.sqrt(config.sample_grid_size)))
    save_grid_png(grid_u8, os.path.join(run.model_run_dir, "samples",
                                        f"epoch_{epoch + 1:03d}.png"), ncols)
    if config.kid_every_epochs and (epoch + 1) % config.kid_every_epochs == 0:
        _kid_check(run, epoch, record)
    for w in run.monitor.update(epoch, metrics, samples):
        log.warning("epoch %d: %s: %s", epoch + 1, w["kind"], w["message"])

    step = run.step
    with run.writer.as_default(step=step):
        scalars = {"d_loss": metrics["d_loss"], "g_loss": metrics["g_loss"],
                   "mean_D(x)": metrics["d_real"], "mean_D(G(z))": metrics["d_fake"],
                   "learning_rate/discriminator": _as_float(run.gan.d_optimizer.learning_rate),
                   "learning_rate/generator": _as_float(run.gan.g_optimizer.learning_rate),
                   "images_per_second": record["images_per_second"]}
        if "kid" in record:
            scalars[f"kid_{run.summary['kid_features']}"] = record["kid"]
        for name, value in scalars.items():
            tb_scalar(name, value, step)
        tb_image("fixed_noise_grid", image_grid(grid_u8, ncols), step)
    run.writer.flush()

    run.epoch_var.assign(epoch + 1)
    run.manager.save(checkpoint_number=epoch + 1)
    run.history.append(record)
    run.summary.update(epochs_completed=epoch + 1, history=run.history,
                       monitor=run.monitor.state(),
                       best_kid=_finite_or_none(float(run.best_kid.numpy())),
                       best_epoch=int(run.best_epoch.numpy()) + 1 or None)
    _write_json(run.summary_path, run.summary)
    left = (config.epochs - epoch - 1) * float(np.mean(run.epoch_times))
    log.info("epoch %d/%d step %d: d_loss %.4f g_loss %.4f D(x) %.3f D(G(z)) %.3f%s | "
             "%.1f s, %.1f img/s, about %s left", epoch + 1, config.epochs, step,
             metrics["d_loss"], metrics["g_loss"], metrics["d_real"], metrics["d_fake"],
             f" kid {record['kid']:.4f}" if "kid" in record else "", record["seconds"],
             record["images_per_second"], _hms(left))


def _kid_check(run: _Run, epoch: int, record: dict) -> None:
    """KID of the sampled generator on the fixed KID noise; keeps the best generator (with
    export_best). Records the value and what the check cost (``kid_seconds``)."""
    import tensorflow as tf

    t0 = time.perf_counter()
    fakes = features.to_uint8(run.sampler(run.kid_noise, training=False).numpy())
    kid = kernel_inception_distance(run.kid_real, run.feature_fn(fakes))
    record["kid"] = kid
    record["kid_seconds"] = round(time.perf_counter() - t0, 3)
    if run.config.export_best and kid < float(run.best_kid.numpy()):
        run.best_kid.assign(kid)
        run.best_epoch.assign(epoch)
        tf.train.Checkpoint(generator=run.sampler).write(os.path.join(run.best_dir, "generator"))


def _export(run: _Run, serving_model_dir: str | None) -> dict:
    """Export the best (or last) sampled generator and save D; mark the summary complete."""
    import tensorflow as tf

    from trainer.export import export_generator

    config = run.config
    if config.export_best and int(run.best_epoch.numpy()) >= 0:
        tf.train.Checkpoint(generator=run.sampler).read(
            os.path.join(run.best_dir, "generator")).assert_existing_objects_matched()
        run.summary["exported_epoch"] = int(run.best_epoch.numpy()) + 1
    else:
        run.summary["exported_epoch"] = int(run.epoch_var.numpy())
    run.summary["exported_weights"] = "ema" if run.ema is not None else "raw"
    # From the checkpointed variables: a resumed call that trains no epoch still reports them.
    run.summary.update(best_kid=_finite_or_none(float(run.best_kid.numpy())),
                       best_epoch=int(run.best_epoch.numpy()) + 1 or None)
    run.gan.discriminator.save(os.path.join(run.model_run_dir, "discriminator.keras"))
    if serving_model_dir:
        export_generator(run.sampler, serving_model_dir, config.latent_dim)
    run.summary.update(status="complete", exported_to=serving_model_dir,
                       monitor=run.monitor.state(), warnings=run.monitor.warnings,
                       steps=run.step, final=run.history[-1] if run.history else None,
                       sample_grid=os.path.join(run.model_run_dir, "samples",
                                                f"epoch_{int(run.epoch_var.numpy()):03d}.png"))
    _write_json(run.summary_path, run.summary)
    return run.summary


def tb_scalar(name: str, value: float, step: int) -> None:
    """Write a TensorBoard scalar with TF's own ``tf.summary.write`` (the ``tensorboard`` package,
    which ``tf.summary.scalar`` needs, is not required to *write* logs). Same record as
    ``tf.summary.scalar``: a float32 scalar under the "scalars" plugin."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR)
    tf.summary.write(name, tf.constant(value, tf.float32), step=step, metadata=meta)


def tb_image(name: str, image_u8: np.ndarray, step: int) -> None:
    """Write one uint8 [H, W, 3] image as TensorBoard's "images" plugin does: a string tensor
    [width, height, PNG bytes] (the layout of tensorboard.summary.v2.image)."""
    import io

    import tensorflow as tf
    from PIL import Image
    from tensorflow.core.framework import summary_pb2

    buf = io.BytesIO()
    Image.fromarray(image_u8, mode="RGB").save(buf, format="PNG")
    h, w = image_u8.shape[:2]
    meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="images"),
        data_class=summary_pb2.DATA_CLASS_BLOB_SEQUENCE)
    tf.summary.write(name, tf.constant([str(w).encode(), str(h).encode(), buf.getvalue()]),
                     step=step, metadata=meta)


def _as_float(value) -> float:
    return float(np.asarray(value))


def _finite_or_none(x: float) -> float | None:
    return x if np.isfinite(x) else None


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def _copy_tree(src: str, dst: str) -> None:
    """Copy a folder with tf.io.gfile (local or gs://), overwriting files."""
    import tensorflow as tf

    for root, _, files in tf.io.gfile.walk(src):
        rel = os.path.relpath(root, src)
        target = os.path.normpath(os.path.join(dst, rel))
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(os.path.join(root, name), os.path.join(target, name), overwrite=True)
