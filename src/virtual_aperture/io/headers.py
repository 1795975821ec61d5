"""Header checks for the binary formats rosettasciio maps lazily (MRC, blockfile): fields in range
and the file as long as the header says, before the reader promises an array it cannot deliver
(rosettasciio would open a truncated file and fail only when the data are read, with
"mmap length is greater than file size", or read a wrong offset as data)."""

from __future__ import annotations

import struct
from pathlib import Path

from .errors import fail
from .formats import MAX_CHUNKS

#: MRC mode → bytes per voxel (MRC2014; mode 101 is 4-bit, two voxels per byte)
_MRC_MODE_BYTES = {0: 1.0, 1: 2.0, 2: 4.0, 3: 4.0, 4: 8.0, 6: 2.0, 12: 2.0, 101: 0.5}


def check_mrc(path: Path) -> None:
    """The MRC header's sizes, mode and extended header against the file size."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(1024)
    if len(head) < 1024:
        raise fail(path, f"truncated: {size} bytes, shorter than the 1024-byte MRC header")
    end = ">" if head[212:214] == b"\x11\x11" else "<"  # machine stamp: big-endian 0x11 0x11
    nx, ny, nz, mode = struct.unpack(end + "4i", head[:16])
    nsymbt = struct.unpack(end + "i", head[92:96])[0]
    if min(nx, ny, nz) <= 0:
        raise fail(path, f"inconsistent MRC header: size NX×NY×NZ = {nx}×{ny}×{nz} (all must be positive)")
    if mode not in _MRC_MODE_BYTES:
        raise fail(
            path,
            f"inconsistent MRC header: unknown data mode {mode} "
            f"(known: {', '.join(map(str, _MRC_MODE_BYTES))})",
        )
    if nsymbt < 0:
        raise fail(path, f"inconsistent MRC header: negative extended-header size {nsymbt}")
    if nz > MAX_CHUNKS * 100:
        raise fail(path, f"inconsistent MRC header: {nz} sections declared; the header is probably damaged")
    data = int(nx * ny * nz * _MRC_MODE_BYTES[mode] + 0.5)
    need = 1024 + nsymbt + data
    if size < need:
        what = (
            f"a {nsymbt}-byte extended header and " if nsymbt else ""
        ) + f"{nz} frames of {ny}×{nx} (mode {mode}, {data} bytes)"
        raise fail(
            path, f"truncated: the header declares {what}, {need} bytes in all, but the file has {size} bytes"
        )


def check_blockfile(path: Path) -> None:
    """The blockfile header (offsets, scan and pattern sizes) against the file size and frame markers."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(28)
        if len(head) < 28:
            raise fail(path, f"truncated: {size} bytes, shorter than the blockfile header")
        off1, off2 = struct.unpack("<II", head[8:16])
        dp, _rot, nx, ny = struct.unpack("<HHHH", head[20:28])
        if dp == 0 or nx == 0 or ny == 0:
            raise fail(
                path,
                f"inconsistent blockfile header: scan {nx}×{ny}, patterns {dp}×{dp} (all must be positive)",
            )
        if not 28 <= off1 <= off2:
            raise fail(
                path,
                f"inconsistent blockfile header: data offsets {off1} (image) and {off2} "
                "(patterns) out of order",
            )
        need = off2 + nx * ny * (6 + dp * dp)
        if size < need:
            raise fail(
                path,
                f"truncated or inconsistent: the header declares a {nx}×{ny} scan of {dp}×{dp} "
                f"patterns from byte {off2} ({need} bytes in all) but the file has {size} bytes",
            )
        # every pattern is preceded by AA 55 and its 4-byte number: check the first and the last
        for i in (0, nx * ny - 1):
            f.seek(off2 + i * (6 + dp * dp))
            if f.read(2) != b"\xaa\x55":
                raise fail(
                    path,
                    f"inconsistent blockfile: no pattern marker where the header puts pattern {i} "
                    f"(byte {off2 + i * (6 + dp * dp)}); the data offset or sizes are wrong",
                )


__all__ = ["check_blockfile", "check_mrc"]
