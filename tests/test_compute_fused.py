"""The fused kernels (reduce a file's stored records in place: header skip, byte swap, flipped rows)
equal decoding the frames with numpy and then reducing, on every pixel layout FrameFile supports;
and the .mib/EMPAD paths of virtual_image / aperture_sums take them (no decoded copy)."""

from __future__ import annotations

import numpy as np
import pytest

from virtual_aperture.compute import aperture_sums, virtual_image
from virtual_aperture.compute.fused import sum_into, virtual_records
from virtual_aperture.compute.source import Source
from virtual_aperture.compute.validate import prepare_masks
from virtual_aperture.io import open_dataset
from virtual_aperture.io.errors import ReadError
from virtual_aperture.io.framefile import FrameFile

from data_factories import write_mib

K = (9, 11)  # odd detector sides: no accidental symmetry of the flip
N = 37


def _write(path, dtype, lead, tail, seed=0):
    """N records of ``lead`` garbage bytes, a (9, 11) frame of ``dtype`` and ``tail`` garbage bytes;
    returns the frames as stored (native)."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        frames = rng.normal(100, 30, (N, *K)).astype(dt)
    else:
        frames = rng.integers(0, np.iinfo(dt).max, (N, *K), endpoint=True, dtype=dt.newbyteorder("="))
        frames = frames.astype(dt)
    with open(path, "wb") as f:
        f.write(rng.integers(0, 256, 5, dtype=np.uint8).tobytes())  # bytes before the first record
        for fr in frames:
            f.write(rng.integers(0, 256, lead, dtype=np.uint8).tobytes())
            f.write(fr.tobytes())
            f.write(rng.integers(0, 256, tail, dtype=np.uint8).tobytes())
    return frames.astype(dt.newbyteorder("="))


LAYOUTS = [
    (dt, lead, tail, flip)
    for dt in (">u2", "<u2", "u1", ">u4", "<u4", "<f4", "<f8")
    for lead, tail in ((0, 0), (384, 0), (8, 24))
    for flip in (False, True)
]


@pytest.mark.parametrize("dtype,lead,tail,flip", LAYOUTS)
def test_fused_equals_decode_then_reduce(tmp_path, dtype, lead, tail, flip):
    shown = _write(tmp_path / "f.bin", dtype, lead, tail)
    if flip:
        shown = shown[:, ::-1]
    size = np.dtype(dtype).itemsize
    ff = FrameFile(
        tmp_path / "f.bin",
        shape=(1, N, *K),
        dtype=dtype,
        offset=5 + lead,
        stride=lead + K[0] * K[1] * size + tail,
        lead=lead,
        flip_y=flip,
    )
    assert ff.fused
    rng = np.random.default_rng(1)
    idx = np.array([0, 1, 2, 5, 6, 20, 36])
    rec = ff.records(idx)
    ref = shown[idx].astype(np.float64)
    binary = np.zeros(K, bool)
    binary[2:7, 1:10] = True
    binary[4, 3] = False
    dense = rng.random((2, *K))
    dense[:, 0] = 0  # bounding box not at the origin
    for mask in (binary, dense):
        masks = prepare_masks(mask, K)
        want = np.einsum("nij,mij->mn", ref, mask.astype(np.float64).reshape(-1, *K))
        got = virtual_records(ff, rec, masks)
        np.testing.assert_allclose(got, want, rtol=1e-12)
        if np.dtype(dtype).kind != "f" and mask.dtype == bool:  # integer sums: exact
            assert np.array_equal(got, want)
    lab = np.array([1, 0, 1, 2, 0, 1, 2])
    pos = np.array([6, 0, 1, 3, 2, 5, 4])  # any order of records
    out = np.full((3, K[0] * K[1]), 7.0)
    sum_into(ff, rec, pos, lab, out)
    want = np.full((3, K[0] * K[1]), 7.0)
    for p, lb in zip(pos, lab):
        want[lb] += ref[p].reshape(-1)
    np.testing.assert_allclose(out, want, rtol=1e-12)
    if np.dtype(dtype).kind != "f":
        assert np.array_equal(out, want)
    # the decoded frames (the slow path) are the same numbers
    assert np.array_equal(ff.take(idx), shown[idx])


def test_fused_sums_do_not_overflow_uint32_runs(tmp_path):
    """70000 frames of 65535 in one label: the uint32 run accumulator is flushed in time."""
    n = 70000
    frame = np.full((1, 2), 65535, ">u2")
    (tmp_path / "big.bin").write_bytes(np.repeat(frame, n, axis=0).tobytes())
    ff = FrameFile(tmp_path / "big.bin", shape=(1, n, 1, 2), dtype=">u2", offset=0)
    out = np.zeros((1, 2))
    sum_into(ff, ff.records(np.arange(n)), np.arange(n), np.zeros(n, np.int64), out)
    assert np.array_equal(out, [[65535.0 * n, 65535.0 * n]])


def test_records_of_a_truncated_file_fail_clearly(tmp_path):
    _write(tmp_path / "f.bin", ">u2", 16, 0)
    ff = FrameFile(tmp_path / "f.bin", shape=(1, N, *K), dtype=">u2", offset=5 + 16, stride=16 + 198, lead=16)
    with open(tmp_path / "f.bin", "r+b") as f:
        f.truncate(5 + 10 * (16 + 198))
    with pytest.raises(ReadError, match="truncated or replaced"):
        ff.records(np.arange(5, 20))


@pytest.mark.parametrize("depth,dtype", [("U08", np.uint8), ("U16", np.uint16), ("U32", np.uint32)])
def test_mib_takes_the_fused_path(tmp_path, monkeypatch, depth, dtype):
    """No frame of a .mib is decoded into a copy for a virtual image or an aperture sum, and the
    numbers are the numpy reference's."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, min(np.iinfo(dtype).max, 60000), (7, 6, 16, 12)).astype(dtype)
    write_mib(tmp_path / "s.mib", a, depth=depth)
    ref = a[:, :, ::-1]  # rosettasciio (and so open_dataset) shows Merlin frames upside down
    ds = open_dataset(tmp_path / "s.mib")
    assert Source(ds).fused

    def boom(*args, **kwargs):
        raise AssertionError("a frame was decoded")

    monkeypatch.setattr(FrameFile, "_decode", boom)
    ann = np.zeros((16, 12), bool)
    ann[1:9, 2:11] = True
    dense = rng.random((3, 16, 12))
    lab = rng.integers(0, 4, (7, 6))
    for m in (ann, dense):
        got = virtual_image(ds, m, memory_budget=16 * 12 * 4 * 10)  # several pieces
        want = np.einsum("yxij,...ij->...yx", ref.astype(np.float64), m.astype(np.float64))
        np.testing.assert_allclose(got, want, rtol=1e-12)
    got = aperture_sums(ds, lab, memory_budget=16 * 12 * 4 * 10)
    for k in range(1, 4):
        assert np.array_equal(got[k].sum, ref[lab == k].sum(axis=0, dtype=np.float64))
        assert got[k].count == int((lab == k).sum())
