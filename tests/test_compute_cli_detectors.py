"""Detector masks and the ``virtual`` / ``sum`` CLI commands."""

import json

import numpy as np
import pytest
import tifffile

from virtual_aperture.cli import main
from virtual_aperture.compute import detectors, virtual_image


def fake_scan(sy=6, sx=5, k=32, center=(15.0, 17.0), r=5.0):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:k, :k]
    disk = (np.hypot(yy - center[0], xx - center[1]) <= r) * 1000
    return (disk + rng.integers(0, 20, (sy, sx, k, k))).astype(np.uint16)


def test_shapes_and_geometry():
    d = detectors.disk((9, 11), (4, 5), 2)
    assert d.dtype == bool and d.shape == (9, 11) and d.sum() == 13 and d[4, 5] and not d[4, 8]
    a = detectors.annulus((20, 20), (10, 10), 3, 5)
    r = np.hypot(*np.mgrid[:20, :20] - 10.0)
    np.testing.assert_array_equal(a, (r >= 3) & (r <= 5))
    rect = detectors.rectangle((5, 6), (1, 2), (3, 5))
    assert rect.sum() == 6 and rect[1, 2] and not rect[3, 2]
    for call, match in [
        (lambda: detectors.disk((5, 5), (2, 2), 0), "radius"),
        (lambda: detectors.disk((0, 5), (2, 2), 1), "shape"),
        (lambda: detectors.annulus((5, 5), (2, 2), 3, 2), "larger"),
        (lambda: detectors.rectangle((5, 5), (3, 3), (3, 4)), "empty"),
        (lambda: detectors.disk((5, 5), (np.nan, 2), 1), "finite"),
    ]:
        with pytest.raises(ValueError, match=match):
            call()


def test_bright_field_and_adf_from_measured_disk():
    data = fake_scan()
    (cy, cx), r = detectors.measure_central_disk(data)
    assert abs(cy - 15) < 0.3 and abs(cx - 17) < 0.3 and abs(r - 5) < 0.6
    bf = detectors.bright_field(data)
    assert bf[15, 17] and not bf[15, 24] and bf.shape == (32, 32)
    assert detectors.bright_field(data.mean((0, 1))).sum() == bf.sum()
    adf = detectors.annular_dark_field(data, inner=1.5, outer=2.5)
    assert not adf[15, 17] and adf[15, 17 + 10] and not adf[15, 17 + 14]
    with pytest.raises(ValueError, match="flat"):
        detectors.bright_field(np.ones((8, 8)))


def test_cli_virtual_and_sum(tmp_path, capsys):
    data = fake_scan()
    np.save(tmp_path / "scan.npy", data)
    out = tmp_path / "vi.tif"
    assert main(["virtual", str(tmp_path / "scan.npy"), "--detector", "annulus:4,9", "--out", str(out)]) == 0
    img = tifffile.imread(out)
    mask = detectors.annulus((32, 32), (15.5, 15.5), 4, 9)
    np.testing.assert_array_equal(img, virtual_image(data, mask))  # float32: exact for these counts
    from virtual_aperture.cli._images import read_calibration

    cal = read_calibration(out)  # ImageJ calibration: what Fiji shows
    assert (
        cal["unit"] == "nm"
        and cal["pixel"] == pytest.approx(1.0)
        and cal["info"]["detector"] == "annulus:4,9"
    )
    maskfile = tmp_path / "mask.tif"
    tifffile.imwrite(maskfile, mask.astype(np.float32) * 0.5)
    assert (
        main(
            [
                "virtual",
                str(tmp_path / "scan.npy"),
                "--detector",
                str(maskfile),
                "--out",
                str(out),
                "--memory-budget",
                "64MB",
                "--overwrite",
            ]
        )
        == 0
    )
    np.testing.assert_allclose(tifffile.imread(out), virtual_image(data, mask) * 0.5)
    assert (
        main(["virtual", str(tmp_path / "scan.npy"), "--detector", "bf", "--out", str(out), "--overwrite"])
        == 0
    )
    labels = np.zeros((6, 5), np.int32)
    labels[:2] = 3
    labels[4, 4] = 7
    tifffile.imwrite(tmp_path / "labels.tif", labels)
    capsys.readouterr()
    assert (
        main(
            [
                "sum",
                str(tmp_path / "scan.npy"),
                "--labels",
                str(tmp_path / "labels.tif"),
                "--out",
                str(tmp_path / "sums.tif"),
            ]
        )
        == 0
    )
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert counts == {"3": 10, "7": 1}
    sums = tifffile.imread(tmp_path / "sums.tif")
    np.testing.assert_array_equal(sums[0], data[:2].reshape(-1, 32, 32).sum(0))
    np.testing.assert_array_equal(sums[1], data[4, 4])
    assert (
        main(
            [
                "sum",
                str(tmp_path / "scan.npy"),
                "--labels",
                str(tmp_path / "labels.tif"),
                "--pixel-size",
                "0.02",
                "--out",
                str(tmp_path / "sums.tif"),
                "--overwrite",
            ]
        )
        == 0
    )
    cal = read_calibration(tmp_path / "sums.tif")  # diffraction in Å⁻¹, as Fiji shows it
    assert cal["unit"] == "1/A" and cal["pixel"] == pytest.approx(0.02) and cal["info"]["counts"] == [10, 1]


