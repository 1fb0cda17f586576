"""Plain records passed between the tracker and the ledger (no dicts across layers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from greenai.errors import InvalidNameError
from greenai.hardware.coload import CoLoadSummary
from greenai.meters.base import DeviceKind, Provenance


class RunStatus:
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"  # the tracked code raised, or the tracked command exited non-zero
    INTERRUPTED = "interrupted"  # SIGINT / SIGTERM / budget stop: ended cleanly but early
    INCOMPLETE = "incomplete"  # the process died without ending the run (e.g. SIGKILL)

    ALL = (RUNNING, COMPLETED, FAILED, INTERRUPTED, INCOMPLETE)


@dataclass(frozen=True, slots=True)
class RunStart:
    run_id: str  # uuid4 hex
    name: str
    started_at: float  # unix time, seconds
    host: str
    pid: int
    tags: dict[str, str] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)  # JSON-able: cpu, gpus, meters, config


@dataclass(frozen=True, slots=True)
class SampleRow:
    """One sampler tick for one device."""

    t: float  # unix time of the reading, seconds
    device: str
    kind: DeviceKind
    power_w: float  # mean power since the previous tick
    energy_j: float  # cumulative since the run started
    provenance: Provenance
    phase: str | None = None  # the phase path that held most of the interval (None: no phase)


@dataclass(frozen=True, slots=True)
class DeviceTotal:
    device: str
    kind: DeviceKind
    energy_j: float
    provenance: Provenance
    rel_uncertainty: float


@dataclass(frozen=True, slots=True)
class PhaseTotal:
    """Energy of one device apportioned to one phase path (e.g. "train/forward")."""

    phase: str
    device: str
    energy_j: float
    duration_s: float  # wall time spent in the phase (exclusive of nested phases)
    calls: int


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """Totals of a run so far; written at every flush and at the end."""

    duration_s: float
    energy_j: float  # IT energy: sum over devices, before PUE
    rel_uncertainty: float
    provenance: Provenance  # weakest provenance among devices
    facility_energy_j: float  # energy_j x PUE
    carbon_g: float
    cost: float
    currency: str
    devices: tuple[DeviceTotal, ...] = ()
    phases: tuple[PhaseTotal, ...] = ()
    counters: dict[str, float] = field(default_factory=dict)
    carbon_source: str = ""  # e.g. "country FRA 56.0 g/kWh (Ember 2022)"
    pue: float = 1.0
    # CPUs other processes kept busy while the run ran (None: not measured, e.g. not Linux)
    coload: CoLoadSummary | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as read back from the ledger."""

    start: RunStart
    status: str
    ended_at: float | None
    updated_at: float
    snapshot: RunSnapshot
    # what could not be read back (a malformed environment_json, an unreadable device row...);
    # the rest of the run is shown, flagged with these
    problems: tuple[str, ...] = ()
    # what `greenai run` ran (its argv) and the program's exit code (128+N: killed by signal N);
    # None for other runs, for a run still going (exit code) and before schema v8
    command: tuple[str, ...] | None = None
    exit_code: int | None = None


def storable_name(what: str, value: object, *, empty: bool = False) -> str:
    """`value`, as a plain str, if the ledger can store it as a name (a run's, a counter's, a
    phase's, a tag's): a str (non-empty unless `empty`) that UTF-8 can encode; anything else is an
    InvalidNameError (a ConfigError) naming `what`. Checked where the name is given, since a
    name SQLite cannot take (None, bytes, a lone surrogate) would make every later write of
    the run fail."""
    if not isinstance(value, str) or not (value or empty):
        kind = "a string" if empty else "a non-empty string"
        raise InvalidNameError(f"{what} must be {kind} (got {value!r})")
    if value.__class__ is not str:  # a str subclass (a (str, Enum) member): its text, as a plain str
        value = str.__str__(value)
    if value.isascii():  # the common case, cheap (phase() and count() are on the hot path)
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidNameError(f"{what} {value!r} cannot be stored: {e.reason} (position {e.start})") from None
    return value
