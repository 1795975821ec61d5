"""Tiny 4D-STEM files in every format the readers support, written by the formats' real writers
(HyperSpy/rosettasciio, h5py, zarr, numpy, mrcfile) or, for formats nothing here can write,
byte by byte from the format's published layout (Merlin .mib + .hdr, EMPAD .xml + .raw,
py4DSTEM EMD 1.0, Dectris Arina master + data files). Owned by the io tests."""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np

SHAPE = (4, 5, 16, 16)  # scan_y, scan_x, k_y, k_x


def cube(shape=SHAPE, dtype=np.uint16, seed=0) -> np.ndarray:
    """A deterministic test cube whose every frame differs."""
    rng = np.random.default_rng(seed)
    hi = 250 if np.dtype(dtype).itemsize == 1 else 4000
    return rng.integers(0, hi, size=shape).astype(dtype)


# ---- through HyperSpy / rosettasciio writers --------------------------------------------------
def hyperspy_signal(data, *, scan_step_nm=2.5, pixel_inv_nm=0.1, beam_kv=200.0, det_units="1/nm"):
    import hyperspy.api as hs

    s = hs.signals.Signal2D(data)
    nav = s.axes_manager.navigation_axes  # (x, y) order in HyperSpy
    sig = s.axes_manager.signal_axes
    for ax in nav[:2]:
        ax.scale, ax.units = scan_step_nm, "nm"
    for ax in sig:
        ax.scale, ax.units = pixel_inv_nm, det_units
    s.metadata.set_item("Acquisition_instrument.TEM.beam_energy", beam_kv)
    return s


def write_hyperspy(path: Path, data, **cal) -> Path:
    """Write with ``Signal2D.save`` (HyperSpy picks the rosettasciio writer from the extension)."""
    s = hyperspy_signal(data, **cal)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s.save(str(path), overwrite=True)
    if path.suffix == ".tvips":  # the TVIPS writer numbers its files
        return path.with_name(path.stem + "_000.tvips")
    return path


def write_mrc(path: Path, data) -> Path:
    """A stack of frames (scan_y*scan_x, k_y, k_x) written with ``mrcfile``."""
    import mrcfile

    with mrcfile.new(str(path), overwrite=True) as m:
        m.set_data(np.ascontiguousarray(data.reshape((-1,) + data.shape[-2:])))
    return path


# ---- byte-exact files following the published layouts ----------------------------------------
def mib_header(seq: int, height: int, width: int, depth: str = "U16") -> bytes:
    """One Merlin single-chip frame header (384 bytes, comma separated ASCII, zero padded), in the
    layout of the Quantum Detectors Merlin manual: MQ1, sequence, header size, chips, width,
    height, depth, layout, chip select, timestamp, shutter, counter, colour, gain, thresholds,
    DACs, MQ1A extension with ISO timestamp, exposure in ns, bit depth."""
    fields = [
        "MQ1",
        f"{seq:06d}",
        "00384",
        "01",
        f"{width:05d}",
        f"{height:05d}",
        depth,
        "   1x1",
        "01",
        "2024-01-01 12:00:00.000000",
        "0.001000",
        "0",
        "0",
        "0",
        *["1.000000E+1"] * 8,
        "3RX",
        *["000"] * 30,
        "MQ1A",
        f"2024-01-01T12:00:{seq % 60:02d}.000000000Z",
        "1000000ns",
        "12",
        "",
    ]
    head = ",".join(fields).encode("ascii")
    assert len(head) <= 384
    return head + b"\x00" * (384 - len(head))


