"""cctbx side of bench_phasing.py, in its own process (cctbx and numba/numpy LAPACK do not mix in one).

python _cctbx_worker.py smtbx FILE.hkl "a b c al be ga" HALL N_SITES SEED  -> JSON {time, peaks, ...}
python _cctbx_worker.py r1 FILE.hkl "a b c al be ga" HALL STRUCTURE.cif   -> JSON {r1}
"""

import io
import json
import sys
import time

from cctbx import crystal, maptbx
from cctbx.array_family import flex
from iotbx import cif as iotbx_cif
from iotbx import reflection_file_reader


def f_obs_of(hkl, cell, hall):
    cs = crystal.symmetry(unit_cell=cell, space_group_symbol="Hall: " + hall)
    arrays = reflection_file_reader.any_reflection_file(f"{hkl}=hklf4").as_miller_arrays(crystal_symmetry=cs)
    return arrays[0].merge_equivalents().array().f_sq_as_f()


class _Iterations(int):
    """smtbx multiplies its iteration limit by 1.5 after two failed attempts, making it a float that
    itertools.islice refuses (Python 3); this int stays an int, as smtbx intends."""

    def __mul__(self, other):
        return _Iterations(int(int(self) * other))

    __rmul__ = __mul__


def smtbx(f_obs, n_sites, seed):
    from smtbx.ab_initio import charge_flipping

    flex.set_random_seed(seed)
    t0 = time.perf_counter()
    flipping = charge_flipping.weak_reflection_improved_iterator(delta=None)
    solving = charge_flipping.solving_iterator(
        flipping,
        f_obs,
        normalisations_for=charge_flipping.amplitude_quasi_normalisations,
        max_solving_iterations=_Iterations(charge_flipping.solving_iterator.max_solving_iterations),
    )
    charge_flipping.loop(solving, verbose=False, out=io.StringIO())
    peaks = []
    if solving.f_calc_solutions:
        fft_map = solving.f_calc_solutions[0][0].fft_map(symmetry_flags=maptbx.use_space_group_symmetry)
        params = maptbx.peak_search_parameters(
            interpolate=True, min_distance_sym_equiv=1.0, max_clusters=int(1.5 * n_sites) + 5
        )
        peaks = [list(x) for x in fft_map.peak_search(params, verify_symmetry=False).all().sites()][:n_sites]
    return {
        "time": time.perf_counter() - t0,
        "phase_transition": bool(solving.had_phase_transition),
        "peaks": peaks,
    }


def r1(f_obs, cif):
    xs = list(iotbx_cif.reader(file_path=cif).build_crystal_structures().values())[0]
    xs.scattering_type_registry(table="electron")
    fo = f_obs.customized_copy(crystal_symmetry=xs.crystal_symmetry()).map_to_asu()
    fc = fo.structure_factors_from_scatterers(xs, algorithm="direct").f_calc().amplitudes()
    fo, fc = fo.common_sets(fc)
    o, c = fo.data(), fc.data()
    k = flex.sum(o * c) / flex.sum(c * c)
    return {"r1": flex.sum(flex.abs(o - k * c)) / flex.sum(o), "n": fo.size()}


if __name__ == "__main__":
    mode, hkl, cell, hall = sys.argv[1:5]
    fo = f_obs_of(hkl, tuple(float(v) for v in cell.split()), hall)
    out = smtbx(fo, int(sys.argv[5]), int(sys.argv[6])) if mode == "smtbx" else r1(fo, sys.argv[5])
    print(json.dumps(out))
