"""TFX Trainer entry point: unpack ``FnArgs``, build the input pipeline, call ``train.train``.

``fn_args.custom_config``:
  * ``"train"``: the ``dcgan_common.config.TrainConfig`` section as a JSON object (missing fields
    take the defaults; a ``recipe`` key starts from that recipe), read by :func:`train_config`.
  * ``"resume"`` (optional, default True): resume from an earlier attempt of the same Trainer
    (sibling ``model_run`` folders with the same fingerprint) when this run dir has no checkpoint.
  * ``"kid"`` (optional): where the in-training KID finds the evaluator's real statistics
    (``kid_inputs``).

Reads the Transform output: TFRecords (uncompressed from components/transform; gzip, as the stock
Transform writes, is read too) of transformed tf.Examples with ``image`` float32
[64, 64, 3] (or flat [12288]) in [-1, 1]; ``label`` is not needed by the unconditional DCGAN.
"""
from __future__ import annotations

import hashlib
import json
import os

from dcgan_common.config import TrainConfig, decode_section
from dcgan_common import features

PARSE_BATCH = 256          # serialized examples parsed per parse_example call
SHUFFLE_BUFFER = 10_000    # images; the demo's and clothing-small's train split fit whole
RANGE_SLACK = 1e-3         # tolerated overshoot of [-1, 1] from float rounding in Transform


def _expand(patterns) -> list[str]:
    """Files matching ``patterns`` (a pattern/dir, or a list of them); a dir means its files."""
    import tensorflow as tf

    if isinstance(patterns, str):
        patterns = [patterns]
    files: list[str] = []
    for p in patterns:
        if tf.io.gfile.isdir(p):
            p = os.path.join(p, "*")
        files.extend(sorted(tf.io.gfile.glob(p)))
    return files


def make_image_dataset_fn(file_patterns, feature_spec: dict, batch_size: int, seed: int = 0,
                          compression: str | None = None, cache: bool = True):
    """Input pipeline over transformed examples: parse in batches, cache, shuffle, batch, prefetch.

    Args:
      file_patterns: TFRecord file pattern(s) or folder(s) (e.g. ``fn_args.train_files``).
      feature_spec: ``TFTransformOutput.transformed_feature_spec()``; must hold ``image``.
      batch_size: global batch size; the last partial batch is dropped (equal replica shares).
      seed: shuffle seed; epoch e shuffles with a seed derived from (seed, e), so a resumed run
        sees the same order as an uninterrupted one.
      compression: TFRecord compression ("GZIP" or ""); None: from the file names
        (``features.tfrecord_compression``).
      cache: keep the parsed images in memory (float32, 48 KiB per image).
    Returns:
      ``epoch -> tf.data.Dataset`` of float32 [batch_size, 64, 64, 3] in [-1, 1].
    Raises:
      FileNotFoundError: no file matches. ValueError: ``image`` missing from the spec.
      At iteration: InvalidArgumentError naming the problem when an image is not 64x64x3 or holds
      values outside [-1, 1] or NaN (bad data stops the run instead of being dropped).
    """
    import tensorflow as tf

    files = _expand(file_patterns)
    if not files:
        raise FileNotFoundError(f"no training files match {file_patterns}")
    if features.IMAGE_KEY not in feature_spec:
        raise ValueError(f"transformed feature spec lacks {features.IMAGE_KEY!r}; "
                         f"has {sorted(feature_spec)}")
    spec = {features.IMAGE_KEY: feature_spec[features.IMAGE_KEY]}

    def parse(serialized):
        images = tf.io.parse_example(serialized, spec)[features.IMAGE_KEY]
        if isinstance(images, tf.SparseTensor):
            images = tf.sparse.to_dense(images)
        images = tf.reshape(tf.cast(images, tf.float32), (-1,) + features.IMAGE_SHAPE)
        ok = tf.reduce_all(tf.math.is_finite(images)) & tf.reduce_all(
            tf.abs(images) <= 1.0 + RANGE_SLACK)
        with tf.control_dependencies([tf.debugging.Assert(
                ok, ["transformed images must be finite and in [-1, 1]"])]):
            return tf.identity(images)

    if compression is None:
        compression = features.tfrecord_compression(files)
    base = (tf.data.TFRecordDataset(files, compression_type=compression or None,
                                    num_parallel_reads=tf.data.AUTOTUNE)
            .batch(PARSE_BATCH)
            .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
            .unbatch())
    if cache:
        base = base.cache()

    def for_epoch(epoch: int):
        ds = base.shuffle(SHUFFLE_BUFFER, seed=seed * 1_000_003 + epoch,
                          reshuffle_each_iteration=False)
        return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    return for_epoch


