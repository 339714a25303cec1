"""A self-contained HTML report of one pipeline run (images inlined), and ``dcgan-tfx report``.

Everything shown comes from the run's artifacts found through ML Metadata (pipeline/summary.py):
the ingestion ledger, sample grids across epochs, loss curves and monitor warnings, FID/KID (and
precision/recall, density/coverage when scored) with their sample counts, the real-versus-generated
grid, the gate's decision and the push.
"""
from __future__ import annotations

import argparse
import base64
import html
import json
import os
from typing import Any

from dcgan_common.fileio import atomic_write

#: Most epoch grids shown; evenly spaced epochs are picked beyond this.
MAX_GRIDS = 12


def _img(path: str, alt: str, width: int | None = None) -> str:
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    w = f' width="{width}"' if width else ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"{w}>'


def _svg_curves(history: list[dict[str, Any]], keys: tuple[str, ...], title: str) -> str:
    """A small inline SVG line chart of ``keys`` over ``history`` (one point per epoch)."""
    series = {k: [(i, h[k]) for i, h in enumerate(history) if isinstance(h.get(k), (int, float))] for k in keys}
    values = [v for pts in series.values() for _, v in pts]
    if not values:
        return ""
    w, h, pad, legend = 480, 200, 30, 90
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    n = max(len(history) - 1, 1)
    colours = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
    parts = [f'<svg class="chart" width="{w + legend}" height="{h}" role="img" aria-label="{html.escape(title)}">',
             f'<text x="{pad}" y="14" font-size="12">{html.escape(title)}</text>',
             f'<text x="2" y="{pad}" font-size="10">{hi:.3g}</text>',
             f'<text x="2" y="{h - pad}" font-size="10">{lo:.3g}</text>']
    for colour, (key, pts) in zip(colours, series.items()):
        if not pts:
            continue
        coords = " ".join(f"{pad + (w - 2 * pad) * i / n:.1f},{h - pad - (h - 2 * pad) * (v - lo) / span:.1f}"
                          for i, v in pts)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>')
        parts.append(f'<text x="{w + 4}" y="{pad + 14 * list(series).index(key)}" font-size="11" '
                     f'fill="{colour}">{html.escape(key)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(facts: dict[str, Any], node_times: dict[str, tuple[str, float]]) -> str:
    """The report page for one run.

    Args:
      facts: ``pipeline.summary.collect(record)``.
      node_times: node id → (MLMD state, seconds).
    Returns:
      A complete HTML document with every image inlined as a data: URI (no external files).
    """
    from pipeline.summary import format_summary

    out = [_page_head(facts["run_id"])]
    # The decision first: it is what a reader opens the report for.
    out += _decision_section(facts)
    out.append("<h2>Summary</h2><pre>" + html.escape(format_summary(facts)) + "</pre>")
    out += _quality_section(facts)
    out += _training_section(facts)
    out += _ingestion_section(facts.get("ingestion", {}))
    out.append("<h2>Components</h2>" + _table(
        [[n, s, f"{t:.1f}"] for n, (s, t) in node_times.items()], ["component", "state", "seconds"]))
    out.append("</body></html>")
    return "".join(out)


def _page_head(run_id: str) -> str:
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>dcgan-tfx run {html.escape(run_id)}</title>"
            "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;"
            "text-align:right}th{background:#f3f3f3}.grids img{margin:2px;image-rendering:pixelated}"
            ".verdict{font-size:1.4em;font-weight:bold}.blessed{color:#1a7f37}.not-blessed{color:#b42318}"
            "pre{background:#f7f7f7;padding:.5em;white-space:pre-wrap;overflow-wrap:anywhere}</style></head><body>"
            f"<h1>dcgan-tfx run <code>{html.escape(run_id)}</code></h1>")


def _decision_section(facts: dict[str, Any]) -> list[str]:
    """The verdict, its reason and where the model was pushed (or that it was not)."""
    out = []
    bl = facts.get("blessing", {})
    if bl:
        blessed = bl.get("blessed") == 1
        out.append(f"<p class='verdict {'blessed' if blessed else 'not-blessed'}' id='verdict'>"
                   f"{'BLESSED' if blessed else 'NOT BLESSED'}</p><p id='reason'>{html.escape(str(bl.get('blessing_message', '')))}</p>")
    push = facts.get("push", {})
    if push.get("pushed") == 1:
        out.append(f"<p id='push'>Pushed to <code>{html.escape(str(push.get('pushed_destination')))}</code></p>")
    else:
        out.append("<p id='push'>Not pushed.</p>")
    return out


