"""Benchmark of the data path (issue 3, "Benchmarks"). One run; the last line of stdout is JSON.

    scripts/in-env python benchmarks/data_path.py [--limit N] [--source DIR]

1. Makes 606x875 JPEG (quality 90) copies of the shared photos (../shared/datasets/clothing-small,
   train + validation) in a temp dir, keeping category folders.
2. decode_limit_img_s_per_core: a single-core Pillow loop on those files: ``draft`` (DCT-scaled
   decode) + BILINEAR resize to 64x64 — the fastest plausible decode-and-resize.
3. ingest_transform_img_s_per_core: the pipeline's own code as its executors call it:
   ImageExampleGen's ``beam_ingest.run_ingestion`` then the Transform component's
   ``materialize.analyze_and_transform`` (tf.Transform analyze + transform of both splits,
   uncompressed TFRecords), both on the DirectRunner in_memory; images / CPU seconds of this
   process (CPU time, since TF may use more than one thread). peak_rss_mb is the process's peak
   RSS after the ingest step (imports included).
4. seed_loader_img_s: the seed's ``keras.utils.image_dataset_from_directory(image_size=(64, 64),
   batch_size=32)`` + scaling to [-1, 1], one pass (wall clock).
5. train_input_img_s: the first epoch of ``trainer.run_fn.make_image_dataset_fn`` (the trainer's
   own input pipeline: read, parse, check, fill the cache, shuffle, batch 32) over the
   transformed TFRecords, wall clock; train_input_cached_img_s: a later epoch (from the cache).

Numbers are only comparable within one run on one machine (shared cores: expect noise).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
DEFAULT_SOURCE = os.path.join(os.path.dirname(REPO), "shared", "datasets", "clothing-small")
SIZE = (606, 875)  # width, height


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def make_copies(source: str, dest: str, limit: int) -> int:
    from PIL import Image
    files = sorted(glob.glob(os.path.join(source, "*", "*", "*")))
    files = [f for f in files if f.lower().endswith((".jpg", ".jpeg", ".png"))]
    if limit:
        files = files[:: max(1, len(files) // limit)][:limit]
    for i, path in enumerate(files):
        cat = os.path.basename(os.path.dirname(path))
        os.makedirs(os.path.join(dest, cat), exist_ok=True)
        with Image.open(path) as im:
            im.convert("RGB").resize(SIZE, Image.BICUBIC).save(
                os.path.join(dest, cat, f"{i:05d}.jpg"), quality=90)
    return len(files)


def decode_limit(root: str) -> tuple[int, float]:
    from PIL import Image
    files = sorted(glob.glob(os.path.join(root, "*", "*")))
    t0 = _cpu()
    for path in files:
        with Image.open(path) as im:
            im.draft("RGB", (64, 64))
            im.convert("RGB").resize((64, 64), Image.BILINEAR)
    return len(files), _cpu() - t0


def ingest_and_transform(root: str, work: str) -> dict:
    from components.image_example_gen import beam_ingest
    from components.transform import materialize
    from pipeline.config import IngestConfig
    from pipeline.pipeline import RAW_SCHEMA_PATH
    from trainer import preprocessing

    cpu0, wall0 = _cpu(), time.time()
    report = beam_ingest.run_ingestion(root, IngestConfig(), os.path.join(work, "report.json"),
                                       os.path.join(work, "examples"), beam_ingest.beam_options("in_memory"))
    cpu_ingest, wall_ingest = _cpu() - cpu0, time.time() - wall0
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    config = {"transform": {"aspect": "squash", "image_size": 64}, "background": [255, 255, 255]}

    def fn(inputs):
        return preprocessing.preprocessing_fn(inputs, config)

    import apache_beam as beam
    cpu1, wall1 = _cpu(), time.time()
    # The pipeline's own Transform code (components/transform), as its executor calls it.
    materialize.analyze_and_transform(
        os.path.join(work, "examples"), ["train", "eval"], RAW_SCHEMA_PATH, fn,
        os.path.join(work, "transform_graph"), os.path.join(work, "transformed"),
        os.path.join(work, "tft_tmp"),
        make_pipeline=lambda: beam.Pipeline(argv=beam_ingest.beam_options("in_memory")))
    cpu_tft, wall_tft = _cpu() - cpu1, time.time() - wall1
    n = report["counts_by_status"]["ingested"]
    stored = {}
    for path in glob.glob(os.path.join(work, "examples", "Split-*", "*.gz")):
        stored[path] = os.path.getsize(path)
    return {"n": n, "cpu_ingest_s": cpu_ingest, "wall_ingest_s": wall_ingest, "cpu_transform_s": cpu_tft,
            "wall_transform_s": wall_tft, "peak_rss_mb": peak_rss_mb,
            "stored_mb": sum(stored.values()) / 2**20}


def seed_loader(root: str) -> tuple[int, float]:
    import tensorflow as tf
    ds = tf.keras.utils.image_dataset_from_directory(root, labels=None, image_size=(64, 64), batch_size=32,
                                                     shuffle=False)
    ds = ds.map(lambda x: x / 127.5 - 1.0)
    t0, n = time.time(), 0
    for batch in ds:
        n += int(batch.shape[0])
    return n, time.time() - t0


def train_input(work: str) -> tuple[int, float, float]:
    """(images per epoch, first-epoch seconds, later-epoch seconds) of the trainer's pipeline."""
    import tensorflow_transform as tft

    from trainer.run_fn import make_image_dataset_fn
    spec = tft.TFTransformOutput(os.path.join(work, "transform_graph")).transformed_feature_spec()
    dataset_fn = make_image_dataset_fn(os.path.join(work, "transformed", "Split-train", "*"), spec,
                                       batch_size=32)
    times = []
    for epoch in range(2):
        t0, n = time.time(), 0
        for batch in dataset_fn(epoch):
            n += int(batch.shape[0])
        times.append(time.time() - t0)
    return n, times[0], times[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE)
    parser.add_argument("--limit", type=int, default=0, help="use about N photos (0: all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "photos")
        n_copies = make_copies(args.source, root, args.limit)
        n_dec, cpu_dec = decode_limit(root)
        ing = ingest_and_transform(root, os.path.join(tmp, "work"))
        n_seed, wall_seed = seed_loader(root)
        n_train, wall_train, wall_cached = train_input(os.path.join(tmp, "work"))
    decode_limit_rate = n_dec / cpu_dec
    ingest_rate = ing["n"] / (ing["cpu_ingest_s"] + ing["cpu_transform_s"])
    seed_rate = n_seed / wall_seed
    train_rate = n_train / wall_train
    result = {
        "images": n_copies, "image_size_wh": list(SIZE), "cores": os.cpu_count(),
        "ingest_transform_img_s_per_core": round(ingest_rate, 2),
        "decode_limit_img_s_per_core": round(decode_limit_rate, 2),
        "seed_loader_img_s": round(seed_rate, 2),
        "train_input_img_s": round(train_rate, 2),
        "train_input_cached_img_s": round(n_train / wall_cached, 2),
        "peak_rss_mb": round(ing["peak_rss_mb"], 1),
        "ingest_img_s_per_core": round(ing["n"] / ing["cpu_ingest_s"], 2),
        "transform_img_s_per_core": round(ing["n"] / ing["cpu_transform_s"], 2),
        "ingest_cpu_s": round(ing["cpu_ingest_s"], 2), "ingest_wall_s": round(ing["wall_ingest_s"], 2),
        "transform_cpu_s": round(ing["cpu_transform_s"], 2), "transform_wall_s": round(ing["wall_transform_s"], 2),
        "stored_examples_mb": round(ing["stored_mb"], 2),
        "ratio_ingest_transform_to_decode_limit": round(ingest_rate / decode_limit_rate, 3),
        "ratio_train_input_to_seed_loader": round(train_rate / seed_rate, 2),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # TF 2.21 + Beam 2.77 segfaulted at interpreter teardown here (after the result was printed);
    # exit without running finalisers so the exit code reflects the benchmark, not the teardown.
    os._exit(code)
