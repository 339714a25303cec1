"""The crawl layout as a TFX ExampleGen input config: which folder under the data root is one crawl.

One crawl is ``<data_root>/<folder>/<category>/<image>``. ``folder`` is "" (the data root itself,
span 0) or a pattern with TFX's span, version or date specs: ``span-{SPAN}``,
``span-{SPAN}/v{VERSION}``, ``{YYYY}-{MM}-{DD}`` (``dcgan_common.config.check_data_pattern``).

ImageExampleGen gives TFX's ``FileBasedDriver`` one input split whose pattern is
``<folder>/*/*``, the files one level inside each category folder (and a category's sub-folders
themselves). The driver, locally before the cache check and on Vertex in the step's pre-cache-check
hook, picks the span and version (the newest, or the ``RangeConfig``'s), writes them into the
pattern and fingerprints what the pattern matches (file count, total bytes, modification times to
the second: ``tfx.utils.io_utils.generate_fingerprint``). That fingerprint is part of TFX's cache
key. The executor turns the resolved pattern back into the folder it reads (:func:`crawl_folder`).
"""
from __future__ import annotations

from tfx.components.example_gen import input_processor, utils
from tfx.proto import example_gen_pb2, range_config_pb2

from dcgan_common.config import ConfigError, check_data_pattern

#: Name of the one input split (the driver's fingerprint row names it; the outputs are always
#: Split-train and Split-eval, chosen by hash in the executor).
SPLIT_NAME = "crawl"
#: What the split pattern adds below the crawl folder: ``<category>/<file>``.
FILES_GLOB = "*/*"


def crawl_input_config(folder: str = "") -> example_gen_pb2.Input:
    """The standard ExampleGen ``Input`` for crawls laid out ``<folder>/<category>/<image>``.

    Args:
      folder: the crawl folder pattern relative to the data root ("" = the data root itself);
        checked by :func:`check_input` when the component is built.
    Returns:
      ``Input(splits=[Split(name="crawl", pattern="<folder>/*/*")])``.
    """
    pattern = f"{folder}/{FILES_GLOB}" if folder else FILES_GLOB
    return example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name=SPLIT_NAME, pattern=pattern)])


def span_range_config(span: int | None) -> range_config_pb2.RangeConfig | None:
    """None (the driver takes the newest span) or a ``RangeConfig`` pinning span ``span`` (>= 0)."""
    if span is None:
        return None
    return range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(
        start_span_number=span, end_span_number=span))


def folder_of(pattern: str) -> str:
    """The crawl folder of a split pattern ``<folder>/*/*`` ("" for ``*/*``).

    Raises:
      ConfigError: the pattern does not end in ``*/*`` (ImageExampleGen reads whole category
        folders, so the pattern can only choose the folder above them).
    """
    if pattern == FILES_GLOB:
        return ""
    if not pattern.endswith("/" + FILES_GLOB):
        raise ConfigError(f"ImageExampleGen input pattern {pattern!r} must end in '/{FILES_GLOB}' "
                          f"(<crawl folder>/<category>/<file>); build it with crawl_input_config()")
    return pattern[:-len(FILES_GLOB) - 1]


def check_input(data_root: str, input_config: example_gen_pb2.Input,
                range_config: range_config_pb2.RangeConfig | None) -> None:
    """Refuse, at pipeline construction, an input the driver or the executor would refuse later.

    Checks: one split; its pattern is ``<folder>/*/*`` with a folder ``check_data_pattern``
    accepts; and TFX's own rules for specs and ranges (``FileBasedInputProcessor``: equal start
    and end of a static range, a rolling range of one span, a range only with a span or date spec).
    No file is read.
    Raises:
      ConfigError: naming the problem.
    """
    if len(input_config.splits) != 1:
        raise ConfigError(f"ImageExampleGen takes one input split (the crawl folder), got "
                          f"{len(input_config.splits)}; train/eval are chosen by IngestConfig.eval_percent")
    folder = folder_of(input_config.splits[0].pattern)
    static = range_config is not None and range_config.HasField("static_range")
    check_data_pattern(folder, range_config.static_range.start_span_number if static else None)
    try:
        input_processor.FileBasedInputProcessor(data_root, input_config.splits, range_config)
    except ValueError as exc:
        raise ConfigError(f"ImageExampleGen input config: {exc}") from exc


def crawl_folder(input_config: example_gen_pb2.Input) -> str:
    """The folder (relative to the data root) the driver resolved: its split pattern minus ``*/*``.

    Raises:
      ConfigError: not a crawl input config (see :func:`folder_of`).
      ValueError: the pattern still holds a span, version or date spec: only the FileBasedDriver
        fills those in, so the executor was run without it.
    """
    (split,) = input_config.splits
    if any(utils.verify_split_pattern_specs(split)):
        raise ValueError(f"ImageExampleGen input pattern {split.pattern!r} has unresolved span/version "
                         "specs: TFX's FileBasedDriver fills them in before the executor runs (run "
                         "the component through a TFX orchestrator, or pass the resolved pattern)")
    return folder_of(split.pattern)
