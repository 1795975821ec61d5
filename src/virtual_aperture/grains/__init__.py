"""Crowded agglomerates: grain proposals, boundary checks, vector clustering, tracking.

* :func:`propose_grains` – spatially coherent segmentation by diffraction similarity;
* :func:`grain_coherence`, :func:`neighbour_dissimilarity` – boundary checks for painted grains;
* :func:`find_vectors`, :func:`cluster_vectors`, :func:`vector_selective_sum` – separate grains
  that overlap in projection by their reflections;
* :func:`estimate_drift`, :func:`track_grains` – one id per grain through a tilt series.
"""

from .proposal import GrainProposal
from .propose import propose_grains
from .scan_peaks import find_vectors
from .similarity import grain_coherence, neighbour_dissimilarity
from .tracking import Tracks, estimate_drift, track_grains
from .vectors import Crystal, VectorClusters, cluster_vectors, vector_selective_sum

__all__ = [
    "Crystal",
    "GrainProposal",
    "Tracks",
    "VectorClusters",
    "cluster_vectors",
    "estimate_drift",
    "find_vectors",
    "grain_coherence",
    "neighbour_dissimilarity",
    "propose_grains",
    "track_grains",
    "vector_selective_sum",
]
