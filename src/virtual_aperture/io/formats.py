"""Format registry: file extension → reader, content sniffing and the cheap ``can_read`` check."""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da

from ..model.dataset import DEFAULT_CHUNK_BYTES
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
    #: the chunks of ``data`` follow the file's storage chunks (kept: re-chunking would decode
    #: storage chunks that straddle two dask chunks twice)
    aligned: bool = False


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
        Format(
            "hdf5",
            (".h5", ".hdf5", ".emd", ".de5", ".py4dstem"),
            "HDF5: py4DSTEM/EMD 1.0, Berkeley EMD, Velox/DE EMD, Dectris Arina, HyperSpy, any 4D dataset",
            "hdf5",
        ),
        Format("zarr", (".zarr", ".va"), "zarr array or group, incl. virtual-aperture's own store", "zarr"),
        Format("npy", (".npy",), "NumPy .npy (memory-mapped)", "npy"),
    ]
}

_BY_EXT = {ext: f.name for f in FORMATS.values() for ext in f.extensions}
#: extensions that name one format (lower case, with the dot)
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(sorted(_BY_EXT))
#: files that accompany a dataset and are never datasets on their own
COMPANION_SUFFIXES = (".hdr", ".json", ".txt", ".log", ".ini", ".png", ".jpg", ".tif", ".tiff")


#: most chunks a file may declare (in storage or in the dask graph): far above any real scan
#: (1 TB in 128 MiB chunks is 8192), far below what makes building the task graph exhaust memory
MAX_CHUNKS = 1_000_000


def check_regular(path: Path, what: str = "") -> None:
    """ReadError unless ``path`` is a regular file or a folder (after symlinks): named pipes,
    devices and sockets would block or never end; checked with ``os.stat``, without opening."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise fail(path, f"{what}broken symbolic link (to {os.readlink(path)})") from None
        raise fail(path, f"{what}no such file or folder") from None
    except OSError as exc:
        raise fail(path, f"{what}cannot be examined ({exc.strerror or exc})") from exc
    mode = st.st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = (
        "a named pipe (FIFO)"
        if stat.S_ISFIFO(mode)
        else "a character device"
        if stat.S_ISCHR(mode)
        else "a block device"
        if stat.S_ISBLK(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "special"
    )
    link = f" (a symbolic link to {os.path.realpath(path)})" if os.path.islink(path) else ""
    raise fail(path, f"{what}is {kind}{link}, not a regular file; datasets are read from files only")


def check_declared(
    path: Path, shape: tuple[int, ...], itemsize: int, chunks: tuple[int, ...] | None, what: str = ""
) -> None:
    """ReadError when a header declares an array that cannot be real: a negative or zero axis, or
    more than :data:`MAX_CHUNKS` chunks (checked before anything is allocated)."""
    if any(int(n) < 0 for n in shape):
        raise fail(path, f"{what}declares a negative size in shape {tuple(shape)}")
    if any(int(n) == 0 for n in shape):
        raise fail(path, f"{what}holds no data (shape {tuple(shape)} has an axis of length 0)")
    if chunks:
        n = math.prod(math.ceil(int(s) / max(1, int(c))) for s, c in zip(shape, chunks))
        if n > MAX_CHUNKS:
            size = math.prod(int(v) for v in shape) * itemsize
            raise fail(
                path,
                f"{what}declares shape {tuple(int(v) for v in shape)} ({size / 2**40:.3g} TiB in "
                f"{n:.3g} chunks, more than the {MAX_CHUNKS:,} allowed); the header is "
                "probably damaged",
            )


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
            f"(rename the file or pass format={right[0]!r})"
            if right
            else f"the extension says {fmt} but the content is {kind}",
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


def check_chunk_bytes(chunk_bytes: Any) -> int:
    """``chunk_bytes`` as a positive int (``None`` → the default); ValueError otherwise."""
    if chunk_bytes is None:
        return DEFAULT_CHUNK_BYTES
    try:
        value = float(chunk_bytes)
    except (TypeError, ValueError):
        raise ValueError(f"chunk_bytes must be a number of bytes, got {chunk_bytes!r}") from None
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"chunk_bytes must be at least 1 byte, got {chunk_bytes!r}")
    return int(value)


def check_numeric(path: Path, dtype: Any) -> None:
    """ReadError unless the values are plain numbers (bool, integer, float)."""
    import numpy as np

    dt = np.dtype(dtype)
    if dt.names is not None:
        raise fail(path, f"holds records ({dt}), not numbers; save one numeric field as its own array")
    if dt.kind not in "biuf":
        kind = {
            "c": "complex numbers",
            "M": "dates",
            "m": "time spans",
            "U": "text",
            "S": "bytes",
            "O": "Python objects",
            "V": "raw bytes",
        }.get(dt.kind, dt.kind)
        raise fail(path, f"holds {kind} ({dt}); detector counts must be integers or floats")


def store_chunks(
    shape: tuple[int, ...], itemsize: int, stored: tuple[int, ...] | None, target_bytes: int
) -> tuple[int, ...]:
    """Dask chunks for a 4D/5D chunked store (zarr, HDF5) that never split a storage chunk along
    the scan axes: whole storage chunks merged up to ``target_bytes`` (at least one), whole scan
    rows when a band of storage chunks fits, whole detector frames always, one tilt per chunk.

    Without ``stored`` (contiguous storage) this is :func:`~virtual_aperture.model.dataset.scan_chunks`.
    """
    from ..model.dataset import scan_chunks

    if not stored or len(stored) != len(shape):
        return scan_chunks(shape, itemsize, target_bytes=target_bytes)
    *lead, sy, sx, ky, kx = shape
    cy_s, cx_s = min(int(stored[-4]), sy), min(int(stored[-3]), sx)
    frame = ky * kx * itemsize
    band = cy_s * sx * frame  # one row of storage chunks across the whole scan
    if cx_s >= sx or band <= target_bytes:
        cy, cx = max(1, target_bytes // band) * cy_s, sx
    else:
        cy, cx = cy_s, max(1, target_bytes // (cy_s * cx_s * frame)) * cx_s
    return tuple([1] * len(lead)) + (min(cy, sy), min(cx, sx), ky, kx)
