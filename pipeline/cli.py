"""``dcgan-tfx``: the command-line entry point.

Subcommands live beside the code they drive; each module exposes ``register(subparsers)``
and imports TensorFlow/TFX only inside its handlers, so ``--help`` stays instant.

Exit codes: 0 success; 1 the work ran and failed (pipeline error, data policy violated);
2 bad usage or configuration (nothing ran); 130 interrupted (Ctrl-C).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import re
import sys
import traceback

from dcgan_common.config import BEAM_MODES, DEFAULT_DATA_ROOT, DEFAULT_OUTPUT_ROOT, ConfigError, PipelineConfig
from pipeline.knobs import add_pipeline_knobs, config_from_knobs

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a Ctrl-C
DISTRIBUTION = "dcgan-tfx"
_SETUP_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "setup.py")


def version_from_setup_py(path: str = _SETUP_PY) -> str:
    """The ``version="…"`` string of a setup.py, or "unknown" when it cannot be read or has none."""
    try:
        with open(path, encoding="utf-8") as handle:
            match = re.search(r"""\bversion\s*=\s*["']([^"']+)["']""", handle.read())
    except OSError:
        return "unknown"
    return match.group(1) if match else "unknown"


def package_version() -> str:
    """This program's version: the installed distribution's metadata, else the source tree's setup.py."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return version_from_setup_py()


def default_is_shown(action: argparse.Action) -> bool:
    """Whether ``action``'s help must and does not yet state a default.

    True for an optional, non-flag, not-required option with a real default whose help does not
    already name it (a help text saying "default …" in its own words is kept as written).
    """
    if not action.option_strings or action.nargs == 0 or action.required:
        return False
    if action.default is None or action.default is argparse.SUPPRESS:
        return False
    text = action.help or ""
    return "default" not in text.lower()


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Like ``argparse.ArgumentDefaultsHelpFormatter``, but a help text that states its default in
    its own words ("(default: the bundled sample)") is not given a second, raw one; empty string
    and empty list defaults read "none"."""

    def _get_help_string(self, action):
        text = action.help or ""
        if default_is_shown(action):
            empty = action.default in ("", [])
            text += " (default: none)" if empty else " (default: %(default)s)"
        return text


def quiet_logs(verbose: bool) -> None:
    """Tame TensorFlow/Beam/TFX log noise unless ``verbose``. Must run before TF is imported."""
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # C++ INFO/WARNING from TF
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Our own progress lines stay; TFX's (absl) and TF's internal warnings are mostly noise such as
    # "ArtifactQuery.property_predicate is not supported" and API deprecations.
    for name in ("pipeline", "components", "trainer", "kubeflow"):
        logging.getLogger(name).setLevel(logging.INFO)
    for name in ("absl", "tensorflow", "apache_beam"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from absl import logging as absl_logging
    absl_logging.set_verbosity(absl_logging.ERROR)


def _add_run(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="run the whole pipeline locally (LocalDagRunner + Beam DirectRunner)",
        description="Ingest photos, transform, train the DCGAN, score it with FID and push it if it "
                    "passes the gate. Prints a summary at the end.")
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT,
                   help="crawl folder <root>/<category>/<image> (or <root>/<--data-pattern>/<category>/"
                        "<image>), local or gs:// (default: bundled sample)")
    p.add_argument("--output-root", default=DEFAULT_OUTPUT_ROOT,
                   help="where pipeline root, metadata and serving dir go unless set one by one (default: %(default)s)")
    p.add_argument("--pipeline-root", help="TFX pipeline root (default: OUTPUT_ROOT/pipeline)")
    p.add_argument("--metadata-path", help="ML Metadata sqlite file (default: OUTPUT_ROOT/metadata.sqlite)")
    p.add_argument("--serving-dir", help="where blessed generators are pushed (default: OUTPUT_ROOT/serving)")
    p.add_argument("--beam-mode", choices=BEAM_MODES, help="DirectRunner mode (default in_memory)")
    p.add_argument("--beam-workers", type=int, help="workers in multi_processing mode (default 2)")
    # default None, not False: without the flag, a --config file's enable_cache stands.
    p.add_argument("--enable-cache", action="store_true", default=None,
                   help="reuse outputs of components whose inputs did not change (TFX caching); "
                        "re-running an interrupted run with the same --output-root and this flag "
                        "resumes training from its last checkpoint (default: off)")
    add_pipeline_knobs(p)
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.set_defaults(handler=_handle_run)


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The ``run`` config: output-root defaults, then the path flags, then the knobs. Raises ConfigError."""
    out = args.output_root
    paths = {"pipeline_root": os.path.join(out, "pipeline"),
             "metadata_path": os.path.join(out, "metadata.sqlite"),
             "serving_dir": os.path.join(out, "serving")}
    for key in ("data_root", "pipeline_root", "metadata_path", "serving_dir", "beam_mode", "beam_workers",
                "enable_cache"):
        if getattr(args, key, None) is not None:
            paths[key] = getattr(args, key)
    return config_from_knobs(args, paths)


