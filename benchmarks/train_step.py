"""Training throughput: our loop (transformed TFRecords + one-forward step) vs the seed's loop
(``image_dataset_from_directory`` + its two-forward ``train_step``), same CPU, batch, one run.

    scripts/in-env python benchmarks/train_step.py [--steps 15] [--batch 32]

Our input is gzip TFRecords of transformed examples (``image`` float32 [64, 64, 3] in [-1, 1]) made
here from the same real photos with a quick tf pipeline (decode, bilinear squash to 64x64, scale).
The last line is JSON: ours_img_s (our fastest precision), ours_fp32_img_s, ours_bf16_img_s,
seed_img_s, ratio (ours_img_s / seed_img_s; goal >= 1.5), and the tolerance checks: one step of
ours vs the seed's step on the same weights and noise (fp32: losses to 1e-5 relative, weights to
0.1 x G's learning rate; bf16: losses to 5e-2 relative).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # run as a script from any folder, no install needed
sys.path.insert(0, os.path.join(REPO, "tests"))  # the seed's step is test code (tests/seed_reference.py)
DATA = os.path.join(REPO, "..", "shared", "datasets", "clothing-small", "train")


def write_transformed_tfrecords(src: str, out_dir: str, shards: int = 4) -> int:
    """Real photos -> gzip TFRecords of transformed examples; returns the number written."""
    import tensorflow as tf

    from dcgan_common import features

    paths = sorted(glob.glob(os.path.join(src, "*", "*")))
    ds = tf.data.Dataset.from_tensor_slices(paths).map(
        lambda p: tf.image.resize(tf.io.decode_image(tf.io.read_file(p), channels=3,
                                                     expand_animations=False),
                                  (features.IMAGE_SIZE, features.IMAGE_SIZE)) / 127.5 - 1.0,
        num_parallel_calls=tf.data.AUTOTUNE)
    writers = [tf.io.TFRecordWriter(os.path.join(out_dir, f"part-{i}.gz"), options="GZIP")
               for i in range(shards)]
    n = 0
    for n, img in enumerate(ds, 1):
        ex = tf.train.Example(features=tf.train.Features(feature={
            features.IMAGE_KEY: tf.train.Feature(
                float_list=tf.train.FloatList(value=img.numpy().ravel())),
            features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[0]))}))
        writers[n % shards].write(ex.SerializeToString())
    for w in writers:
        w.close()
    return n


def time_loop(step, batches, steps: int, batch: int, warmup: int = 3) -> float:
    """Images/s of ``step(batch)`` over ``steps`` batches after ``warmup`` (tracing) steps."""
    it = iter(batches)
    for _ in range(warmup):
        step(next(it))
    t0 = time.perf_counter()
    for _ in range(steps):
        out = step(next(it))
    float(out if not isinstance(out, dict) else out["d_loss"])  # wait for the last step
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from dcgan_common.config import TrainConfig
    from dcgan_common import features
    from trainer.model import DCGAN
    from trainer.run_fn import make_image_dataset_fn
    from trainer.train import build_gan, make_step_fn
    from seed_reference import seed_train_step

    strategy = tf.distribute.get_strategy()
    tmp = tempfile.mkdtemp(prefix="train_step_bench_")
    n_images = write_transformed_tfrecords(DATA, tmp)
    spec = {features.IMAGE_KEY: tf.io.FixedLenFeature(features.IMAGE_SHAPE, tf.float32)}
    result = {"images": n_images, "batch": args.batch, "steps": args.steps,
              "cpu_threads": os.cpu_count()}

    # --- ours: transformed TFRecords (parse batched, cache, shuffle, prefetch) + fused step ---
    for precision, key in (("float32", "ours_fp32_img_s"), ("mixed_bfloat16", "ours_bf16_img_s")):
        cfg = TrainConfig(batch_size=args.batch, precision=precision)
        ds_fn = make_image_dataset_fn(os.path.join(tmp, "*.gz"), spec, args.batch)
        gan = build_gan(cfg)
        step = make_step_fn(gan, strategy)
        result[key] = round(time_loop(step, ds_fn(0).repeat(), args.steps, args.batch), 2)

    # --- the seed: image_dataset_from_directory + two-generator-forward step ---
    seed_ds = keras.utils.image_dataset_from_directory(
        DATA, labels=None, image_size=(64, 64), batch_size=args.batch, shuffle=True, seed=0
    ).map(lambda x: x / 127.5 - 1.0).repeat()
    sgan = build_gan(TrainConfig(batch_size=args.batch))
    latent = features.LATENT_DIM

    @tf.function
    def seed_step(real):
        b = tf.shape(real)[0]
        return seed_train_step(sgan.generator, sgan.discriminator, sgan.d_optimizer,
                               sgan.g_optimizer, real, tf.random.normal([b, latent]),
                               tf.random.normal([b, latent]), "uniform",
                               tf.random.uniform([b, 1]))

    result["seed_img_s"] = round(time_loop(seed_step, seed_ds, args.steps, args.batch), 2)
    result["ours_img_s"] = max(result["ours_fp32_img_s"], result["ours_bf16_img_s"])
    result["ours_precision"] = ("mixed_bfloat16" if result["ours_img_s"] == result["ours_bf16_img_s"]
                                else "float32")
    result["ratio"] = round(result["ours_img_s"] / result["seed_img_s"], 3)
    result["ratio_fp32"] = round(result["ours_fp32_img_s"] / result["seed_img_s"], 3)

    # --- tolerance: one step, same initial weights, same noise, constant smoothing ---
    real = next(iter(make_image_dataset_fn(os.path.join(tmp, "*.gz"), spec, args.batch)(0)))
    noise = tf.random.stateless_normal([args.batch, latent], seed=[1, 2])
    ref = build_gan(TrainConfig(batch_size=args.batch, label_smoothing="constant"))
    w0 = [v.numpy() for v in ref.generator.weights + ref.discriminator.weights]
    ref_out = tf.function(lambda r, n: seed_train_step(
        ref.generator, ref.discriminator, ref.d_optimizer, ref.g_optimizer, r, n, n,
        "constant"))(real, noise)
    ref_w = [v.numpy() for v in ref.generator.weights + ref.discriminator.weights]
    for precision in ("float32", "mixed_bfloat16"):
        cand: DCGAN = build_gan(TrainConfig(batch_size=args.batch, label_smoothing="constant",
                                            precision=precision))
        for v, a in zip(cand.generator.weights + cand.discriminator.weights, w0):
            v.assign(a)
        out = tf.function(cand.train_step)((real, noise))
        w = [v.numpy() for v in cand.generator.weights + cand.discriminator.weights]
        loss_rel = max(abs(float(out[k]) - float(ref_out[k])) / abs(float(ref_out[k]))
                       for k in ("d_loss", "g_loss"))
        wdiff = max(float(np.max(np.abs(a - b))) for a, b in zip(w, ref_w))
        tol_loss = 1e-5 if precision == "float32" else 5e-2
        ok = loss_rel <= tol_loss and (precision != "float32" or wdiff <= 0.1 * 3e-4)
        result[f"tolerance_{precision}"] = {"loss_rel_diff": loss_rel, "max_weight_diff": wdiff,
                                            "loss_tol": tol_loss, "pass": ok}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
