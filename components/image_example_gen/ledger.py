"""The ingestion ledger (``ingestion_report.json``) and the policy that judges it. Pure Python.

Format (version 1)::

    {
      "version": 1,
      "data_root": "...",
      "config": {...IngestConfig...},
      "seen": 312,                                 # files seen (every entry of "files")
      "counts_by_status": {"ingested": .., "rejected": .., "skipped": .., "duplicate": ..},
      "counts_by_category": {"dress": {"seen": .., "ingested": .., ...}, ...},
      "rejection_reasons": {"corrupt": 2, ...},
      "labels": {"dress": 0, ...},                 # ids from sorted names of non-empty categories
      "splits": {"train": .., "eval": ..},
      "rejected_fraction": 0.006,                  # rejected / (ingested + rejected + duplicate)
      "policy": {"passed": true, "errors": []},
      "files": [{"path": .., "status": .., "reason": .., "category": .., "detail": ..}, ...]
    }

``files`` is sorted by path; ``category`` is null for files that belong to no category (root
files, hidden first-level folders). ingested + rejected + skipped + duplicate = seen.
"""
from __future__ import annotations

import json
import unicodedata
from typing import Any, Iterable, Mapping

from components.image_example_gen import ingest

REPORT_FILENAME = "ingestion_report.json"
REPORT_VERSION = 1
SPLITS = ("train", "eval")


class IngestionPolicyError(RuntimeError):
    """The ingested data failed the policy (too many rejections, an empty category, no images,
    fewer train examples than ``min_train_examples``).

    ``report`` holds the ledger (already written when this is raised); ``errors`` the reasons.
    """

    def __init__(self, errors: list[str], report: Mapping[str, Any] | None = None,
                 report_path: str | None = None):
        self.errors = list(errors)
        self.report = report
        self.report_path = report_path
        where = f" (ledger: {report_path})" if report_path else ""
        super().__init__("ingestion policy failed: " + "; ".join(self.errors) + where)


def file_entry(path: str, status: str, reason: str = "", category: str | None = None,
               detail: str = "") -> dict[str, Any]:
    """One ledger row. ``status`` in ingest.STATUSES; ``reason`` from the vocabularies in ingest."""
    if status not in ingest.STATUSES:
        raise ValueError(f"unknown status {status!r}")
    return {"path": path, "status": status, "reason": reason, "category": category, "detail": detail}


def label_map(categories: Iterable[str]) -> dict[str, int]:
    """Sorted (Unicode code point order) category names → ids 0..K-1."""
    return {name: i for i, name in enumerate(sorted(set(categories)))}


def evaluate_policy(counts_by_status: Mapping[str, int], empty_categories: list[str],
                    max_rejected_fraction: float, allow_empty_categories: bool,
                    train_examples: int = 0, min_train_examples: int = 0) -> tuple[float, list[str]]:
    """Apply the ingestion policy.

    Args:
      counts_by_status: files per status (ingest.STATUSES).
      empty_categories: category folders with no ingested image.
      max_rejected_fraction, allow_empty_categories: the IngestConfig knobs.
      train_examples: examples written to the train split.
      min_train_examples: fewer train examples than this fail the policy; 0 disables the check
        (callers resolve IngestConfig's "0 = one training batch" before this point).
    Returns:
      (rejected_fraction, errors). The fraction is rejected / (ingested + rejected + duplicate):
      skipped files were never candidate images. ``errors`` is empty when the policy passes.
    """
    candidates = sum(counts_by_status.get(s, 0) for s in
                     (ingest.STATUS_INGESTED, ingest.STATUS_REJECTED, ingest.STATUS_DUPLICATE))
    rejected = counts_by_status.get(ingest.STATUS_REJECTED, 0)
    fraction = rejected / candidates if candidates else 0.0
    errors = []
    if fraction > max_rejected_fraction:
        errors.append(f"{rejected} of {candidates} candidate files rejected "
                      f"({fraction:.1%} > max_rejected_fraction {max_rejected_fraction:.1%})")
    if empty_categories and not allow_empty_categories:
        errors.append("categories with no ingested image: " + ", ".join(empty_categories))
    if counts_by_status.get(ingest.STATUS_INGESTED, 0) == 0:
        errors.append("no image was ingested")
    elif train_examples < min_train_examples:
        # The Trainer only takes full batches: without this the run would fail two components later.
        errors.append(f"only {train_examples} train examples, fewer than min_train_examples "
                      f"{min_train_examples} (one training batch): add photos, lower train.batch_size "
                      f"(run: --batch-size; check-data: --min-train-examples), or lower "
                      f"ingest.eval_percent (in --config) so that more images go to train")
    return fraction, errors


