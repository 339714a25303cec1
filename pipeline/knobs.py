"""The pipeline knobs ``dcgan-tfx run`` and ``dcgan-tfx compile`` share: their flags and how they
resolve into one :class:`PipelineConfig`.

Its own module, below both entry points (pipeline/cli.py and kubeflow/cli.py), so that neither CLI
imports the other for them.
"""
from __future__ import annotations

import argparse
import json

from dcgan_common.config import ASPECT_POLICIES, RECIPES, ConfigError, PipelineConfig


def add_pipeline_knobs(parser) -> None:
    """The pipeline knobs shared by ``run`` and ``compile`` (read back by :func:`config_from_knobs`)."""
    parser.add_argument("--config", help="JSON file of PipelineConfig fields; flags override it (default: none)")
    parser.add_argument("--data-pattern", metavar="PATTERN",
                        help="the crawl folder under the data root, DATA_ROOT/PATTERN/<category>/<image>, "
                             "with TFX ExampleGen specs: {SPAN} (or {YYYY}-{MM}-{DD}) picks the newest "
                             "crawl, an optional {VERSION} its newest version; e.g. 'span-{SPAN}' "
                             "(default: none, the data root itself is the crawl, span 0)")
    parser.add_argument("--span", type=int, metavar="N",
                        help="ingest span N instead of the newest (needs {SPAN} or a date in "
                             "--data-pattern; a date's span is its day number since 1970-01-01) "
                             "(default: the newest)")
    parser.add_argument("--recipe", choices=sorted(RECIPES),
                        help="training recipe (default data_efficient: DiffAugment, spectral norm, "
                             "hinge loss, EMA generator, best-KID export; seed: the blog post's "
                             "DCGAN exactly; wgan_gp: its next post). Other train fields override it")
    parser.add_argument("--epochs", type=int, help="training epochs (pipeline default 50)")
    parser.add_argument("--batch-size", type=int, help="global batch size (default 32)")
    parser.add_argument("--steps-per-epoch", type=int, help="cap steps per epoch (default: one pass)")
    parser.add_argument("--fid-threshold", type=float,
                        help="REQUIRED gate, no default (here or in --config): push only if FID <= this (and "
                             "better than the last pushed model)")
    parser.add_argument("--min-improvement", type=float,
                        help="FID margin a new model must beat the last pushed one by (default 0)")
    parser.add_argument("--min-recall", type=float,
                        help="gate floor on improved recall (k=3), 0-1: refuse a generator that reaches "
                             "fewer real images (mode collapse); default 0 = off")
    parser.add_argument("--min-coverage", type=float,
                        help="gate floor on coverage (k=5), 0-1: the share of real images with a generated "
                             "one nearby; default 0 = off")
    parser.add_argument("--num-fid-samples", type=int, help="generated images scored (default 1000)")
    parser.add_argument("--max-real", type=int, help="cap on real images for FID statistics (default 0 = all)")
    parser.add_argument("--aspect", choices=ASPECT_POLICIES, help="resize policy (default squash)")


def config_from_knobs(args: argparse.Namespace, paths: dict | None = None) -> PipelineConfig:
    """Resolve a PipelineConfig: defaults < ``--config`` file < ``paths`` < knob flags.

    Raises:
      ConfigError: unreadable or invalid ``--config``, or invalid values (e.g. no FID threshold).
    """
    data: dict = {}
    if args.config:
        try:
            with open(args.config) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read --config {args.config}: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"--config {args.config} must hold a JSON object, got {type(data).__name__}")
    data.update(paths or {})
    for key, value in (("data_pattern", args.data_pattern), ("data_span", args.span)):
        if value is not None:
            data[key] = value
    sections = {
        "train": {"recipe": args.recipe, "epochs": args.epochs, "batch_size": args.batch_size,
                  "steps_per_epoch": args.steps_per_epoch},
        "eval": {"threshold": args.fid_threshold, "min_improvement": args.min_improvement,
                 "min_recall": args.min_recall, "min_coverage": args.min_coverage,
                 "num_generated": args.num_fid_samples, "max_real": args.max_real},
        "transform": {"aspect": args.aspect},
    }
    for section, values in sections.items():
        if not isinstance(data.get(section, {}), dict):
            raise ConfigError(f"{section} must be a JSON object, got {data[section]!r}")
        merged = dict(data.get(section, {}))
        merged.update({k: v for k, v in values.items() if v is not None})
        data[section] = merged
    try:
        return PipelineConfig.from_dict(data).validate()
    except TypeError as e:  # unknown top-level key in the --config file
        raise ConfigError(str(e)) from e
