"""``make bench``: run every benchmark of the project, each printing ratios measured in the same run.

``benchmarks/bench_compute.py`` (the compute engine; takes ``--small``, ``--repeat``, ``--budget``,
``--json``) runs first; then every other ``benchmarks/bench_*.py`` script in its own process.
Extra arguments are passed to ``bench_compute.py``; ``--only compute`` skips the others.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    only = None
    if "--only" in argv:
        i = argv.index("--only")
        only = argv[i + 1]
        argv = argv[:i] + argv[i + 2 :]
    rc = 0
    print("=" * 30, "bench_compute.py", "=" * 30, flush=True)
    rc |= subprocess.call([sys.executable, str(HERE / "bench_compute.py"), *argv])
    if only == "compute":
        return rc
    for script in sorted(HERE.glob("bench_*.py")):
        if script.name == "bench_compute.py":
            continue
        print("\n" + "=" * 30, script.name, "=" * 30, flush=True)
        rc |= subprocess.call([sys.executable, str(script)])
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
