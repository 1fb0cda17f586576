"""Rendering shared by the commands: a run's totals (`demo`, `run`, `runs show`), an
optimization study (`optimize`, `demo`), and both as JSON; and the one rule for printing what
comes from a user or a ledger.

Every energy figure is printed with its provenance and its uncertainty band.

Names, tags, paths, notes and errors are printed as text, never as instructions to Rich or to
the terminal: the consoles of `make_console` read no markup (a run named `[/oops]` or
`[link=...]click[/link]` prints as written), replace no emoji codes, and show control
characters as escapes (`visible`, the rule of greenai/text.py: ESC as ``\\x1b``), in printed
strings, table cells and titles alike. Styles come from `Text` objects, built by `line` and `text`, never from markup
around user data.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from greenai.errors import GreenAIError
from greenai.hardware.coload import CoLoadSummary
from greenai.ledger.export import coload_to_dict
from greenai.ledger.records import RunSnapshot
from greenai.text import one_line, visible  # the one rule (greenai/text.py), used here by every command
from greenai.tracking.phases import SEPARATOR, inclusive_totals
from greenai.units import format_duration_rounded, format_energy, format_energy_per_unit

if TYPE_CHECKING:  # the optimize commands import torch lazily
    from greenai.optimize.search import Outcome, Study
    from greenai.tracking.result import RunResult


def text(value: object, style: str = "") -> Text:
    """`value` as a Text in `style`: for a table cell or a status line that is styled."""
    return Text(visible(value), style=style)


def line(*parts: str | tuple[str, str] | Text) -> Text:
    """One printed line from plain parts and (text, style) parts; every part is text
    (made visible), none is read as markup."""
    out = Text()
    for part in parts:
        if isinstance(part, Text):
            out.append_text(part)
        elif isinstance(part, tuple):
            out.append(visible(part[0]), style=part[1])
        else:
            out.append(visible(part))
    return out


class TextConsole(Console):
    """A Rich console on which every str is text (see the module's docstring): markup and
    emoji codes off, control characters made visible in `render_str`, which Rich calls for
    every str it prints, in table cells and titles too."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, emoji=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(visible(text), **kwargs)


def make_console(stderr: bool = False) -> Console:
    """A `TextConsole`, wide enough for the tables when output goes to a pipe or a file
    (Rich would otherwise assume 80 columns)."""
    console = TextConsole(stderr=stderr)
    if not console.is_terminal:
        console = TextConsole(stderr=stderr, width=160)
    return console


def band(energy_j: float, rel_uncertainty: float) -> str:
    return f"{format_energy(energy_j)} ± {rel_uncertainty * 100:.0f}%"


def render_result(console: Console, result: RunResult) -> None:
    """A run that just ended, as `render_run` shows it; the ledger is named only once it holds
    the result (`result.stored`: a final write that failed is said in `result.notes`)."""
    render_run(
        console,
        run_id=result.run_id,
        name=result.name,
        status=result.status,
        snapshot=result.snapshot,
        cost_configured=result.cost_configured,
        ledger_path=str(result.ledger_path) if result.ledger_path and result.stored else None,
    )


def render_run(
    console: Console,
    *,
    run_id: str,
    name: str,
    status: str,
    snapshot: RunSnapshot,
    cost_configured: bool,
    ledger_path: str | None = None,
) -> None:
    s = snapshot
    console.print(
        line(
            ("Run", "bold"),
            f" {one_line(name)} ",
            (f"({one_line(run_id[:8])})", "dim"),
            "  status: ",
            (one_line(status), "bold"),
            f"  duration: {s.duration_s:.2f} s",
        )
    )
    console.print(
        line(
            ("Energy", "bold"),
            f" {band(s.energy_j, s.rel_uncertainty)} (",
            (s.provenance.value, "italic"),
            "; weakest source among devices)",
        )
    )
    if s.coload is not None:
        console.print(coload_line(s.coload))
    console.print(device_table(s))
    if s.phases:
        console.print(phase_table(s))
    for counter, value in sorted(s.counters.items()):
        if value > 0 and s.energy_j > 0:
            unit = one_line(counter)
            console.print(
                f"  {s.energy_j / value:.4g} J/{unit.rstrip('s')}   {value / s.energy_j:.4g} {unit}/J   ({value:g} {unit})"
            )
    console.print(
        line(
            ("Carbon", "bold"),
            f" {s.carbon_g:.4g} gCO2e ± {s.rel_uncertainty * 100:.0f}%  ",
            (
                f"(facility energy {format_energy(s.facility_energy_j)} at PUE {s.pue:g}; {s.carbon_source})",
                "dim",
            ),
        )
    )
    if cost_configured:
        console.print(line(("Cost", "bold"), f" {s.cost:.6f} {one_line(s.currency)}"))
    else:
        console.print(line(("Cost", "bold"), " not computed: set price_per_kwh (GREENAI_PRICE_PER_KWH)"))
    if ledger_path:
        console.print(text(f"Stored in {one_line(ledger_path)} as run {one_line(run_id)}", "dim"))


def coload_line(coload: CoLoadSummary) -> Text:
    """The co-load a run ran under, in words; in yellow, with what to do, when it was disturbed."""
    if coload.disturbed:
        return line(
            ("Co-load", "bold"),
            " ",
            (coload.describe(), "yellow"),
            ": its figures say as much about the machine as about the run; measure again when it is quiet",
        )
    return line(("Co-load", "bold"), " ", coload.describe())


def calibration_note(note: str) -> Text:
    """A note of a calibration profile (`greenai calibrate`, `greenai estimate`): in yellow when
    it says the calibration is less reliable (a busy machine), dim otherwise."""
    warn = "other processes kept" in note or "less reliable" in note
    return text(f"calibration note: {note}", "yellow" if warn else "dim")


def device_table(s: RunSnapshot) -> Table:
    table = Table(title="Energy per device", title_justify="left")
    for col in ("device", "energy", "share", "power (mean)", "provenance"):
        table.add_column(col, justify="left" if col in ("device", "provenance") else "right")
    for d in s.devices:
        share = d.energy_j / s.energy_j if s.energy_j > 0 else 0.0
        mean_w = d.energy_j / s.duration_s if s.duration_s > 0 else 0.0
        table.add_row(
            one_line(d.device),
            band(d.energy_j, d.rel_uncertainty),
            f"{share:.1%}",
            f"{mean_w:.2f} W",
            d.provenance.value,
        )
    return table


def phase_table(s: RunSnapshot) -> Table:
    """Phases with energy summed over devices, nested phases indented under their parent; a
    parent's figures include its nested phases (``tracking.phases.inclusive_totals``)."""
    table = Table(
        title="Energy per phase, nested phases included (apportioned by time within each sample)",
        title_justify="left",
    )
    for col in ("phase", "energy", "share", "time", "calls"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for phase, totals in inclusive_totals(s.phases).items():
        depth = phase.count(SEPARATOR)
        label = "  " * depth + one_line(phase.rsplit(SEPARATOR, 1)[-1])
        share = totals.energy_j / s.energy_j if s.energy_j > 0 else 0.0
        table.add_row(
            label,
            band(totals.energy_j, s.rel_uncertainty),
            f"{share:.1%}",
            f"{totals.duration_s:.2f} s",
            str(totals.calls) if totals.calls else "",
        )
    return table


def result_to_dict(result: RunResult) -> dict[str, Any]:
    """A finished run as JSON, read back from the ledger it was stored in."""
    from greenai.ledger import Ledger, record_to_dict

    if result.ledger_path is None:
        raise GreenAIError("this run was not stored in a ledger")
    with Ledger(result.ledger_path) as ledger:
        return {**record_to_dict(ledger.get_run(result.run_id)), "ledger": str(result.ledger_path)}


def render_study(console: Console, study: Study) -> None:
    """The candidates table, then the recommendation in words."""
    base = study.baseline.measurement
    provenance = base.provenance.value if base else "?"
    table = Table(title=f"Candidates: energy per sample ({provenance}), {study.quality_name}", title_justify="left")
    for col in (
        "candidate",
        "energy/sample",
        "± (95%)",
        "spread",
        "vs baseline",
        study.quality_name,
        "size",
        "nonzero params",
    ):
        table.add_column(col, justify="left" if col == "candidate" else "right", overflow="fold")
    for o in study.outcomes:
        m = o.measurement
        if m is None:
            table.add_row(one_line(o.name), text(o.status, "yellow"), "", "", "", "", "", "")
            continue
        ratio = study.energy_ratio(o.name)
        front = (" ◆", "green") if o.name in study.front else ""
        quality = line(f"{o.quality:.4f}", "" if (o.quality or 0) >= study.bound else (" ✗", "red"))
        table.add_row(
            line(one_line(o.name), front),
            format_energy_per_unit(m.energy_per_sample_j),
            f"{100 * m.rel_uncertainty:.0f}%",
            f"{100 * m.rel_spread:.0f}%",
            _vs_baseline(study, o, ratio),
            quality,
            f"{o.size_bytes / 1024:.0f} KiB" if o.size_bytes else "?",
            f"{o.nonzero_parameters:,}" if o.nonzero_parameters is not None else "?",
        )
    console.print(table)
    shown: set[str] = set()  # a composed candidate repeats its steps' notes: print each once
    for o in study.outcomes:
        notes = [line((o.status, "yellow"), f": {o.reason}")] if o.measurement is None else map(text, o.notes)
        for note in notes:
            if note.plain not in shown:
                shown.add(note.plain)
                console.print(line("  ", (f"{one_line(o.name)}:", "dim"), " ", note))
    if study.coload is not None:
        console.print(line(("During the study:", "dim"), " ", coload_line(study.coload)))
    console.print(
        text(
            f"◆ Pareto front. Quality bound {study.bound:.4g}. ± combines the meter's band and "
            "the repeats' spread; ratios share one meter, so only the spread (half the interquartile "
            "range over the median) separates candidates.",
            "dim",
        )
    )
    rec = study.recommended
    if rec is None:
        console.print(text("No candidate meets the quality bound.", "yellow"))
    elif study.caveat:  # measured on a busy machine: the figures, and the word, are provisional
        ratio = study.energy_ratio(rec.name) or 0
        console.print(
            line(
                "Recommendation: ",
                ("keep the baseline" if rec is study.baseline else one_line(rec.name), "bold"),
                "" if rec is study.baseline else f" — {energy_ratio_text(ratio)} energy per sample",
                " (",
                (f"provisional: {study.caveat}", "yellow"),
                f"), {study.quality_name} {rec.quality:.4f} vs {study.baseline.quality:.4f}.",
            )
        )
    elif rec is study.baseline:
        console.print("Recommendation: keep the baseline; no candidate within the bound used less energy.")
    else:
        ratio = study.energy_ratio(rec.name) or 0
        verdict = (
            text("greener, beyond the measurement spread")
            if study.greener
            else text("not distinguishable from the baseline within the measurement spread", "yellow")
        )
        console.print(
            line(
                "Recommendation: ",
                (one_line(rec.name), "bold"),
                f" — {ratio:.2f}x less energy per sample (",
                verdict,
                f"), {study.quality_name} {rec.quality:.4f} vs {study.baseline.quality:.4f}.",
            )
        )


def _vs_baseline(study: Study, o: Outcome, ratio: float | None) -> Text:
    """The ratio to the baseline in words, and beside it whether a busy machine moved it."""
    if o is study.baseline:
        words, busy = "baseline", o.measurement is not None and o.measurement.disturbed
    else:
        words, busy = energy_ratio_text(ratio), study.disturbed(o.name)
    return line(words, (" (busy machine)", "yellow")) if busy else line(words)


def study_to_dict(study: Study) -> dict[str, Any]:
    """The study as JSON-ready data (one entry per candidate, skipped and failed included)."""

    def outcome(o: Outcome) -> dict[str, Any]:
        m = o.measurement
        return {
            "name": o.name,
            "transforms": list(o.transforms),
            "status": o.status,
            "reason": o.reason,
            "quality": o.quality,
            "energy_per_sample_j": m.energy_per_sample_j if m else None,
            "time_per_sample_s": m.time_per_sample_s if m else None,
            "rel_uncertainty": m.rel_uncertainty if m else None,
            "provenance": m.provenance.value if m else None,
            "energy_ratio_vs_baseline": study.energy_ratio(o.name) if m else None,
            "coload_cores": m.coload_cores if m else None,
            "disturbed_repeats": m.disturbed_repeats if m else None,
            "disturbed": m.disturbed if m else None,
            "ratio_disturbed": study.disturbed(o.name) if m else None,
            "size_bytes": o.size_bytes,
            "parameters": o.parameters,
            "nonzero_parameters": o.nonzero_parameters,
            "notes": list(o.notes),
            "on_pareto_front": o.name in study.front,
        }

    return {
        "study_id": study.study_id,
        "run_id": study.run_id,
        "quality_name": study.quality_name,
        "quality_bound": study.bound,
        "recommended": study.recommended.name if study.recommended else None,
        "greener": study.greener,
        "caveat": study.caveat or None,  # set when the recommendation rests on a busy machine's figures
        "coload": coload_to_dict(study.coload),
        "candidates": [outcome(o) for o in study.outcomes],
    }


def energy_ratio_text(ratio: float | None) -> str:
    """A candidate's energy against the baseline's in words, from `ratio` = baseline energy
    over the candidate's: "2.00x less" (half the energy), "1.16x more" (ratio 0.86); "" when
    there is no ratio. `optimize`, `demo` and `studies` all say it this way."""
    if not ratio:
        return ""
    return f"{ratio:.2f}x less" if ratio >= 1 else f"{1 / ratio:.2f}x more"


# -- progress of long commands (calibrate, optimize, schedule simulate) ------------------------

PROGRESS_EVERY_S = 5.0  # a plain progress line at most this often when output is not a terminal


class ProgressReport:
    """What a long command says while it works: `update(done, total, label)` with the work done
    so far out of `total` (any unit: benchmarks, candidates x rounds, jobs), and what it is
    doing. On a terminal it drives Rich's progress bar with an ETA; elsewhere (a pipe, a log
    file, CI) it prints a plain line every `every_s` seconds, from `every_s` after the start
    (a command done sooner prints none), and one when it ends if it printed any:
    `calibrating: 40% (12/30), matmul fp32; about 35 s left`."""

    def __init__(self, console: Console, description: str, every_s: float | None = None) -> None:
        self.console, self.description = console, one_line(description)
        self.every_s = PROGRESS_EVERY_S if every_s is None else every_s
        self.done, self.total, self.label = 0.0, 0.0, ""
        self._started = time.monotonic()
        self._printed_at: float | None = None
        self._bar: Any = None
        self._task: Any = None

    def update(self, done: float | None = None, total: float | None = None, label: str | None = None) -> None:
        if total is not None:
            self.total = max(float(total), 0.0)
        if done is not None:
            self.done = min(max(float(done), 0.0), self.total) if self.total else max(float(done), 0.0)
        if label is not None:
            self.label = one_line(label)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, total=self.total or None, description=self._what())
            return
        now = time.monotonic()
        if now - (self._started if self._printed_at is None else self._printed_at) >= self.every_s:
            self._printed_at = now
            self.console.print(text(self.line(now)))

    def line(self, now: float | None = None) -> str:
        """The plain progress line: share done, what is being done, time left."""
        elapsed = (time.monotonic() if now is None else now) - self._started
        parts = [self.description + ":"]
        if self.total:
            parts.append(f"{100 * self.done / self.total:.0f}% ({self.done:g}/{self.total:g})")
        if self.label:
            parts[-1] += ","
            parts.append(self.label)
        if self.total and 0 < self.done < self.total:
            parts[-1] += ";"
            parts.append(f"about {format_duration_rounded(elapsed * (self.total - self.done) / self.done)} left")
        return " ".join(parts)

    def _what(self) -> str:
        return f"{self.description}: {self.label}" if self.label else self.description

    def _finish(self) -> None:
        if self._bar is None and self._printed_at is not None:
            self.console.print(
                text(f"{self.description}: done in {format_duration_rounded(time.monotonic() - self._started)}")
            )


@contextlib.contextmanager
def progress(console: Console, description: str, *, every_s: float | None = None) -> Iterator[ProgressReport]:
    """A `ProgressReport` for the block (see it); the bar is cleared when the block ends."""
    report = ProgressReport(console, description, every_s)
    if not console.is_terminal:
        yield report
        report._finish()
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeRemainingColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        report._bar, report._task = bar, bar.add_task(report.description, total=None)
        yield report
