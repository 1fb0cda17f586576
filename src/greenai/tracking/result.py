"""The result of a tracked run, as returned to the user's code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from greenai.errors import UnknownPhaseError
from greenai.ledger.records import RunSnapshot
from greenai.tracking.phases import NO_PHASE, PhaseSum, inclusive_totals, phase_sum

if TYPE_CHECKING:
    from greenai.ledger.distributed import JobRecord
    from greenai.tracking.budget import BudgetBreach
    from greenai.tracking.forecast import Forecast


@dataclass(frozen=True)
class RunResult:
    run_id: str
    name: str
    status: str
    snapshot: RunSnapshot
    ledger_path: Path | None
    cost_configured: bool
    # the forecast from the whole trace at the end (None without a plan): for a run stopped
    # early, what the planned run would have used
    forecast: Forecast | None = None
    budget_breaches: tuple[BudgetBreach, ...] = ()  # every budget that fired, in order
    stopped_by: BudgetBreach | None = None  # the stop budget that ended the run, if any
    # True once the ledger holds this result (status and totals); False if the end of the run
    # could not be written (the ledger then keeps the run as of its last flush: `notes` says
    # why); None without a ledger (store=False)
    stored: bool | None = None
    notes: tuple[str, ...] = ()  # what went wrong on the way (a meter dropped, the final write)
    # a rank of a distributed job (greenai.distributed): the job as its writer added it up at
    # the end (every device of every rank counted once); None on other ranks and for plain runs
    job: JobRecord | None = None

    @property
    def stop_reason(self) -> str | None:
        """Why the run ended early because of a budget (None otherwise)."""
        return self.stopped_by.message() if self.stopped_by is not None else None

    @property
    def energy_j(self) -> float:
        return self.snapshot.energy_j

    @property
    def duration_s(self) -> float:
        return self.snapshot.duration_s

    @property
    def carbon_g(self) -> float:
        return self.snapshot.carbon_g

    def energy_per(self, counter: str) -> float | None:
        """Joules per unit of a user counter (e.g. J/sample); None if the counter is 0 or unset."""
        count = self.snapshot.counters.get(counter, 0.0)
        return self.snapshot.energy_j / count if count > 0 else None

    def device_energy_j(self, device: str) -> float:
        return sum(d.energy_j for d in self.snapshot.devices if d.device == device)

    def phase_energy_j(self, phase: str) -> float:
        """Energy of a phase including its nested phases (the ledger stores exclusive shares).
        `phase` is a phase's name ("forward" finds "train_step/forward") or its path; a name
        found in several places sums them all (``tracking.phases.phase_sum``). A name that
        names no phase of the run raises `UnknownPhaseError` (a KeyError) listing its phases."""
        return self._phase(phase).energy_j

    def phase_duration_s(self, phase: str) -> float:
        """Wall time of a phase including its nested phases, named as in `phase_energy_j`."""
        return self._phase(phase).duration_s

    def _phase(self, phase: str) -> PhaseSum:
        found = phase_sum(self.snapshot.phases, phase)
        if not found.paths:
            known = [p for p in inclusive_totals(self.snapshot.phases) if p != NO_PHASE]
            listed = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
            raise UnknownPhaseError(
                f"no phase named {phase!r} in run {self.name!r}; "
                + (f"its phases: {listed}" if known else "it has no phases (run.phase(NAME) makes one)")
            )
        return found