def write_mib(path: Path, stored: np.ndarray, *, hdr: bool = True, depth: str = "U16") -> Path:
    """Merlin .mib: per frame a 384-byte header then the big-endian pixels as stored by the
    camera; plus the .hdr acquisition header (tab separated) giving frames and frames per line."""
    sy, sx, h, w = stored.shape
    dt = {"U08": ">u1", "U16": ">u2", "U32": ">u4"}[depth]
    with open(path, "wb") as f:
        for i, frame in enumerate(stored.reshape(-1, h, w)):
            f.write(mib_header(i + 1, h, w, depth))
            f.write(frame.astype(dt).tobytes())
    if hdr:
        path.with_suffix(".hdr").write_text(
            "HDR,\t\n"
            "Time and Date Stamp (day, mnth, yr, hr, min, s):\t01/01/2024 12:00:00\n"
            "Chip ID:\tW000_A0,-,-,-\n"
            "Chip Type (Medipix 3.0, Medipix 3.1, Medipix 3RX):\tMedipix 3RX\n"
            "Assembly Size (NX1, 2X2):\t   1x1\n"
            "Chip Mode  (SPM, CSM, CM, CSCM):\tSPM\n"
            "Counter Depth (number):\t12\n"
            f"Frames in Acquisition (Number):\t{sy * sx}\n"
            f"Frames per Trigger (Number):\t{sx}\n"
            "End\t\n"
        )
    return path


def write_empad(folder: Path, data: np.ndarray, *, fov_m=(2e-8, 2.5e-8), pixel_per_m=1e-10) -> Path:
    """EMPAD: a ``.raw`` of little-endian float32 frames of 130 rows × 128 columns (the 128×128
    image then 2 metadata rows) and the ``.xml`` naming it, with scan size and calibration, written
    without whitespace between elements like the acquisition software does."""
    sy, sx = data.shape[:2]
    assert data.shape[2:] == (128, 128)
    raw = folder / f"scan_x{sx}_y{sy}.raw"
    frames = np.zeros((sy, sx, 130, 128), "<f4")
    frames[:, :, :128] = data
    raw.write_bytes(frames.tobytes())
    xml = folder / f"scan_x{sx}_y{sy}.xml"
    xml.write_text(
        '<?xml version="1.0"?>'
        f'<root><raw_file filename="{raw.name}"/><pix_x>{sx}</pix_x><pix_y>{sy}</pix_y>'
        "<timestamp><isoformat>2024-01-01T12:00:00</isoformat></timestamp>"
        f"<iom_measurements><optics><get_full_scan_field_of_view>[{fov_m[0]}, {fov_m[1]}]"
        "</get_full_scan_field_of_view></optics>"
        f"<calibrated_pixelsize>{pixel_per_m}</calibrated_pixelsize></iom_measurements></root>"
    )
    return xml


def write_py4dstem(path: Path, data: np.ndarray, *, r_step_A=25.0, q_step=0.012, kv=300.0) -> Path:
    """py4DSTEM / emdfile EMD 1.0 layout via h5py: root attrs ``emd_group_type='root'``,
    ``version_major=1``; ``<root>/datacube`` with ``emd_group_type=1``,
    ``python_class='DataCube'``, dataset ``data`` and ``dim0..dim3`` vectors with ``name`` and
    ``units`` attributes (Å for real space, A^-1 for reciprocal); beam energy in the
    ``metadatabundle/calibration`` group (volts)."""
    with h5py.File(path, "w") as f:
        f.attrs.update({"emd_group_type": "root", "version_major": 1, "version_minor": 0})
        root = f.create_group("experiment")
        root.attrs.update({"emd_group_type": "root", "python_class": "Root"})
        g = root.create_group("datacube")
        g.attrs.update({"emd_group_type": 1, "python_class": "DataCube"})
        g.create_dataset("data", data=data, chunks=(1, data.shape[1]) + data.shape[2:])
        for i, (name, step, units) in enumerate(
            [("Rx", r_step_A, "A"), ("Ry", r_step_A, "A"), ("Qx", q_step, "A^-1"), ("Qy", q_step, "A^-1")]
        ):
            d = g.create_dataset(f"dim{i}", data=np.arange(2) * step)
            d.attrs.update({"name": name, "units": units})
        cal = g.create_group("metadatabundle/calibration")
        cal.attrs.update({"emd_group_type": 0, "python_class": "Metadata"})
        cal.create_dataset("beam_energy", data=kv * 1e3)
    return path


