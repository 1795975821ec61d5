"""The fuzz corpus: malformed (and a few valid) inputs in every format the readers accept, built at
test time in a temporary folder, each with the outcome a user must get.

``build_corpus(root)`` writes the files and returns the entries. Expectations:

- ``"ok"``: opens, and the virtual image (a flip-symmetric weighted mask, see :func:`mask_for`) equals
  the reference computed here with numpy from the data the file was written from;
- ``"error-open"``: ``info`` / ``open_dataset`` must already refuse it with one clear line naming the file;
- ``"error"``: refused with one clear line, at open or at latest when the data are read (corrupt bytes
  in a chunk cannot be seen without reading them).

Valid files come from ``tests/data_factories.py`` (the formats' own writers or their published layouts)
and, for blockfile and TVIPS, from rosettasciio's test data (``tests/data/fuzz/``, see its README).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import data_factories as F  # noqa: E402

REAL = HERE.parent / "data" / "fuzz"


@dataclass
class Entry:
    name: str
    paths: list[str]
    expect: str  # "ok" | "error-open" | "error"
    ref: str | None = None  # .npy with the expected virtual image
    mask: str | None = None  # detector mask .tif (shape of the detector)
    cli: list[str] = field(default_factory=list)  # extra open options for the CLI
    api: dict = field(default_factory=dict)  # extra keywords for open_dataset
    note: str = ""
    names_file: bool = True  # the error must name the file
    cwd: str | None = None  # run from this folder (paths relative to it)

    def to_json(self) -> dict:
        return self.__dict__.copy()


def weights(shape: tuple[int, int]) -> np.ndarray:
    """Detector weights that do not change under a vertical flip (rosettasciio flips Merlin frames)."""
    kx = np.arange(shape[1])
    return np.broadcast_to(1.0 + (kx % 3), shape).copy()


class Builder:
    def __init__(self, root: Path):
        self.root = root
        self.entries: list[Entry] = []
        self.masks: dict[tuple[int, int], str] = {}

    def mask_for(self, det: tuple[int, int]) -> str:
        if det not in self.masks:
            import tifffile

            p = self.root / f"_mask_{det[0]}x{det[1]}.tif"
            tifffile.imwrite(p, weights(det))
            self.masks[det] = str(p)
        return self.masks[det]

    def d(self, name: str) -> Path:
        p = self.root / name
        p.mkdir(parents=True, exist_ok=True)
        return p

    def ok(self, name: str, path: Path | list[Path], data4: np.ndarray, **kw) -> None:
        """An entry that must open and give the weighted sum of ``data4`` (scan_y, scan_x, k_y, k_x)."""
        det = tuple(data4.shape[-2:])
        ref = (np.asarray(data4, dtype=np.float64) * weights(det)).sum(axis=(-2, -1))
        rp = self.root / f"_ref_{name}.npy"
        np.save(rp, ref)
        self.add(name, path, "ok", ref=str(rp), mask=self.mask_for(det), **kw)

    def add(
        self, name: str, path: Path | list[Path], expect: str, *, det: tuple[int, int] = (16, 16), **kw
    ) -> None:
        paths = [str(p) for p in (path if isinstance(path, list) else [path])]
        kw.setdefault("mask", self.mask_for(det))
        self.entries.append(Entry(name, paths, expect, **kw))


def _npy_header(shape, descr="<u2", fortran=False) -> bytes:
    """A version 1.0 .npy header (magic, length, dict padded to 64 bytes)."""
    d = f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {tuple(shape)!r}, }}"
    pad = 64 - (10 + len(d) + 1) % 64
    h = (d + " " * pad + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h


def _truncate(src: Path, dst: Path, keep: float | int) -> Path:
    raw = src.read_bytes()
    n = keep if isinstance(keep, int) else int(len(raw) * keep)
    dst.write_bytes(raw[:n])
    return dst


def _patch(src: Path, dst: Path, offset: int, data: bytes) -> Path:
    raw = bytearray(src.read_bytes())
    raw[offset : offset + len(data)] = data
    dst.write_bytes(bytes(raw))
    return dst


def _chunk_files(store: Path) -> list[Path]:
    """The chunk files of a zarr store (v2 ``0.0.0.0`` or v3 ``c/0/0/0/0``), sorted."""
    out = []
    for p in sorted(store.rglob("*")):
        if p.is_file() and p.name not in (".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json"):
            out.append(p)
    return out


def build_npy(b: Builder, data: np.ndarray) -> None:
    d = b.d("npy")
    np.save(d / "valid.npy", data)
    b.ok("npy-valid", d / "valid.npy", data)
    _truncate(d / "valid.npy", d / "truncated.npy", 0.6)
    b.add("npy-truncated", d / "truncated.npy", "error-open")
    (d / "badmagic.npy").write_bytes(b"\x93NUMPX" + (d / "valid.npy").read_bytes()[6:])
    b.add("npy-bad-magic", d / "badmagic.npy", "error-open")
    (d / "garbage-header.npy").write_bytes(
        b"\x93NUMPY\x01\x00"
        + struct.pack("<H", 54)
        + b"{'descr': 'u2', junk"
        + b" " * 33
        + b"\n"
        + data.tobytes()
    )
    b.add("npy-garbage-header", d / "garbage-header.npy", "error-open")
    (d / "header-len-huge.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", 65535) + b"{" * 20)
    b.add("npy-header-length-beyond-file", d / "header-len-huge.npy", "error-open")
    rec = np.zeros(data.shape, dtype=[("a", "<u2"), ("b", "<f4")])
    np.save(d / "structured.npy", rec)
    b.add("npy-structured-dtype", d / "structured.npy", "error-open")
    np.save(d / "datetime.npy", np.zeros(data.shape, dtype="datetime64[s]"))
    b.add("npy-datetime-dtype", d / "datetime.npy", "error-open")
    np.save(d / "complex.npy", data.astype(np.complex64))
    b.add("npy-complex-dtype", d / "complex.npy", "error-open")
    np.save(d / "strings.npy", np.full(data.shape, "ab", dtype="<U2"))
    b.add("npy-unicode-dtype", d / "strings.npy", "error-open")
    np.save(d / "object.npy", np.empty((2, 2, 2, 2), dtype=object), allow_pickle=True)
    b.add("npy-object-dtype", d / "object.npy", "error-open")
    f16 = data.astype(np.float16)
    np.save(d / "float16.npy", f16)
    b.ok("npy-float16", d / "float16.npy", f16.astype(np.float32))
    np.save(d / "stack3d.npy", data.reshape(-1, 16, 16))
    b.add("npy-3d-without-scan-shape", d / "stack3d.npy", "error-open")
    b.ok(
        "npy-3d-with-scan-shape",
        d / "stack3d.npy",
        data,
        cli=["--scan-shape", "4", "5"],
        api={"scan_shape": [4, 5]},
    )
    np.save(d / "image2d.npy", data[0, 0])
    b.add("npy-2d", d / "image2d.npy", "error-open")
    np.save(d / "zero-size.npy", np.zeros((0, 5, 16, 16), np.uint16))
    b.add("npy-zero-size-axis", d / "zero-size.npy", "error-open")
    (d / "huge-declared.npy").write_bytes(_npy_header((1_000_000, 1_000_000, 16, 16)) + data.tobytes())
    b.add("npy-huge-declared-shape", d / "huge-declared.npy", "error-open")
    np.save(d / "fortran.npy", np.asfortranarray(data))
    b.ok("npy-fortran-order", d / "fortran.npy", data)
    np.save(d / "bigendian.npy", data.astype(">u2"))
    b.ok("npy-big-endian", d / "bigendian.npy", data)
    (d / "trailing.npy").write_bytes((d / "valid.npy").read_bytes() + b"\x00" * 1000)
    b.ok("npy-trailing-bytes", d / "trailing.npy", data, note="extra bytes after the array are ignored")
    np.save(d / "-scan.npy", data)
    b.ok("npy-name-starts-with-dash", Path("-scan.npy"), data, cwd=str(d))
    np.save(d / "scan é 1 (copy).npy", data)
    b.ok("npy-name-unicode-spaces", d / "scan é 1 (copy).npy", data)
    (d / "empty.npy").write_bytes(b"")
    b.add("npy-empty-file", d / "empty.npy", "error-open")
    shutil.copy(d / "valid.npy", d / "valid.npy.bak")
    (d / "h5-content.npy").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 200)
    b.add("npy-with-hdf5-content", d / "h5-content.npy", "error-open")
    b.add("npy-nonexistent", d / "nope.npy", "error-open")
    (d / "dir.npy").mkdir()
    b.add("npy-is-a-directory", d / "dir.npy", "error-open")


def build_mib(b: Builder, data: np.ndarray) -> None:
    d = b.d("mib")
    p = F.write_mib(d / "valid.mib", data)
    b.ok("mib-valid", p, data)
    frame = 384 + 16 * 16 * 2
    n = data.shape[0] * data.shape[1]
    for name, keep in (("cut-mid-frame", n * frame - 100), ("cut-whole-frame", (n - 1) * frame)):
        q = _truncate(p, d / f"{name}.mib", keep)
        shutil.copy(p.with_suffix(".hdr"), q.with_suffix(".hdr"))
        b.add(f"mib-{name}", q, "error-open")
    raw = p.read_bytes()
    q = d / "bad-size-field.mib"
    q.write_bytes(raw.replace(b"MQ1,000001,00384", b"MQ1,000001,0x384", 1))
    b.add("mib-header-size-not-a-number", q, "error-open")
    q = d / "bad-depth.mib"
    q.write_bytes(raw.replace(b",U16,", b",U13,"))
    b.add("mib-unknown-depth", q, "error-open")
    q = d / "width0.mib"
    q.write_bytes(raw.replace(b",00016,00016,", b",00000,00016,"))
    b.add("mib-width-zero", q, "error-open")
    q = d / "huge-frame.mib"
    q.write_bytes(raw.replace(b",00016,00016,", b",99999,99999,"))
    b.add("mib-huge-frame", q, "error-open")
    # frames of two sizes: the second half written with 8×8 frames
    small = F.write_mib(d / "_small.mib", data[:, :, :8, :8], hdr=False).read_bytes()
    q = d / "mixed-frames.mib"
    q.write_bytes(raw[: frame * 10] + small[: (384 + 128) * 10])
    shutil.copy(p.with_suffix(".hdr"), q.with_suffix(".hdr"))
    b.add("mib-mixed-frame-sizes", q, "error-open")
    (d / "_small.mib").unlink()
    hdr = p.with_suffix(".hdr").read_text()
    for name, text in (
        (
            "trigger-garbage",
            hdr.replace("Frames per Trigger (Number):\t5", "Frames per Trigger (Number):\tx5"),
        ),
        ("trigger-wrong", hdr.replace("Frames per Trigger (Number):\t5", "Frames per Trigger (Number):\t4")),
        (
            "frames-garbage",
            hdr.replace("Frames in Acquisition (Number):\t20", "Frames in Acquisition (Number):\t2O"),
        ),
    ):
        q = d / f"{name}.mib"
        shutil.copy(p, q)
        q.with_suffix(".hdr").write_text(text)
        # trigger 4 with 20 frames reads a 5×4 scan: nothing in the file can tell; the user asked
        # for what the header says, so it must at least be reported (shape 5×4) — checked in test
        b.add(
            f"mib-hdr-{name}",
            q,
            "ok" if name == "trigger-wrong" else "error-open",
            ref=None if name != "trigger-wrong" else _save_ref(b, name, data.reshape(5, 4, 16, 16)),
            note="a wrong but valid per-trigger count gives the shape the header says",
        )
    q = F.write_mib(d / "nohdr.mib", data, hdr=False)
    b.add("mib-no-hdr-no-scan-shape", q, "error-open")
    b.ok("mib-no-hdr-scan-shape", q, data, cli=["--scan-shape", "4", "5"], api={"scan_shape": [4, 5]})


def _save_ref(b: Builder, name: str, data4: np.ndarray) -> str:
    ref = (np.asarray(data4, dtype=np.float64) * weights(tuple(data4.shape[-2:]))).sum(axis=(-2, -1))
    rp = b.root / f"_ref_{name}.npy"
    np.save(rp, ref)
    return str(rp)


def build_blockfile(b: Builder) -> None:
    d = b.d("blo")
    src = REAL / "test2.blo"
    p = d / "real.blo"
    shutil.copy(src, p)
    from rsciio.blockfile import file_reader

    data = file_reader(str(src), lazy=False)[0]["data"]  # the reference: rosettasciio, eagerly
    b.ok("blo-real-valid", p, np.asarray(data))
    _truncate(p, d / "truncated.blo", 0.7)
    b.add("blo-truncated", d / "truncated.blo", "error-open", det=(5, 5))
    _patch(p, d / "huge-offset.blo", 12, struct.pack("<I", 0x7FFF0000))
    b.add("blo-huge-data-offset", d / "huge-offset.blo", "error-open", det=(5, 5))
    _patch(
        p, d / "shifted-offset.blo", 12, struct.pack("<I", struct.unpack("<I", p.read_bytes()[12:16])[0] + 3)
    )
    b.add("blo-data-offset-off-by-3", d / "shifted-offset.blo", "error-open", det=(5, 5))
    _patch(p, d / "huge-scan.blo", 24, struct.pack("<HH", 60000, 60000))
    b.add("blo-declares-60000x60000", d / "huge-scan.blo", "error-open", det=(5, 5))
    _patch(p, d / "dp0.blo", 20, struct.pack("<H", 0))
    b.add("blo-detector-size-zero", d / "dp0.blo", "error-open", det=(5, 5))
    (d / "magic-only.blo").write_bytes(b"IMGBLO" + b"\x00" * 30)
    b.add("blo-magic-only", d / "magic-only.blo", "error-open", det=(5, 5))


def build_mrc(b: Builder, data: np.ndarray) -> None:
    d = b.d("mrc")
    p = F.write_mrc(d / "valid.mrc", data)
    b.ok("mrc-valid", p, data, cli=["--scan-shape", "4", "5"], api={"scan_shape": [4, 5]})
    ss = {"cli": ["--scan-shape", "4", "5"], "api": {"scan_shape": [4, 5]}}
    _truncate(p, d / "truncated.mrc", 0.6)
    b.add("mrc-truncated", d / "truncated.mrc", "error-open", **ss)
    _patch(p, d / "neg-nx.mrc", 0, struct.pack("<i", -16))
    b.add("mrc-negative-nx", d / "neg-nx.mrc", "error-open", **ss)
    _patch(p, d / "huge-nz.mrc", 8, struct.pack("<i", 2_000_000_000))
    b.add("mrc-huge-nz", d / "huge-nz.mrc", "error-open", **ss)
    _patch(p, d / "bad-mode.mrc", 12, struct.pack("<i", 99))
    b.add("mrc-unknown-mode", d / "bad-mode.mrc", "error-open", **ss)
    _patch(p, d / "ext-2gb.mrc", 92, struct.pack("<i", 2_000_000_000))
    b.add("mrc-2GB-extended-header", d / "ext-2gb.mrc", "error-open", **ss)
    (d / "header-only.mrc").write_bytes(p.read_bytes()[:1024])
    b.add("mrc-header-only", d / "header-only.mrc", "error-open", **ss)
    (d / "short.mrc").write_bytes(b"\x10\x00\x00\x00" * 10)
    b.add("mrc-shorter-than-header", d / "short.mrc", "error-open", **ss)


def build_dm(b: Builder, data: np.ndarray) -> None:
    d = b.d("dm")
    p = F.write_dm4(d / "valid.dm4", data)
    b.ok("dm4-valid", p, data)
    _truncate(p, d / "truncated.dm4", 0.5)
    b.add("dm4-truncated", d / "truncated.dm4", "error-open")
    _truncate(p, d / "truncated-tags.dm4", 200)
    b.add("dm4-truncated-in-tags", d / "truncated-tags.dm4", "error-open")
    (d / "garbage.dm4").write_bytes(b"\x00\x00\x00\x04" + os.urandom(3000))
    b.add("dm4-random-after-version", d / "garbage.dm4", "error-open")


def build_empad(b: Builder) -> None:
    d = b.d("empad")
    data = F.cube((2, 3, 128, 128), dtype=np.float32, seed=3)
    xml = F.write_empad(d, data)
    b.ok("empad-valid", xml, data)
    e2 = b.d("empad-trunc")
    xml2 = F.write_empad(e2, data)
    raw2 = e2 / "scan_x3_y2.raw"
    raw2.write_bytes(raw2.read_bytes()[:100_000])
    b.add("empad-raw-truncated", xml2, "error-open", det=(128, 128))
    e3 = b.d("empad-noraw")
    xml3 = F.write_empad(e3, data)
    (e3 / "scan_x3_y2.raw").unlink()
    b.add("empad-raw-missing", xml3, "error-open", det=(128, 128))
    e4 = b.d("empad-badxml")
    xml4 = F.write_empad(e4, data)
    xml4.write_text(xml4.read_text()[:120])
    b.add("empad-xml-malformed", xml4, "error-open", det=(128, 128))
    e5 = b.d("empad-neg")
    xml5 = F.write_empad(e5, data)
    xml5.write_text(xml5.read_text().replace("<pix_x>3</pix_x>", "<pix_x>-3</pix_x>"))
    b.add("empad-negative-scan-size", xml5, "error-open", det=(128, 128))


def build_tvips(b: Builder) -> None:
    d = b.d("tvips")
    src = REAL / "test_tvips_2345_000.tvips"
    p = d / "real_000.tvips"
    shutil.copy(src, p)
    from rsciio.tvips import file_reader

    data = np.asarray(file_reader(str(src), lazy=False)[0]["data"])  # (6, 4, 5) frames
    ss = {"cli": ["--scan-shape", "2", "3"], "api": {"scan_shape": [2, 3]}}
    b.ok("tvips-real-valid", p, data.reshape(2, 3, *data.shape[-2:]), **ss)
    _truncate(p, d / "trunc_000.tvips", 0.6)
    b.add("tvips-truncated", d / "trunc_000.tvips", "error-open", det=(4, 5), **ss)
    (d / "garbage_000.tvips").write_bytes(os.urandom(800))
    b.add("tvips-random-bytes", d / "garbage_000.tvips", "error-open", det=(4, 5), **ss)


def build_hdf5(b: Builder, data: np.ndarray) -> None:
    d = b.d("h5")
    p = F.write_generic_h5(d / "valid.h5", data)
    b.ok("h5-generic-valid", p, data)
    _truncate(p, d / "truncated.h5", 0.5)
    b.add("h5-truncated", d / "truncated.h5", "error-open")
    with h5py.File(d / "huge.h5", "w") as f:
        f.create_dataset("frames", shape=(10**6, 10**6, 16, 16), dtype="u2", chunks=(1, 64, 16, 16))
    b.add("h5-declares-1e6x1e6-scan", d / "huge.h5", "error-open")
    with h5py.File(d / "missing-chunk.h5", "w") as f:
        ds = f.create_dataset("frames", shape=data.shape, dtype=data.dtype, chunks=(1, 5, 16, 16))
        for i in (0, 1, 3):  # row 2 is never written
            ds[i] = data[i]
    b.add("h5-missing-chunk", d / "missing-chunk.h5", "error-open")
    filled = data.copy()
    filled[2] = 0
    b.ok(
        "h5-missing-chunk-fill-opt-in",
        d / "missing-chunk.h5",
        filled,
        cli=["--fill-missing"],
        api={"fill_missing": True},
    )
    with h5py.File(d / "unwritten.h5", "w") as f:
        f.create_dataset("frames", shape=data.shape, dtype=data.dtype)  # contiguous, never written
    b.add("h5-contiguous-never-written", d / "unwritten.h5", "error-open")
    with h5py.File(d / "nonumeric.h5", "w") as f:
        f.create_dataset("names", data=np.array([b"a", b"b"]))
    b.add("h5-no-numeric-dataset", d / "nonumeric.h5", "error-open")
    p = F.write_py4dstem(d / "valid.emd", data)
    b.ok("emd-py4dstem-valid", p, data)
    _truncate(p, d / "truncated.emd", 0.6)
    b.add("emd-py4dstem-truncated", d / "truncated.emd", "error-open")
    p = F.write_hyperspy(d / "valid.hspy", data)
    b.ok("hspy-valid", p, data)
    _truncate(p, d / "truncated.hspy", 0.7)
    b.add("hspy-truncated", d / "truncated.hspy", "error-open")
    a = b.d("arina")
    m = F.write_arina(a, data)
    (a / "scan_data_000002.h5").unlink()
    b.add("arina-data-file-missing", m, "error-open")


def build_zarr(b: Builder, data: np.ndarray) -> None:
    import zarr

    from virtual_aperture import Calibration, Dataset
    from virtual_aperture.io import save_dataset

    d = b.d("zarr")
    ds = Dataset(data, Calibration(scan_step_nm=2.0))
    own = save_dataset(ds, d / "own.zarr", chunk_bytes=16 * 16 * 2 * 5)  # one scan row per chunk
    b.ok("zarr-own-valid", own, data)

    def copy(name: str) -> Path:
        q = d / name
        shutil.copytree(own, q)
        return q

    def chunks_of(q: Path) -> list[Path]:
        return _chunk_files(q / "data")

    q = copy("own-chunk-deleted.zarr")
    chunks_of(q)[1].unlink()
    b.add("zarr-own-chunk-deleted", q, "error-open")
    q = copy("own-chunk-truncated.zarr")
    c = chunks_of(q)[1]
    c.write_bytes(c.read_bytes()[:7])
    b.add("zarr-own-chunk-truncated", q, "error")
    q = copy("own-chunk-random.zarr")
    c = chunks_of(q)[2]
    c.write_bytes(os.urandom(len(c.read_bytes())))
    b.add("zarr-own-chunk-random-bytes", q, "error")
    q = copy("own-shape-larger.zarr")
    meta = json.loads((q / "data" / "zarr.json").read_text())
    meta["shape"][0] = 6
    (q / "data" / "zarr.json").write_text(json.dumps(meta))
    b.add("zarr-own-shape-edited-larger", q, "error-open")

    for fmt in (2, 3):
        v = f"v{fmt}"
        q = d / f"generic-{v}.zarr"
        z = zarr.create_array(
            str(q), shape=data.shape, dtype=data.dtype, chunks=(1, 5, 16, 16), zarr_format=fmt
        )
        z[...] = data
        b.ok(f"zarr-{v}-valid", q, data)
        meta_name = ".zarray" if fmt == 2 else "zarr.json"

        def variant(name: str, q=q, v=v) -> Path:
            r = d / f"generic-{v}-{name}.zarr"
            shutil.copytree(q, r)
            return r

        r = variant("chunk-deleted")
        _chunk_files(r)[2].unlink()
        b.add(f"zarr-{v}-chunk-deleted", r, "error-open")
        filled = data.copy()
        filled[2] = 0
        b.ok(
            f"zarr-{v}-chunk-deleted-fill-opt-in",
            r,
            filled,
            cli=["--fill-missing"],
            api={"fill_missing": True},
        )
        r = variant("shape-larger")
        meta = json.loads((r / meta_name).read_text())
        meta["shape"][0] = 6
        (r / meta_name).write_text(json.dumps(meta))
        b.add(f"zarr-{v}-shape-edited-larger", r, "error-open")
        r = variant("huge")
        meta = json.loads((r / meta_name).read_text())
        meta["shape"][:2] = [10**6, 10**6]
        (r / meta_name).write_text(json.dumps(meta))
        b.add(f"zarr-{v}-declares-1e6x1e6-scan", r, "error-open")
        r = variant("chunk-random")
        c = _chunk_files(r)[1]
        c.write_bytes(os.urandom(len(c.read_bytes())))
        b.add(f"zarr-{v}-chunk-random-bytes", r, "error")
        r = variant("chunk-truncated")
        c = _chunk_files(r)[1]
        c.write_bytes(c.read_bytes()[:5])
        b.add(f"zarr-{v}-chunk-truncated", r, "error")
        r = variant("meta-garbage")
        (r / meta_name).write_text("{not json")
        b.add(f"zarr-{v}-metadata-not-json", r, "error-open")


def build_special(b: Builder) -> None:
    d = b.d("special")
    for ext in (".npy", ".mib", ".h5"):
        f = d / f"fifo{ext}"
        os.mkfifo(f)
        b.add(f"fifo{ext}", f, "error-open")
    (d / "urandom.npy").symlink_to("/dev/urandom")
    b.add("symlink-to-dev-urandom.npy", d / "urandom.npy", "error-open")
    (d / "null.h5").symlink_to("/dev/null")
    b.add("symlink-to-dev-null.h5", d / "null.h5", "error-open")
    (d / "zero.mrc").symlink_to("/dev/zero")
    b.add("symlink-to-dev-zero.mrc", d / "zero.mrc", "error-open")
    (d / "dangling.npy").symlink_to(d / "does-not-exist.npy")
    b.add("dangling-symlink.npy", d / "dangling.npy", "error-open")
    (d / "scan.xyz").write_bytes(b"\x00" * 100)
    b.add("unknown-extension", d / "scan.xyz", "error-open")
    (d / "noext").write_bytes(b"\x00" * 100)
    b.add("no-extension", d / "noext", "error-open")


def build_corpus(root: Path) -> list[Entry]:
    """Write every corpus file under ``root`` and return the entries."""
    root = Path(root)
    b = Builder(root)
    data = F.cube()
    build_npy(b, data)
    build_mib(b, data)
    build_blockfile(b)
    build_mrc(b, data)
    build_dm(b, data)
    build_empad(b)
    build_tvips(b)
    build_hdf5(b, data)
    build_zarr(b, data)
    build_special(b)
    return b.entries
