"""Byte-level readers and checks: NumPy ``.npy`` (memory-mapped) and header checks for Merlin
``.mib`` and EMPAD ``.raw`` files (so a truncated or inconsistent file fails with a clear message
before rosettasciio maps it)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Literal

import dask.array as da
import numpy as np

from ..model.dataset import scan_chunks
from .errors import fail
from .formats import Raw, check_declared, check_regular
from .framefile import FrameFile

_MIB_DTYPES = {"U01": "u1", "U08": "u1", "U16": ">u2", "U32": ">u4", "R64": None}


class MemmapSource:
    """Array-like view of raw bytes in a file: each ``[...]`` maps the file and copies only the
    requested block (dask copies a whole numpy memmap handed to ``from_array``; this does not).
    Picklable (holds the path, not the map), so it also works with a distributed client."""

    def __init__(
        self, path: Path, dtype: np.dtype, shape: tuple[int, ...], offset: int, order: Literal["C", "F"] = "C"
    ) -> None:
        self.path, self.dtype, self.shape, self.offset, self.order = (
            str(path),
            np.dtype(dtype),
            shape,
            offset,
            order,
        )
        self.ndim = len(shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            mm = np.memmap(
                self.path, dtype=self.dtype, mode="r", offset=self.offset, shape=self.shape, order=self.order
            )
            return np.array(mm[key])
        except (OSError, ValueError) as exc:  # e.g. the file was truncated or replaced after opening
            raise fail(
                self.path,
                f"cannot be read any more ({exc}); was it truncated or replaced after it was opened?",
            ) from exc


def read_npy(path: Path, target_bytes: int) -> Raw:
    """A ``.npy`` file as a dask array over a read-only memory map (nothing is read on open)."""
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }.get(version)
            if read_header is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = read_header(f)
        except (ValueError, OSError, SyntaxError) as exc:
            raise fail(path, f"not a valid .npy file ({exc})") from exc
        offset = f.tell()
    if dtype.hasobject:
        raise fail(path, "holds Python objects, not numbers")
    from .formats import check_numeric

    check_numeric(path, dtype)
    check_declared(path, tuple(shape), dtype.itemsize, None)
    need = offset + math.prod(shape) * dtype.itemsize
    have = path.stat().st_size
    if have < need:
        raise fail(
            path,
            f"truncated: the header says shape {tuple(shape)} {dtype} ({need} bytes) "
            f"but the file has {have} bytes",
        )
    source: Any
    if not fortran and len(shape) in (4, 5):
        # frames in C order: the compute engine reads them in place (see .framefile)
        source = FrameFile(path, shape=tuple(shape), dtype=dtype, offset=offset)
    else:
        source = MemmapSource(path, dtype, tuple(shape), offset, "F" if fortran else "C")
    chunks = (
        scan_chunks(tuple(shape), dtype.itemsize, target_bytes=target_bytes)
        if len(shape) in (4, 5)
        else "auto"
    )
    data = da.from_array(
        source,
        chunks=chunks,
        asarray=False,
        fancy=False,
        name=f"npy-{path.name}-{have}-{path.stat().st_mtime_ns}",
    )
    return Raw(
        data,
        "npy",
        metadata={"npy": {"shape": list(shape), "dtype": str(dtype), "fortran_order": bool(fortran)}},
    )


def parse_mib_header(path: Path) -> dict:
    """Fields of the first Merlin frame header, checked against the file size.

    Returns ``{"header_bytes", "height", "width", "dtype", "frame_bytes", "n_frames"}``.
    """
    with open(path, "rb") as f:
        head = f.read(768)
    if not head.startswith(b"MQ1,"):
        raise fail(path, "not a Merlin .mib file (no 'MQ1' frame header)")
    try:
        fields = head.decode("ascii", errors="replace").split(",")
        header_bytes = int(fields[2])
        n_chips = int(fields[3])
        width, height = int(fields[4]), int(fields[5])
        depth = fields[6].strip()
    except (IndexError, ValueError) as exc:
        raise fail(path, f"inconsistent Merlin header (cannot parse size fields: {exc})") from exc
    if depth not in _MIB_DTYPES:
        raise fail(path, f"inconsistent Merlin header: unknown pixel depth {depth!r}")
    if _MIB_DTYPES[depth] is None:
        raise fail(
            path,
            "raw (R64) Merlin data is not supported; save the acquisition as counting data (U08/U16/U32)",
        )
    if header_bytes not in (384, 768) or width <= 0 or height <= 0 or n_chips <= 0:
        raise fail(
            path,
            f"inconsistent Merlin header: header size {header_bytes}, "
            f"{n_chips} chips, frame {height}×{width}",
        )
    dtype = np.dtype(_MIB_DTYPES[depth])
    frame_bytes = header_bytes + width * height * dtype.itemsize
    size = path.stat().st_size
    n_frames, rest = divmod(size, frame_bytes)
    if n_frames == 0:
        raise fail(
            path,
            f"truncated: {size} bytes is less than one {height}×{width} {depth} frame "
            f"({frame_bytes} bytes with header)",
        )
    if rest:
        raise fail(
            path,
            f"truncated: the last frame is incomplete ({rest} of {frame_bytes} bytes; "
            f"{n_frames} whole {height}×{width} {depth} frames)",
        )
    # the header of the last frame must look like a header too (catches mixed frame sizes)
    with open(path, "rb") as f:
        f.seek((n_frames - 1) * frame_bytes)
        if not f.read(4) == b"MQ1,":
            raise fail(
                path,
                "inconsistent Merlin file: frame headers are not where the first header "
                f"says ({frame_bytes} bytes per frame)",
            )
    return {
        "header_bytes": header_bytes,
        "height": height,
        "width": width,
        "dtype": dtype.str,
        "frame_bytes": frame_bytes,
        "n_frames": n_frames,
    }


def mib_hdr_frames(path: Path) -> tuple[int, int] | None:
    """(frames per trigger, frames in acquisition) from the ``.hdr`` file next to a ``.mib``."""
    hdr = path.with_suffix(".hdr")
    if not hdr.exists():
        return None
    check_regular(hdr, "the Merlin .hdr file ")
    values = {}
    for line in hdr.read_text(errors="replace").splitlines():
        if "\t" in line:
            k, v = line.split("\t", 1)
            values[k.strip().rstrip(":")] = v.strip()
    keys = ("Frames per Trigger (Number)", "Frames in Acquisition (Number)")
    if not all(k in values for k in keys):
        return None
    try:
        per, total = (int(values[k]) for k in keys)
    except ValueError:
        raise fail(
            hdr,
            "inconsistent Merlin .hdr: "
            + "; ".join(f"{k} = {values[k]!r}" for k in keys)
            + " is not a whole number (fix the .hdr, or move it away and pass scan_shape=(ny, nx))",
        ) from None
    if per <= 0 or total <= 0:
        raise fail(hdr, f"inconsistent Merlin .hdr: {per} frames per trigger, {total} frames in acquisition")
    return per, total


def _raw_name(root: ET.Element) -> str | None:
    node = root.find("raw_file")
    if node is None:
        return None
    return node.get("filename") or node.findtext("filename")


def check_empad(xml_path: Path) -> Path:
    """Check an EMPAD ``.xml`` and its ``.raw``: the raw file exists and has the size the XML says."""
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise fail(xml_path, f"not a valid EMPAD .xml file ({exc})") from exc
    raw_name = _raw_name(root)
    if not raw_name:
        raise fail(xml_path, "not an EMPAD .xml file (no <raw_file><filename>)")
    raw = xml_path.parent / raw_name.strip()
    if not raw.exists():
        raise fail(xml_path, f"the EMPAD raw file {raw.name} named in the XML is missing")
    sy = root.findtext("pix_y") or root.findtext("scan_parameters/scan_resolution_y")
    sx = root.findtext("pix_x") or root.findtext("scan_parameters/scan_resolution_x")
    check_regular(raw, "the EMPAD raw file ")
    if sy and sx:
        try:
            ny, nx = int(sy), int(sx)
        except ValueError:
            raise fail(
                xml_path, f"inconsistent EMPAD .xml: scan size {sy!r} × {sx!r} is not a whole number"
            ) from None
        if ny <= 0 or nx <= 0:
            raise fail(xml_path, f"inconsistent EMPAD .xml: scan size {ny} × {nx}")
        need = ny * nx * 130 * 128 * 4
        have = raw.stat().st_size
        if have < need:
            raise fail(
                raw,
                f"truncated: the XML says a {sy}×{sx} scan of 128×128 frames "
                f"({need} bytes) but the raw file has {have} bytes",
            )
    return raw


def empad_xml_for_raw(raw: Path) -> Path:
    """The EMPAD ``.xml`` that names ``raw`` (EMPAD data is opened through its XML)."""
    for xml in sorted(raw.parent.glob("*.xml")):
        try:
            if (_raw_name(ET.parse(xml).getroot()) or "").strip() == raw.name:
                return xml
        except ET.ParseError:
            continue
    raise fail(
        raw,
        "a .raw file is read as EMPAD data through the .xml written beside it, "
        "and no .xml here names this file",
    )
