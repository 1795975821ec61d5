"""The README is true: its Python quick start runs as written, every name of its table is
importable as written, and its command-line block lists every sub-command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_python_quick_start_runs_as_written(tmp_path, monkeypatch, capsys):
    (code,) = _blocks("python")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    assert re.search(r"grain 1: \d+ positions, \d+ Bragg peaks, confidence 0\.\d\d", out), out


def _table_python_names() -> list[str]:
    rows = [line for line in README.splitlines() if line.startswith("|") and "`" in line]
    names = []
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        names += re.findall(r"`([^`]+)`", cells[2])  # the "Python" column
    return names


@pytest.mark.parametrize("name", _table_python_names())
def test_every_python_name_in_the_table_is_importable_as_written(name):
    import virtual_aperture as va

    obj = va
    for part in name.split("."):
        obj = getattr(obj, part)  # e.g. va.crystal.calibrate, with no extra import


def test_cli_block_lists_every_subcommand():
    from virtual_aperture.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    listed = set(re.findall(r"^virtual-aperture (\w+)", "".join(_blocks("bash")), flags=re.M))
    assert set(sub.choices) <= listed, set(sub.choices) - listed
