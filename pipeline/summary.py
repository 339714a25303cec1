"""The short text summary printed at the end of ``dcgan-tfx run``, built from ML Metadata.

Every number comes from an artifact the run wrote (ledger, training summary, metrics, blessing,
pushed model), found through pipeline/run_record.py.
"""
from __future__ import annotations

import glob
import json
import math
import os
from typing import Any

from pipeline.run_record import RunRecord

# Node ids as created in pipeline/pipeline.py (TFX uses the class name unless .with_id() is set).
EXAMPLE_GEN = "ImageExampleGen"
TRANSFORM = "Transform"
TRAINER = "Trainer"
EVALUATOR = "FidEvaluator"
PUSHER = "AtomicPusher"


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def collect(record: RunRecord) -> dict[str, Any]:
    """Key facts of a run as a JSON-able dict (also the data behind the HTML report)."""
    facts: dict[str, Any] = {"run_id": record.run_id,
                             "states": {n: node.state for n, node in record.nodes.items()}}
    report = record.output(EXAMPLE_GEN, "ingestion_report")
    if report:
        ledger = _read_json(os.path.join(report.uri, "ingestion_report.json")) or {}
        facts["ingestion"] = {k: v for k, v in ledger.items() if k != "files"}
        facts["ingestion_report_path"] = os.path.join(report.uri, "ingestion_report.json")
    examples = record.output(EXAMPLE_GEN, "examples")
    if examples:
        # Which crawl: the span (and version) TFX's ExampleGen driver chose, as the executor recorded
        # them (not under "ingestion": the ledger's own "version" is its format version).
        facts["crawl"] = {k: examples.properties[k] for k in ("span", "version") if k in examples.properties}
    graph = record.output(TRANSFORM, "transform_graph")
    if graph:
        facts["analyzers"] = analyzer_outputs(graph.uri)
    run = record.output(TRAINER, "model_run")
    if run:
        facts["training"] = _read_json(os.path.join(run.uri, "training_summary.json")) or {}
        grids = sorted(glob.glob(os.path.join(run.uri, "**", "epoch_*.png"), recursive=True))
        facts["sample_grids"] = grids
        facts["model_run_dir"] = run.uri
    evaluation = record.output(EVALUATOR, "evaluation")
    if evaluation:
        facts["evaluation"] = _read_json(os.path.join(evaluation.uri, "metrics.json")) or {}
        facts["evaluation_dir"] = evaluation.uri
    blessing = record.output(EVALUATOR, "blessing")
    if blessing:
        facts["blessing"] = dict(blessing.properties)
    pushed = record.output(PUSHER, "pushed_model")
    if pushed:
        facts["push"] = dict(pushed.properties)
    return facts


def analyzer_outputs(transform_graph_uri: str) -> dict[str, Any]:
    """Transform's analyzer results (per-channel mean/std, category counts), or ``{"error": …}``."""
    try:
        import tensorflow_transform as tft

        from trainer.preprocessing import read_analyzer_outputs
        return read_analyzer_outputs(tft.TFTransformOutput(transform_graph_uri))
    except (ValueError, OSError) as e:  # an older graph or a missing asset: say so, do not fail the summary
        return {"error": str(e)}


def metric_lines(evaluation: dict[str, Any]) -> list[str]:
    """``fid = 532.35 (N_real=300, N_gen=32, small sample)`` lines from a metrics.json dict."""
    metrics = evaluation.get("metrics") or {}
    counts = f"N_real={evaluation.get('n_real')}, N_gen={evaluation.get('n_gen')}"
    if evaluation.get("small_sample"):
        counts += ", small sample: biased upwards, compare only at equal N"
    lines = []
    for name, value in metrics.items():
        if name.endswith("_std"):
            continue
        std = metrics.get(f"{name}_std")
        # KID over the whole sample (one subset holding every image) has no spread: std is NaN.
        has_std = isinstance(std, (int, float)) and math.isfinite(std)
        shown = "failed" if value is None else f"{value:.4g}" + (f" ± {std:.2g}" if has_std else "")
        lines.append(f"{name} = {shown} ({counts})")
    if evaluation.get("error"):
        lines.append(f"evaluation error: {evaluation['error']}")
    return lines


