"""The project's exceptions, all defined here. Vendor and OS errors are translated once, at the boundary.

Modules that raise them re-export them where they were first defined (e.g.
``greenai.tracking.budget.BudgetExceeded``); this module imports nothing of greenai at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from greenai.tracking.budget import BudgetBreach


class GreenAIError(Exception):
    """Base class: a problem the user can act on. The CLI prints its message on one line."""


class ConfigError(GreenAIError):
    """A configuration value is missing, malformed or out of range."""


class MeterError(GreenAIError):
    """A meter cannot be opened or read."""


class TimedOut(MeterError):
    """A meter's call (`start`, `read`, `close`) did not answer within its deadline
    (greenai.tracking.reading: the outcome of a call given up, never raised into user code)."""


class NvmlError(GreenAIError):
    """NVML is unusable here or one of its calls failed. greenai.hardware.nvml raises it,
    translating pynvml's NVMLError once; `reason` (a greenai.hardware.nvml.Reason) says what
    happened, and each caller decides what that means for it: a meter fails (MeterError), a
    knob is unavailable (KnobUnavailable) or a value was rejected (ConfigError)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class LedgerError(GreenAIError):
    """The ledger cannot be opened, is corrupt, or is not a greenai ledger."""


class ChannelError(GreenAIError):
    """The transport between the ranks of a distributed job failed (a store gone, a value that
    is not greenai's: greenai.distributed.channel)."""


class CarbonDataError(GreenAIError):
    """Unknown country or region code, or a malformed intensity trace."""


class DamagedRowError(LedgerError):
    """A run's own row holds a value greenai cannot read back (the message: which run, why);
    `ledger/queries.py` leaves such a run out of lists, or says so when it is asked for."""


class RunNotFoundError(GreenAIError):
    """No run in the ledger matches the given id or prefix (nor study, batch or job, for those)."""


class AmbiguousIdError(GreenAIError):
    """An id prefix that matches several runs, studies, batches or jobs; `matches` lists them,
    each as (id, where to see it) (the dashboard's links)."""

    def __init__(self, message: str, matches: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.matches = list(matches)


class FilterError(GreenAIError, ValueError):
    """A filter value that cannot be used (the dashboard's run list; the message says which and
    why). Also a ValueError, as a value of the wrong form is."""


class ProfileError(GreenAIError):
    """A calibration profile is missing, corrupt, or was made on another machine."""


class TransformSkipped(GreenAIError):
    """An optimization transform cannot handle this model or machine; the message says why.

    A search records the reason beside the candidate and goes on with the others."""


class ProfileWarning(UserWarning):
    """A calibration profile is used although it does not match this machine (strict=False)."""


class EstimateError(GreenAIError):
    """The model or its example input cannot be counted (bad input, model fails to run)."""


class BudgetExceeded(GreenAIError):
    """Raised in the user's thread at a safe point when a `stop` budget fired."""

    def __init__(self, breach: BudgetBreach) -> None:
        super().__init__(breach.message())
        self.breach = breach


class TerminatedBySignal(SystemExit):
    """Raised in the main thread when SIGTERM arrives during a tracked run (the tracker turns
    the signal into it so that `with` blocks unwind and the run ends `interrupted`); the
    exit code is 128 + the signal's number. A SystemExit, not a GreenAIError."""


class KnobUnavailable(GreenAIError):
    """A knob cannot be used on this machine (missing hardware, read-only, no privileges)."""


class JobFileError(GreenAIError):
    """A job file cannot be read, or one of its jobs is missing or has an invalid field."""


class RayUnavailableError(GreenAIError):
    """Ray is not installed, or the cluster cannot be reached or cannot run a job."""


class ModelUnavailableError(GreenAIError):
    """A packaged model (or the library that runs it) is not installed."""


class DurationError(ConfigError, ValueError):
    """A duration cannot be read (see `greenai.units.parse_duration_s` for the accepted forms).

    Also a ValueError, so that code reading a value of any kind can treat it like one."""


class InvalidNameError(ConfigError, ValueError):
    """A name the ledger cannot store (a run's, a phase's, a counter's, a tag's): not a string,
    empty, or not encodable as UTF-8 (`greenai.ledger.records.storable_name`); for a phase,
    also one containing '/'. Also a ValueError, as a bad phase name always was."""


class CallableError(GreenAIError):
    """A `MODULE:FUNCTION` (or `FILE.py:FUNCTION`) spec is malformed, or what it names cannot
    be imported or is not callable (see `greenai.factories`)."""


class UnknownPhaseError(GreenAIError, KeyError):
    """A name that names no phase of a run (`RunResult.phase_energy_j`); the message lists the
    run's phases. Also a KeyError, as a missing key of a mapping is."""

    def __str__(self) -> str:  # KeyError's own would print the message quoted
        return str(self.args[0]) if self.args else ""


class IntegrationUnavailableError(GreenAIError, ImportError):
    """A framework integration's library (PyTorch Lightning, Transformers, MLflow, torch) is not
    installed; the message names the extra that installs it (`greenai.integrations`).

    Also an ImportError, so that `try: import greenai.integrations.X except ImportError` works."""
