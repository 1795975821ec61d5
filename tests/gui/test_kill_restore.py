"""``kill -9`` of napari while painting: at most the autosave interval (5 s) is lost, and the next
start offers the autosave (Recover autosave), which brings the painted grains back.

A child process runs napari with the workspace on a .npy file, paints stroke A, waits for it to be
autosaved, paints stroke B and keeps running its event loop; it is killed with SIGKILL 6.5 s after
stroke B (more than the 5 s interval). Then this process opens the same file as a new user would
and clicks the real Recover button.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

CHILD = textwrap.dedent(
    """
    import os, sys, time
    os.environ.setdefault("QT_API", "pyqt6")
    import napari
    from qtpy.QtWidgets import QApplication
    from virtual_aperture._napari.launch import open_workspace

    viewer = napari.Viewer(show=False)
    w = open_workspace(viewer, path=sys.argv[1])
    c, sp = w.controller, w.panels["session"]
    app = QApplication.instance()
    c.flush(timeout=60)
    assert sp.interval.value() == 5  # the default autosave interval

    def spin(seconds, until=lambda: False):
        end = time.time() + seconds
        while time.time() < end and not until():
            app.processEvents()
            time.sleep(0.02)

    for y in range(2, 6):  # stroke A: grain 1
        for x in range(2, 6):
            c.grains.paint((y, x), 1)
    spin(30, lambda: sp.last_autosave is not None)
    print("SAVED-A", sp.autosave_file, flush=True)
    for y in range(9, 13):  # stroke B: grain 2
        for x in range(12, 16):
            c.grains.paint((y, x), 2)
    print("PAINTED-B", flush=True)
    spin(600)  # painting session goes on until killed
    """
)


def _read_until(proc, word, timeout):
    end = time.time() + timeout
    while time.time() < end:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise AssertionError(f"child ended ({proc.returncode}): {proc.stderr.read()[-2000:]}")
            continue
        if line.startswith(word):
            return line.strip()
    raise AssertionError(f"child did not print {word} within {timeout} s")


@pytest.mark.gui
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_kill_9_while_painting_loses_at_most_the_interval(tmp_path, make_napari_viewer, qtbot):
    from qtpy.QtCore import Qt

    from virtual_aperture._napari.launch import open_workspace

    data = np.random.default_rng(0).integers(0, 200, (16, 20, 12, 10)).astype(np.uint16)
    path = tmp_path / "scan.npy"
    np.save(path, data)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        saved = _read_until(proc, "SAVED-A", 180)
        _read_until(proc, "PAINTED-B", 30)
        time.sleep(6.5)  # longer than the 5 s autosave interval
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    autosave = tmp_path / "scan.npy.va-autosave.h5"
    assert saved.endswith(str(autosave)) and autosave.exists()  # beside the data, as docs/napari.md says

    viewer = make_napari_viewer()  # the next start
    w = open_workspace(viewer, path=str(path))
    c, sp = w.controller, w.panels["session"]
    c.flush(timeout=60)
    assert sp.recover_btn.isEnabled()
    assert "an earlier autosave exists" in sp.state.text()
    assert not c.grains.data.any()  # a fresh start: nothing painted yet
    qtbot.mouseClick(sp.recover_btn, Qt.MouseButton.LeftButton)
    c.flush(timeout=60)
    g = np.asarray(c.grains.data)
    assert (g[2:6, 2:6] == 1).all()  # stroke A
    assert (g[9:13, 12:16] == 2).all()  # stroke B, painted 6 s before the kill: not lost
    assert set(np.unique(g)) == {0, 1, 2}
    w.shutdown()
