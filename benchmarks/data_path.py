"""Benchmark of the data path (issue 3, "Benchmarks"). One run; the last line of stdout is JSON.

    scripts/in-env python benchmarks/data_path.py [--limit N] [--copies K] [--source DIR]

1. Makes 606x875 JPEG (quality 90) copies of the shared photos (../shared/datasets/clothing-small,
   train + validation) in a temp dir, keeping category folders.
2. decode_limit_img_s_per_core: a single-core Pillow loop on those files: ``draft`` (DCT-scaled
   decode) + BILINEAR resize to 64x64 — the fastest plausible decode-and-resize. Median of three
   passes (start, middle, end of the run), CPU time.
3. ingest_transform_img_s_per_core: median of three passes of the pipeline's own code as its
   executors call it:
   ImageExampleGen's ``beam_ingest.run_ingestion`` then the Transform component's
   ``materialize.analyze_and_transform`` (tf.Transform analyze + transform of both splits,
   uncompressed TFRecords), both on the DirectRunner in_memory; images / CPU seconds of this
   process (CPU time, since TF may use more than one thread). peak_rss_mb is the process's peak
   RSS after the ingest step (imports included).
4. seed_loader_img_s: the seed's ``keras.utils.image_dataset_from_directory(image_size=(64, 64),
   batch_size=32)`` + scaling to [-1, 1]; median of three passes (wall clock).
5. train_input_img_s: the first epoch of ``trainer.run_fn.make_image_dataset_fn`` (the trainer's
   own input pipeline: read, parse, check, fill the cache, shuffle, batch 32) over the
   transformed TFRecords, wall clock, median of three fresh pipelines; train_input_cached_img_s:
   a later epoch (from the cache). ``--copies 5`` runs it all at the real crawl's size.
6. what_if_uint8_train_input_img_s: the same first epoch if Transform stored the (uint8-grid)
   pixels as 12 KiB of bytes instead of 48 KiB of float32 — the number behind the open product
   question in docs/architecture.md ("Data path speed"). Median of three, wall clock.

Numbers are only comparable within one run on one machine (shared cores: expect noise).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import statistics
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


def make_copies(source: str, dest: str, limit: int, copies: int = 1) -> int:
    """606x875 JPEG copies of the photos under ``source`` in ``dest/<category>/``.

    ``copies`` > 1 writes each photo that many times at JPEG quality 90, 89, ... (different bytes,
    so ingestion keeps every copy): ``--copies 5`` gives ~17,000 photos, the size of the real crawl.
    """
    from PIL import Image
    files = sorted(glob.glob(os.path.join(source, "*", "*", "*")))
    files = [f for f in files if f.lower().endswith((".jpg", ".jpeg", ".png"))]
    if limit:
        files = files[:: max(1, len(files) // limit)][:limit]
    for i, path in enumerate(files):
        cat = os.path.basename(os.path.dirname(path))
        os.makedirs(os.path.join(dest, cat), exist_ok=True)
        with Image.open(path) as im:
            resized = im.convert("RGB").resize(SIZE, Image.BICUBIC)
        for c in range(copies):
            suffix = f"-{c}" if copies > 1 else ""
            resized.save(os.path.join(dest, cat, f"{i:05d}{suffix}.jpg"), quality=90 - c)
    return len(files) * copies


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
    from dcgan_common.config import IngestConfig
    from pipeline.pipeline import RAW_SCHEMA_PATH
    from trainer import preprocessing

    # TensorFlow is imported before the clocks start: an executor runs in a process where TFX has
    # already imported it, and its import (~8 CPU-s here) is not data-path work.
    import tensorflow  # noqa: F401
    cpu0, wall0 = _cpu(), time.time()
    report = beam_ingest.run_ingestion(root, IngestConfig(), os.path.join(work, "report.json"),
                                       os.path.join(work, "examples"), beam_ingest.beam_options("in_memory"))
    cpu_ingest, wall_ingest = _cpu() - cpu0, time.time() - wall0
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    config = {"aspect": "squash", "image_size": 64, "background": [255, 255, 255]}

    def fn(inputs):
        return preprocessing.preprocessing_fn(inputs, config)

    # Imported before the clock, as in the Transform executor's process (TFX loads its executor
    # module, which imports these, before calling Do).
    import apache_beam as beam
    import tensorflow_transform.beam  # noqa: F401
    from tfx_bsl.public import tfxio  # noqa: F401
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


def train_input(work: str, passes: int = 3) -> tuple[int, list[float], float]:
    """(images per epoch, first-epoch seconds of ``passes`` fresh pipelines, a cached epoch's seconds)."""
    import tensorflow_transform as tft

    from trainer.run_fn import make_image_dataset_fn
    spec = tft.TFTransformOutput(os.path.join(work, "transform_graph")).transformed_feature_spec()
    firsts, cached = [], 0.0
    for _ in range(passes):
        # A new dataset_fn has an empty cache: its epoch 0 reads and parses the files.
        dataset_fn = make_image_dataset_fn(os.path.join(work, "transformed", "Split-train", "*"), spec,
                                           batch_size=32)
        for epoch in range(2):
            t0, n = time.time(), 0
            for batch in dataset_fn(epoch):
                n += int(batch.shape[0])
            if epoch == 0:
                firsts.append(time.time() - t0)
            else:
                cached = time.time() - t0
    return n, firsts, cached


def uint8_what_if(work: str, passes: int = 3) -> tuple[int, list[float]]:
    """First-epoch seconds if Transform stored uint8 pixels instead of float32 (a product question).

    The transformed images lie on the uint8 grid, so the same images fit in 12 KiB of raw bytes
    instead of 48 KiB of floats. This re-encodes the train split that way (outside the clock) and
    reads it in the shape of ``make_image_dataset_fn`` (read, parse 256 at a time, cache, shuffle
    10,000, batch 32) plus the scaling to [-1, 1] per batch. Not the trainer's code: a what-if.
    """
    import tensorflow as tf

    from dcgan_common import features
    from trainer.run_fn import PARSE_BATCH, SHUFFLE_BUFFER
    files = sorted(glob.glob(os.path.join(work, "transformed", "Split-train", "*")))
    float_spec = {features.IMAGE_KEY: tf.io.FixedLenFeature(features.IMAGE_SHAPE, tf.float32)}
    raw_path = os.path.join(work, "what_if_uint8.tfrecord")
    with tf.io.TFRecordWriter(raw_path) as writer:
        for serialized in tf.data.TFRecordDataset(files).batch(PARSE_BATCH):
            images = tf.io.parse_example(serialized, float_spec)[features.IMAGE_KEY].numpy()
            for pixels in features.to_uint8(images):
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    "image_raw": tf.train.Feature(bytes_list=tf.train.BytesList(value=[pixels.tobytes()]))
                })).SerializeToString())
    raw_spec = {"image_raw": tf.io.FixedLenFeature([], tf.string)}

    def parse(serialized):
        raw = tf.io.decode_raw(tf.io.parse_example(serialized, raw_spec)["image_raw"], tf.uint8)
        return tf.reshape(raw, (-1,) + features.IMAGE_SHAPE)

    firsts = []
    for i in range(passes):
        ds = (tf.data.TFRecordDataset([raw_path]).batch(PARSE_BATCH)
              .map(parse, num_parallel_calls=tf.data.AUTOTUNE).unbatch().cache()
              .shuffle(SHUFFLE_BUFFER, seed=i).batch(32, drop_remainder=True)
              .map(lambda q: tf.cast(q, tf.float32) / 127.5 - 1.0, num_parallel_calls=tf.data.AUTOTUNE)
              .prefetch(tf.data.AUTOTUNE))
        t0, n = time.time(), 0
        for batch in ds:
            n += int(batch.shape[0])
        firsts.append(time.time() - t0)
    return n, firsts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE)
    parser.add_argument("--limit", type=int, default=0, help="use about N photos (0: all)")
    parser.add_argument("--copies", type=int, default=1,
                        help="JPEG copies per photo (5: crawl-sized, ~17k images)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "photos")
        n_copies = make_copies(args.source, root, args.limit, args.copies)
        # Every figure is the median of three passes, interleaved (decode limit, ours, seed loader,
        # again and again) so that load drift hits both sides of each ratio: on this shared machine
        # one pass of the same code moved by a third between runs.
        decode_cpu, seed_wall, ours = [], [], []
        n_dec, cpu = decode_limit(root)
        decode_cpu.append(cpu)
        # First of ours: the process's peak RSS is then the ingest's (reported as peak_rss_mb).
        ours.append(ingest_and_transform(root, os.path.join(tmp, "work")))
        n_seed, wall = seed_loader(root)
        seed_wall.append(wall)
        n_train, train_walls, wall_cached = train_input(os.path.join(tmp, "work"))
        n_u8, u8_walls = uint8_what_if(os.path.join(tmp, "work"))
        for i in range(2):
            decode_cpu.append(decode_limit(root)[1])
            ours.append(ingest_and_transform(root, os.path.join(tmp, f"work{i + 1}")))
            seed_wall.append(seed_loader(root)[1])
    decode_limit_rate = n_dec / statistics.median(decode_cpu)
    ing = dict(ours[0])
    for key in ("cpu_ingest_s", "wall_ingest_s", "cpu_transform_s", "wall_transform_s"):
        ing[key] = statistics.median(o[key] for o in ours)
    ingest_rate = ing["n"] / statistics.median(o["cpu_ingest_s"] + o["cpu_transform_s"] for o in ours)
    seed_rate = n_seed / statistics.median(seed_wall)
    train_rate = n_train / statistics.median(train_walls)
    result = {
        "images": n_copies, "image_size_wh": list(SIZE), "cores": os.cpu_count(),
        "ingest_transform_img_s_per_core": round(ingest_rate, 2),
        "decode_limit_img_s_per_core": round(decode_limit_rate, 2),
        "seed_loader_img_s": round(seed_rate, 2),
        "train_input_img_s": round(train_rate, 2),
        "train_input_cached_img_s": round(n_train / wall_cached, 2),
        "peak_rss_mb": round(ing["peak_rss_mb"], 1),
        "what_if_uint8_train_input_img_s": round(n_u8 / statistics.median(u8_walls), 2),
        "what_if_uint8_ratio_to_seed_loader": round(n_u8 / statistics.median(u8_walls) / seed_rate, 2),
        "ingest_img_s_per_core": round(ing["n"] / ing["cpu_ingest_s"], 2),
        "transform_img_s_per_core": round(ing["n"] / ing["cpu_transform_s"], 2),
        "ingest_cpu_s": round(ing["cpu_ingest_s"], 2), "ingest_wall_s": round(ing["wall_ingest_s"], 2),
        "transform_cpu_s": round(ing["cpu_transform_s"], 2), "transform_wall_s": round(ing["wall_transform_s"], 2),
        "stored_examples_mb": round(ing["stored_mb"], 2),
        "ratio_ingest_transform_to_decode_limit": round(ingest_rate / decode_limit_rate, 3),
        "ratio_train_input_to_seed_loader": round(train_rate / seed_rate, 2),
        "decode_limit_passes_img_s": [round(n_dec / c, 1) for c in decode_cpu],
        "ingest_transform_passes_img_s_per_core": [
            round(o["n"] / (o["cpu_ingest_s"] + o["cpu_transform_s"]), 1) for o in ours],
        "seed_loader_passes_img_s": [round(n_seed / w, 1) for w in seed_wall],
        "train_input_passes_img_s": [round(n_train / w, 1) for w in train_walls],
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # TF 2.21 + Beam 2.77 segfaulted at interpreter teardown here (after the result was printed);
    # exit without running finalisers so the exit code reflects the benchmark, not the teardown.
    os._exit(code)
