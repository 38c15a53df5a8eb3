"""`igsync report --html` opened in a real headless browser (Debian's chromium, driven by
Playwright): every chart rendered and is not blank, nothing went to the network, no console
errors. The full-page screenshot is kept (IGSYNC_TEST_ARTIFACTS, default build/test-artifacts/)
and its path printed.

Under CI=true a missing chromium fails the test (as a missing PostgreSQL does,
tests/postgres_server.py): a CI run that skipped the browser proves nothing.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from cli_runner import run_cli

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags chromium reaches for Google's services at start-up;
# this machine's closed network refuses those connections, which would show as errors.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parent.parent


def _artifacts() -> Path:
    where = Path(os.environ.get("IGSYNC_TEST_ARTIFACTS") or ROOT / "build" / "test-artifacts")
    where.mkdir(parents=True, exist_ok=True)
    return where


def _need_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"chromium is required when CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def test_report_html_renders_every_chart_offline(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _need_chromium()
    from PIL import Image
    from playwright.sync_api import sync_playwright

    # the README's path: `igsync demo`, then `igsync report --demo --html FILE`
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "demo",
        "--accounts",
        "1",
        "--days",
        "10",
        "--streams",
        "account,audience,media",
        "--quiet",
    )
    assert code == 0, err
    page_file = tmp_path / "report.html"
    code, _, err = run_cli(monkeypatch, capsys, "report", "--demo", "--html", str(page_file))
    assert code == 0, err
    # the page loads no script from elsewhere (plotly.js itself names CDN URLs it never uses
    # here: the requests the browser makes are checked below)
    assert "<script src=" not in page_file.read_text()

    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.on("request", lambda r: requests.append(r.url))
            page.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning")
                    else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(page_file.as_uri(), wait_until="load")
            charts = page.locator(".js-plotly-plot")
            page.wait_for_function(
                "document.querySelectorAll('.js-plotly-plot .main-svg').length"
                " >= 2 * document.querySelectorAll('.js-plotly-plot').length"
            )
            count = charts.count()
            # 4 daily metrics + 9 audience breakdowns (3 metrics x 3 breakdowns) + top media
            assert count >= 14, f"only {count} charts"
            assert page.locator(".chart.metric .js-plotly-plot").count() == 4
            assert page.locator(".chart.audience .js-plotly-plot").count() >= 3
            assert page.locator(".chart.media .js-plotly-plot").count() == 1
            for i in range(count):
                # plotly draws each chart into its own svg layers: a chart that failed has none
                assert charts.nth(i).locator(".main-svg").count() >= 1, f"chart {i} not drawn"
                assert charts.nth(i).locator("g.trace, g.barlayer .point").count() >= 1
            shot = _artifacts() / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            boxes = [charts.nth(i).bounding_box() for i in range(count)]
            scroll = page.evaluate("[window.scrollX, window.scrollY]")
        finally:
            browser.close()

    assert problems == [], problems
    assert requests, "the page was never requested"
    assert all(url.startswith("file://") for url in requests), requests
    image = Image.open(shot).convert("L")
    for i, box in enumerate(boxes):
        assert box is not None, f"chart {i} has no box"
        left, top = int(box["x"] + scroll[0]), int(box["y"] + scroll[1])
        area = image.crop((left, top, left + int(box["width"]), top + int(box["height"])))
        counts = area.histogram()  # pixels per grey level 0..255
        total = sum(counts)
        mean = sum(level * n for level, n in enumerate(counts)) / total
        variance = sum(n * (level - mean) ** 2 for level, n in enumerate(counts)) / total
        # a blank (white) area has no spread; axes, labels and the data do
        assert variance > 50, f"chart {i} looks blank (grey variance {variance:.1f})"
        assert sum(counts[:200]) > 200, f"chart {i} has almost no ink"
    with capsys.disabled():
        print(f"\nreport screenshot: {shot}")
    # the screenshot is a real PNG of the whole page
    assert Image.open(io.BytesIO(shot.read_bytes())).format == "PNG"