def format_summary(facts: dict[str, Any]) -> str:
    """Human-readable lines: ingestion counts, epochs, metrics with sample counts, gate decision, push."""
    lines = [f"run {facts['run_id']}"]
    ing = facts.get("ingestion", {})
    counts = ing.get("counts_by_status") or ing.get("status_counts") or {}
    crawl = facts.get("crawl", {})
    if "data_root" in ing:
        version = f", version {crawl['version']}" if "version" in crawl else ""
        lines.append(f"crawl {ing['data_root']} (span {crawl.get('span', 0)}{version})")
    if counts:
        lines.append("ingested %s, rejected %s, duplicates %s, skipped %s (ledger: %s)" % (
            counts.get("ingested", 0), counts.get("rejected", 0), counts.get("duplicate", 0),
            counts.get("skipped", 0), facts.get("ingestion_report_path")))
    an = facts.get("analyzers", {})
    if "channel_mean" in an:
        lines.append("transformed images: per-channel mean %s, std %s (range [-1, 1]); %d categories" % (
            _triple(an["channel_mean"]), _triple(an["channel_std"]), len(an.get("category_counts", {}))))
    tr = facts.get("training", {})
    if tr:
        lines.append("trained %s epoch(s), %s steps; final d_loss %s, g_loss %s" % (
            tr.get("epochs_completed", tr.get("epochs")), tr.get("steps"),
            _short(tr.get("final", {}).get("d_loss")), _short(tr.get("final", {}).get("g_loss"))))
        lines.extend("  " + line for line in training_lines(tr))
        for warning in tr.get("warnings", []):
            lines.append(f"  monitor warning: {warning_text(warning)}")
    for line in metric_lines(facts.get("evaluation", {})):
        lines.append("  " + line)
    bl = facts.get("blessing", {})
    if bl:
        verdict = "BLESSED" if bl.get("blessed") == 1 else "NOT BLESSED"
        lines.append(f"gate: {verdict} — {bl.get('blessing_message', '')}")
    push = facts.get("push", {})
    if push.get("already_pushed") == 1:
        lines.append(f"generator already live at {push.get('pushed_destination')}; not pushed again")
    elif push.get("pushed") == 1:
        lines.append(f"pushed generator to {push.get('pushed_destination')}")
    elif bl:
        lines.append("generator not pushed (the gate did not bless it)")
    if facts.get("sample_grids"):
        lines.append(f"sample grid: {facts['sample_grids'][-1]}")
    if facts.get("evaluation_dir"):
        lines.append(f"real vs generated: {os.path.join(facts['evaluation_dir'], 'samples.png')}")
    return "\n".join(lines)


def training_lines(tr: dict) -> list[str]:
    """The recipe, which epoch and weights were exported and why, and the in-training KID curve."""
    config = tr.get("config", {})
    weights = {"ema": "EMA weights", "raw": "raw weights"}.get(tr.get("exported_weights"), "")
    why = ""
    if config.get("export_best") and tr.get("best_epoch"):
        why = f", best in-training KID {_short(tr.get('best_kid'))} ({tr.get('kid_features', '?')})"
    lines = [f"recipe {config.get('recipe', '?')}: exported epoch {tr.get('exported_epoch')}"
             f"{why}{'; ' + weights if weights else ''}"]
    curve = [(h["epoch"] + 1, h["kid"], h.get("kid_seconds")) for h in tr.get("history", [])
             if "kid" in h]
    if curve:
        cost = [c for *_, c in curve if c is not None]
        lines.append("in-training KID by epoch: " + ", ".join(f"{e}: {_short(k)}" for e, k, _ in curve)
                     + (f" (about {sum(cost) / len(cost):.0f} s per check)" if cost else ""))
    return lines


def warning_text(warning: Any) -> str:
    """A training-monitor warning as one line (they are dicts with ``epoch``, ``kind``, ``message``)."""
    if isinstance(warning, dict):
        epoch = f"epoch {warning['epoch'] + 1}: " if isinstance(warning.get("epoch"), int) else ""
        return f"{epoch}{warning.get('kind', 'warning')}: {warning.get('message', '')}"
    return str(warning)


def _triple(values) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"


def _short(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else str(x)
