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
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
