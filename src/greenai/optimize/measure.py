"""Measure candidates' inference energy per sample under the tracker, interleaved.

One tracked run holds a whole study: every candidate runs inside its own phase
(`candidate:<name>`), and the tracker apportions energy to phases by time. The machine is
noisy, so candidates are measured in rounds: each round runs every candidate once (the
order rotating between rounds), after a warm-up pass that is not counted. A repeat is made
long enough (`min_repeat_s`) to span several sampler ticks.

Per candidate:
- time per sample: median over repeats of (repeat time / samples in the repeat);
- energy per sample: mean power of the candidate's phase x the median time per sample.
  Mean power is the phase's energy over its duration; with a hardware counter it is
  measured, otherwise the meter's model — the provenance says which;
- relative uncertainty (~95 %): the meter's band and the repeats' spread (half the
  interquartile range of repeat times over their median), combined in quadrature.

A candidate whose model raises while measured (warm-up or any round) is dropped from the
remaining rounds and reported in the failures; the others are measured as usual.

A busy machine (hardware/coload.py): each repeat's co-load is read from the tracker (the CPUs
other processes and the hypervisor kept busy while it ran, from the sampler's readings: nothing
more is read on this thread). A repeat at or above the run's threshold (`coload_threshold_cores`)
is disturbed, and a round with a disturbed repeat is measured again, after waiting (at most
QUIET_WAIT_S) for the machine to quieten: at most as many extra rounds as were planned. A
candidate's figures then come from its quiet repeats when at least half of the planned rounds
(rounded up) were quiet for it; otherwise from all its repeats, and the measurement is marked
`disturbed` with its co-load, for the study to say so. (The mean power is its phase's over all
repeats; the time per sample, which a busy machine moves most, is the quiet repeats' median.)
"""

from __future__ import annotations

import contextlib
import logging
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from greenai.errors import ConfigError, UnknownPhaseError
from greenai.hardware.coload import wait_for_quiet
from greenai.meters.base import Provenance
from greenai.optimize.candidate import Batch, Candidate, as_args, batch_size
from greenai.tracking.result import RunResult
from greenai.tracking.tracker import Tracker

log = logging.getLogger(__name__)

PHASE_PREFIX = "candidate:"
QUIET_WAIT_S = 10.0  # before re-measuring a disturbed round, wait at most this for a quiet machine


@dataclass(frozen=True)
class Measurement:
    """A candidate's inference cost per sample, with how it was obtained."""

    energy_per_sample_j: float
    time_per_sample_s: float
    rel_uncertainty: float  # meter band and repeat spread combined
    rel_spread: float  # repeat-to-repeat spread alone: what comparisons on one meter face
    provenance: Provenance
    samples: int  # samples run in the counted repeats
    repeats: int
    # the machine while it was measured: median co-load of its repeats (CPUs other processes kept
    # busy; None: unknown), how many repeats were disturbed, and whether its figures come from
    # disturbed repeats (too few quiet ones, even after re-measuring)
    coload_cores: float | None = None
    disturbed_repeats: int = 0
    disturbed: bool = False


@contextlib.contextmanager
def threads(count: int | None) -> Iterator[None]:
    """Run with `count` intra-op threads, restoring the previous setting."""
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def inputs_for(candidate: Candidate, inputs: Sequence[Batch]) -> Sequence[Batch]:
    """The batches this candidate runs: the task's, re-cut when it sets a batch size."""
    size = candidate.extra.get("batch_size")
    if not size:
        return inputs
    from greenai.optimize.transforms.runtime import rebatch  # runtime imports this module

    return rebatch(inputs, int(size))


def run_inputs(candidate: Candidate, inputs: Sequence[Batch], passes: int = 1) -> int:
    """Run the candidate over the inputs `passes` times; return the samples run."""
    samples = 0
    model = candidate.model
    with threads(candidate.threads), torch.inference_mode():
        for _ in range(passes):
            for batch in inputs:
                model(*as_args(batch))
                samples += batch_size(batch)
    return samples


