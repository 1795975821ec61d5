"""Format registry: file extension → reader, content sniffing and the cheap ``can_read`` check."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da

from .errors import fail


@dataclass
class Raw:
    """What a reader hands back before calibration is resolved.

    ``data`` is lazy (dask); ``found`` holds calibration values read from the file (units already
    converted, see :mod:`.units`); ``metadata`` the file's own metadata.
    """

    data: da.Array
    format: str
    found: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    lazy: bool = True


@dataclass(frozen=True)
class Format:
    name: str
    extensions: tuple[str, ...]
    description: str
    magic: str | None  # content kind expected (see sniff), None = not checkable


FORMATS: dict[str, Format] = {
    f.name: f
    for f in [
        Format("mib", (".mib",), "Quantum Detectors Merlin (rosettasciio)", "mib"),
        Format("blockfile", (".blo",), "ASTAR / NanoMegas blockfile (rosettasciio)", "blockfile"),
        Format("dm", (".dm3", ".dm4"), "Gatan DigitalMicrograph (rosettasciio)", "dm"),
        Format("empad", (".xml", ".raw"), "EMPAD .xml + .raw (rosettasciio)", None),
        Format("mrc", (".mrc", ".ali"), "MRC stack of frames (rosettasciio)", None),
        Format("tvips", (".tvips",), "TVIPS stream (rosettasciio)", None),
        Format("hspy", (".hspy",), "HyperSpy HDF5 (rosettasciio)", "hdf5"),
        Format("zspy", (".zspy",), "HyperSpy zarr (rosettasciio)", "zarr"),
        Format("nexus", (".nxs",), "NeXus NXdata (rosettasciio)", "hdf5"),
        Format("hdf5", (".h5", ".hdf5", ".emd", ".de5", ".py4dstem"),
               "HDF5: py4DSTEM/EMD 1.0, Berkeley EMD, Velox/DE EMD, Dectris Arina, HyperSpy, any 4D dataset",
               "hdf5"),
        Format("zarr", (".zarr", ".va"), "zarr array or group, incl. virtual-aperture's own store", "zarr"),
        Format("npy", (".npy",), "NumPy .npy (memory-mapped)", "npy"),
    ]
}

_BY_EXT = {ext: f.name for f in FORMATS.values() for ext in f.extensions}
#: extensions that name one format (lower case, with the dot)
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(sorted(_BY_EXT))
#: files that accompany a dataset and are never datasets on their own
COMPANION_SUFFIXES = (".hdr", ".json", ".txt", ".log", ".ini", ".png", ".jpg", ".tif", ".tiff")


def supported_list() -> str:
    return ", ".join(SUPPORTED_EXTENSIONS) + ", a zarr folder"


def format_for(path: Path, requested: str | None = None) -> str:
    """The format name for ``path`` (from ``requested`` or the extension); ReadError if unknown."""
    if requested is not None:
        key = requested.lower().lstrip(".")
        if key in FORMATS:
            return key
        if "." + key in _BY_EXT:
            return _BY_EXT["." + key]
        raise fail(path, f"unknown format {requested!r}; known formats: {', '.join(FORMATS)}")
    if path.is_dir():
        if is_zarr_dir(path):
            return "zspy" if path.suffix.lower() == ".zspy" else "zarr"
        raise fail(path, "folder is not a zarr store")
    ext = path.suffix.lower()
    name = _BY_EXT.get(ext)
    if name is None:
        raise fail(path, f"unknown format (extension {ext or '<none>'!r}); supported: {supported_list()}")
    return name


def is_zarr_dir(path: Path) -> bool:
    return any((path / n).exists() for n in ("zarr.json", ".zgroup", ".zarray"))


_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def sniff(path: Path) -> str | None:
    """The kind of content in a file from its first bytes: 'hdf5', 'npy', 'mib', 'dm', 'blockfile',
    'xml', 'zip', 'zarr', or None when unrecognised."""
    if path.is_dir():
        return "zarr" if is_zarr_dir(path) else None
    with open(path, "rb") as f:
        head = f.read(1024)
    if head.startswith(_HDF5_MAGIC):
        return "hdf5"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"MQ1,"):
        return "mib"
    if head[:4] in (b"\x00\x00\x00\x03", b"\x00\x00\x00\x04"):
        return "dm"
    if head.startswith(b"IMGBLO"):
        return "blockfile"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return "xml"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    return None


def check_content(path: Path, fmt: str) -> None:
    """Raise a ReadError when the file's bytes are plainly not the format its extension says."""
    expected = FORMATS[fmt].magic
    kind = sniff(path)
    if fmt == "empad" and path.suffix.lower() == ".xml":
        expected = "xml"
    if fmt == "zspy" and kind == "zip":
        return
    if expected is None or kind == expected:
        return
    if kind is not None and kind != "xml":
        right = [f.name for f in FORMATS.values() if f.magic == kind]
        raise fail(
            path,
            f"the extension says {fmt} but the content is {kind.upper()} "
            f"(rename the file or pass format={right[0]!r})" if right else
            f"the extension says {fmt} but the content is {kind}",
        )
    raise fail(path, f"not a valid {fmt} file (its first bytes do not match the {fmt} format)")


def can_read(path: str | os.PathLike | list | tuple) -> bool:
    """Cheap check (no file content read) that :func:`open_dataset` may open ``path``.

    True for a file with a supported extension, a zarr folder, a folder holding supported
    files, or a list of such files. Used by the napari reader to return None early.

    Parameters
    ----------
    path
        A file, a folder or a list of files.

    Returns
    -------
    bool
        Whether a reader claims ``path`` (by extension or folder layout, not content).
    """
    if isinstance(path, (list, tuple)):
        return len(path) > 0 and all(can_read(p) for p in path)
    try:
        p = Path(os.fspath(path))
    except TypeError:
        return False
    if p.is_dir():
        if is_zarr_dir(p):
            return True
        try:
            return any(c.suffix.lower() in _BY_EXT for c in p.iterdir() if not c.name.startswith("."))
        except OSError:
            return False
    return p.suffix.lower() in _BY_EXT
