"""npe2 contributions: manifest, reader, writer, sample data, launch helper."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gui

PLUGIN = "napari-virtual-aperture"
ROOT = Path(__file__).resolve().parents[2]


def test_manifest_validates_and_lists_contributions():
    from npe2 import PluginManifest

    manifest = ROOT / "src" / "virtual_aperture" / "napari.yaml"
    assert manifest.is_file() and not manifest.is_symlink()  # a real file in the package (Windows checkouts)
    mf = PluginManifest.from_file(manifest)
    mf.validate_imports()
    ids = {c.id for c in mf.contributions.commands}
    assert {f"{PLUGIN}.get_reader", f"{PLUGIN}.write_grains", f"{PLUGIN}.workspace"} <= ids
    assert {s.key for s in mf.contributions.sample_data} == {
        "agglomerate-4d",
        "agglomerate-5d",
        "brookite-tilt-series",
    }
    assert [w.command for w in mf.contributions.widgets] == [f"{PLUGIN}.workspace"]  # one panel
    # the installed package serves the same manifest (napari.manifest entry point)
    installed = PluginManifest.from_distribution(PLUGIN)
    assert installed.name == PLUGIN and {c.id for c in installed.contributions.commands} >= ids


def test_reader_rejects_unsupported_and_broken_files(tmp_path):
    from virtual_aperture._napari.reader import get_reader

    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.h5").write_bytes(b"\x89HDF\r\n garbage")
    np.save(tmp_path / "three_d.npy", np.zeros((2, 3, 4)))
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader(str(tmp_path / "broken.h5")) is None
    assert get_reader(str(tmp_path / "three_d.npy")) is None
    assert get_reader(str(tmp_path / "missing.h5")) is None
    assert get_reader(42) is None
    assert get_reader([]) is None


def test_reader_opens_dataset_as_navigator(tmp_path, dataset_factory, make_napari_viewer):
    from virtual_aperture._napari.reader import get_reader

    _, arr = dataset_factory()
    path = tmp_path / "scan.npy"
    np.save(path, arr)
    reader = get_reader(str(path))
    assert reader is not None
    ((data, meta, kind),) = reader(str(path))
    assert kind == "image" and data.shape == arr.shape[:2]
    np.testing.assert_allclose(data, arr.sum(axis=(-2, -1)), rtol=1e-6)
    info = meta["metadata"]["virtual_aperture"]
    assert info["role"] == "navigator" and info["dataset"].shape == arr.shape
    # through napari itself
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin=PLUGIN)
    assert layers[0].metadata["virtual_aperture"]["dataset"].scan_shape == arr.shape[:2]


def test_writer_writes_grains_with_names(tmp_path, make_napari_viewer):
    import tifffile
    import zarr

    from virtual_aperture._napari.writer import read_grain_names, write_grains

    labels = np.zeros((3, 10, 12), np.int32)
    labels[0, 2:5, 2:5] = 1
    labels[2, 6:9, 1:4] = 7
    meta = {
        "scale": (1.0, 2.0, 2.0),
        "metadata": {"virtual_aperture": {"grain_names": {1: "big one", 7: "edge"}}},
    }
    tif = write_grains(str(tmp_path / "g.tif"), labels, meta)[0]
    np.testing.assert_array_equal(tifffile.imread(tif), labels)
    assert read_grain_names(tif) == {1: "big one", 7: "edge"}
    z = write_grains(str(tmp_path / "g.zarr"), labels, meta)[0]
    np.testing.assert_array_equal(zarr.open_group(z, mode="r")["labels"][...], labels)
    assert read_grain_names(z) == {1: "big one", 7: "edge"}
    with pytest.raises(ValueError, match="use .tif"):
        write_grains(str(tmp_path / "g.png"), labels, meta)
    # napari's save dialog path goes through the npe2 writer contribution
    viewer = make_napari_viewer()
    layer = viewer.add_labels(labels, name="grains", metadata=meta["metadata"])
    out = viewer.layers.save(str(tmp_path / "via_napari.tif"), selected=False, plugin=PLUGIN) or []
    assert layer is not None and Path(tmp_path / "via_napari.tif").exists(), out
    assert (
        json.loads(tifffile.TiffFile(tmp_path / "via_napari.tif").pages[0].description)["grain_names"]["7"]
        == "edge"
    )


def test_sample_4d_loads_in_napari(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample(PLUGIN, "agglomerate-4d")
    ds = layers[0].metadata["virtual_aperture"]["dataset"]
    assert ds.shape == (64, 64, 128, 128)
    assert layers[0].data.shape == (64, 64) and float(np.asarray(layers[0].data).max()) > 0


@pytest.mark.slow
def test_sample_5d_has_tilt_axis():
    from virtual_aperture._napari.sample import tilt_series_5d

    ((data, meta, kind),) = tilt_series_5d()
    ds = meta["metadata"]["virtual_aperture"]["dataset"]
    assert ds.is_tilt_series and data.shape == (ds.n_tilts, *ds.scan_shape)
    assert meta["axis_labels"][0] == "tilt"


def test_workspace_from_plugins_menu_shares_one_model(make_napari_viewer, dataset_factory):
    """The dock opened through npe2 (a PublicOnlyProxy viewer) and other widgets see one model."""
    import napari

    from virtual_aperture._napari.reader import navigator_layers
    from virtual_aperture._napari.workspace_model import handed_grain, workspace_for

    viewer = make_napari_viewer()
    ds, _ = dataset_factory()
    for data, meta, kind in navigator_layers(ds):
        viewer.add_layer(napari.layers.Layer.create(data, meta, kind))
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Workspace")
    try:
        widget.controller.flush(timeout=60)
        assert widget.controller.dataset is ds
        assert workspace_for(viewer) is widget.model
        assert handed_grain(viewer) is None
        assert "grains" in viewer.layers
        assert "Diffraction" in viewer.window.dock_widgets
    finally:
        widget.shutdown()
