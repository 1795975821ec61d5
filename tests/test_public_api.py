"""The public API of ``virtual_aperture``: the type stub lists exactly the lazily loaded names, and
every public function documents its parameters and what it returns (numpydoc sections)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import virtual_aperture as va

STUB = Path(va.__file__).with_name("__init__.pyi")


def _stub_imports() -> dict[str, str]:
    """name -> module of every ``from X import name as name`` of the stub."""
    out = {}
    for node in ast.parse(STUB.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                assert alias.asname == alias.name, f"stub: write 'import {alias.name} as {alias.name}'"
                out[alias.name] = "." * node.level + (node.module or "")
    return out


def _lazy_as_imports() -> dict[str, str]:
    # a lazily loaded module (``detectors``: ``.compute.detectors``) is imported from its package
    # (``crystal``: ``.crystal`` is ``from . import crystal``)
    return {n: (m.rsplit(".", 1)[0] or ".") if m.rsplit(".", 1)[-1] == n else m for n, m in va._LAZY.items()}


def test_the_stub_lists_every_lazily_loaded_name():
    assert _stub_imports() == _lazy_as_imports()
    assert set(va.__all__) == {*va._LAZY, "__version__"}


def _sections(doc: str) -> set[str]:
    return set(re.findall(r"^(\w[\w ]*)\n-{3,}$", doc, re.M))


def test_public_functions_document_parameters_and_returns():
    missing = {}
    for name in va.__all__:
        obj = getattr(va, name)
        if not inspect.isfunction(obj):
            continue
        sections = _sections(inspect.getdoc(obj) or "")
        want = {"Returns"} | ({"Parameters"} if inspect.signature(obj).parameters else set())
        if want - sections:
            missing[name] = sorted(want - sections)
    assert missing == {}, "add numpydoc sections to these docstrings"


def test_the_section_check_can_fail():
    def undocumented(x):
        """Only a summary."""

    assert _sections(inspect.getdoc(undocumented)) == set()
    assert _sections("Summary.\n\nParameters\n----------\nx\n    A.\n\nReturns\n-------\nint\n") == {
        "Parameters",
        "Returns",
    }
