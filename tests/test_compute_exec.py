"""Executors: distributed client gives identical results, cancel, progress, memory budget, bad clients."""

import numpy as np
import pytest

from virtual_aperture.compute import (
    Cancelled,
    CancelToken,
    aperture_sums,
    get_client,
    parse_memory_budget,
    virtual_image,
)
from virtual_aperture.compute.source import Source
from virtual_aperture.compute.virtual import block_plan

from builders import streamed

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_distributed_identical_results(client):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4000, (2, 8, 6, 7, 9), dtype=np.uint16)
    masks = rng.random((3, 7, 9))
    lab = rng.integers(0, 4, (8, 6))
    shifts = rng.normal(0, 1, (8, 6, 2))
    for data in (a, streamed(a, (1, 3, 6, 7, 9))):
        np.testing.assert_array_equal(virtual_image(data, masks, client=client), virtual_image(data, masks))
        np.testing.assert_array_equal(
            virtual_image(data, masks, shifts=shifts, client=client),
            virtual_image(data, masks, shifts=shifts),
        )
        calls = []
        got = aperture_sums(data, lab, client=client, progress=lambda d, t: calls.append((d, t)))  # noqa: B023
        want = aperture_sums(data, lab)
        assert calls[-1][0] == calls[-1][1] > 0
        assert got.keys() == want.keys()
        for k in got:
            np.testing.assert_array_equal(got[k].sum, want[k].sum)
            np.testing.assert_array_equal(got[k].count, want[k].count)


def test_client_address_and_get_client(client):
    a = np.arange(2 * 2 * 3 * 3, dtype=np.uint16).reshape(2, 2, 3, 3)
    c2 = get_client(client.scheduler.address)
    try:
        np.testing.assert_array_equal(
            virtual_image(a, np.ones((3, 3)), client=c2), virtual_image(a, np.ones((3, 3)))
        )
    finally:
        c2.close()
    assert get_client(None) is None
    assert get_client(client) is client


def test_closed_client_is_a_clear_error():
    cluster = distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None)
    c = distributed.Client(cluster)
    c.close()
    cluster.close()
    with pytest.raises(ValueError, match="client is not usable"):
        virtual_image(np.zeros((2, 2, 3, 3)), np.ones((3, 3)), client=c)
    with pytest.raises(ValueError, match="must be a dask.distributed Client"):
        virtual_image(np.zeros((2, 2, 3, 3)), np.ones((3, 3)), client=42)


@pytest.mark.parametrize("kind", ["numpy", "streamed"])
def test_cancel_stops_early(kind, monkeypatch):
    monkeypatch.setattr("virtual_aperture.compute.source.SLAB_BYTES", 2 * 2**20)
    monkeypatch.setattr("virtual_aperture.compute.sums._BATCH_BYTES", 2 * 2**20)
    a = np.ones((32, 8, 256, 256), np.uint16)  # 32 MiB: several in-memory slabs / chunks
    data = a if kind == "numpy" else streamed(a, (2, 8, 256, 256))
    token = CancelToken()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done >= 1:
            token.cancel()

    with pytest.raises(Cancelled):
        virtual_image(data, np.ones((256, 256)), progress=progress, cancel=token)
    assert token.cancelled and max(seen) < 16
    with pytest.raises(Cancelled):
        aperture_sums(data, np.ones((32, 8), int), cancel=token)


def test_memory_budget_bounds_chunks():
    a = streamed(np.zeros((64, 64, 32, 32), np.uint16), (64, 64, 32, 32))  # one 8 MiB chunk
    arr, _, workers = block_plan(Source(a), None, parse_memory_budget("2MiB"))
    chunk_bytes = np.prod([max(c) for c in arr.chunks]) * 2
    assert chunk_bytes * 2 * (workers + 1) <= 2 * 2**20
    np.testing.assert_array_equal(
        virtual_image(a, np.ones((32, 32)), memory_budget="2MiB"), np.zeros((64, 64))
    )


@pytest.mark.parametrize(
    "text, value", [("2GB", 2 * 10**9), ("512 MiB", 512 * 2**20), (1000, 1000), ("1.5k", 1500)]
)
def test_parse_memory_budget(text, value):
    assert parse_memory_budget(text) == value


@pytest.mark.parametrize("bad", ["-1GB", "2 parsecs", 0, float("nan"), True, [1]])
def test_parse_memory_budget_rejects(bad):
    with pytest.raises(ValueError, match="memory budget"):
        parse_memory_budget(bad)