@pytest.mark.parametrize(
    "spec, msg",
    [
        ("annulus:9,4", "larger"),
        ("ring:3", "is not bf"),
        ("nothere.tif", "not found"),
        ("disk:x", "--detector"),
        ("disk:0.3", "smaller than a pixel"),
    ],
)
def test_cli_bad_detector(tmp_path, capsys, spec, msg):
    np.save(tmp_path / "scan.npy", fake_scan())
    assert (
        main(["virtual", str(tmp_path / "scan.npy"), "--detector", spec, "--out", str(tmp_path / "o.tif")])
        == 2
    )
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1


def test_cli_bad_labels(tmp_path, capsys):
    np.save(tmp_path / "scan.npy", fake_scan())
    tifffile.imwrite(tmp_path / "labels.tif", np.ones((7, 5), np.int32))
    assert (
        main(
            [
                "sum",
                str(tmp_path / "scan.npy"),
                "--labels",
                str(tmp_path / "labels.tif"),
                "--out",
                str(tmp_path / "s.tif"),
            ]
        )
        == 2
    )
    assert "does not match the scan" in capsys.readouterr().err


def test_center_honoured_by_bf_and_adf(tmp_path, capsys):
    """--center moves the bf disk and the adf annulus (only their radius is measured); a centre
    off the detector is refused in one line, at open time."""
    p = tmp_path / "scan.npy"
    np.save(p, fake_scan())
    out = {}
    for name, extra in (("auto", []), ("given", ["--center", "12", "20"])):
        for det in ("bf", "adf"):
            f = tmp_path / f"{det}-{name}.tif"
            assert main(["virtual", str(p), "--detector", det, "--out", str(f), *extra]) == 0
            out[det, name] = tifffile.imread(f)
    assert not np.array_equal(out["bf", "auto"], out["bf", "given"])
    assert not np.array_equal(out["adf", "auto"], out["adf", "given"])
    data = fake_scan()
    bf = detectors.bright_field(data, center=(12, 20))
    (_, _), r = detectors.measure_central_disk(data)
    np.testing.assert_array_equal(bf, detectors.disk((32, 32), (12, 20), r))
    np.testing.assert_allclose(out["bf", "given"], virtual_image(data, bf))
    capsys.readouterr()
    f = tmp_path / "x.tif"
    assert main(["virtual", str(p), "--detector", "adf", "--out", str(f), "--center", "40", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "off the 32×32 detector" in err and not f.exists()
    assert main(["info", str(p), "--center", "-3", "3"]) == 2
    with pytest.raises(ValueError, match="off the 32×32 detector"):
        detectors.disk((32, 32), (16, 33), 2)


def test_central_disk_found_despite_a_few_nan_pixels():
    data = fake_scan().astype(np.float32)
    data[..., 3, 4] = np.nan
    data[..., 20, 30] = np.inf
    (cy, cx), r = detectors.measure_central_disk(data)
    assert abs(cy - 15) < 0.3 and abs(cx - 17) < 0.3 and abs(r - 5) < 0.6
    with pytest.raises(ValueError, match="every pixel"):
        detectors.measure_central_disk(np.full((8, 8), np.nan))


def test_info_into_a_closed_pipe_prints_no_traceback(tmp_path):
    import subprocess
    import sys

    p = tmp_path / "scan.npy"
    np.save(p, fake_scan())
    code = "import sys; from virtual_aperture.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "info", str(p)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # like `| head -0`: the reader is gone before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert "BrokenPipe" not in err and "Traceback" not in err, err
