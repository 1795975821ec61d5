"""Write the benchmark files of ``bench_files.py``: one scan as .npy, Merlin .mib (+ .hdr) and a
"foreign" zarr store (blosc-lz4, 16×16-position store chunks that the default 128 MiB dask
chunks of 10 whole scan rows would straddle).

Usage: ``_files_data.py FOLDER SY SX``; files already there with the right size are kept.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

K = 128  # detector side
MIB_HEADER = 384


def rows(sy: int, sx: int, seed: int = 0):
    """Detector-like uint16 frames, one scan row at a time: a bright disk plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:K, :K]
    disk = (np.hypot(yy - K / 2, xx - K / 2) < K / 8).astype(np.uint16) * 2000
    for _ in range(sy):
        yield rng.integers(0, 256, (sx, K, K), dtype=np.uint16) + disk


def mib_header(seq: int) -> bytes:
    """A Merlin single-chip 384-byte frame header (the layout tests/data_factories.py writes)."""
    fields = ["MQ1", f"{seq:06d}", "00384", "01", f"{K:05d}", f"{K:05d}", "U16", "   1x1", "01"]
    fields += ["2024-01-01 12:00:00.000000", "0.001000", "0", "0", "0", *["1.000000E+1"] * 8, "3RX"]
    fields += [*["000"] * 30, "MQ1A", "2024-01-01T12:00:00.000000000Z", "1000000ns", "12", ""]
    head = ",".join(fields).encode("ascii")
    return head + b"\x00" * (MIB_HEADER - len(head))


def write_all(folder: Path, sy: int, sx: int) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    npy, mib, zpath = folder / "scan.npy", folder / "scan.mib", folder / "scan.zarr"
    nbytes = sy * sx * K * K * 2
    if not (npy.exists() and npy.stat().st_size >= nbytes):
        t0 = time.perf_counter()
        out = np.lib.format.open_memmap(npy, mode="w+", dtype=np.uint16, shape=(sy, sx, K, K))
        for y, r in enumerate(rows(sy, sx)):
            out[y] = r
        out.flush()
        del out
        print(f"wrote {npy} in {time.perf_counter() - t0:.0f} s", flush=True)
    src = np.load(npy, mmap_mode="r")
    frame = np.dtype([("h", f"V{MIB_HEADER}"), ("d", ">u2", (K, K))])
    if not (mib.exists() and mib.stat().st_size == sy * sx * frame.itemsize):
        t0 = time.perf_counter()
        header = np.frombuffer(mib_header(1), dtype=f"V{MIB_HEADER}")[0]
        with open(mib, "wb") as f:
            buf = np.zeros(sx, frame)
            buf["h"] = header
            for y in range(sy):
                buf["d"] = src[y]
                f.write(buf.tobytes())
        mib.with_suffix(".hdr").write_text(
            "HDR,\t\nChip ID:\tW000_A0,-,-,-\nAssembly Size (NX1, 2X2):\t   1x1\n"
            "Counter Depth (number):\t12\n"
            f"Frames in Acquisition (Number):\t{sy * sx}\nFrames per Trigger (Number):\t{sx}\nEnd\t\n"
        )
        print(f"wrote {mib} in {time.perf_counter() - t0:.0f} s", flush=True)
    if not (zpath / "zarr.json").exists():
        import zarr
        from zarr.codecs import BloscCodec

        t0 = time.perf_counter()
        z = zarr.create_array(
            store=str(zpath),
            shape=src.shape,
            chunks=(16, 16, K, K),
            dtype=src.dtype,
            overwrite=True,
            compressors=BloscCodec(cname="lz4", clevel=1, shuffle="bitshuffle"),
        )
        for y in range(0, sy, 16):
            z[y : y + 16] = src[y : y + 16]
        print(f"wrote {zpath} in {time.perf_counter() - t0:.0f} s", flush=True)
    return {"npy": npy, "mib": mib, "zarr": zpath}


if __name__ == "__main__":
    write_all(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
