"""Run the corpus through ``virtual-aperture info``, ``virtual-aperture virtual`` and
``open_dataset`` + ``virtual_image`` in a few worker processes (address-space limit, per-job timeout)
and classify every outcome.

Command line (prints the counts per outcome; used for the before/after figures of issue 17)::

    PYTHONPATH=src python tests/fuzz/runner.py [--json out.json]
"""

from __future__ import annotations

import collections
import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHANNELS = ("info", "virtual", "api")
OUTCOMES = (
    "right",
    "silent-wrong",
    "hang",
    "blow-up",
    "traceback",
    "late error",
    "wrong rejection",
    "unclear error",
)
#: address-space limit of a worker (numba/LLVM and dask threads reserve ~1.5 GB of it on their own)
AS_LIMIT = 3 * 2**30


@dataclass
class Outcome:
    entry: str
    channel: str
    outcome: str
    detail: str


class Worker:
    def __init__(self, timeout: float):
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONWARNINGS="ignore", NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "worker.py"), str(AS_LIMIT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,
        )
        line = self._readline(120.0)
        if line is None or "ready" not in line:
            raise RuntimeError(f"fuzz worker did not start ({line!r})")

    def _readline(self, timeout: float) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
        sel.close()
        if not ready:
            return None
        return self.proc.stdout.readline()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def run(self, job: dict) -> dict:
        if self.proc is None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.stop()
            return {"status": "blow-up", "message": "worker died"}
        line = self._readline(self.timeout)
        if line is None:
            self.stop()
            return {"status": "hang", "message": f"no answer within {self.timeout:g} s"}
        if not line:
            code = self.proc.wait()
            self.proc = None
            return {"status": "memory", "message": f"worker died (exit {code})"}
        return json.loads(line)


def classify(entry: dict, channel: str, res: dict, others: dict[str, dict]) -> Outcome:
    st, msg = res["status"], res.get("message", "")

    def out(kind: str, detail: str = "") -> Outcome:
        return Outcome(entry["name"], channel, kind, detail or msg)

    if st == "hang":
        return out("hang")
    if st in ("memory", "blow-up"):
        return out("blow-up")
    if st == "traceback":
        return out("traceback")
    if entry["expect"] == "ok":
        if st == "error":
            return out("wrong rejection")
        if res.get("mismatch"):
            return out("silent-wrong", res["mismatch"])
        return out("right", "ok")
    # an error is expected
    if st == "error":
        p = Path(entry["paths"][0])
        names = {p.name, p.parent.name}
        if entry.get("names_file", True) and not any(n in msg for n in names):
            return out("unclear error")
        return out("right")
    if channel == "info":
        if entry["expect"] == "error":
            return out("right", "info may succeed; the read must fail")
        later = [others[c] for c in ("virtual", "api") if c in others]
        if later and all(r["status"] == "error" for r in later):
            return out("late error", "info accepted it; " + later[0].get("message", ""))
    return out("silent-wrong", "accepted: " + (res.get("mismatch") or "no error"))


def run_corpus(entries: list, *, workers: int = 2, timeout: float = 10.0) -> list[Outcome]:
    """Run every entry through every channel; return one :class:`Outcome` per (entry, channel)."""
    jobs = []
    tmp = Path(tempfile.mkdtemp(prefix="va-fuzz-out-"))
    for e in entries:
        ej = e.to_json() if hasattr(e, "to_json") else dict(e)
        for ch in CHANNELS:
            jobs.append(
                (
                    ej,
                    ch,
                    {
                        "command": ch,
                        "paths": ej["paths"],
                        "cli": ej["cli"],
                        "api": ej["api"],
                        "mask": ej["mask"],
                        "ref": ej["ref"],
                        "cwd": ej.get("cwd"),
                        "tmp": str(tmp / f"{ej['name']}-{ch}"),
                    },
                )
            )
    results: dict[tuple[str, str], dict] = {}
    lock = threading.Lock()
    queue = list(jobs)

    def loop() -> None:
        w = Worker(timeout)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    ej, ch, job = queue.pop(0)
                res = w.run(job)
                with lock:
                    results[(ej["name"], ch)] = res
        finally:
            w.stop()

    threads = [threading.Thread(target=loop) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcomes = []
    for e in entries:
        ej = e.to_json() if hasattr(e, "to_json") else dict(e)
        per = {ch: results[(ej["name"], ch)] for ch in CHANNELS}
        outcomes.extend(classify(ej, ch, per[ch], per) for ch in CHANNELS)
    return outcomes


def counts(outcomes: list[Outcome]) -> dict[str, int]:
    c = collections.Counter(o.outcome for o in outcomes)
    return {k: c.get(k, 0) for k in OUTCOMES}


def main() -> int:
    import argparse

    sys.path.insert(0, str(HERE))
    from corpus import build_corpus

    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default=None)
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="va-fuzz-"))
    entries = build_corpus(root)
    outcomes = run_corpus(entries, timeout=args.timeout)
    for o in outcomes:
        if o.outcome != "right":
            print(f"{o.outcome:16s} {o.channel:8s} {o.entry:40s} {o.detail[:150]}")
    print(f"{len(entries)} entries, {len(outcomes)} outcomes:", json.dumps(counts(outcomes)))
    if args.json:
        Path(args.json).write_text(json.dumps([o.__dict__ for o in outcomes], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
