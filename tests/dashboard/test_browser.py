"""The materialized page in headless Chromium: it renders charts, and the pixels are not blank.

Fails (never skips) without Chromium: CI installs it with .ci/install-browser.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from dashboard_support import chromium
from PIL import Image

from spotify_dagster.defs.dashboard.render import SECTIONS
from spotify_dagster.defs.dashboard.svg import ACCENT

# Starts services or processes: left out of `make test-fast`.
pytestmark = pytest.mark.integration

WIDTH, HEIGHT = 1280, 1600
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_chromium_dom_has_every_section_and_the_svg_charts(dashboard_file: Path, tmp_path: Path):
    dom = run_chromium(tmp_path, "--dump-dom", dashboard_file.as_uri()).stdout
    for title in SECTIONS.values():
        assert title in dom
    assert dom.count("<svg") >= 5
    assert dom.count("<rect") == 4 + 3 + 3  # one bar per region, device and artist
    assert dom.count("<path") >= 3
    assert "<script" not in dom  # the tricky artist name stayed text
    assert "Sinéad O'Connor &amp; &lt;script&gt;" in dom


def test_chromium_screenshot_shows_the_charts(dashboard_file: Path, tmp_path: Path):
    shot = tmp_path / "dashboard.png"
    run_chromium(
        tmp_path, f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={shot}", dashboard_file.as_uri()
    )
    with Image.open(shot) as img:
        rgb = img.convert("RGB")
    assert rgb.size == (WIDTH, HEIGHT)
    counts = rgb.getcolors(maxcolors=WIDTH * HEIGHT)
    assert counts is not None
    assert len(counts) > 200, "too few colours: the page looks blank"
    background = max(counts)[0]
    assert background < 0.8 * WIDTH * HEIGHT, "one colour covers most of the page"
    accent = tuple(int(ACCENT[i : i + 2], 16) for i in (1, 3, 5))
    accent_pixels = sum(n for n, colour in counts if colour == accent)
    assert accent_pixels > 2000, f"only {accent_pixels} pixels of bar/line colour {ACCENT}"


@pytest.fixture(autouse=True)
def _needs_chromium() -> None:
    chromium()  # fail with the install hint before anything else