def write_arina(
    folder: Path,
    data: np.ndarray,
    *,
    per_file: int = 8,
    kv: float = 300.0,
    pixel_m: float = 75e-6,
    distance_m: float = 0.5,
    name: str = "scan",
) -> Path:
    """Dectris Arina: ``<name>_master.h5`` whose ``entry/data/data_NNNNNN`` are HDF5 external links
    to ``<name>_data_NNNNNN.h5`` files each holding ``entry/data/data`` (frames, k_y, k_x), plus
    ``entry/instrument/beam/incident_wavelength`` (Å) and detector pixel size and distance (m).
    Written uncompressed (the camera uses bitshuffle-LZ4, which needs hdf5plugin)."""
    from virtual_aperture.model import electron_wavelength

    frames = data.reshape((-1,) + data.shape[-2:])
    master = folder / f"{name}_master.h5"
    with h5py.File(master, "w") as m:
        m.attrs["NX_class"] = "NXroot"
        for k, start in enumerate(range(0, len(frames), per_file), start=1):
            fn = f"{name}_data_{k:06d}.h5"
            with h5py.File(folder / fn, "w") as d:
                d.create_dataset("entry/data/data", data=frames[start : start + per_file])
            m[f"entry/data/data_{k:06d}"] = h5py.ExternalLink(fn, "entry/data/data")
        m["entry/instrument/beam/incident_wavelength"] = electron_wavelength(kv)
        m["entry/instrument/detector/x_pixel_size"] = pixel_m
        m["entry/instrument/detector/detector_distance"] = distance_m
    return master


def write_generic_h5(path: Path, data: np.ndarray, name: str = "some/where/frames") -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset(name, data=data)
        f.create_dataset("some/thumbnail", data=np.zeros((4, 5)))
    return path


def write_zarr_array(path: Path, data: np.ndarray) -> Path:
    import zarr

    z = zarr.create_array(str(path), shape=data.shape, dtype=data.dtype, chunks=(1,) + data.shape[1:])
    z[...] = data
    return path


# ---- Gatan DigitalMicrograph 4 ----------------------------------------------------------------
_DM_ENC = {
    np.dtype("int16"): 2,
    np.dtype("int32"): 3,
    np.dtype("uint16"): 4,
    np.dtype("uint32"): 5,
    np.dtype("float32"): 6,
    np.dtype("float64"): 7,
    np.dtype("int8"): 9,
    np.dtype("uint8"): 10,
}
_DM_IMAGE_TYPE = {
    np.dtype("int16"): 1,
    np.dtype("float32"): 2,
    np.dtype("uint8"): 6,
    np.dtype("int32"): 7,
    np.dtype("int8"): 9,
    np.dtype("uint16"): 10,
    np.dtype("uint32"): 11,
    np.dtype("float64"): 12,
}


def _dm_name(name: str) -> bytes:
    raw = name.encode("latin-1")
    return len(raw).to_bytes(2, "big") + raw


def _dm_data(name: str, info: list[int], payload: bytes) -> bytes:
    """DM4 data tag: 0x15, name, tag size (8 bytes), '%%%%', info-array length and entries
    (8-byte big-endian each), then the payload in the file's byte order (little endian here)."""
    body = (
        b"%%%%" + len(info).to_bytes(8, "big") + b"".join(int(i).to_bytes(8, "big") for i in info) + payload
    )
    return b"\x15" + _dm_name(name) + len(body).to_bytes(8, "big") + body


