"""The ingestion as a Beam pipeline: list → read+decode → dedup → tf.Example → TFRecords + ledger.

Used by the TFX executor (inside TFX's Beam pipeline) and by ``check-data`` / tests (through
``run_ingestion``, which builds its own DirectRunner pipeline). Every DoFn lives at module level so
the multi-process DirectRunner can import it in its workers, and every DoFn yields (never returns
None, which crashes that runner).

Only the stored images are heavy, and they take the shortest path: read+decode → ToExample →
group by shard → write. Duplicates, the ledger, the labels and the split counts are decided on a
small per-file outcome (sha, path, rejection) beside them (``IngestImages.expand``).

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
from dcgan_common import features

#: Upper bound on examples per output shard. The writer holds one shard in memory, so this
#: bounds its memory (~500 x the stored image size; ~25 MB for 600x800 JPEGs).
EXAMPLES_PER_SHARD = 500
FILE_PREFIX = "data_tfrecord"
FILE_SUFFIX = ".gz"
#: zlib level of the written shards (0: stored blocks; see _WriteShard).
GZIP_LEVEL = 0

_LEDGER = "ledger"
_META = "meta"
_FOLDERS = "folders"
_DUPLICATED = "duplicated"


class Accepted(NamedTuple):
    """An ingested image on its way to a tf.Example (picklable)."""

    relpath: str
    category: str
    sha256: str
    image: ingest.AcceptedImage


def shard_path(examples_uri: str, split: str, index: int, count: int) -> str:
    """Path of one gzip TFRecord shard."""
    return storage.join(features.split_dir(examples_uri, split),
                        f"{FILE_PREFIX}-{index:05d}-of-{count:05d}{FILE_SUFFIX}")


def num_shards(n_examples: int) -> int:
    """Shards for a split of ``n_examples`` (>= 1, so an empty split still has a file)."""
    return max(1, math.ceil(n_examples / EXAMPLES_PER_SHARD))


def shard_of(sha_hex: str, count: int) -> int:
    """Shard index from hex digits 16-23 of the sha256 (digits 0-15 choose the split)."""
    return int(sha_hex[16:24], 16) % count


def make_example(record: Accepted, label: int):
    """Build the tf.train.Example (keys from dcgan_common/features.py). Imports TensorFlow lazily."""
    import tensorflow as tf

    img = record.image
    example = tf.train.Example()
    feature = example.features.feature
    # Filled in place rather than nesting Feature(BytesList(...)) constructors: each nested
    # constructor copied the stored image again (~30 us less per image, same message).
    for key, value in ((features.IMAGE_ENCODED_KEY, img.encoded),
                       (features.IMAGE_FORMAT_KEY, img.format.encode("ascii")),
                       (features.CLASS_TEXT_KEY, record.category.encode("utf-8")),
                       (features.FILENAME_KEY, record.relpath.encode("utf-8")),
                       (features.SHA256_KEY, record.sha256.encode("ascii"))):
        feature[key].bytes_list.value.append(value)
    for key, value in ((features.CLASS_LABEL_KEY, label), (features.HEIGHT_KEY, img.height),
                       (features.WIDTH_KEY, img.width)):
        feature[key].int64_list.value.append(int(value))
    return example


# --- DoFns -----------------------------------------------------------------------------------
class _ListRoot(beam.DoFn):
    """root → every file's relpath, plus first-level category folder names (tagged ``_FOLDERS``)."""

    # One DoFn with two outputs instead of Filter/Map/Filter chains over ListedEntry: five fewer
    # transforms to build and three fewer DoFn calls per listed file.
    def process(self, root: str):
        for entry in storage.list_entries(root):
            if not ingest.check_utf8(entry.relpath):
                # Beam's coders encode str as UTF-8, so a name that is not (os.walk's surrogate
                # escapes) would crash the runner downstream: its ledger row is made here, with a
                # printable path, and it never enters a PCollection as a path.
                if entry.kind != storage.KIND_DIR:
                    yield beam.pvalue.TaggedOutput(_LEDGER, _unencodable_entry(entry.relpath))
            elif entry.kind == storage.KIND_FILE:
                yield entry.relpath
            elif entry.kind == storage.KIND_LINKED_DIR:
                yield beam.pvalue.TaggedOutput(_LEDGER, _linked_dir_entry(entry.relpath))
            elif entry.kind == storage.KIND_UNLISTABLE:
                # Its files are unknown: the folder itself is the recorded rejection.
                yield beam.pvalue.TaggedOutput(_LEDGER, ledger.file_entry(
                    entry.relpath, ingest.STATUS_REJECTED, ingest.REASON_UNREADABLE,
                    ingest.category_of(entry.relpath), entry.detail))
            elif ingest.is_category_name(entry.relpath):
                yield beam.pvalue.TaggedOutput(_FOLDERS, entry.relpath)


