"""Atomic file writes: a temporary file in the target directory, then ``os.replace``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def check_target(path: str | os.PathLike, overwrite: bool) -> Path:
    """The target as a Path; ``FileExistsError`` naming it if it exists and ``overwrite`` is False."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} already exists (pass overwrite=True to replace it)")
    if not p.parent.exists():
        raise FileNotFoundError(f"directory {p.parent} does not exist (writing {p.name})")
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On any error the temporary file is removed and ``path`` is left untouched.
    """
    target = check_target(path, overwrite)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if target.exists() and not overwrite:  # appeared meanwhile
            raise FileExistsError(f"{target} already exists (pass overwrite=True to replace it)")
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str, *, overwrite: bool = False) -> Path:
    """Write ``text`` atomically (ASCII/UTF-8, ``\\n`` line ends)."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    return Path(path)


def write_with(path: str | os.PathLike, writer: Callable[[str], None], *, overwrite: bool = False) -> Path:
    """Call ``writer(tmp_filename)`` (e.g. a gemmi writer), then move the result into place."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        writer(str(tmp))
    return Path(path)