def build_report(entries: Iterable[Mapping[str, Any]], category_folders: Iterable[str],
                 split_counts: Mapping[str, int], config: Mapping[str, Any], data_root: str) -> dict[str, Any]:
    """Assemble the ledger from per-file entries.

    Args:
      entries: one ``file_entry`` per file seen (any order).
      category_folders: first-level non-hidden folder names (including empty ones).
      split_counts: examples written per split.
      config: the IngestConfig as a dict (``max_rejected_fraction``, ``allow_empty_categories``,
        ``min_train_examples`` are read from it; 0 there means no minimum, so resolve it first).
      data_root: the root as given (local path or gs:// URI).
    Returns:
      The report dict (format in the module docstring), deterministic for the same inputs.
    Raises:
      ValueError: two entries with the same path (a listing bug).
    """
    files = sorted((dict(e) for e in entries), key=lambda e: e["path"])
    for a, b in zip(files, files[1:]):
        if a["path"] == b["path"]:
            raise ValueError(f"file listed twice: {a['path']!r}")
    categories = set(category_folders) | {e["category"] for e in files if e["category"] is not None}
    by_status = {s: 0 for s in ingest.STATUSES}
    by_category = {c: {"seen": 0, **{s: 0 for s in ingest.STATUSES}} for c in sorted(categories)}
    reasons: dict[str, int] = {}
    for e in files:
        by_status[e["status"]] += 1
        if e["category"] is not None:
            by_category[e["category"]]["seen"] += 1
            by_category[e["category"]][e["status"]] += 1
        if e["status"] == ingest.STATUS_REJECTED:
            reasons[e["reason"]] = reasons.get(e["reason"], 0) + 1
    non_empty = [c for c, n in by_category.items() if n[ingest.STATUS_INGESTED] > 0]
    empty = [c for c, n in by_category.items() if n[ingest.STATUS_INGESTED] == 0]
    fraction, errors = evaluate_policy(by_status, empty, float(config.get("max_rejected_fraction", 0.05)),
                                       bool(config.get("allow_empty_categories", False)),
                                       int(split_counts.get("train", 0)),
                                       int(config.get("min_train_examples", 0)))
    return {
        "version": REPORT_VERSION,
        "data_root": data_root,
        "config": dict(config),
        "seen": len(files),
        "counts_by_status": by_status,
        "counts_by_category": by_category,
        "rejection_reasons": dict(sorted(reasons.items())),
        "labels": label_map(non_empty),
        "splits": {s: int(split_counts.get(s, 0)) for s in SPLITS},
        "rejected_fraction": fraction,
        "policy": {"passed": not errors, "errors": errors},
        "files": files,
    }


def dumps(report: Mapping[str, Any]) -> bytes:
    """The report as UTF-8 JSON (non-ASCII names kept readable; lone surrogates escaped)."""
    try:
        text = json.dumps(report, indent=1, sort_keys=False, ensure_ascii=False)
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(report, indent=1, sort_keys=False, ensure_ascii=True).encode("ascii")


def raise_if_failed(report: Mapping[str, Any], report_path: str | None = None) -> None:
    """Raise IngestionPolicyError when ``report['policy']['passed']`` is false."""
    policy = report.get("policy", {})
    if not policy.get("passed", False):
        raise IngestionPolicyError(policy.get("errors") or ["policy not evaluated"], report, report_path)


def _display_width(text: str) -> int:
    """Terminal columns of ``text``: East Asian wide/fullwidth characters take two (Unicode
    UAX #11), combining marks none, the rest one."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def format_table(report: Mapping[str, Any]) -> str:
    """A per-category summary table (plain text) for the check-data CLI."""
    cols = ("seen",) + ingest.STATUSES
    cats = report["counts_by_category"]
    # A folder name may hold line breaks: shown escaped, so each category stays on one row.
    shown = {c: c.replace("\n", "\\n").replace("\r", "\\r") for c in cats}
    width = max([len("category")] + [_display_width(c) for c in shown.values()]) + 2

    def pad(name: str) -> str:
        return name + " " * (width - _display_width(name))

    lines = [pad("category") + "label".rjust(6) + "".join(c.rjust(10) for c in cols)]
    for name, counts in cats.items():
        label = report["labels"].get(name)
        lines.append(pad(shown[name]) + ("-" if label is None else str(label)).rjust(6)
                     + "".join(str(counts[c]).rjust(10) for c in cols))
    status = report["counts_by_status"]
    lines.append(pad("all files") + "".rjust(6) + str(report["seen"]).rjust(10)
                 + "".join(str(status[s]).rjust(10) for s in ingest.STATUSES))
    if report["rejection_reasons"]:
        lines.append("rejections: " + ", ".join(f"{r}={n}" for r, n in report["rejection_reasons"].items()))
    lines.append(f"splits: train={report['splits']['train']} eval={report['splits']['eval']}; "
                 f"rejected fraction {report['rejected_fraction']:.2%}")
    policy = report["policy"]
    lines.append("policy: passed" if policy["passed"] else "policy: FAILED - " + "; ".join(policy["errors"]))
    return "\n".join(lines)