def _handle_run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if "://" not in config.data_root and not os.path.isdir(config.data_root):
        raise ConfigError(f"--data-root {config.data_root} is not a folder (expected <root>/<category>/<image>)")
    if args.dry_run:
        print(config.to_json())
        return EXIT_OK
    from pipeline import summary
    from pipeline.local_runner import run_local
    from pipeline.run_record import read_run

    print(f"dcgan-tfx: running pipeline {config.pipeline_name!r} on {config.data_root}")
    print(f"  pipeline root {config.pipeline_root}; metadata {config.metadata_path}")
    try:
        run_id = run_local(config)
    except Exception as e:  # a component failed: say which and where the logs are
        print(f"dcgan-tfx: pipeline failed: {type(e).__name__}: {e}", file=sys.stderr)
        print("  rerun with --verbose (dcgan-tfx --verbose run …) for component logs", file=sys.stderr)
        return EXIT_FAILED
    from pipeline.report import write_report

    facts = summary.collect(read_run(config.metadata_path, config.pipeline_name, run_id))
    print()
    print(summary.format_summary(facts))
    print(f"report: {write_report(config.pipeline_root, run_id)}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dcgan-tfx", formatter_class=DefaultsHelpFormatter,
        description="Train DCGANs on colour photos with TFX and push only generators that pass an FID gate.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}",
                        help="print the installed version and exit")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow/Beam/TFX logs")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    _add_run(subparsers)
    from components.fid_evaluator import cli as fid_cli
    from components.image_example_gen import cli as ingest_cli
    from kubeflow import cli as kubeflow_cli
    from pipeline import report
    # `generate` is registered by fid_cli: it shares the FidEvaluator's seeded sampler.
    for module in (ingest_cli, fid_cli, report, kubeflow_cli):
        module.register(subparsers)
    # main() accepts --verbose anywhere; listing it on every subcommand makes `run --help` say so.
    for sub in subparsers.choices.values():
        sub.formatter_class = DefaultsHelpFormatter  # every option's default in its --help
        if not any("--verbose" in a.option_strings for a in sub._actions):
            sub.add_argument("--verbose", action="store_true", help="show TensorFlow/Beam/TFX logs")
    return parser


def _interrupted(args: argparse.Namespace, verbose: bool) -> int:
    """Report a Ctrl-C in one line (the traceback only with --verbose); returns EXIT_INTERRUPTED."""
    if verbose:
        traceback.print_exc()
    print(f"dcgan-tfx {args.command}: interrupted", file=sys.stderr)
    if args.command == "run":
        # Without the cache, Transform re-runs, its output path changes and so does the Trainer's
        # resume fingerprint: training would restart from epoch 1.
        print("  re-run with the same --output-root and --enable-cache to resume training "
              "from its last checkpoint", file=sys.stderr)
    return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    """The ``dcgan-tfx`` entry point.

    Args:
      argv: arguments without the program name (default: ``sys.argv[1:]``).
    Returns:
      the exit code: 0 ok, 1 the work failed, 2 bad usage/config/input, 130 interrupted (Ctrl-C).
    Raises:
      SystemExit: from argparse, for ``--help`` and unparsable arguments.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    # --verbose is accepted before or after the subcommand.
    verbose = "--verbose" in argv
    argv = [a for a in argv if a != "--verbose"]
    args = build_parser().parse_args(argv)
    try:
        quiet_logs(verbose)
        return args.handler(args)
    except KeyboardInterrupt:
        return _interrupted(args, verbose)
    except ConfigError as e:
        print(f"dcgan-tfx: configuration error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (FileNotFoundError, NotADirectoryError, ValueError) as e:
        # Bad input the handler could not use (missing file, wrong array shape, unknown metric…).
        if verbose:
            raise
        print(f"dcgan-tfx {args.command}: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
