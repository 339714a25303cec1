"""FID benchmark, one run; the last line is JSON.

1. Feature extraction throughput (images/s) of ``InceptionExtractor`` (protocol + network in one
   batched tf.function) against a plain loop of ``model.predict`` on the same Keras network with
   the same preprocessing, on real 64x64 photos. Goal: ours >= 0.9x the predict loop.
   Best of two alternating rounds each.
2. ``evaluate_generator`` twice on the same transformed examples with a stats cache: the second
   run skips real-image extraction. Goal: second >= 1.8x faster. Both runs reuse one loaded
   extractor, so weight loading is in neither timing. Both include the metric maths (a
   2048x2048 eigendecomposition for FID, KID subsets), which the cache cannot skip; the default
   sizes (256 real, 64 generated) keep the real set larger than the generated one, as in the demo.

Usage: ``scripts/in-env python benchmarks/fid.py [--images 64] [--real 128] [--generated 64]``.
Ratios only mean something within one run (the machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

from components.fid_evaluator import cli, evaluate
from dcgan_common.fid import inception, protocol
from dcgan_common import features

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "..", "shared", "datasets", "clothing-small", "train")


def throughput(extractor, images: np.ndarray, batch: int, rounds: int = 2) -> tuple[float, float]:
    """(ours img/s, predict-loop img/s): best of ``rounds`` alternating timings after a warm-up.

    Alternating and taking the best of each damps the noise of a CPU shared with other jobs.
    """
    import tensorflow as tf

    model = extractor.model

    def predict_loop():
        out = []
        for i in range(0, len(images), batch):
            x = protocol.preprocess(tf.constant(images[i:i + batch])).numpy()
            out.append(model.predict(x, batch_size=batch, verbose=0))
        return np.concatenate(out)

    extractor(images[:batch])
    model.predict(protocol.preprocess(tf.constant(images[:batch])).numpy(), batch_size=batch, verbose=0)
    best_ours = best_predict = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        ours = extractor(images)
        best_ours = min(best_ours, time.perf_counter() - start)
        start = time.perf_counter()
        theirs = predict_loop()
        best_predict = min(best_predict, time.perf_counter() - start)
    if np.max(np.abs(ours - theirs)) > 1e-4:
        raise RuntimeError("the two extraction routes disagree; the comparison is meaningless")
    return len(images) / best_ours, len(images) / best_predict


def write_examples(uri: str, images: np.ndarray) -> None:
    import tensorflow as tf

    folder = os.path.join(uri, "Split-train")
    os.makedirs(folder, exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(folder, "data-00000-of-00001.gz"),
                              tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
        for image in images:
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                features.IMAGE_KEY: tf.train.Feature(float_list=tf.train.FloatList(
                    value=features.from_uint8(image).ravel()))})).SerializeToString())


def export_tiny_generator(path: str) -> None:
    """A seeded dense+tanh generator with the project's serving signature."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((features.LATENT_DIM,))
    x = keras.layers.Dense(int(np.prod(features.IMAGE_SHAPE)), activation="tanh",
                           kernel_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=1))(inputs)
    model = keras.Model(inputs, keras.layers.Reshape(features.IMAGE_SHAPE)(x))

    class Generator(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, features.LATENT_DIM], tf.float32)])
        def serve(self, noise):
            return {features.IMAGES_OUTPUT: self.model(noise)}

    module = Generator()
    tf.saved_model.save(module, path, signatures={features.SERVING_SIGNATURE: module.serve})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=64, help="images for the throughput test")
    parser.add_argument("--real", type=int, default=256, help="real images in the cache test")
    parser.add_argument("--generated", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    photos, _ = cli.load_folder_images(DATA, max(args.images, args.real))
    extractor = inception.InceptionExtractor(batch_size=args.batch)
    ours, predict = throughput(extractor, photos[:args.images], args.batch)

    with tempfile.TemporaryDirectory() as tmp:
        examples, model_dir, cache = (os.path.join(tmp, n) for n in ("examples", "model", "cache"))
        write_examples(examples, photos[:args.real])
        export_tiny_generator(model_dir)
        times, results = [], []
        for _ in range(2):
            start = time.perf_counter()
            results.append(evaluate.evaluate_generator(
                model_dir, examples, metric_names=["fid", "kid"], num_generated=args.generated,
                cache_dir=cache, extractor=extractor))
            times.append(time.perf_counter() - start)
    if results[0].metrics != results[1].metrics or not results[1].real_stats_cached:
        raise RuntimeError("cached evaluation differs from the first or did not use the cache")
    print(json.dumps({
        "benchmark": "fid", "extract_images": args.images, "batch": args.batch, "load_avg_1m": os.getloadavg()[0],
        "ours_img_per_s": round(ours, 2), "predict_loop_img_per_s": round(predict, 2),
        "ours_vs_predict": round(ours / predict, 3),
        "eval_real": args.real, "eval_generated": args.generated,
        "eval_first_s": round(times[0], 2), "eval_second_s": round(times[1], 2),
        "cache_speedup": round(times[0] / times[1], 2), "fid": results[0].metrics["fid"],
    }))


if __name__ == "__main__":
    main()
