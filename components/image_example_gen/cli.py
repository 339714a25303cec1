"""``dcgan-tfx check-data ROOT``: the ingestion without the pipeline (ledger + summary table).

``register(subparsers)`` is called by pipeline/cli.py. Heavy modules (Beam, Pillow) are imported
inside the handler so ``dcgan-tfx --help`` stays fast.
"""
from __future__ import annotations

import argparse
import sys

EXIT_OK = 0
EXIT_POLICY_FAILED = 1  # the check ran and the crawl fails the policy
EXIT_BAD_INPUT = 2      # as every dcgan-tfx command: bad usage or input, nothing ran


def register(subparsers) -> None:
    """Add the ``check-data`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "check-data", help="ingest a photo folder without the pipeline and report every file",
        description="Run ImageExampleGen's ingestion on ROOT (<category>/<image>, local or gs://), write "
                    "the ledger (same format as the pipeline's ingestion_report.json) and print a "
                    "per-category table. Exit code 1 when the ingestion policy fails, 2 for bad input.")
    p.add_argument("root", metavar="ROOT", help="data root: a directory or gs://bucket/prefix")
    p.add_argument("--report", default="ingestion_report.json",
                   help="where to write the ledger JSON (default: ./ingestion_report.json)")
    p.add_argument("--examples-dir", default=None,
                   help="also write the TFRecord splits here (default: none are written)")
    from dcgan_common.config import IngestConfig, TrainConfig  # light (no TF/Beam); for the defaults in the help

    ingest = IngestConfig()
    p.add_argument("--beam-mode", choices=("in_memory", "multi_processing"), default="in_memory",
                   help="Beam DirectRunner mode")
    p.add_argument("--workers", type=int, default=2, help="workers for multi_processing (default 2)")
    # None = not given: the IngestConfig default applies (named in each help).
    p.add_argument("--eval-percent", type=int, default=None, metavar="PERCENT",
                   help="share of images, 0-100, put in the eval split by a stable hash of each "
                        f"file's bytes (default {ingest.eval_percent})")
    p.add_argument("--max-rejected-fraction", type=float, default=None, metavar="FRACTION",
                   help="fail the policy (exit 1, after writing the ledger) when more than this share "
                        f"of files is rejected (default {ingest.max_rejected_fraction})")
    p.add_argument("--max-pixels", type=int, default=None, metavar="PIXELS",
                   help="width*height above which a JPEG is decoded DCT-downscaled and any other "
                        f"format is rejected as too_large (decompression-bomb guard) (default "
                        f"{ingest.max_pixels})")
    p.add_argument("--allow-empty-categories", action="store_true",
                   help="pass the policy even when a category folder holds no usable image")

    p.add_argument("--min-train-examples", type=int, default=None, metavar="N",
                   help="fail when the train split holds fewer than N images (default, or 0: one "
                        f"training batch at the default train.batch_size, {TrainConfig().batch_size}; "
                        "pass your run's --batch-size if it differs)")
    p.set_defaults(handler=run_check_data)


def run_check_data(args: argparse.Namespace) -> int:
    """Handler: returns EXIT_OK, EXIT_POLICY_FAILED or EXIT_BAD_INPUT."""
    import dataclasses

    from components.image_example_gen import beam_ingest, ledger
    from dcgan_common.config import ConfigError, IngestConfig

    overrides = {k: v for k, v in {
        "eval_percent": args.eval_percent, "max_rejected_fraction": args.max_rejected_fraction,
        "max_pixels": args.max_pixels, "min_train_examples": args.min_train_examples}.items()
        if v is not None}
    if args.allow_empty_categories:
        overrides["allow_empty_categories"] = True
    try:
        config = dataclasses.replace(IngestConfig(), **overrides)
        report = beam_ingest.run_ingestion(
            args.root, config, args.report, args.examples_dir,
            beam_ingest.beam_options(args.beam_mode, args.workers), raise_on_policy=False)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"check-data: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(ledger.format_table(report))
    print(f"ledger: {args.report}")
    return EXIT_OK if report["policy"]["passed"] else EXIT_POLICY_FAILED
