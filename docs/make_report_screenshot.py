"""Render a report.html with headless Chromium into docs/images/report-page.png.

Run: ``python docs/make_report_screenshot.py demo_output/grain_2/report.html`` (needs the
``chromium`` package).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "images" / "report-page.png"


def main(report: str, height: int = 5200) -> int:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        print("chromium not found (apt-get install chromium)", file=sys.stderr)
        return 2
    url = Path(report).resolve().as_uri()
    subprocess.run(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size=1200,{height}",
            f"--screenshot={OUT}",
            url,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    import numpy as np
    from PIL import Image

    im = Image.open(OUT).convert("RGB")
    rows = np.flatnonzero((np.asarray(im) < 250).any(axis=(1, 2)))
    im = im.crop((0, 0, im.width, int(rows.max()) + 20 if rows.size else im.height))
    im = im.resize((900, round(im.height * 900 / im.width)), Image.LANCZOS)
    im.quantize(256, dither=Image.Dither.NONE).save(OUT, optimize=True)
    print(f"wrote {OUT} ({im.width}×{im.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