def _dm_group(name: str, tags: list[bytes]) -> bytes:
    """DM4 tag group: 0x14, name, tag size (8 bytes), sorted, open, number of tags (8 bytes), tags."""
    body = b"\x00\x01" + len(tags).to_bytes(8, "big") + b"".join(tags)
    return b"\x14" + _dm_name(name) + len(body).to_bytes(8, "big") + body


def _dm_scalar(name: str, value, dtype) -> bytes:
    dt = np.dtype(dtype)
    return _dm_data(name, [_DM_ENC[dt]], np.asarray(value, dt.newbyteorder("<")).tobytes())


def _dm_array(name: str, arr) -> bytes:
    arr = np.ascontiguousarray(arr)
    dt = arr.dtype
    return _dm_data(name, [20, _DM_ENC[dt], arr.size], arr.astype(dt.newbyteorder("<")).tobytes())


def _dm_text(name: str, text: str) -> bytes:  # DM strings are arrays of uint16 characters
    return _dm_array(name, np.array([ord(c) for c in text], np.uint16))


def write_dm4(
    path: Path,
    data: np.ndarray,
    *,
    scan_step_nm=2.0,
    pixel_inv_nm=0.25,
    voltage_v=200e3,
    stage_alpha_deg=None,
) -> Path:
    """A DigitalMicrograph 4 file written byte by byte from the published DM4 tag-file layout:
    header (version 4, root length, byte order 1 = little), root group with ``ImageList`` holding
    one image group: ``ImageData`` {``Calibrations`` {``Brightness``, ``Dimension`` list of
    {Origin, Scale, Units}}, ``Data``, ``DataType``, ``Dimensions`` (x first), ``PixelDepth``},
    ``ImageTags`` {``Microscope Info`` {``Voltage``, ``Stage Position``}}, ``Name``; 8 zero bytes
    close the file."""
    dims = list(data.shape[::-1])  # DM lists x (fastest) first
    scales = [pixel_inv_nm, pixel_inv_nm, scan_step_nm, scan_step_nm][: data.ndim]
    units = ["1/nm", "1/nm", "nm", "nm"][: data.ndim]
    dim_cal = [
        _dm_group(
            "",
            [_dm_scalar("Origin", 0.0, "float32"), _dm_scalar("Scale", s, "float32"), _dm_text("Units", u)],
        )
        for s, u in zip(scales, units)
    ]
    image_data = _dm_group(
        "ImageData",
        [
            _dm_group(
                "Calibrations",
                [
                    _dm_group(
                        "Brightness",
                        [
                            _dm_scalar("Origin", 0.0, "float32"),
                            _dm_scalar("Scale", 1.0, "float32"),
                            _dm_text("Units", "counts"),
                        ],
                    ),
                    _dm_group("Dimension", dim_cal),
                    _dm_scalar("DisplayCalibratedUnits", 1, "uint8"),
                ],
            ),
            _dm_array("Data", data.ravel()),
            _dm_scalar("DataType", _DM_IMAGE_TYPE[data.dtype], "int32"),
            _dm_group("Dimensions", [_dm_scalar("", d, "uint32") for d in dims]),
            _dm_scalar("PixelDepth", data.dtype.itemsize, "uint32"),
        ],
    )
    mic = [_dm_scalar("Voltage", voltage_v, "float64")]
    if stage_alpha_deg is not None:
        mic.append(_dm_group("Stage Position", [_dm_scalar("Stage Alpha", stage_alpha_deg, "float64")]))
    image = _dm_group(
        "",
        [
            image_data,
            _dm_group("ImageTags", [_dm_group("Microscope Info", mic)]),
            _dm_text("Name", path.stem),
        ],
    )
    root = (
        b"\x00\x01"
        + (2).to_bytes(8, "big")
        + _dm_group("ImageList", [image])
        + _dm_group("DocumentObjectList", [])
    )
    body = root + b"\x00" * 8
    path.write_bytes((4).to_bytes(4, "big") + len(body).to_bytes(8, "big") + (1).to_bytes(4, "big") + body)
    return path
