"""Turns successive cumulative meter readings into run totals, phase shares, carbon and cost.

Owned by the sampler thread; the tracker reads snapshots from it under the sampler's lock.
Combined uncertainty is the linear sum of per-device absolute bands (errors of estimates are
largely systematic, hence correlated; the linear sum is the conservative bound, cf. JCGM
100:2008 GUM section 5.2 on fully correlated inputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from greenai.carbon.accounting import CarbonAccount, Charge
from greenai.hardware.coload import CoLoadSummary
from greenai.ledger.records import DeviceTotal, PhaseTotal, RunSnapshot, SampleRow
from greenai.meters.base import DeviceEnergy, DeviceKind, Provenance
from greenai.tracking.phases import Event, PhaseApportioner

# Devices whose meters update about once a second (DRAM, disk and network estimates): their
# power series is stored at 1 Hz, not at the sampler's rate, to keep ledger flushes small.
SLOW_KINDS = frozenset({DeviceKind.DRAM, DeviceKind.DISK, DeviceKind.NETWORK})
SLOW_ROW_INTERVAL_S = 1.0
# Rows waiting for the ledger are thinned beyond this (a ledger unwritable for a long time):
# about 3 MB of rows, 100 s of a 10-device run at 10 Hz.
MAX_PENDING_ROWS = 10_000


@dataclass
class _DeviceState:
    kind: DeviceKind
    provenance: Provenance
    rel_uncertainty: float
    last_cumulative_j: float = 0.0  # as reported by its meter
    energy_j: float = 0.0  # accumulated by the run
    row_t: float | None = None  # wall time and run energy of the last sample row written
    row_energy_j: float = 0.0


@dataclass
class RunAccumulator:
    account: CarbonAccount
    devices: dict[str, _DeviceState] = field(default_factory=dict)
    phases: PhaseApportioner = field(default_factory=PhaseApportioner)
    pending_samples: list[SampleRow] = field(default_factory=list)
    # False when nothing stores the power series (store=False): no rows are made at all
    keep_rows: bool = True
    charge: Charge = field(init=False)
    # set by the co-load recorder (tracking/coload.py) after each tick: the run's co-load so
    # far, and the CPU-seconds other processes took since the start (for the forecast's trace)
    coload: CoLoadSummary | None = None
    coload_core_s: float = 0.0

    def __post_init__(self) -> None:
        self.charge = Charge(0.0, 0.0, 0.0, 0.0, self.account.currency)

    def tick(
        self,
        readings: list[DeviceEnergy],
        t0_ns: int,
        t1_ns: int,
        wall_t0: float,
        wall_t1: float,
        events: Sequence[Event],
    ) -> None:
        """Account one sampling interval [t0, t1) given the readings taken at t1."""
        deltas: dict[str, float] = {}
        rows: list[tuple[str, _DeviceState, Provenance]] = []
        for r in readings:
            state = self.devices.get(r.device)
            if state is None:
                # first sight of a device: its meter started with the run, so all of
                # r.energy_j belongs to the run
                state = self.devices[r.device] = _DeviceState(r.kind, r.provenance, r.rel_uncertainty)
            delta = max(r.energy_j - state.last_cumulative_j, 0.0)  # counters never run back
            state.last_cumulative_j = r.energy_j
            state.energy_j += delta
            if r.provenance.rank > state.provenance.rank:
                state.provenance = r.provenance  # a fallback mid-run weakens the whole total
            state.rel_uncertainty = max(state.rel_uncertainty, r.rel_uncertainty)
            deltas[r.device] = delta
            rows.append((r.device, state, r.provenance))
        phase = self.phases.apportion(t0_ns, t1_ns, events, deltas)
        if self.keep_rows:
            for device, state, provenance in rows:
                self._add_row(device, state, wall_t0, wall_t1, provenance, phase)
        self.charge = self.charge + self.account.charge(sum(deltas.values()), wall_t0, wall_t1)

    def _add_row(
        self,
        device: str,
        state: _DeviceState,
        wall_t0: float,
        wall_t1: float,
        provenance: Provenance,
        phase: str | None = None,
    ) -> None:
        """A power-series row: every tick, or about once a second for slow devices; `phase`
        held most of the tick (for a slow device's row: of its last tick)."""
        since = state.row_t if state.row_t is not None else wall_t0
        if state.kind in SLOW_KINDS and state.row_t is not None and wall_t1 - since < SLOW_ROW_INTERVAL_S:
            return
        power_w = (state.energy_j - state.row_energy_j) / max(wall_t1 - since, 1e-9)
        self.pending_samples.append(SampleRow(wall_t1, device, state.kind, power_w, state.energy_j, provenance, phase))
        state.row_t, state.row_energy_j = wall_t1, state.energy_j

    def close_rows(self, wall_t: float) -> None:
        """At the end of a run, a last row for slow devices whose last row lags their total."""
        if not self.keep_rows:
            return
        for device, state in self.devices.items():
            if state.row_t is not None and state.energy_j != state.row_energy_j and wall_t > state.row_t:
                power_w = (state.energy_j - state.row_energy_j) / (wall_t - state.row_t)
                self.pending_samples.append(
                    SampleRow(wall_t, device, state.kind, power_w, state.energy_j, state.provenance)
                )
                state.row_t, state.row_energy_j = wall_t, state.energy_j

    def take_samples(self) -> list[SampleRow]:
        samples, self.pending_samples = self.pending_samples, []
        return samples

    def snapshot(self, duration_s: float, counters: dict[str, float]) -> RunSnapshot:
        devices = tuple(
            DeviceTotal(name, s.kind, s.energy_j, s.provenance, s.rel_uncertainty)
            for name, s in sorted(self.devices.items())
        )
        energy_j = sum(d.energy_j for d in devices)
        band_j = sum(d.energy_j * d.rel_uncertainty for d in devices)
        weakest = max((d.provenance for d in devices), key=lambda p: p.rank, default=Provenance.ESTIMATED)
        phases = tuple(
            PhaseTotal(
                phase,
                device,
                joules,
                self.phases.duration_s.get(phase, 0.0),
                self.phases.calls.get(phase, 0),
            )
            for (phase, device), joules in sorted(self.phases.energy_j.items())
        )
        return RunSnapshot(
            duration_s=duration_s,
            energy_j=energy_j,
            rel_uncertainty=band_j / energy_j if energy_j > 0 else 0.0,
            provenance=weakest,
            facility_energy_j=self.charge.facility_energy_j,
            carbon_g=self.charge.carbon_g,
            cost=self.charge.cost,
            currency=self.account.currency,
            devices=devices,
            phases=phases,
            counters=dict(counters),
            carbon_source=self.account.describe(),
            pue=self.account.pue,
            coload=self.coload,
        )


def thin_rows(rows: list[SampleRow], max_rows: int = MAX_PENDING_ROWS) -> list[SampleRow]:
    """`rows` (in time order) cut to at most about `max_rows` by keeping every other row of
    each device, its first and last always kept, repeatedly. A kept row's power becomes the
    mean power since the device's previous kept row (from the cumulative energies), so the
    series still integrates to the same energy and ends on the exact total."""
    while len(rows) > max_rows:
        by_device: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            by_device.setdefault(row.device, []).append(i)
        keep: dict[int, SampleRow] = {}
        for indices in by_device.values():
            kept = [indices[0], *indices[1:-1][1::2], indices[-1]] if len(indices) > 2 else indices
            prev: SampleRow | None = None
            for i in dict.fromkeys(kept):
                row = rows[i]
                if prev is not None and row.t > prev.t:
                    power_w = (row.energy_j - prev.energy_j) / (row.t - prev.t)
                    row = SampleRow(row.t, row.device, row.kind, power_w, row.energy_j, row.provenance, row.phase)
                keep[i] = row
                prev = rows[i]
        if len(keep) >= len(rows):  # two rows per device already: nothing left to thin
            break
        rows = [keep[i] for i in sorted(keep)]
    return rows
