"""The ingestion as a Beam pipeline: list → read+decode → dedup → tf.Example → TFRecords + ledger.

Used by the TFX executor (inside TFX's Beam pipeline) and by ``check-data`` / tests (through
``run_ingestion``, which builds its own DirectRunner pipeline). Every DoFn lives at module level so
the multi-process DirectRunner can import it in its workers, and every DoFn yields (never returns
None, which crashes that runner).

Determinism, whatever the listing order, runner mode or worker count:

* byte duplicates are grouped by sha256; the kept file is the one with the smallest relative path
  (code point order), the others are recorded as ``duplicate`` with ``same_bytes_as:<kept>``;
* label ids come from the sorted names of the categories that have an ingested image;
* the split and the shard of an example come from its sha256; each shard's records are sorted
  by sha256 and serialised deterministically, so the output files are byte-identical between runs
  and runner modes (tested).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping, NamedTuple

import apache_beam as beam

from components.image_example_gen import ingest, ledger, storage
from trainer import features

#: Upper bound on examples per output shard. The writer holds one shard in memory, so this
#: bounds its memory (~500 x the stored image size; ~25 MB for 600x800 JPEGs).
EXAMPLES_PER_SHARD = 500
FILE_PREFIX = "data_tfrecord"
FILE_SUFFIX = ".gz"
#: zlib level of the written shards (0: stored blocks; see _WriteShard).
GZIP_LEVEL = 0

_LEDGER = "ledger"
_READ = "read"


class Accepted(NamedTuple):
    """An ingested image on its way to a tf.Example (picklable)."""

    relpath: str
    category: str
    sha256: str
    image: ingest.AcceptedImage


def split_dir(examples_uri: str, split: str) -> str:
    """``<examples_uri>/Split-<split>``: the layout the stock Transform reads."""
    return storage.join(examples_uri, f"Split-{split}")


def shard_path(examples_uri: str, split: str, index: int, count: int) -> str:
    """Path of one gzip TFRecord shard."""
    return storage.join(split_dir(examples_uri, split),
                        f"{FILE_PREFIX}-{index:05d}-of-{count:05d}{FILE_SUFFIX}")


def num_shards(n_examples: int) -> int:
    """Shards for a split of ``n_examples`` (>= 1, so an empty split still has a file)."""
    return max(1, math.ceil(n_examples / EXAMPLES_PER_SHARD))


def shard_of(sha_hex: str, count: int) -> int:
    """Shard index from hex digits 16-23 of the sha256 (digits 0-15 choose the split)."""
    return int(sha_hex[16:24], 16) % count


def make_example(record: Accepted, label: int):
    """Build the tf.train.Example (keys from trainer/features.py). Imports TensorFlow lazily."""
    import tensorflow as tf

    def _bytes(v: bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def _int(v: int):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))

    img = record.image
    return tf.train.Example(features=tf.train.Features(feature={
        features.IMAGE_ENCODED_KEY: _bytes(img.encoded),
        features.IMAGE_FORMAT_KEY: _bytes(img.format.encode("ascii")),
        features.CLASS_TEXT_KEY: _bytes(record.category.encode("utf-8")),
        features.CLASS_LABEL_KEY: _int(label),
        features.FILENAME_KEY: _bytes(record.relpath.encode("utf-8")),
        features.HEIGHT_KEY: _int(img.height),
        features.WIDTH_KEY: _int(img.width),
        features.SHA256_KEY: _bytes(record.sha256.encode("ascii")),
    }))


# --- DoFns -----------------------------------------------------------------------------------
class _ListRoot(beam.DoFn):
    """root → ListedEntry for every file and first-level folder."""

    def process(self, root: str):
        yield from storage.list_entries(root)


class _ClassifyPath(beam.DoFn):
    """relpath → ledger row (skipped / bad filename) or the path to read (tagged output)."""

    def process(self, relpath: str):
        category = ingest.category_of(relpath)
        skip = ingest.classify_path(relpath)
        if skip is not None:
            if skip == ingest.SKIP_HIDDEN and category is not None and not ingest.is_category_name(category):
                category = None  # a hidden first-level folder never becomes a category
            yield beam.pvalue.TaggedOutput(_LEDGER, ledger.file_entry(
                relpath, ingest.STATUS_SKIPPED, skip, category))
        elif not ingest.check_utf8(relpath):
            yield beam.pvalue.TaggedOutput(_LEDGER, ledger.file_entry(
                relpath.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
                ingest.STATUS_REJECTED, ingest.REASON_BAD_NAME, category, "path is not valid UTF-8"))
        else:
            yield beam.pvalue.TaggedOutput(_READ, relpath)


class _ReadAndDecode(beam.DoFn):
    """relpath → (sha256, (relpath, AcceptedImage | Rejection)), or an ``unreadable`` ledger row.

    Reads, hashes and decodes in one step, so a file's original bytes never enter a
    PCollection: the runner only holds paths and the (small, DCT-downscaled) stored images,
    which keeps worker memory bounded as the crawl grows. Byte duplicates are each decoded (the
    outcome depends only on the bytes, so they agree); ``_ResolveDuplicates`` keeps one.
    """

    def __init__(self, root: str, options: ingest.DecodeOptions):
        self._root = root
        self._options = options
        self._reader = None

    def setup(self):
        self._reader = storage.Reader(self._root)

    def process(self, relpath: str):
        try:
            data = self._reader.read(relpath)
        except Exception as exc:  # noqa: BLE001 - recorded, never dropped
            yield beam.pvalue.TaggedOutput(_LEDGER, ledger.file_entry(
                relpath, ingest.STATUS_REJECTED, ingest.REASON_UNREADABLE, ingest.category_of(relpath),
                f"{type(exc).__name__}: {exc}"))
            return
        outcome = ingest.normalize_image(data, self._options)
        yield beam.pvalue.TaggedOutput(_READ, (ingest.sha256_hex(data), (relpath, outcome)))


class _ResolveDuplicates(beam.DoFn):
    """(sha256, [(relpath, outcome)...]) → ledger rows + at most one Accepted (tagged output).

    All members share the outcome (same bytes). If accepted, the member with the smallest path
    is ingested and the rest are duplicates of it; if rejected, every member is rejected with the
    same reason (byte duplicates of junk are still junk).
    """

    def process(self, element):
        sha, members = element
        members = sorted(members, key=lambda m: m[0])
        kept_path, outcome = members[0]
        if isinstance(outcome, ingest.Rejection):
            for path, _ in members:
                yield beam.pvalue.TaggedOutput(_LEDGER, ledger.file_entry(
                    path, ingest.STATUS_REJECTED, outcome.reason, ingest.category_of(path), outcome.detail))
            return
        kept_category = ingest.category_of(kept_path)
        yield beam.pvalue.TaggedOutput(_LEDGER, ledger.file_entry(
            kept_path, ingest.STATUS_INGESTED, "", kept_category))
        for path, _ in members[1:]:
            yield beam.pvalue.TaggedOutput(_LEDGER, ledger.file_entry(
                path, ingest.STATUS_DUPLICATE, ingest.DUPLICATE_REASON_PREFIX + kept_path,
                ingest.category_of(path)))
        yield beam.pvalue.TaggedOutput(_READ, Accepted(kept_path, kept_category, sha, outcome))


def _key_for_shard(record: Accepted, labels: Mapping[str, int], split_counts: Mapping[str, int],
                   eval_percent: int):
    split = ingest.split_for(record.sha256, eval_percent)
    count = num_shards(split_counts.get(split, 0))
    example = make_example(record, labels[record.category])
    # deterministic=True: map fields (the feature map) serialised in key order, so the bytes
    # do not depend on the process (they differed between DirectRunner modes without it).
    yield ((split, shard_of(record.sha256, count)), (record.sha256, example.SerializeToString(deterministic=True)))


def _all_shard_keys(_, split_counts: Mapping[str, int]):
    for split in ledger.SPLITS:
        for i in range(num_shards(split_counts.get(split, 0))):
            yield ((split, i), None)


class _WriteShard(beam.DoFn):
    """((split, index), [(sha, serialized) or None ...]) → one gzip TFRecord file, sorted by sha."""

    def __init__(self, examples_uri: str):
        self._examples_uri = examples_uri

    def process(self, element, split_counts):
        import tensorflow as tf

        (split, index), values = element
        records = sorted(v for v in values if v is not None)
        path = shard_path(self._examples_uri, split, index, num_shards(split_counts.get(split, 0)))
        tf.io.gfile.makedirs(split_dir(self._examples_uri, split))
        # gzip level 0 (stored deflate blocks): a valid gzip file, as TFX's "tfrecords_gzip"
        # format requires, without deflate's cost (~3.5 ms per 90 KB JPEG; stored images are
        # already compressed JPEG or small raw PNG, so compressing again gains little).
        with tf.io.TFRecordWriter(path, options=tf.io.TFRecordOptions(
                compression_type="GZIP", compression_level=GZIP_LEVEL)) as w:
            for _, serialized in records:
                w.write(serialized)
        yield (split, len(records))


def _write_report(entries, category_folders, split_counts, config: Mapping[str, Any], data_root: str,
                  report_uri: str):
    report = ledger.build_report(entries, category_folders, split_counts, config, data_root)
    storage.write_bytes(report_uri, ledger.dumps(report))
    yield report_uri


def _write_report_for_trigger(_, entries, folders, split_counts, config, data_root, report_uri):
    yield from _write_report(entries, folders, split_counts, config, data_root, report_uri)


# --- the PTransform --------------------------------------------------------------------------
class IngestImages(beam.PTransform):
    """Root → gzip TFRecord splits under ``examples_uri`` (optional) + the ledger at ``report_uri``.

    Args:
      data_root: local directory or gs://bucket/prefix, laid out ``<category>/<file>``.
      config: a ``pipeline.config.IngestConfig`` (validated by the caller). ``min_train_examples``
        0 is resolved here to TrainConfig's default batch size (the pipeline has already put its
        own batch size there); the ledger's ``config`` records the resolved value.
      report_uri: where ``ingestion_report.json`` goes (local or gs://).
      examples_uri: the Examples artifact directory; None writes no TFRecords (check-data).
    Expands to the PCollection of the written report URI (one element). The policy is recorded
    in the ledger; callers raise with ``ledger.raise_if_failed`` after the pipeline finishes.
    """

    def __init__(self, data_root: str, config, report_uri: str, examples_uri: str | None = None):
        super().__init__()
        self._root = data_root
        config = config.resolve_min_train_examples()
        self._config = config
        self._config_dict = dataclasses.asdict(config)
        self._report_uri = report_uri
        self._examples_uri = examples_uri

    def expand(self, pbegin):
        listed = (pbegin | "Root" >> beam.Create([self._root])
                  | "List" >> beam.ParDo(_ListRoot()))
        folders = (listed | "Folders" >> beam.Filter(lambda e: e.kind == "dir")
                   | "FolderNames" >> beam.Map(lambda e: e.relpath)
                   | "CategoryFolders" >> beam.Filter(ingest.is_category_name))
        classified = (listed | "Files" >> beam.Filter(lambda e: e.kind == "file")
                      | "FilePaths" >> beam.Map(lambda e: e.relpath)
                      # Spread the (single-bundle) listing over workers before the heavy steps.
                      | "Spread" >> beam.Reshuffle()
                      | "Classify" >> beam.ParDo(_ClassifyPath()).with_outputs(_LEDGER, _READ))
        read = classified[_READ] | "ReadAndDecode" >> beam.ParDo(_ReadAndDecode(
            self._root, ingest.DecodeOptions.from_config(self._config))).with_outputs(_LEDGER, _READ)
        decoded = (read[_READ] | "GroupBySha" >> beam.GroupByKey()
                   | "ResolveDuplicates" >> beam.ParDo(_ResolveDuplicates()).with_outputs(_LEDGER, _READ))
        accepted = decoded[_READ]
        entries = ((classified[_LEDGER], read[_LEDGER], decoded[_LEDGER]) | "AllEntries" >> beam.Flatten())

        labels = (accepted | "Categories" >> beam.Map(lambda r: r.category)
                  | "DistinctCategories" >> beam.Distinct()
                  | "CategoryList" >> beam.combiners.ToList()
                  | "Labels" >> beam.Map(ledger.label_map))
        eval_percent = int(self._config.eval_percent)
        split_counts = (accepted | "SplitOf" >> beam.Map(lambda r: ingest.split_for(r.sha256, eval_percent))
                        | "CountSplits" >> beam.combiners.Count.PerElement()
                        | "SplitCountsDict" >> beam.combiners.ToDict())
        counts_side = beam.pvalue.AsSingleton(split_counts)

        if self._examples_uri is not None:
            keyed = accepted | "ToExample" >> beam.FlatMap(
                _key_for_shard, beam.pvalue.AsSingleton(labels), counts_side, eval_percent)
            empty_keys = pbegin | "One" >> beam.Create([None]) | "ShardKeys" >> beam.FlatMap(
                _all_shard_keys, counts_side)
            _ = ((keyed, empty_keys) | "WithEveryShard" >> beam.Flatten()
                 | "GroupByShard" >> beam.GroupByKey()
                 | "WriteShards" >> beam.ParDo(_WriteShard(self._examples_uri), counts_side))

        return (pbegin | "ReportTrigger" >> beam.Create([None])
                | "WriteReport" >> beam.FlatMap(
                    _write_report_for_trigger, beam.pvalue.AsList(entries), beam.pvalue.AsList(folders),
                    counts_side, self._config_dict, self._root, self._report_uri))


# --- running it outside TFX ------------------------------------------------------------------
def beam_options(mode: str = "in_memory", workers: int = 2) -> list[str]:
    """DirectRunner flags for ``mode`` in {"in_memory", "multi_processing"}.

    Raises:
      ValueError: unknown mode.
    """
    if mode not in ("in_memory", "multi_processing"):
        raise ValueError(f"beam mode must be in_memory or multi_processing, got {mode!r}")
    args = ["--runner=DirectRunner", f"--direct_running_mode={mode}"]
    args.append(f"--direct_num_workers={workers if mode == 'multi_processing' else 1}")
    return args


def run_ingestion(data_root: str, config, report_uri: str, examples_uri: str | None = None,
                  pipeline_args: Iterable[str] | None = None, raise_on_policy: bool = True) -> dict[str, Any]:
    """Run ``IngestImages`` in its own Beam pipeline and return the ledger.

    Args:
      data_root: local directory or gs:// URI.
      config: IngestConfig (validated here).
      report_uri: ledger destination.
      examples_uri: where Split-train/ and Split-eval/ go; None for a ledger-only run.
      pipeline_args: Beam flags (default: ``beam_options("in_memory")``).
      raise_on_policy: raise IngestionPolicyError when the policy fails (ledger written first).
    Returns:
      The report dict (the JSON written to ``report_uri``).
    Raises:
      IngestionPolicyError, FileNotFoundError (missing local root), ConfigError.
    """
    import json
    import os

    from apache_beam.options.pipeline_options import PipelineOptions

    config.validate()
    if not storage.is_gcs(data_root) and not os.path.isdir(data_root):
        raise FileNotFoundError(f"data root is not a directory: {data_root!r}")
    options = PipelineOptions(list(pipeline_args) if pipeline_args is not None else beam_options())
    with beam.Pipeline(options=options) as p:
        _ = p | "IngestImages" >> IngestImages(data_root, config, report_uri, examples_uri)
    report = json.loads(storage.read_bytes(report_uri).decode("utf-8"))
    if raise_on_policy:
        ledger.raise_if_failed(report, report_uri)
    return report
