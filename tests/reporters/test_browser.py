"""Render a report in headless Chromium: images load, no script errors, hostile text stays text.

Needs the `chromium` binary (Debian package `chromium`); when it is missing the test installs it
with apt-get if running as root, and skips otherwise.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import datetime, timezone

import numpy as np
import pytest

from grudiag.reporters import html as html_reporter
from grudiag.reporters.html import render_html

from . import HOSTILE, build_report
from .test_html import fake_checks

pytestmark = pytest.mark.slow

#: put first in <head>: records errors and alert() calls before anything else runs
PROBE_HEAD = """<script>
window.__errors = [];
window.__alerts = 0;
window.alert = function () { window.__alerts += 1; };
window.addEventListener("error", function (e) { window.__errors.push(String(e.message || e)); });
</script>"""

#: put last in <body>: on load, writes what the test asserts into the DOM
PROBE_TAIL = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.map.call(document.images, function (i) {
    return {src: i.getAttribute("src").slice(0, 30), width: i.naturalWidth, complete: i.complete};
  });
  var svgs = Array.prototype.map.call(document.querySelectorAll("figure svg"), function (s) {
    var r = s.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)];
  });
  var codes = Array.prototype.map.call(document.querySelectorAll("table.findings td.code a"),
                                       function (a) { return a.textContent; });
  var out = {
    title: document.title, codes: codes, imgs: imgs, svgs: svgs, errors: window.__errors,
    alerts: window.__alerts, scripts: document.scripts.length,
    injected: document.querySelectorAll('img[src="x"], img[onerror]').length,
    subjects: Array.prototype.map.call(document.querySelectorAll("table.subjects code.subject-id"),
                                       function (c) { return c.textContent; }),
    summary: JSON.parse(document.getElementById("grudiag-data").textContent).summary
  };
  var pre = document.createElement("pre");
  pre.id = "grudiag-test-results";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update"], capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, timeout=600)
        path = shutil.which("chromium")
        if path:
            return path
    pytest.skip("headless Chromium is not installed (Debian: apt-get install -y chromium) and "
                "this user cannot install it")


def _run(browser: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--no-first-run", "--mute-audio", *args],
                          capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def browser() -> str:
    return _chromium()


def _page(tmp_path, hostile: bool) -> tuple[str, str]:
    report = build_report(hostile=hostile)
    # a dense heatmap, so the page holds a PNG <img> as well as inline SVG
    report.results[0].measurements["time-dependence"]["matrix"] = np.tril(
        np.ones((80, 80))).tolist()
    report.results[0].measurements["time-dependence"]["h0_dependence"] = None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(html_reporter, "_check_registry",
                   lambda: fake_checks(HOSTILE if hostile else ""))
        page = render_html(report, now=datetime(2026, 1, 2, tzinfo=timezone.utc))
    path = tmp_path / ("hostile.html" if hostile else "report.html")
    probed = page.replace("<head>\n", "<head>\n" + PROBE_HEAD + "\n", 1)
    probed = probed.replace("</body>", PROBE_TAIL + "\n</body>", 1)
    path.write_text(probed, encoding="utf-8")
    return page, str(path)


def _results(browser: str, path: str) -> dict:
    proc = _run(browser, "--virtual-time-budget=10000", "--dump-dom", f"file://{path}")
    m = re.search(r'<pre id="grudiag-test-results">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"the page never reported back; chromium said: {proc.stderr[-2000:]}"
    text = (m.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            .replace("&amp;", "&"))
    return json.loads(text)


@pytest.mark.parametrize("hostile", [False, True], ids=["plain", "hostile"])
def test_report_renders_in_chromium(browser, tmp_path, hostile):
    _page_text, path = _page(tmp_path, hostile)
    got = _results(browser, path)
    assert got["errors"] == []
    assert got["alerts"] == 0
    assert got["injected"] == 0, "a hostile string became an element"
    assert got["scripts"] == 3  # the JSON island plus the two probes this test added
    assert got["title"] == "grudiag: FAIL – 2 errors, 1 warning, 1 info"
    assert got["codes"] == ["GD401", "GD402", "GD201", "GD901"]
    assert got["imgs"], "the dense heatmap should be a PNG <img>"
    assert all(i["complete"] and i["width"] > 0 for i in got["imgs"]), got["imgs"]
    assert got["svgs"] and all(w > 100 and h > 50 for w, h in got["svgs"]), got["svgs"]
    assert got["summary"] == {"error": 2, "warning": 1, "info": 1, "exit_code": 1}
    if hostile:
        assert got["subjects"][0] == "cells.py::MyGRUCell" + HOSTILE


def test_screenshots(browser, tmp_path):
    """Desktop and phone screenshots; GRUDIAG_SCREENSHOT_DIR keeps them for a human to look at."""
    page, _ = _page(tmp_path, hostile=False)
    path = tmp_path / "plain.html"
    path.write_text(page, encoding="utf-8")
    keep = os.environ.get("GRUDIAG_SCREENSHOT_DIR")
    out_dir = keep or str(tmp_path)
    for name, size in (("report-desktop.png", "1200,2000"), ("report-phone.png", "390,2400")):
        shot = os.path.join(out_dir, name)
        proc = _run(browser, f"--screenshot={shot}", f"--window-size={size}", f"file://{path}")
        assert os.path.exists(shot) and os.path.getsize(shot) > 10_000, proc.stderr[-2000:]
