"""Quality at equal budget: the seed recipe vs the default recipe, scored by the pipeline's evaluator.

Both recipes train through the project's own code on the same data, seed, batch and number of
steps, and each exported generator is scored by ``components.fid_evaluator.evaluate`` (Inception
pool_3, the standard protocol) with ``--num-generated`` images against every real image:

1. prepare: the shared photos (train/ and validation/ folders of clothing-small, 3,409 images)
   are copied into one ``<category>/`` tree, ingested by ImageExampleGen's Beam code and
   transformed by the pipeline's Transform code (64x64, squash), once.
2. train: one process per recipe, both at once (the machine's cores are shared equally, so a
   noisy machine slows both alike), each ``trainer.train.train`` on the Transform output's train
   split with ``steps_per_epoch`` x ``epochs`` steps. Checkpoints make a re-run continue.
   The default recipe's in-training KID uses the same Inception extractor and the same cached
   real features as the evaluator (its KID curve is the "how FID moves over training" record).
3. score: FID, KID and every other registered metric that takes features, for both generators,
   with the same noise seed; sample grids side by side in ``quality_grids.png``.

Run: ``scripts/in-env python benchmarks/quality.py --out /tmp/quality`` (measured: about 1 hour of
training at 3,000 steps with both recipes sharing 2 cores in bf16, then 3-4 minutes per scored
generator). Re-running with more ``--epochs`` continues from the checkpoints;
``--stage score`` only scores (``--recipes`` one of them, e.g. while the other still trains). Last line: JSON with both
recipes' metrics, wall times, steps and ``fid_ratio_new_to_seed``.
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
SHARED = os.path.join(REPO, "..", "shared", "datasets", "clothing-small")
RECIPES = ("seed", "data_efficient")


def prepare(out: str, source: str) -> str:
    """Ingest + Transform the shared photos once; returns the transformed examples folder."""
    transformed = os.path.join(out, "data", "transformed")
    if os.path.exists(os.path.join(out, "data", "DONE")):
        return transformed
    from components.image_example_gen import beam_ingest
    from components.transform import materialize
    from dcgan_common.config import IngestConfig
    from pipeline.pipeline import RAW_SCHEMA_PATH
    from trainer import preprocessing

    root = os.path.join(out, "data", "photos")
    for path in sorted(glob.glob(os.path.join(source, "*", "*", "*.jpg"))):
        split, cat = path.split(os.sep)[-3], path.split(os.sep)[-2]
        os.makedirs(os.path.join(root, cat), exist_ok=True)
        shutil.copyfile(path, os.path.join(root, cat, f"{split}-{os.path.basename(path)}"))
    work = os.path.join(out, "data")
    beam_ingest.run_ingestion(root, IngestConfig(), os.path.join(work, "report.json"),
                              os.path.join(work, "examples"), beam_ingest.beam_options("in_memory"))
    config = {"aspect": "squash", "image_size": 64, "background": [255, 255, 255]}
    import apache_beam as beam
    materialize.analyze_and_transform(
        os.path.join(work, "examples"), ["train", "eval"], RAW_SCHEMA_PATH,
        lambda inputs: preprocessing.preprocessing_fn(inputs, config),
        os.path.join(work, "transform_graph"), transformed, os.path.join(work, "tft_tmp"),
        make_pipeline=lambda: beam.Pipeline(argv=beam_ingest.beam_options("in_memory")))
    open(os.path.join(out, "data", "DONE"), "w").close()
    return transformed


def parse_overrides(pairs: list[str]) -> dict:
    """``["d_learning_rate=4e-4", ...]`` -> TrainConfig overrides, each value cast to its field's
    type. Raises SystemExit naming an unknown field."""
    from dcgan_common.config import TrainConfig

    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise SystemExit(f"--set {pair!r}: TrainConfig has no field {key!r}")
        kind = types[key] if isinstance(types[key], str) else types[key].__name__
        out[key] = (value.lower() in ("1", "true", "yes") if kind == "bool" else
                    int(value) if kind == "int" else float(value) if kind == "float" else value)
    return out


def train_one(out: str, recipe: str, steps_per_epoch: int, epochs: int, seed: int,
              kid_every: int, precision: str, threads: int, name: str | None = None,
              overrides: dict | None = None) -> None:
    """Train one recipe (runs in its own process; see ``main``) with ``threads`` TF threads,
    into ``<out>/<name or recipe>/``; ``overrides`` change TrainConfig fields (ablations)."""
    import logging

    import tensorflow as tf
    import tensorflow_transform as tft

    # Two trainings share the cores: one share each instead of both oversubscribing all of them.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)

    from dcgan_common.config import TrainConfig
    from trainer.run_fn import kid_inputs, make_image_dataset_fn
    from trainer.train import train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    work = os.path.join(out, "data")
    config = TrainConfig.from_recipe(recipe, epochs=epochs, steps_per_epoch=steps_per_epoch,
                                     seed=seed, precision=precision, **(overrides or {}))
    name = name or recipe
    if config.kid_every_epochs > 0 and kid_every:
        # Only when the KID is measured changes: training, and so the budget, stay the recipe's.
        config = dataclasses.replace(config, kid_every_epochs=kid_every)
    spec = tft.TFTransformOutput(os.path.join(work, "transform_graph")).transformed_feature_spec()
    train_files = [os.path.join(work, "transformed", "Split-train", "*")]
    dataset_fn = make_image_dataset_fn(train_files, spec, config.batch_size, seed=seed)
    # The Trainer's own KID inputs: its Inception extractor, real features from the shared cache.
    kid = kid_inputs(config, train_files, {"cache_dir": os.path.join(out, "cache")})
    summary = train(config, dataset_fn, os.path.join(out, name, "run"),
                    os.path.join(out, name, "generator"), **kid)
    history = summary["history"]
    with open(os.path.join(out, name, "train.json"), "w") as f:
        # Wall time from the per-epoch records, so a resumed run still counts every epoch once.
        json.dump({"steps": summary["steps"], "recipe": recipe, "overrides": overrides or {},
                   "precision": precision, "threads": threads,
                   "exported_epoch": summary["exported_epoch"],
                   "train_seconds": sum(h["seconds"] for h in history),
                   "kid_seconds": sum(h.get("kid_seconds", 0.0) for h in history),
                   "history": history, "best_kid": summary.get("best_kid"),
                   "restored_from": summary.get("restored_from")}, f, indent=2)


def export_untrained(out: str, seed: int) -> None:
    """The noise baseline: the default recipe's generator at step 0 (its seeded random
    initialisation), exported like a trained one, so the README's threshold advice can say what a
    generator that learned nothing scores at the same N."""
    from dcgan_common.config import TrainConfig
    from trainer.export import export_generator
    from trainer.train import build_gan

    if os.path.exists(os.path.join(out, "untrained", "train.json")):
        return
    gan = build_gan(TrainConfig.from_recipe("data_efficient", seed=seed))
    export_generator(gan.generator, os.path.join(out, "untrained", "generator"))
    with open(os.path.join(out, "untrained", "train.json"), "w") as f:
        json.dump({"steps": 0, "train_seconds": 0.0, "kid_seconds": 0.0, "exported_epoch": None,
                   "history": []}, f)


def score_one(out: str, recipe: str, num_generated: int, seed: int, extractor=None) -> dict:
    """Score one exported generator with the evaluator (every registered metric); the result is
    kept in ``<recipe>/score.json`` and reused while the generator's step count and N are the same
    (a run continued to more epochs is scored again)."""
    from components.fid_evaluator import evaluate, extractors
    from dcgan_common.fid import metrics

    path = os.path.join(out, recipe, "score.json")
    with open(os.path.join(out, recipe, "train.json")) as f:
        trained = json.load(f)
    if os.path.exists(path):
        with open(path) as f:
            done = json.load(f)
        if done.get("steps") == trained["steps"] and done.get("n_gen") == num_generated:
            return done                      # this generator at this N was scored already
    extractor = extractor or extractors.get_extractor("inception",
                                                      cache_dir=os.path.join(out, "cache"))
    res = evaluate.evaluate_generator(
        os.path.join(out, recipe, "generator"), os.path.join(out, "data", "transformed"),
        metric_names=metrics.list_metrics(), num_generated=num_generated, seed=seed,
        cache_dir=os.path.join(out, "cache"), extractor=extractor,
        samples_png=os.path.join(out, recipe, "samples.png"))
    result = {"metrics": res.metrics, "n_real": res.n_real, "n_gen": res.n_gen,
              "protocol": res.protocol, "steps": trained["steps"],
              "train_wall_s": round(trained["train_seconds"], 1),
              "kid_checks_wall_s": round(trained["kid_seconds"], 1),
              "score_wall_s": round(res.duration_s, 1),
              "exported_epoch": trained["exported_epoch"],
              "precision": trained.get("precision"),
              "kid_curve": [(h["epoch"] + 1, h["kid"]) for h in trained["history"] if "kid" in h],
              "error": res.error}
    with open(path, "w") as f:
        json.dump(result, f, indent=2, default=float)
    return result


def side_by_side_grids(out: str, seed: int) -> str:
    """64 images of each generator (the sampler ``dcgan-tfx generate`` uses), seed recipe left."""
    import numpy as np
    from PIL import Image

    from components.fid_evaluator import sampling

    halves = []
    for recipe in RECIPES:
        images = sampling.sample_images(os.path.join(out, recipe, "generator"), 64, seed)
        halves.append(images.reshape(8, 8, 64, 64, 3).transpose(0, 2, 1, 3, 4).reshape(512, 512, 3))
    gap = np.full((512, 8, 3), 255, np.uint8)
    path = os.path.join(out, "quality_grids.png")
    Image.fromarray(np.concatenate([halves[0], gap, halves[1]], axis=1)).save(path)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="/tmp/dcgan-quality", help="work folder (reused to resume)")
    p.add_argument("--source", default=SHARED, help="clothing-small folder (train/, validation/)")
    p.add_argument("--steps-per-epoch", type=int, default=100)
    p.add_argument("--epochs", type=int, default=30, help="steps = steps-per-epoch x epochs")
    p.add_argument("--num-generated", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kid-every", type=int, default=2,
                   help="epochs between in-training KID checks of recipes that have them (0: theirs)")
    p.add_argument("--precision", default="mixed_bfloat16", choices=("float32", "mixed_bfloat16"),
                   help="training precision of both recipes (bf16 is ~1.4x faster on these CPUs)")
    p.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                   help="TF threads per training process (both train at once)")
    p.add_argument("--stage", choices=("all", "score"), default="all")
    p.add_argument("--recipes", default=",".join(RECIPES),
                   help="score only these (comma-separated); the JSON line needs both scored")
    from dcgan_common.config import RECIPES as ALL_RECIPES

    p.add_argument("--train-one", choices=sorted(ALL_RECIPES),
                   help="train only this recipe, in this process (ablations: with --name/--set; "
                        "score with --stage score --recipes NAME)")
    p.add_argument("--name", help="folder under --out for --train-one (default: the recipe)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="TrainConfig override for --train-one, repeatable")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.train_one:
        os.makedirs(os.path.join(args.out, args.name or args.train_one), exist_ok=True)
        train_one(args.out, args.train_one, args.steps_per_epoch, args.epochs, args.seed,
                  args.kid_every, args.precision, args.threads, args.name,
                  parse_overrides(args.set))
        return
    if args.stage == "all":
        prepare(args.out, os.path.abspath(args.source))
        procs = []
        for recipe in RECIPES:
            os.makedirs(os.path.join(args.out, recipe), exist_ok=True)
            log = open(os.path.join(args.out, recipe, "train.log"), "a")
            procs.append(subprocess.Popen(
                [sys.executable, __file__, "--train-one", recipe, "--out", args.out,
                 "--steps-per-epoch", str(args.steps_per_epoch), "--epochs", str(args.epochs),
                 "--seed", str(args.seed), "--kid-every", str(args.kid_every),
                 "--precision", args.precision, "--threads", str(args.threads)],
                stdout=log, stderr=subprocess.STDOUT))
        codes = [q.wait() for q in procs]
        if any(codes):
            sys.exit(f"training failed: return codes {dict(zip(RECIPES, codes))}")
    for recipe in args.recipes.split(","):
        score_one(args.out, recipe, args.num_generated, args.seed)
    if not all(os.path.exists(os.path.join(args.out, r, "score.json")) for r in RECIPES):
        return
    results = {r: score_one(args.out, r, args.num_generated, args.seed) for r in RECIPES}
    export_untrained(args.out, args.seed)
    untrained = score_one(args.out, "untrained", args.num_generated, args.seed)
    seed_fid = results["seed"]["metrics"]["fid"]
    new_fid = results["data_efficient"]["metrics"]["fid"]
    line = {"recipes": results, "untrained_generator": untrained["metrics"],
            "fid_ratio_new_to_seed": round(new_fid / seed_fid, 4),
            "num_generated": args.num_generated, "grids": side_by_side_grids(args.out, args.seed)}
    with open(os.path.join(args.out, "quality.json"), "w") as f:
        json.dump(line, f, indent=2, default=float)
    print(json.dumps(line, default=float))


if __name__ == "__main__":
    main()