def _linked_dir_entry(relpath: str) -> dict[str, Any]:
    """Ledger row of a link to a folder that is read anyway (storage.list_entries): skipped; a
    first-level one is no category."""
    category = ingest.category_of(relpath)
    hidden = _path_entry(relpath)
    if hidden is not None and hidden["reason"] == ingest.SKIP_HIDDEN:
        return hidden
    return ledger.file_entry(relpath, ingest.STATUS_SKIPPED, ingest.SKIP_LINKED_FOLDER, category,
                             "link to a folder that is read under its own path (or a loop)")


def _unencodable_entry(relpath: str) -> dict[str, Any]:
    """Ledger row of a file whose path is not valid UTF-8: skipped by the usual rules, else rejected."""
    printable = relpath.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    category = ingest.category_of(relpath)
    # A folder whose own name is not UTF-8 is not a category (categories are UTF-8 names).
    category = category if category is not None and ingest.check_utf8(category) else None
    skipped = _path_entry(printable)
    if skipped is not None:
        return skipped if category is not None else dict(skipped, category=None)
    return ledger.file_entry(printable, ingest.STATUS_REJECTED, ingest.REASON_BAD_NAME, category,
                             "path is not valid UTF-8")


def _path_entry(relpath: str) -> dict[str, Any] | None:
    """The ledger row of a path that is not read (skipped), else None. ``relpath`` is valid UTF-8."""
    category = ingest.category_of(relpath)
    skip = ingest.classify_path(relpath)
    if skip is not None:
        if skip == ingest.SKIP_HIDDEN and category is not None and not ingest.is_category_name(category):
            category = None  # a hidden first-level folder never becomes a category
        return ledger.file_entry(relpath, ingest.STATUS_SKIPPED, skip, category)
    return None


class _ReadAndDecode(beam.DoFn):
    """relpath → ledger row (skipped, bad filename, unreadable), or the file's outcome, twice:

    * ``_META``: (sha256, (relpath, Rejection | None)) for every file read (None: accepted). Small;
      duplicates, the ledger, the labels and the split counts are all decided from it.
    * main output (only when ``emit_images``): (sha256, (relpath, AcceptedImage)) for accepted
      files: the only heavy element; it becomes an example unless it is a non-kept duplicate.

    Reads, hashes and decodes in one step, so a file's original bytes never enter a
    PCollection: the runner only holds paths and the (small, DCT-downscaled) stored images,
    which keeps worker memory bounded as the crawl grows. Byte duplicates are each decoded (the
    outcome depends only on the bytes, so they agree); ``_ResolveDuplicates`` decides which is kept.
    """

    def __init__(self, root: str, options: ingest.DecodeOptions, emit_images: bool = True):
        self._root = root
        self._options = options
        self._emit_images = emit_images
        self._reader = None

    def setup(self):
        self._reader = storage.Reader(self._root)

    # Path classification is done here rather than in its own DoFn: one call per file less.
    def process(self, relpath: str):
        entry = _path_entry(relpath)
        if entry is not None:
            yield beam.pvalue.TaggedOutput(_LEDGER, entry)
            return
        try:
            data = self._reader.read(relpath)
        except Exception as exc:  # noqa: BLE001 - recorded, never dropped
            yield beam.pvalue.TaggedOutput(_LEDGER, ledger.file_entry(
                relpath, ingest.STATUS_REJECTED, ingest.REASON_UNREADABLE, ingest.category_of(relpath),
                f"{type(exc).__name__}: {exc}"))
            return
        outcome = ingest.normalize_image(data, self._options)
        sha = ingest.sha256_hex(data)
        rejected = isinstance(outcome, ingest.Rejection)
        yield beam.pvalue.TaggedOutput(_META, (sha, (relpath, outcome if rejected else None)))
        if self._emit_images and not rejected:
            yield (sha, (relpath, outcome))


