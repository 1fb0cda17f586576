"""A job: what to run, what it needs, when it may run, and what it is predicted to cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Job:
    """One unit of work for a scheduler.

    Exactly one of `command` (argv for a subprocess) or `callable_path`
    (`module:function`, called with `kwargs`) is set. Times are seconds: `arrival_s` on the
    scheduler's clock (a trace's epoch seconds in simulation, wall time when running),
    `slack_s` how long the start may be delayed (the deadline is arrival + slack +
    duration). `predicted_duration_s` and `predicted_energy_j` come from the estimator,
    from past runs in the ledger, or from the user; `prediction_source` says which.
    """

    job_id: str
    name: str = ""
    command: tuple[str, ...] | None = None
    callable_path: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    cpus: float = 1.0
    gpus: float = 0.0
    resources: dict[str, float] = field(default_factory=dict)  # custom Ray resources
    arrival_s: float = 0.0
    slack_s: float = 0.0
    interruptible: bool = False
    predicted_duration_s: float | None = None
    predicted_energy_j: float | None = None
    prediction_source: str = "given"
    estimate_factory: str | None = None  # MODULE:FACTORY returning (model, example input)
    estimate_steps: int | None = None  # training steps the estimate covers

    def __post_init__(self) -> None:
        if (self.command is None) == (self.callable_path is None) and not self._simulation_only():
            raise ValueError(f"job {self.job_id!r}: give exactly one of command or callable")
        if self.slack_s < 0 or self.cpus < 0 or self.gpus < 0:
            raise ValueError(f"job {self.job_id!r}: slack, cpus and gpus must be >= 0")

    def _simulation_only(self) -> bool:
        # a job in a simulated trace runs nothing: it needs only a duration
        return self.command is None and self.callable_path is None and self.predicted_duration_s is not None

    @property
    def key(self) -> str:
        """What the job runs, as a short hash: its command, or its callable and kwargs (not its
        id nor its name). Its predictions come from past runs with the same name and key, so
        two unrelated jobs that happen to share a name never share a prediction."""
        import hashlib
        import json

        what = {
            "command": list(self.command) if self.command is not None else None,
            "callable": self.callable_path,
            "kwargs": self.kwargs if self.callable_path is not None else None,
        }
        text = json.dumps(what, sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def deadline_s(self) -> float | None:
        """Latest finish time, when the duration is known."""
        if self.predicted_duration_s is None:
            return None
        return self.arrival_s + self.slack_s + self.predicted_duration_s
