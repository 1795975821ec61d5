"""Issue 17: every corpus entry (tests/fuzz/corpus.py, built here) through ``virtual-aperture info``,
``virtual-aperture virtual`` and ``open_dataset`` + ``virtual_image``, each in a worker process with an
address-space limit and a per-job timeout. Fails on any traceback, hang, blow-up, silent-wrong result,
late error, unclear error or wrong rejection that is not listed in KNOWN with its reason."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import build_corpus  # noqa: E402
from runner import counts, run_corpus  # noqa: E402

#: outcomes that are known to be wrong still, with the reason (owned elsewhere); they must stay
#: exactly as listed, so a fix shows up as a failure here that asks to remove the entry
KNOWN: dict[tuple[str, str], tuple[str, str]] = {}


def test_corpus(tmp_path, capsys):
    entries = build_corpus(tmp_path)
    assert len(entries) >= 60
    formats = {e.name.split("-")[0] for e in entries}
    assert {
        "npy",
        "mib",
        "blo",
        "mrc",
        "dm4",
        "empad",
        "tvips",
        "h5",
        "emd",
        "hspy",
        "zarr",
        "fifo.npy",
    } <= formats
    outcomes = run_corpus(entries, workers=2, timeout=60.0)
    with capsys.disabled():
        print(f"\nfuzz corpus: {len(entries)} entries, {len(outcomes)} outcomes: {counts(outcomes)}")
    bad = []
    for o in outcomes:
        known = KNOWN.get((o.entry, o.channel))
        if o.outcome == "right" and known is None:
            continue
        if known is not None and known[0] == o.outcome:
            continue
        bad.append(
            f"{o.entry} [{o.channel}]: {o.outcome} (expected {known[0] if known else 'right'}): "
            f"{o.detail[:300]}"
        )
    assert not bad, "\n".join(bad)
