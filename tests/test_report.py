"""The HTML run report, rendered in a real headless browser (Debian's chromium)."""
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from pipeline.report import render_html

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.path.join(REPO, "out", "test-artifacts")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a closed network (no background connections) and running as root.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]

# Appended to a copy of the page: records, in the DOM, how many images decoded.
IMAGE_CHECK = """<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const p = document.createElement('p'); p.id = 'img-check';
  p.textContent = 'images ' + ok + '/' + imgs.length; document.body.appendChild(p);
});
</script>"""


def _png(path, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (64, 128, 3), dtype=np.uint8)).save(path)
    return str(path)


@pytest.fixture
def facts(tmp_path):
    grids = [_png(tmp_path / f"epoch_{i:03d}.png", i) for i in range(1, 4)]
    evaluation_dir = tmp_path / "evaluation"
    evaluation_dir.mkdir()
    _png(evaluation_dir / "samples.png", 9)
    return {
        "run_id": "2026-11-29T12:00:00.000000",
        "ingestion": {"counts_by_status": {"ingested": 290, "rejected": 7, "duplicate": 2, "skipped": 1},
                      "counts_by_category": {"dress": {"ingested": 30}, "hat": {"ingested": 29, "rejected": 1}}},
        "training": {"epochs_completed": 3, "steps": 27,
                     "history": [{"epoch": i, "d_loss": 1.2 - 0.1 * i, "g_loss": 0.8 + 0.1 * i,
                                  "d_real": 0.6, "d_fake": 0.4} for i in range(1, 4)],
                     "warnings": ["discriminator loss near 0 for 3 epochs"]},
        "sample_grids": grids,
        "evaluation": {"metrics": {"fid": 287.5123, "kid": 0.2311, "kid_std": 0.01},
                       "n_real": 300, "n_gen": 256, "small_sample": True,
                       "protocol": "tf1-bilinear-299/inception-2015-12-05/pool3"},
        "evaluation_dir": str(evaluation_dir),
        "blessing": {"blessed": 0, "blessing_message": "fid 287.5123 > threshold 250"},
        "push": {"pushed": 0},
    }


def test_report_is_self_contained_and_says_the_decision(facts):
    page = render_html(facts, {"Trainer": ("COMPLETE", 12.5)})
    assert "NOT BLESSED" in page and "287.5" in page and "fid 287.5123 &gt; threshold 250" in page
    assert "discriminator loss near 0" in page and "N_real=300, N_gen=256" in page
    # Every image is inlined; nothing points at a file or the network.
    assert page.count("<img") == 4 and page.count("data:image/png;base64,") == 4
    assert not re.search(r'src="(?!data:)', page)


# CI must not skip it: `make test` installs chromium (scripts/setup-env --test).
@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="chromium is installed by `scripts/setup-env --test`")
def test_report_renders_in_headless_chromium(facts, tmp_path):
    page = render_html(facts, {"Trainer": ("COMPLETE", 12.5)})
    checked = tmp_path / "report_checked.html"
    checked.write_text(page.replace("</body>", IMAGE_CHECK + "</body>"), encoding="utf-8")
    profile = tmp_path / "profile"
    dom = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                          "--virtual-time-budget=5000", "--dump-dom", checked.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="img-check">images 4/4<' in dom.stdout
    assert "287.5" in dom.stdout and "NOT BLESSED" in dom.stdout

    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "report.png")
    if os.path.exists(shot):
        os.remove(shot)
    subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1000,1600",
                    f"--screenshot={shot}", checked.as_uri()], capture_output=True, timeout=120, check=True)
    with Image.open(shot) as img:
        assert img.size == (1000, 1600)
        # A blank page would be one colour; a rendered report is not.
        assert len(set(img.convert("L").getdata())) > 10


def test_metric_lines_show_a_spread_only_when_there_is_one():
    from pipeline.summary import metric_lines
    lines = metric_lines({"metrics": {"fid": 287.5, "kid": 0.23, "kid_std": float("nan")},
                          "n_real": 50, "n_gen": 50})
    assert lines == ["fid = 287.5 (N_real=50, N_gen=50)", "kid = 0.23 (N_real=50, N_gen=50)"]
    lines = metric_lines({"metrics": {"kid": 0.23, "kid_std": 0.01}, "n_real": 500, "n_gen": 500})
    assert lines == ["kid = 0.23 ± 0.01 (N_real=500, N_gen=500)"]


def test_mode_collapse_metrics_reach_the_summary_and_the_report(facts):
    from pipeline.summary import format_summary
    facts["evaluation"]["metrics"].update({"precision": 0.8125, "recall": 0.0039, "density": 1.4375,
                                           "coverage": 0.0117})
    text = format_summary(facts)
    for line in ("precision = 0.8125 (N_real=300", "recall = 0.0039 (N_real=300",
                 "density = 1.438 (N_real=300", "coverage = 0.0117 (N_real=300"):
        assert line in text
    page = render_html(facts, {})
    for cell in ("<td>recall</td><td>0.0039</td>", "<td>coverage</td><td>0.0117</td>",
                 "<td>precision</td><td>0.8125</td>", "<td>density</td><td>1.438</td>"):
        assert cell in page
    assert "id='manifold-legend'" in page
    del facts["evaluation"]["metrics"]["recall"], facts["evaluation"]["metrics"]["precision"]
    del facts["evaluation"]["metrics"]["density"], facts["evaluation"]["metrics"]["coverage"]
    assert "manifold-legend" not in render_html(facts, {})