class _ResolveDuplicates(beam.DoFn):
    """(sha256, [(relpath, Rejection | None)...]) → ledger rows + (category, split) of the kept file.

    All members share the outcome (same bytes). If accepted, the member with the smallest path
    is ingested (main output: its category and split, for the labels and split counts) and the
    rest are duplicates of it (``_DUPLICATED``: (sha256, kept path), for ``_example_of_kept``);
    if rejected, every member is rejected with the same reason (byte duplicates of junk are
    still junk).
    """

    def __init__(self, eval_percent: int):
        self._eval_percent = eval_percent

    def process(self, element):
        sha, members = element
        members = sorted(members, key=lambda m: m[0])
        kept_path, rejection = members[0]
        if rejection is not None:
            for path, _ in members:
                yield beam.pvalue.TaggedOutput(_LEDGER, ledger.file_entry(
                    path, ingest.STATUS_REJECTED, rejection.reason, ingest.category_of(path),
                    rejection.detail))
            return
        kept_category = ingest.category_of(kept_path)
        yield beam.pvalue.TaggedOutput(_LEDGER, ledger.file_entry(
            kept_path, ingest.STATUS_INGESTED, "", kept_category))
        for path, _ in members[1:]:
            yield beam.pvalue.TaggedOutput(_LEDGER, ledger.file_entry(
                path, ingest.STATUS_DUPLICATE, ingest.DUPLICATE_REASON_PREFIX + kept_path,
                ingest.category_of(path)))
        if len(members) > 1:
            yield beam.pvalue.TaggedOutput(_DUPLICATED, (sha, kept_path))
        yield (kept_category, ingest.split_for(sha, self._eval_percent))


class _CountKept(beam.CombineFn):
    """(category, split) of every ingested image → (label map, {split: examples})."""

    # One combine for both summaries instead of Distinct + ToList + Count.PerElement + ToDict:
    # 16 fewer primitive transforms to build and run (26 → 10), for the same two values.
    def create_accumulator(self):
        return set(), {}

    def add_input(self, accumulator, kept):
        categories, splits = accumulator
        category, split = kept
        categories.add(category)
        splits[split] = splits.get(split, 0) + 1
        return accumulator

    def merge_accumulators(self, accumulators):
        categories, splits = set(), {}
        for c, s in accumulators:
            categories |= c
            for split, n in s.items():
                splits[split] = splits.get(split, 0) + n
        return categories, splits

    def extract_output(self, accumulator):
        categories, splits = accumulator
        return ledger.label_map(categories), dict(splits)


def _example_of_kept(element, kept_of_duplicated: Mapping[str, str], labels: Mapping[str, int],
                     split_counts: Mapping[str, int], eval_percent: int):
    """(sha256, (relpath, AcceptedImage)) → its shard-keyed example, or nothing for a duplicate.

    ``kept_of_duplicated`` maps the sha256 of every byte-duplicated accepted file to the member
    ``_ResolveDuplicates`` kept; files whose sha is not in it have no duplicate."""
    # A small side input (one entry per duplicated image) instead of grouping the images by sha:
    # that group-by copied every stored image once more (~0.2 CPU-s per 3,400 images).
    sha, (relpath, image) = element
    if kept_of_duplicated.get(sha, relpath) != relpath:
        return
    yield from _key_for_shard(Accepted(relpath, ingest.category_of(relpath), sha, image),
                              labels, split_counts, eval_percent)


def _key_for_shard(record: Accepted, labels: Mapping[str, int], split_counts: Mapping[str, int],
                   eval_percent: int):
    split = ingest.split_for(record.sha256, eval_percent)
    count = num_shards(split_counts.get(split, 0))
    example = make_example(record, labels[record.category])
    # deterministic=True: map fields (the feature map) serialised in key order, so the bytes
    # do not depend on the process (they differed between DirectRunner modes without it).
    yield ((split, shard_of(record.sha256, count)), (record.sha256, example.SerializeToString(deterministic=True)))


def _write_shard_file(examples_uri: str, split: str, index: int, count: int,
                      serialized: Iterable[bytes]) -> None:
    """Write one gzip TFRecord shard holding ``serialized`` (in order; may be empty)."""
    import tensorflow as tf

    tf.io.gfile.makedirs(features.split_dir(examples_uri, split))
    # gzip level 0 (stored deflate blocks): a valid gzip file, as TFX's "tfrecords_gzip"
    # format requires, without deflate's cost (~3.5 ms per 90 KB JPEG; stored images are
    # already compressed JPEG or small raw PNG, so compressing again gains little).
    with tf.io.TFRecordWriter(shard_path(examples_uri, split, index, count), options=tf.io.TFRecordOptions(
            compression_type="GZIP", compression_level=GZIP_LEVEL)) as w:
        for record in serialized:
            w.write(record)


