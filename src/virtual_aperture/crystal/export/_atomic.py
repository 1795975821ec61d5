"""Atomic file writes for the exporters: the package's one helper, :mod:`virtual_aperture._atomic`."""

from ..._atomic import atomic_path, check_target, write_text, write_with

__all__ = ["atomic_path", "check_target", "write_text", "write_with"]
