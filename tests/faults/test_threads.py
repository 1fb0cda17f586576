"""Phases from several threads: each thread has its own phase stack. A phase entered on a
worker thread nests under that thread's phases only, never under another thread's, so the
paths stay the ones the code wrote, whatever the interleaving; energy still sums to the
run's total, split evenly between the threads inside phases at the same time."""

from __future__ import annotations

import threading
import time

import pytest

from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter
from greenai.tracking.phases import NO_PHASE, PhaseApportioner
from greenai.tracking.tracker import Tracker


def gpu(power_w: float = 100.0) -> SimulatedMeter:
    return SimulatedMeter("gpu:0", DeviceKind.GPU, power_w)


def test_phases_of_many_threads_keep_their_own_paths(make_config, tmp_path):
    n_threads, n_phases = 8, 300
    start = threading.Barrier(n_threads)

    def worker(run: Tracker, k: int) -> None:
        start.wait()
        for _ in range(n_phases):
            with run.phase(f"t{k}"):
                with run.phase("inner"):
                    time.sleep(0)
                run.count(f"t{k}")

    with Tracker("threads", config=make_config(sample_hz=200.0), meters=[gpu()]) as run:
        threads = [threading.Thread(target=worker, args=(run, k)) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    result = run.result
    expected = {f"t{k}" for k in range(n_threads)} | {f"t{k}/inner" for k in range(n_threads)}
    paths = {p.phase for p in result.snapshot.phases}
    assert paths - {NO_PHASE} <= expected  # never "t0/t3/inner/t5"...
    calls = {p.phase: p.calls for p in result.snapshot.phases}
    for k in range(n_threads):
        assert calls[f"t{k}"] == n_phases and calls[f"t{k}/inner"] == n_phases
    assert sum(p.energy_j for p in result.snapshot.phases) == pytest.approx(result.energy_j, rel=1e-9)
    with Ledger(tmp_path / "ledger.db") as ledger:
        stored = ledger.get_run(run.run_id).snapshot.phases
    assert len(stored) <= len(expected) + 1  # one device: one row per path


def test_a_worker_threads_phase_does_not_nest_under_the_main_threads(make_config):
    loaded = threading.Event()

    def loader(run: Tracker) -> None:
        with run.phase("load"):
            with run.phase("decode"):
                time.sleep(0.3)
        loaded.set()

    with Tracker("overlap", config=make_config(sample_hz=100.0), meters=[gpu(100.0)]) as run:
        with run.phase("train"):
            worker = threading.Thread(target=loader, args=(run,))
            worker.start()
            with run.phase("forward"):
                time.sleep(0.3)
            worker.join()
            assert loaded.is_set()
            assert run._timeline.depth == 1  # the main thread's own stack: "train"
    r = run.result
    paths = {p.phase for p in r.snapshot.phases}
    assert {"train/forward", "load/decode"} <= paths
    assert not any(p.startswith("train/load") or p.startswith("load/train") for p in paths)
    # both ran side by side for ~0.3 s: each thread's phase gets half of that energy and its
    # whole wall time
    assert r.phase_duration_s("load") == pytest.approx(0.3, abs=0.08)
    assert r.phase_duration_s("train/forward") == pytest.approx(0.3, abs=0.08)
    assert r.phase_energy_j("load") == pytest.approx(100.0 * 0.3 / 2, rel=0.35)
    assert sum(p.energy_j for p in r.snapshot.phases) == pytest.approx(r.energy_j, rel=1e-9)


def test_apportioning_splits_an_interval_between_the_threads_in_phases():
    ap = PhaseApportioner()
    s = 1_000_000_000
    events = [(0, "a", True, 1), (int(0.5 * s), "b", True, 2), (int(0.75 * s), None, False, 1)]
    dominant = ap.apportion(0, s, events, {"gpu:0": 8.0})
    # [0, .5): a alone; [.5, .75): a and b share; [.75, 1): b alone
    assert ap.energy_j[("a", "gpu:0")] == pytest.approx(8.0 * (0.5 + 0.125))
    assert ap.energy_j[("b", "gpu:0")] == pytest.approx(8.0 * (0.125 + 0.25))
    assert ap.duration_s == pytest.approx({"a": 0.75, "b": 0.5})
    assert dominant == "a"
    assert ap.current == "b"