class _WriteShard(beam.DoFn):
    """((split, index), [(sha, serialized)...]) → one gzip TFRecord file sorted by sha.

    Yields (split, index) of the written shard (for ``_write_empty_shards``)."""

    def __init__(self, examples_uri: str):
        self._examples_uri = examples_uri

    def process(self, element, split_counts):
        (split, index), values = element
        records = sorted(values)
        _write_shard_file(self._examples_uri, split, index, num_shards(split_counts.get(split, 0)),
                          (serialized for _, serialized in records))
        yield (split, index)


def _write_empty_shards(split_counts: Mapping[str, int], written: Iterable[tuple[str, int]],
                        examples_uri: str):
    """Write an empty shard for every (split, index) that got no example (so every split has a file).

    Done after ``_WriteShard`` (``written`` is its output) instead of flattening empty keys into
    the shard grouping: a multi-input Flatten is materialised by the DirectRunner, which copied
    every serialized example once more (~0.3 CPU-s per 3,400 images)."""
    done = set(written)
    for split in ledger.SPLITS:
        count = num_shards(split_counts.get(split, 0))
        for index in range(count):
            if (split, index) not in done:
                _write_shard_file(examples_uri, split, index, count, ())
                yield (split, index)


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
      config: a ``dcgan_common.config.IngestConfig`` (validated by the caller). ``min_train_examples``
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
        # The stored images (~25 KB each) are the only heavy elements, and every step that
        # materialises them costs copies (and page faults) per image. They cross two: the wait
        # for side inputs before ToExample and the group by shard. Duplicates, labels and split
        # counts are decided on the small per-file outcomes (_META) instead. The previous graph
        # materialised the images four times (group by sha, the wait before ToExample, a Flatten
        # with the empty shard keys, the group by shard) and had 57 instead of 31 primitive
        # transforms: with the decode stubbed out, 3,409 photos cost ~40 % less (4.7 → 2.8 CPU-s).
        listed = (pbegin | "Root" >> beam.Create([self._root])
                  | "List" >> beam.ParDo(_ListRoot()).with_outputs(_FOLDERS, _LEDGER, main="files"))
        folders = listed[_FOLDERS]
        read = (listed.files
                # Spread the (single-bundle) listing over workers before the heavy steps.
                | "Spread" >> beam.Reshuffle()
                | "ReadAndDecode" >> beam.ParDo(_ReadAndDecode(
                    self._root, ingest.DecodeOptions.from_config(self._config),
                    emit_images=self._examples_uri is not None)).with_outputs(_LEDGER, _META, main="images"))
        eval_percent = int(self._config.eval_percent)
        resolved = (read[_META] | "GroupOutcomesBySha" >> beam.GroupByKey()
                    | "ResolveDuplicates" >> beam.ParDo(_ResolveDuplicates(eval_percent)).with_outputs(
                        _LEDGER, _DUPLICATED, main="kept"))
        entries = ((listed[_LEDGER], read[_LEDGER], resolved[_LEDGER]) | "AllEntries" >> beam.Flatten())
        summary = resolved.kept | "CountKept" >> beam.CombineGlobally(_CountKept())
        labels = summary | "Labels" >> beam.Map(lambda s: s[0])
        split_counts = summary | "SplitCounts" >> beam.Map(lambda s: s[1])
        counts_side = beam.pvalue.AsSingleton(split_counts)

        if self._examples_uri is not None:
            written = (read.images
                       | "ToExample" >> beam.FlatMap(
                           _example_of_kept, beam.pvalue.AsDict(resolved[_DUPLICATED]),
                           beam.pvalue.AsSingleton(labels), counts_side, eval_percent)
                       | "GroupByShard" >> beam.GroupByKey()
                       | "WriteShards" >> beam.ParDo(_WriteShard(self._examples_uri), counts_side))
            _ = split_counts | "WriteEmptyShards" >> beam.FlatMap(
                _write_empty_shards, beam.pvalue.AsList(written), self._examples_uri)

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
      IngestionPolicyError, FileNotFoundError (missing root: ``storage.check_root``), ValueError
      (malformed gs:// URI), ConfigError.
    """
    import json

    from apache_beam.options.pipeline_options import PipelineOptions

    config.validate()
    storage.check_root(data_root)
    options = PipelineOptions(list(pipeline_args) if pipeline_args is not None else beam_options())
    with beam.Pipeline(options=options) as p:
        _ = p | "IngestImages" >> IngestImages(data_root, config, report_uri, examples_uri)
    report = json.loads(storage.read_bytes(report_uri).decode("utf-8"))
    if raise_on_policy:
        ledger.raise_if_failed(report, report_uri)
    return report