def fingerprint(config: TrainConfig, transform_output: str, train_files) -> str:
    """sha256 of the config and the input locations: equal only for a re-run of the same job."""
    payload = json.dumps({"config": config.__dict__, "transform": transform_output,
                          "files": sorted(train_files if isinstance(train_files, list)
                                          else [train_files])}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def sibling_run_dirs(model_run_dir: str) -> list[str]:
    """Other folders beside ``model_run_dir`` (earlier Trainer attempts: TFX gives each execution
    its own ``.../Trainer/model_run/<execution id>``)."""
    import tensorflow as tf

    parent = os.path.dirname(model_run_dir.rstrip("/"))
    if not tf.io.gfile.isdir(parent):
        return []
    me = os.path.basename(model_run_dir.rstrip("/"))
    return [os.path.join(parent, d.rstrip("/")) for d in tf.io.gfile.listdir(parent)
            if d.rstrip("/") != me]


def train_config(custom_config: dict | None) -> TrainConfig:
    """The Trainer's ``custom_config["train"]`` decoded, type-checked and validated.

    Raises:
      ConfigError (a ValueError): unknown fields, wrong types or invalid values (named ``train.<field>``).
    """
    return decode_section(TrainConfig, (custom_config or {}).get("train"), "train.")


def run_fn(fn_args) -> dict:
    """TFX Trainer ``run_fn``: train the DCGAN and export the generator.

    Uses ``fn_args.custom_config``, ``train_files``, ``transform_output``, ``model_run_dir`` and
    ``serving_model_dir``; the strategy comes from TF_CONFIG and the GPUs (``select_strategy``).
    Returns ``train``'s summary (TFX ignores it; on a worker that is not the chief it is the only
    copy). Raises ConfigError on a bad config, TrainingDiverged on NaN/Inf (nothing exported),
    FileNotFoundError/ValueError on missing or malformed data.
    """
    from trainer.train import select_strategy, train

    custom = dict(fn_args.custom_config or {})
    config = train_config(custom)
    # First TF call of the process: MultiWorkerMirroredStrategy (TF_CONFIG of a multi-worker
    # job) configures collective ops, which TF refuses once any op (a dataset, the Inception
    # extractor) has run.
    strategy = select_strategy()
    import tensorflow_transform as tft

    feature_spec = tft.TFTransformOutput(fn_args.transform_output).transformed_feature_spec()
    dataset_fn = make_image_dataset_fn(fn_args.train_files, feature_spec, config.batch_size,
                                       seed=config.seed)
    resume = custom.get("resume", True)
    return train(config, dataset_fn, fn_args.model_run_dir, fn_args.serving_model_dir,
                 strategy=strategy,
                 fingerprint=fingerprint(config, fn_args.transform_output, fn_args.train_files),
                 resume_dirs=sibling_run_dirs(fn_args.model_run_dir) if resume else (),
                 **kid_inputs(config, fn_args.train_files, custom.get("kid") or {}))


#: Real images kept for the in-training KID (a seeded subset of the cached real features): KID is
#: unbiased for any sizes, and this bounds the per-check kernel cost on a large crawl.
KID_MAX_REAL = 2048


def kid_inputs(config: TrainConfig, train_files, kid: dict) -> dict:
    """The in-training KID's extractor and real features, as ``train`` keyword arguments.

    The extractor is the evaluator's standard Inception pool_3 network and the real features come
    from ``dcgan_common.fid.real_stats`` with the evaluator's cache, examples and splits, so the
    Trainer and the FidEvaluator compute the real statistics once between them.

    Args:
      config: the recipe; nothing is loaded unless a KID check falls within ``config.epochs``.
      train_files: ``fn_args.train_files`` (``<examples>/Split-train/*``): names the examples.
      kid: the pipeline's ``custom_config["kid"]``: ``cache_dir``, ``splits``, ``max_real``,
        ``weights_uri`` (all optional: no cache, every split, all images, the installed weights).
    Returns:
      {} or {kid_feature_fn, kid_real_features, kid_features_name}.
    Raises:
      weights.WeightsError: the Inception weights cannot be found.
    """
    if not config.kid_checks:
        return {}
    import numpy as np

    from dcgan_common.fid import real_stats
    from dcgan_common.fid.inception import InceptionExtractor

    first = train_files[0] if isinstance(train_files, (list, tuple)) else train_files
    examples_uri = os.path.dirname(os.path.dirname(first.rstrip("/")))
    extractor = InceptionExtractor(weights_uri=kid.get("weights_uri", ""),
                                   cache_dir=kid.get("cache_dir", ""))
    stats, *_ = real_stats.real_feature_stats(examples_uri, kid.get("splits") or None, extractor,
                                              int(kid.get("max_real", 0)),
                                              kid.get("cache_dir", ""))
    real = stats.features
    if len(real) > KID_MAX_REAL:
        real = real[np.random.default_rng(config.seed).choice(len(real), KID_MAX_REAL,
                                                              replace=False)]
    return {"kid_feature_fn": extractor, "kid_real_features": real,
            "kid_features_name": "inception_pool3"}
