"""JSON report of every figure of merit, written atomically."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ._atomic import write_text

__all__ = ["write_report", "to_jsonable"]


def to_jsonable(obj):
    """Convert numpy scalars/arrays, tuples and non-finite floats (→ null) for JSON."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    return obj


def write_report(path: str | os.PathLike, report: dict, *, overwrite: bool = False) -> Path:
    """Write ``report`` as indented JSON (non-finite numbers become null)."""
    return write_text(path, json.dumps(to_jsonable(report), indent=2) + "\n", overwrite=overwrite)
