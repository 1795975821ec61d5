"""The one exception the readers raise."""

from __future__ import annotations

import os
from typing import Any


class ReadError(ValueError):
    """A dataset could not be opened; the message names the file and the problem."""


def fail(path: Any, problem: str) -> ReadError:
    """A :class:`ReadError` whose message starts with the file name (use with ``raise ... from``)."""
    if isinstance(path, (list, tuple)):
        where = ", ".join(os.fspath(p) for p in path[:3]) + (" ..." if len(path) > 3 else "")
    else:
        where = os.fspath(path) if path is not None else "<no path>"
    return ReadError(f"{where}: {problem}")