def measure(
    candidates: Sequence[Candidate],
    inputs: Sequence[Batch],
    tracker: Tracker,
    *,
    repeats: int = 5,
    min_repeat_s: float = 0.5,
    on_step: Callable[[str], None] | None = None,
) -> tuple[dict[str, Measurement], dict[str, str], RunResult]:
    """Measure every candidate in one tracked run (started and stopped here). `on_step(what)`
    is called after each candidate's warm-up and each of its rounds (len(candidates) x
    (repeats + 1) steps at most), for a progress display.

    Returns (measurements by name, failure reason by name, the run's result): a candidate
    that raises is in the failures only, and the search goes on with the others."""
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    if not inputs:
        raise ConfigError("no input batches to measure energy on")
    for candidate in candidates:
        candidate.model.eval()
    times: dict[str, list[float]] = {c.name: [] for c in candidates}  # quiet repeats
    busy: dict[str, list[float]] = {c.name: [] for c in candidates}  # disturbed repeats
    loads: dict[str, list[float]] = {c.name: [] for c in candidates}  # every repeat's co-load, where known
    counted: dict[str, int] = {c.name: 0 for c in candidates}
    failures: dict[str, str] = {}
    prepared: dict[str, Sequence[Batch]] = {}
    passes: dict[str, int] = {}
    step = on_step or (lambda what: None)
    threshold = tracker.config.coload_threshold_cores
    with tracker as run:
        for candidate in candidates:  # warm-up, also sizing each repeat
            step(f"warming up {candidate.name}")
            try:
                prepared[candidate.name] = inputs_for(candidate, inputs)
                with run.phase("warmup"):
                    t0 = time.perf_counter()
                    run_inputs(candidate, prepared[candidate.name])
                    passes[candidate.name] = max(1, math.ceil(min_repeat_s / max(time.perf_counter() - t0, 1e-6)))
            except Exception as e:  # one candidate must not end the measurement of the others
                _fail(failures, candidate, "warm-up", e)

        def one_round(round_index: int, label: str) -> bool | None:
            """Every active candidate once; whether a repeat was disturbed (None: none left)."""
            active = [c for c in candidates if c.name not in failures]
            if not active:
                return None
            shift = round_index % len(active)
            round_mark = run.coload_mark()
            done: list[tuple[str, float, float | None]] = []  # (candidate, time per sample, co-load)
            for candidate in (*active[shift:], *active[:shift]):
                step(f"{label}: {candidate.name}")
                mark = run.coload_mark()
                try:
                    with run.phase(PHASE_PREFIX + candidate.name):
                        t0 = time.perf_counter()
                        samples = run_inputs(candidate, prepared[candidate.name], passes[candidate.name])
                        elapsed = time.perf_counter() - t0
                except Exception as e:
                    _fail(failures, candidate, label, e)
                    continue
                done.append((candidate.name, elapsed / samples, run.coload_since(mark)))
                counted[candidate.name] += samples
                run.count("samples", samples)
            # a repeat shorter than a sampling interval has no co-load of its own: its round's
            round_cores = run.coload_since(round_mark)
            disturbed = False
            for name, per_sample_s, own_cores in done:
                cores = own_cores if own_cores is not None else round_cores
                if cores is not None:
                    loads[name].append(cores)
                if cores is not None and cores >= threshold:
                    busy[name].append(per_sample_s)
                    disturbed = True
                else:
                    times[name].append(per_sample_s)
            return disturbed

        to_redo = 0
        for round_index in range(repeats):
            outcome = one_round(round_index, f"round {round_index + 1}/{repeats}")
            if outcome is None:
                break
            to_redo += outcome
        extra = 0
        while to_redo and extra < repeats:  # bounded: at most as many extra rounds as planned
            extra += 1
            wait_for_quiet(QUIET_WAIT_S, threshold)
            outcome = one_round(repeats + extra - 1, f"re-measuring a disturbed round ({extra}/{repeats})")
            if outcome is None:
                break
            to_redo -= not outcome
    result = tracker.result
    assert result is not None
    quiet_needed = math.ceil(repeats / 2)
    measured = {
        c.name: _summarise(
            result,
            c.name,
            times[c.name] if len(times[c.name]) >= quiet_needed else times[c.name] + busy[c.name],
            counted[c.name],
            loads[c.name],
            len(busy[c.name]),
            len(times[c.name]) < quiet_needed,
        )
        for c in candidates
        if c.name not in failures
    }
    return measured, failures, result


def _fail(failures: dict[str, str], candidate: Candidate, where: str, error: Exception) -> None:
    log.debug("candidate %s failed while measured", candidate.name, exc_info=error)
    failures[candidate.name] = f"measurement ({where}) raised {type(error).__name__}: {error}"


def _summarise(
    result: RunResult,
    name: str,
    per_sample_s: list[float],
    samples: int,
    loads: Sequence[float] = (),
    disturbed_repeats: int = 0,
    disturbed: bool = False,
) -> Measurement:
    phase = PHASE_PREFIX + name
    try:
        energy_j, duration_s = result.phase_energy_j(phase), result.phase_duration_s(phase)
    except UnknownPhaseError:  # no sample saw the candidate's phase: no power to read
        energy_j, duration_s = 0.0, 0.0
    median_s = statistics.median(per_sample_s)
    mean_power_w = energy_j / duration_s if duration_s > 0 else math.nan
    return Measurement(
        energy_per_sample_j=mean_power_w * median_s,
        time_per_sample_s=median_s,
        rel_uncertainty=math.hypot(result.snapshot.rel_uncertainty, _spread(per_sample_s)),
        rel_spread=_spread(per_sample_s),
        provenance=result.snapshot.provenance,
        samples=samples,
        repeats=len(per_sample_s),
        coload_cores=statistics.median(loads) if loads else None,
        disturbed_repeats=disturbed_repeats,
        disturbed=disturbed,
    )


def _spread(values: list[float]) -> float:
    """Half the interquartile range over the median (0 for fewer than two values)."""
    if len(values) < 2:
        return 0.0
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return (q3 - q1) / 2 / statistics.median(values)
