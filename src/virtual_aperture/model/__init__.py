"""Data model: the dataset class and its calibration (no compute, no GUI)."""

from .calibration import Calibration, electron_wavelength
from .dataset import DIMS_4D, DIMS_5D, Dataset, scan_chunks

__all__ = ["Calibration", "Dataset", "DIMS_4D", "DIMS_5D", "electron_wavelength", "scan_chunks"]
