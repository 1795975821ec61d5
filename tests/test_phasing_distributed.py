"""charge_flip on a dask.distributed client (in-process), progress and cancel."""

import threading

import numpy as np
import pytest
from test_phasing import P212121_CELL, P212121_SITES, make_structure

from virtual_aperture.compute import Cancelled
from virtual_aperture.crystal.phasing import charge_flip
from virtual_aperture.crystal.solve import simulate_reflections


@pytest.fixture(scope="module")
def refl():
    st = make_structure(P212121_CELL, "P 21 21 21", P212121_SITES)
    return simulate_reflections(st, d_min=0.9, tilt_range_deg=35, noise=0.05, seed=2)


def test_distributed_client_gives_same_result_as_threads(refl):
    distributed = pytest.importorskip("distributed")
    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
    ) as client:
        a = charge_flip(refl, starts=2, seed=3, max_iterations=300, client=client)
    b = charge_flip(refl, starts=2, seed=3, max_iterations=300)
    # threads stop a start once another has a solution; starts converged later are not used, so
    # the starts that count (and the pick) are the same as on the client, where nothing stops
    used = [i for i, s in enumerate(b.starts) if not s.get("after_solution")]
    assert used and all(not a.starts[i].get("after_solution") for i in used)
    assert [a.starts[i]["iterations"] for i in used] == [b.starts[i]["iterations"] for i in used]
    assert a.best_start == b.best_start
    np.testing.assert_allclose(a.r_cf, b.r_cf, rtol=1e-5)
    np.testing.assert_allclose(a.phases, b.phases, atol=1e-4)


def test_progress_and_cancel(refl):
    calls = []
    charge_flip(refl, starts=1, seed=0, max_iterations=100, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1][0] == calls[-1][1] and all(d <= t for d, t in calls)
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        charge_flip(refl, starts=2, seed=0, max_iterations=100, cancel=ev)
