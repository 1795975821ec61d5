"""Crowded agglomerates: grain proposals, boundary checks, vector clustering, tracking."""

from .propose import GrainProposal, propose_grains
from .similarity import grain_coherence, neighbour_dissimilarity

__all__ = ["GrainProposal", "grain_coherence", "neighbour_dissimilarity", "propose_grains"]
