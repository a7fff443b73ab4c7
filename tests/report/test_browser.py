"""A report as a reader opens it: headless Chromium loads report.html from disk, and a small script
checks that every figure loaded and no table is empty."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from distalign.calibration.stage import calibrate_items
from distalign.records.config import CalibrationConfig
from distalign.report.document import write_report
from tests.report.conftest import make_items

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: run after the page has loaded; writes what it found into the DOM, which --dump-dom prints
CHECK = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const tables = [...document.querySelectorAll("table")];
  const found = {
    images: images.map(i => ({src: i.getAttribute("src"), width: i.complete ? i.naturalWidth : 0})),
    tables: tables.map(t => t.querySelectorAll("tbody tr").length),
  };
  const out = document.createElement("pre");
  out.id = "checks";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>
"""


def _browser() -> str:
    found = next((p for p in map(shutil.which, BROWSERS) if p), None)
    if found is None:
        pytest.skip(f"no Chromium found (looked for {', '.join(BROWSERS)}; Debian: apt-get install chromium)")
    return found


@pytest.mark.slow
def test_every_figure_loads_and_no_table_is_empty(tmp_path: Path) -> None:
    browser = _browser()
    benchmark = make_items(
        methods=("verbalize", "seq", "logprobs"), steerings=("none", "persona", "few_shot")
    )
    raw = make_items(models=("gpt-4",), methods=("seq",), steerings=("base",), datasets=("opinionqa",),
                     n_items=30, bias=(0.85, 0.05, 0.05, 0.05))  # fmt: skip
    calibrated = calibrate_items(raw, CalibrationConfig(name="regression", params={"candidates": ["linear"]}))
    items = pd.concat([benchmark, calibrated.items.assign(calibration="regression")], ignore_index=True)
    files = write_report(items, tmp_path / "report", title="browser check", n_resamples=50)
    assert len(files.figures) == 6

    page = files.out / "_checked.html"  # beside report.html, so its relative links resolve the same way
    page.write_text(files.html.read_text().replace("</body>", CHECK + "</body>"), encoding="utf-8")
    profile = tmp_path / "profile"
    done = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    match = re.search(r'<pre id="checks">(.*?)</pre>', done.stdout, flags=re.S)
    assert match, f"the check script did not run:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    found = json.loads(html.unescape(match.group(1)))
    # the figures are inlined (the page is viewed alone, e.g. in MLflow's artifact viewer)
    assert len(found["images"]) == len(files.figures)
    assert all(i["src"].startswith("data:image/png;base64,") for i in found["images"])
    assert all(i["width"] > 0 for i in found["images"]), found["images"]
    assert len(found["tables"]) >= 5 and all(n > 0 for n in found["tables"]), found["tables"]