def _quality_section(facts: dict[str, Any]) -> list[str]:
    """The evaluator's metrics table, its small-sample caveat and the real-versus-generated grid."""
    out = []
    ev = facts.get("evaluation", {})
    if ev.get("metrics"):
        metrics = ev["metrics"]
        rows = [[name, _fmt(value), _fmt(metrics.get(f"{name}_std", "")), ev.get("n_real", ""), ev.get("n_gen", "")]
                for name, value in metrics.items() if not name.endswith("_std")]
        out.append("<h2>Generator quality</h2>" + _table(rows, ["metric", "value", "std", "N real", "N generated"]))
        if {"precision", "recall", "density", "coverage"} & set(metrics):
            out.append("<p id='manifold-legend'>Precision and density measure fidelity (generated images "
                       "lying where real ones do), recall and coverage diversity (real images the "
                       "generator reaches); all higher is better. High precision with low recall or "
                       "coverage is mode collapse: a few good images, repeated.</p>")
        if ev.get("small_sample"):
            out.append("<p>Small sample (N below the 2048 feature dimension): FID is biased upwards; "
                       "compare only runs with equal N.</p>")
        out.append(f"<p>Protocol: <code>{html.escape(str(ev.get('protocol', '')))}</code></p>")
    samples = os.path.join(facts.get("evaluation_dir", ""), "samples.png")
    if facts.get("evaluation_dir") and os.path.exists(samples):
        out.append("<h3>Real (top rows) versus generated (bottom rows)</h3>" + _img(samples, "real versus generated"))
    return out


def _training_section(facts: dict[str, Any]) -> list[str]:
    """Recipe and exported epoch, loss, D-output and KID curves, the monitors' warnings and at
    most MAX_GRIDS per-epoch grids."""
    from pipeline.summary import training_lines, warning_text

    out = []
    tr = facts.get("training", {})
    history = tr.get("history", [])
    if history:
        out.append("<h2>Training</h2>")
        out.append("<p>" + "<br>".join(html.escape(line) for line in training_lines(tr)) + "</p>")
        out.append(_svg_curves(history, ("d_loss", "g_loss"), "losses per epoch"))
        out.append(_svg_curves(history, ("d_real", "d_fake"), "mean D(x), D(G(z))"))
        with_kid = [h for h in history if "kid" in h]
        if len(with_kid) >= 2:
            out.append(_svg_curves(with_kid, ("kid",), f"in-training KID ({tr.get('kid_features', '')})"))
    if tr.get("warnings"):
        out.append("<h3>Monitor warnings</h3><ul>" + "".join(
            f"<li>{html.escape(warning_text(w))}</li>" for w in tr["warnings"]) + "</ul>")
    grids = facts.get("sample_grids", [])
    if grids:
        step = max(1, -(-len(grids) // MAX_GRIDS))
        picked = grids[::step]
        if grids[-1] not in picked:
            picked.append(grids[-1])
        out.append("<h3>Fixed-noise samples across epochs</h3><div class='grids'>" + "".join(
            f"<figure style='display:inline-block'>{_img(g, os.path.basename(g), 160)}"
            f"<figcaption>{html.escape(os.path.splitext(os.path.basename(g))[0])}</figcaption></figure>"
            for g in picked) + "</div>")
    return out


def _ingestion_section(ing: dict[str, Any]) -> list[str]:
    """Files per status, and per category and status, from the ingestion ledger."""
    if not ing:
        return []
    out = ["<h2>Ingestion</h2>"]
    counts = ing.get("counts_by_status", {})
    out.append(_table([[k, v] for k, v in sorted(counts.items())], ["status", "files"]))
    per_cat = ing.get("counts_by_category", {})
    if per_cat:
        statuses = sorted({s for c in per_cat.values() for s in c})
        out.append(_table([[c] + [v.get(s, 0) for s in statuses] for c, v in sorted(per_cat.items())],
                          ["category"] + statuses))
    return out


def _fmt(x: Any) -> str:
    if x is None:  # a value metrics.json could not hold (NaN/Inf) or that does not apply
        return "—"
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def write_report(pipeline_root: str, run_id: str | None = None, out_path: str | None = None) -> str:
    """Build the report of one run (default: the newest) of the pipeline at ``pipeline_root``.

    The MLMD location and pipeline name are read from ``run_config.json`` that ``dcgan-tfx run`` writes
    in the pipeline root.
    Returns:
      The path of the HTML file (default ``PIPELINE_ROOT/reports/<run id>.html``).
    Raises:
      FileNotFoundError: no run_config.json or metadata database.
      LookupError: the run is not recorded.
    """
    from pipeline.run_record import read_run
    from pipeline.summary import collect

    config_path = os.path.join(pipeline_root, "run_config.json")
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"{config_path} not found: is {pipeline_root} a dcgan-tfx pipeline root?")
    with open(config_path) as f:
        config = json.load(f)
    record = read_run(config["metadata_path"], config["pipeline_name"], run_id)
    page = render_html(collect(record), {n: (node.state, node.seconds) for n, node in record.nodes.items()})
    out_path = out_path or os.path.join(pipeline_root, "reports", f"{record.run_id}.html")
    atomic_write(out_path, page.encode("utf-8"))
    return out_path


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="rebuild the HTML report of a pipeline run",
                              description="Write a self-contained HTML report (images inlined) of one run.")
    p.add_argument("pipeline_root", metavar="PIPELINE_ROOT", help="the run's pipeline root (e.g. out/pipeline)")
    p.add_argument("--run", dest="run_id", help="pipeline run id (default: the newest)")
    p.add_argument("--out", help="HTML file to write (default: PIPELINE_ROOT/reports/<run id>.html)")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    import sys
    try:
        path = write_report(args.pipeline_root, args.run_id, args.out)
    except (FileNotFoundError, LookupError) as e:
        print(f"dcgan-tfx report: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0
