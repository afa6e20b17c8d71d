"""report.html opened in headless Chromium: the table and every image render offline."""

from __future__ import annotations

import os
import shutil

import pytest

from lrlab import config
from lrlab.study import run_study

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("CI"), reason="Chromium not installed (.ci/run installs it)")
def test_report_html_renders_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright  # a test dependency; the browser is Debian's

    assert CHROMIUM, "Chromium is missing (CI must install it)"
    cfg = config.load(
        None, {"data.limit": 200, "train.epochs": 2, "train.batch_size": 32, "model.width": 0.125, "seeds": 2}
    )
    cfg.out = str(tmp_path / "study")
    run_study(cfg, progress=False, echo=lambda s: None)
    page_file = tmp_path / "study" / "report.html"
    offline = tmp_path / "elsewhere.html"
    shutil.copy(page_file, offline)  # alone in another folder: nothing may load from plots/
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.goto(offline.as_uri())
        page.wait_for_load_state("load")
        results_rows = page.locator("table").first.locator("tbody tr")
        assert results_rows.count() == 6
        assert "onecycle" in results_rows.all_inner_texts()[4]
        # no number wraps: each number cell of every table is one line (an interval, "0.9519 ± 0.0312", split over
        # two lines reads as two numbers); text cells (class t: a verdict and its note) may wrap
        wrapped = page.evaluate("""[...document.querySelectorAll('td:not(.t)')].filter(td => {
            const r = document.createRange(); r.selectNodeContents(td);
            return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size > 1;
        }).map(td => td.textContent)""")
        assert not wrapped, wrapped
        images = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        assert len(images) == 6 and all(ok and w > 300 and h > 200 for ok, w, h in images), images
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        height = page.evaluate("document.body.scrollHeight")
        browser.close()
    assert not failed, failed
    assert height > 2000 and shot.stat().st_size > 50_000
