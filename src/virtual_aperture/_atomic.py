"""Atomic writes, the one helper every writer of the package uses (exports, CLI images, sessions,
``save_dataset``): the output is built under a hidden temporary name in the target folder
(``.<name>.<random>.tmp``) and moved into place with ``os.replace`` only once complete. An error or
Ctrl-C removes the temporary file or folder, so nothing that looks complete is ever left half written,
and an existing target is untouched until the new one is whole.

A leaf module (standard library only), so every layer may import it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def check_target(path: str | os.PathLike, overwrite: bool, *, option: str = "overwrite=True") -> Path:
    """``path`` as a Path, after checking it may be written: ``FileExistsError`` if it exists and
    ``overwrite`` is False, ``FileNotFoundError`` if its folder does not exist. Call it before
    computing, so a long job does not end in an error about its output."""
    p = Path(path)
    if (p.exists() or p.is_symlink()) and not overwrite:
        raise FileExistsError(f"{p} already exists (pass {option} to replace it)")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"directory {parent} does not exist (writing {p.name})")
    return p


def _umask() -> int:
    """The process umask (read from /proc where possible: ``os.umask`` would change it briefly)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink()


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    directory: bool = False,
    option: str = "overwrite=True",
) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (a file, or an empty folder when ``directory``);
    on success it replaces ``path`` atomically. On any error (or Ctrl-C) the temporary is removed
    and ``path`` is left untouched. The result gets the permissions ``open()``/``mkdir()`` would give
    it (0666/0777 minus the process umask), not mkstemp's 0600."""
    target = check_target(path, overwrite, option=option)
    prefix, suffix = f".{target.name}.", ".tmp"
    if directory:
        tmp_path = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=target.parent))
        os.chmod(tmp_path, 0o777 & ~_umask())
    else:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        if (target.exists() or target.is_symlink()) and not overwrite:  # appeared meanwhile
            raise FileExistsError(f"{target} already exists (pass {option} to replace it)")
        if target.is_dir() and not target.is_symlink():
            # a folder cannot be replaced in one step: move the old one aside first
            old = Path(tempfile.mkdtemp(prefix=prefix, suffix=".old", dir=target.parent))
            os.rmdir(old)
            os.replace(target, old)
            try:
                os.replace(tmp_path, target)
            except BaseException:
                os.replace(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            if directory and target.exists():
                target.unlink()
            os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            _remove(tmp_path)


def write_text(path: str | os.PathLike, text: str, *, overwrite: bool = False) -> Path:
    """Write ``text`` atomically (UTF-8, ``\\n`` line ends)."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    return Path(path)


def write_with(
    path: str | os.PathLike,
    writer: Callable[[str], None],
    *,
    overwrite: bool = False,
    option: str = "overwrite=True",
) -> Path:
    """Call ``writer(tmp_filename)`` (e.g. ``tifffile.imwrite``, a gemmi or h5py writer), then move
    the result into place."""
    with atomic_path(path, overwrite=overwrite, option=option) as tmp:
        writer(str(tmp))
    return Path(path)


__all__ = ["atomic_path", "check_target", "write_text", "write_with"]
