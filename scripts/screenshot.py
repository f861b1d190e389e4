"""Screenshot an HTML file with headless Chromium and check that the picture is not blank.

    python scripts/screenshot.py output/demo.html output/demo.png [--width 1200 --height 1600]

Chromium: `apt-get install chromium` (Debian), or set CHROMIUM to its path. Exits 1 if the
browser is missing or the screenshot is blank (a single colour).
"""

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Optional, Tuple

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> Optional[str]:
    env = os.environ.get("CHROMIUM")
    if env:
        return env if Path(env).exists() or shutil.which(env) else None
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def screenshot(html: Path, png: Path, width: int = 1200, height: int = 1600, browser: Optional[str] = None) -> None:
    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError("no Chromium found (apt-get install chromium, or set CHROMIUM)")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--screenshot={png.resolve()}", f"--window-size={width},{height}",
               html.resolve().as_uri()]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    if not png.exists():
        raise RuntimeError(f"{browser} wrote no screenshot")


def png_stats(png: Path) -> Tuple[int, int, int]:
    """(width, height, number of distinct colours) of an 8-bit RGB or RGBA PNG."""
    data = png.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{png} is not a PNG")
    pos, idat, width, height, bpp = 8, b"", 0, 0, 4
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            if depth != 8 or colour not in (2, 6):
                raise ValueError(f"{png}: only 8-bit RGB/RGBA PNGs are read (depth {depth}, colour type {colour})")
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    colours = set()
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):  # undo the row filter (PNG spec, section 9)
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(bytes(line[x:x + bpp]) for x in range(0, stride, bpp * 7))
        prev = line
    return width, height, len(colours)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("html", type=Path)
    ap.add_argument("png", type=Path)
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=1600)
    args = ap.parse_args()
    if not args.html.exists():
        sys.exit(f"✘ {args.html} does not exist")
    try:
        screenshot(args.html, args.png, args.width, args.height)
    except (FileNotFoundError, RuntimeError, subprocess.CalledProcessError) as err:
        sys.exit(f"✘ {err}")
    width, height, values = png_stats(args.png)
    if values < 2:
        sys.exit(f"✘ {args.png}: blank screenshot ({width}x{height})")
    print(f"✔ {args.png}: {width}x{height}, {values} distinct colours")


if __name__ == "__main__":
    main()
