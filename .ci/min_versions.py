"""Print the requirements of pyproject.toml for the "minimum versions" job (``make test-min``).

``python .ci/min_versions.py [EXTRA ...] [--also NAME ...] [--pins]`` prints the core
dependencies, those of the named extras and the packages named after ``--also`` (looked up in any
extra, e.g. test tools) as declared (``numpy>=1.26,<2.4``), for ``uv pip install --resolution
lowest-direct``, which installs the lowest release satisfying each; with ``--pins`` as
``name==lower-bound`` instead. Every declared requirement must have a lower bound (exit 2 if not).
With ``--check`` (run inside the installed environment) it prints ``name  lower bound → installed``
and fails when an installed version is not the declared lower bound's release (a bound that cannot
be installed: yanked, no wheel, or in conflict with another bound).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def lowest(requirement: str) -> str | None:
    """``"numpy>=1.26,<2.4"`` → ``"numpy==1.26"``; None without a ``>=`` bound."""
    req = requirement.split(";")[0].strip()
    m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", req)
    if not m:
        return None
    name, spec = m.group(1), m.group(3)
    low = re.search(r">=\s*([0-9][0-9A-Za-z.\-]*)", spec)
    return f"{name}=={low.group(1)}" if low else None


def main(argv: list[str]) -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    also: list[str] = []
    pins, check = "--pins" in argv, "--check" in argv
    argv = [a for a in argv if a not in ("--pins", "--check")]
    if "--also" in argv:
        i = argv.index("--also")
        argv, also = argv[:i], argv[i + 1 :]
    reqs = list(project["dependencies"])
    for extra in argv:
        if extra not in extras:
            print(f"min_versions: no extra {extra!r} in pyproject.toml", file=sys.stderr)
            return 2
        reqs += [r for r in extras[extra] if not r.startswith(project["name"])]
    wanted = {re.split(r"[\[<>=!~; ]", a, maxsplit=1)[0].lower() for a in also}
    for extra_reqs in extras.values():
        reqs += [r for r in extra_reqs if re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() in wanted]
    seen = set()
    for r in reqs:
        pin = lowest(r)
        if pin is None:
            print(f"min_versions: {r!r} has no lower bound", file=sys.stderr)
            return 2
        name = pin.split("==")[0].lower()
        if name not in seen:
            seen.add(name)
            if not check:
                print(pin if pins else r)
    return _check(sorted(reqs_pins(reqs))) if check else 0


def reqs_pins(reqs: list[str]) -> set[tuple[str, str]]:
    return {tuple(p.split("==")) for p in map(lowest, reqs) if p}  # type: ignore[misc]


def _check(pins: list[tuple[str, str]]) -> int:
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    bad = 0
    for name, low in pins:
        try:
            have = version(name)
        except PackageNotFoundError:
            have = "not installed"
        ok = (
            have != "not installed"
            and Version(have).release[: len(Version(low).release)] == Version(low).release
        )
        bad += not ok
        print(f"  {name:<16} >= {low:<10} installed {have}{'' if ok else '   <-- not the lower bound'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
