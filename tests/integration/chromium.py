"""Headless Chromium (Debian's package) for looking at a page as a person would: its laid-out DOM and a screenshot.

``measured`` loads a copy of the page with a small script appended that
writes what the browser laid out (sizes of the timeline and the size charts,
and how many of their bars have a width) into an attribute that
``--dump-dom`` then shows. ``screenshot`` takes a PNG; ``colour_count`` reads
it back (a small PNG decoder: 8-bit RGB or RGBA, as Chromium writes them).
"""

from __future__ import annotations

import html
import json
import re
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any, Final

from cargohold.hostdeps import ensure_packages

# As root and headless on these machines (see the machine notes): no sandbox, no GPU, no background traffic.
FLAGS: Final = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
)  # fmt: skip

MEASURE: Final = """<script>
const box = (e) => e.getBoundingClientRect();
const drawn = (list) => [...list].filter((e) => box(e).width > 0 && box(e).height > 0).length;
const timeline = document.getElementById("timeline");
const measured = {
  timeline: timeline ? {width: box(timeline).width, height: box(timeline).height,
                        bars: timeline.querySelectorAll("rect.bar").length,
                        drawn: drawn(timeline.querySelectorAll("rect.bar")),
                        hits: timeline.querySelectorAll("rect.bar.stage.hit").length,
                        built: timeline.querySelectorAll("rect.bar.stage.built").length} : null,
  charts: [...document.querySelectorAll("svg.size-chart.layers")].map((s) => ({
    image: s.closest("article").id, width: box(s).width, height: box(s).height,
    layers: s.querySelectorAll("rect.layer").length, drawn: drawn(s.querySelectorAll("rect.layer")),
    budget: s.querySelectorAll("line.budget").length})),
};
document.body.setAttribute("data-measured", JSON.stringify(measured));
</script>"""


def chromium() -> str:
    """Debian's chromium, installed when missing (as root, like the other host packages)."""
    ensure_packages({"/usr/bin/chromium": "chromium"}, "the HTML report's browser test")
    return "/usr/bin/chromium"


def _run(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)


def measured(page: Path, work: Path) -> dict[str, Any]:
    """What Chromium laid out for ``page``: the timeline's and each size chart's box and drawn bars."""
    probe = work / f"{page.stem}.measured.html"
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    done = _run(probe, work / "profile-dom", "--window-size=1280,2000", "--dump-dom")
    found = re.search(r'data-measured="([^"]*)"', done.stdout)
    assert found, f"wanted the measured DOM, got:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(html.unescape(found[1]))
    return result


def screenshot(page: Path, png: Path, work: Path, size: str = "1280,1800") -> Path:
    """A PNG of ``page`` at ``size`` (width,height in px)."""
    done = _run(page, work / "profile-shot", f"--window-size={size}", f"--screenshot={png}")
    assert png.is_file(), f"wanted a screenshot, got:\n{done.stderr[-2000:]}"
    return png


def png_pixels(png: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit, non-interlaced RGB or RGBA PNG."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0), f"unexpected PNG format: depth {depth}, interlace {interlace}"
    assert colour in {2, 6}, f"unexpected PNG colour type {colour}"
    return width, height, _unfilter(zlib.decompress(idat), width, height, 3 if colour == 2 else 4)


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> list[bytes]:
    stride, rows, prior = width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prior[i], prior[i - bpp] if i >= bpp else 0
            predictor = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]
            line[i] = (line[i] + predictor) & 0xFF
        rows.append(bytes(line))
        prior = line
    return rows


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def colour_count(png: Path, rgb: tuple[int, int, int]) -> int:
    """How many pixels of ``png`` are exactly ``rgb``."""
    width, _, rows = png_pixels(png)
    bpp = len(rows[0]) // width
    want = bytes(rgb)
    return sum(1 for row in rows for x in range(width) if row[x * bpp : x * bpp + 3] == want)
