"""The built-in sample: a simulated crowded agglomerate of nanocrystals (4D or 5D STEM).

See :func:`simulate_agglomerate` and ``docs/sample.md``.
"""

from .simulate import NOISELESS_DOSE, simulate_agglomerate
from .structures import builtin_structures, load_structure
from .truth import Truth

__all__ = ["NOISELESS_DOSE", "Truth", "builtin_structures", "load_structure", "simulate_agglomerate"]
