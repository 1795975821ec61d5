"""Type stub of the lazily loaded public API (see ``__init__.py``; kept in step by a test)."""

__version__: str

from .compute import ApertureSum as ApertureSum
from .compute import ApertureSumResult as ApertureSumResult
from .compute import Cancelled as Cancelled
from .compute import CancelToken as CancelToken
from .compute import VirtualImageUpdater as VirtualImageUpdater
from .compute import aperture_sums as aperture_sums
from .compute import detectors as detectors
from .compute import get_client as get_client
from .compute import pattern_at as pattern_at
from .compute import region_mean as region_mean
from .compute import virtual_image as virtual_image
from .crystal import IndexingError as IndexingError
from .crystal import Reflections as Reflections
from .crystal import charge_flip as charge_flip
from .crystal import find_bragg_peaks as find_bragg_peaks
from .crystal import index_tilt_series as index_tilt_series
from .crystal import index_zone_axis as index_zone_axis
from .crystal import integrate_reflections as integrate_reflections
from .crystal import lattice_centring as lattice_centring
from .crystal import match_to_reference as match_to_reference
from .crystal import merge_reflections as merge_reflections
from .crystal import simulate_reflections as simulate_reflections
from .crystal import solve_structure as solve_structure
from .crystal import suggest_laue_class as suggest_laue_class
from .crystal import suggest_space_groups as suggest_space_groups
from .crystal.indexing import IndexingResult as IndexingResult
from .crystal.merge import MergeStats as MergeStats
from .crystal.peaks import PeakList as PeakList
from .crystal.phasing import PhasingResult as PhasingResult
from .crystal.solve import Solution as Solution
from .crystal.zoneaxis import ZoneAxisResult as ZoneAxisResult
from .grains import cluster_vectors as cluster_vectors
from .grains import estimate_drift as estimate_drift
from .grains import find_vectors as find_vectors
from .grains import grain_coherence as grain_coherence
from .grains import neighbour_dissimilarity as neighbour_dissimilarity
from .grains import propose_grains as propose_grains
from .grains import track_grains as track_grains
from .grains import vector_selective_sum as vector_selective_sum
from .grains.proposal import GrainProposal as GrainProposal
from .grains.tracking import Tracks as Tracks
from .grains.vectors import VectorClusters as VectorClusters
from .io import can_read as can_read
from .io import open_dataset as open_dataset
from .io import open_tilt_series as open_tilt_series
from .io import save_dataset as save_dataset
from .io.errors import ReadError as ReadError
from .model.calibration import Calibration as Calibration
from .model.calibration import electron_wavelength as electron_wavelength
from .model.dataset import Dataset as Dataset
from .sample import builtin_structures as builtin_structures
from .sample import load_structure as load_structure
from .sample import simulate_agglomerate as simulate_agglomerate
from .sample.truth import Truth as Truth
from .session import Session as Session
from .session import load_session as load_session
from .session import save_session as save_session
from .workflow import GrainResult as GrainResult
from .workflow import solve_grain as solve_grain
from .workflow import write_grain as write_grain

__all__: list[str]
