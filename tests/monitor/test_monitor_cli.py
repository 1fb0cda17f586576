"""`greenai monitor` as a user runs it: a separate process, scraped over HTTP, stopped with a
signal. Its counters match the ledger's figures for the same interval within the meters'
uncertainty (issue 18)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import assert_one_line_error, greenai
from tests.monitor.prom import Families, by_device, scrape, until, value

from greenai.ledger.records import RunStatus
from greenai.ledger.store import Ledger

INTERVAL_S = 0.2
URL = re.compile(r"serving (http://\S+/metrics)")


class Monitor:
    """`greenai monitor ...` running in its own process."""

    def __init__(self, ledger: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
        env.update(GREENAI_LEDGER=str(ledger), GREENAI_SIMULATE="1", GREENAI_FLUSH_INTERVAL_S="0.2")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "greenai", "monitor", "--port", "0", "--interval", str(INTERVAL_S), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        self.first_lines = [self.proc.stdout.readline() for _ in range(3 if "--ledger" in args else 2)]
        found = URL.search(self.first_lines[0])
        assert found, (self.first_lines, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.url = found.group(1)

    def ready(self) -> Families:
        return until(lambda: scrape(self.url), lambda f: bool(by_device(f, "greenai_energy_joules_total")))

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str, str]:
        self.proc.send_signal(signum)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def monitors(tmp_path: Path) -> Iterator[list[Monitor]]:
    started: list[Monitor] = []
    yield started
    for monitor in started:
        monitor.kill()


def _ledger_energy_at(rows, device: str, t: float) -> tuple[float, float]:
    """The ledger's cumulative energy of `device` at its sample nearest to unix time `t`, and
    how far from `t` that sample is."""
    mine = [r for r in rows if r.device == device]
    nearest = min(mine, key=lambda r: abs(r.t - t))
    return nearest.energy_j, abs(nearest.t - t)


def test_counters_match_the_ledger_for_the_same_interval(tmp_path: Path, monitors: list[Monitor]) -> None:
    """Scraped at t1 and t2, the monitor's energy counters, and their growth between the two,
    equal the energy its own run holds in the ledger at those two instants (the samples at the
    scrapes' reading times) within the meters' ~95 % band; SIGTERM then ends the run
    `completed` and the process exits 0."""
    ledger_path = tmp_path / "ledger.db"
    monitor = Monitor(ledger_path, "--ledger")
    monitors.append(monitor)
    assert "recording this machine as run" in monitor.first_lines[1]
    first = monitor.ready()
    time.sleep(1.5)
    second = scrape(monitor.url)
    code, _, err = monitor.stop(signal.SIGTERM)
    assert code == 0, err
    assert "stopped (SIGTERM)" in err and "status: completed" in err

    with Ledger(ledger_path, read_only=True) as ledger:
        (run,) = ledger.list_runs()
        rows = ledger.samples(run.start.run_id)
    assert run.status == RunStatus.COMPLETED and run.start.name == f"monitor@{socket.gethostname()}"
    devices = {d.device: d for d in run.snapshot.devices}
    assert set(devices) == {"cpu:0", "gpu:0"}

    t1 = value(first, "greenai_sample_timestamp_seconds")
    t2 = value(second, "greenai_sample_timestamp_seconds")
    assert t2 - t1 >= 1.0
    c1, c2 = by_device(first, "greenai_energy_joules_total"), by_device(second, "greenai_energy_joules_total")
    for device, total in devices.items():
        l1, off1 = _ledger_energy_at(rows, device, t1)
        l2, off2 = _ledger_energy_at(rows, device, t2)
        assert off1 < INTERVAL_S / 4 and off2 < INTERVAL_S / 4  # the same reading, not a neighbour
        band = total.rel_uncertainty  # simulated meters: 0, so the figures must agree to rounding
        assert c1[device] == pytest.approx(l1, rel=band + 1e-9), device
        assert c2[device] == pytest.approx(l2, rel=band + 1e-9), device
        assert c2[device] - c1[device] == pytest.approx(l2 - l1, rel=band + 1e-9), device
        assert l2 - l1 > 0
        assert total.energy_j >= c2[device]  # the run went on until the signal
    # the machine's whole energy as exported, and the run's
    assert run.snapshot.energy_j >= sum(c2.values())
    carbon = value(second, "greenai_carbon_grams_total")
    assert 0 < carbon <= run.snapshot.carbon_g


def test_sigint_stops_cleanly_and_a_non_loopback_bind_is_announced(tmp_path: Path, monitors: list[Monitor]) -> None:
    monitor = Monitor(tmp_path / "ledger.db", "--ledger", "--host", "0.0.0.0")
    monitors.append(monitor)
    port = int(monitor.url.rsplit(":", 1)[1].split("/")[0])
    until(
        lambda: scrape(f"http://127.0.0.1:{port}/metrics"),
        lambda f: bool(by_device(f, "greenai_energy_joules_total")),
    )
    code, _, err = monitor.stop(signal.SIGINT)
    assert code == 0, err
    assert "other machines can reach" in err and "stopped (SIGINT)" in err
    with Ledger(tmp_path / "ledger.db", read_only=True) as ledger:
        (run,) = ledger.list_runs()
    assert run.status == RunStatus.COMPLETED and run.snapshot.energy_j > 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_without_ledger_nothing_is_recorded(tmp_path: Path, monitors: list[Monitor]) -> None:
    monitor = Monitor(tmp_path / "ledger.db")
    monitors.append(monitor)
    monitor.ready()
    code, _, err = monitor.stop()
    assert code == 0, err
    assert not (tmp_path / "ledger.db").exists()


def test_a_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        proc = greenai("monitor", "--simulate", "--ledger", "--port", port, ledger=tmp_path / "ledger.db", timeout=60)
    assert_one_line_error(proc, 1, f"127.0.0.1:{port}", "already in use", "--port")
    assert not (tmp_path / "ledger.db").exists()


def test_a_port_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    proc = greenai("monitor", "--simulate", "--port", "70000", ledger=tmp_path / "ledger.db", timeout=60)
    assert_one_line_error(proc, 2, "--port")
