"""The HTML report opened in headless Chromium: it parses, draws the picture, asks for nothing over
the network and logs no error of its own. Skipped when no Chromium is installed (.ci/run installs
Debian's `chromium` where it can)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from revoke.report import build_report, render
from tests.report.report_testlib import Lab

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), shutil.which("google-chrome"))
                 if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="headless Chromium not installed (apt-get install -y chromium; .ci/run does)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--enable-logging=stderr"]
# Chromium's own noise in a container (no D-Bus, no GPU); anything else about the page is a failure
NOISE = ("dbus", "gpu", "gles", "viz", "sandbox", "fontconfig", "crashpad", "xdg", "angle", "vaapi", "bytes written")


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=90)


def _page_errors(stderr: str) -> list[str]:
    """The page has no script, so any console message (a blocked fetch, a CSP violation) is a failure."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    bad = ("refused to", "failed to load", "uncaught", "violates the following content security policy")
    return [ln for ln in lines if ":CONSOLE" in ln
            or (any(b in ln.lower() for b in bad) and not any(n in ln.lower() for n in NOISE))]


def test_the_error_check_sees_a_blocked_fetch(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\">"
                   "</head><body><img src=\"https://example.invalid/x.png\"></body></html>")
    res = _chromium(tmp_path, "--dump-dom", bad.as_uri())
    assert _page_errors(res.stderr), res.stderr[-2000:]


@pytest.fixture(scope="module")
def page(big: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("chromium")
    path = d / "report.html"
    path.write_text(render(build_report(big.store, big.journal("inc-dirty")), "html"), encoding="utf-8")
    return path


def test_dom_has_the_picture_and_the_verdict(page: Path) -> None:
    res = _chromium(page.parent, "--dump-dom", page.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert "<svg" in dom and "NOT CLEAN" in dom and "249 \u00d7 certificate" in dom
    assert dom.count('class="node ') >= 10
    assert _page_errors(res.stderr) == []


def test_screenshot_renders(page: Path) -> None:
    shot = page.parent / "report.png"
    res = _chromium(page.parent, f"--screenshot={shot}", "--window-size=1400,1800", page.as_uri())
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 1800)
    assert len(data) > 50_000  # a page with a drawn picture, not a blank one
    assert _page_errors(res.stderr) == []
