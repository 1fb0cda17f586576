"""How close is the analytical estimate to a real run? Time and energy, per step, on this machine.

Target: a calibrated estimate within 15% MAPE (time and energy, per training step and per
inference batch) over at least eight diverse models at different batch sizes, calibrated once
in at most 60 s.

    python benchmarks/estimate_accuracy.py [--budget 60] [--batches 4,32] [--models mlp,gru] [--write]
    python benchmarks/estimate_accuracy.py --set held-out ...   # models kept aside from the zoo

(--profile FILE reuses a calibration saved there, or calibrates and saves it: to iterate on
counting and prediction without recalibrating; the published figures calibrate afresh.)

1. Calibrate once (`greenai.estimation.calibrate.calibrate`, micro-benchmarks only: the models
   below are never seen by the calibration), report its wall time.
2. For each model of the zoo (tests/estimate/models.py; `--set held-out`: the held-out set,
   tests/estimate/held_out_models.py, models the estimator was not shaped on, reported per
   regime; `--set all`: both) x batch size x {inference batch,
   training step (forward, loss = output.sum(), backward, Adam)}:
   - predict: count_ops (on fake tensors) + predict, with the calibrated profile and with the
     rough default coefficients (uncalibrated, for contrast);
   - measure: a real run (warm-up, then steps for about --seconds): the median wall time per
     step, and the energy per step from greenai's Tracker (store=False) over all those steps,
     with its provenance; once per round (--rounds, interleaved over all cases), each time on
     a freshly built model (seeded, as predicted), keeping each case's least disturbed round.
3. Print Markdown: per case predicted vs measured with the error, MAPE overall; with --write,
   replace the section between `<!-- estimate:start -->` and `<!-- estimate:end -->` in
   docs/benchmarks.md (appended at the end if absent).

Nothing is tuned per model: the profile comes from micro-benchmarks only.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from _harness import QUIET_CORES, add_write, cpu_sample, for_seconds, ints, mape, parser, wait_for_quiet, write_section
from _zoo import SETS, ZOO_REGIME, build, regime, zoo_models

QUIET_CPUS = QUIET_CORES  # other jobs below this many busy CPUs: a quiet measurement


@dataclass
class Case:
    model: str
    batch: int
    mode: str  # "inference" or "training"
    records: int
    pred_time_s: float
    pred_energy_j: float
    default_time_s: float
    default_energy_j: float
    time_s: float  # measured median per step
    energy_j: float  # measured: mean power over the run x median step time (the typical step)
    energy_mean_j: float  # measured: tracker energy / steps (includes the slow outlier steps)
    provenance: str
    steps: int
    co_load: float  # CPUs other processes kept busy during the kept window
    notes: tuple[str, ...] = ()
    optimizer_s: float | None = None  # training: measured median optimizer.step() in the kept window
    pred_optimizer_s: float | None = None
    # the predictions' ~95 % bands: (time low, time high, energy low, energy high), s and J
    band: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    default_band: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    faults: float = 0.0  # minor page faults per step in the kept window (fresh memory)

    @property
    def regime(self) -> str:
        return regime(self.model)

    def err(self, predicted: float, measured: float) -> float:
        return (predicted - measured) / measured

    @property
    def time_err(self) -> float:
        return self.err(self.pred_time_s, self.time_s)

    @property
    def energy_err(self) -> float:
        return self.err(self.pred_energy_j, self.energy_j)

    @property
    def energy_mean_err(self) -> float:
        return self.err(self.pred_energy_j, self.energy_mean_j)

    @property
    def default_time_err(self) -> float:
        return self.err(self.default_time_s, self.time_s)

    @property
    def default_energy_err(self) -> float:
        return self.err(self.default_energy_j, self.energy_j)

    def inside(self, default: bool = False) -> tuple[bool, bool]:
        """Whether the measured time and energy fall inside the (default) prediction's band."""
        t_low, t_high, e_low, e_high = self.default_band if default else self.band
        return t_low <= self.time_s <= t_high, e_low <= self.energy_j <= e_high


def measure(model, x, mode: str, seconds: float, windows: int = 3):
    """A real run: warm-up, then `windows` windows of steps, each in its own greenai Tracker.
    The window with the smallest median step time is kept (the least disturbed by other jobs
    on a shared machine): its median step time, the energy of that typical step (the window's
    mean power x median), its energy per step (energy / steps), provenance, steps, the
    CPUs other processes kept busy during it, in training the median optimizer.step() alone,
    and the minor page faults per step (fresh memory the kernel maps in)."""
    import torch

    from greenai.tracking.tracker import Tracker

    if mode == "inference":
        model.eval()

        def step() -> None:
            with torch.inference_mode():
                model(x)
    else:
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step() -> None:
            opt.zero_grad()
            out = model(x)
            loss = out.float().sum()  # count_ops' stand-in loss: the same operators
            loss.backward()
            a = time.perf_counter()
            opt.step()
            optimizer_times.append(time.perf_counter() - a)

    optimizer_times: list[float] = []

    for _ in range(3):  # warm-up (first Adam step creates its state; oneDNN primitives)
        step()
    results = []
    for _ in range(windows):
        times: list[float] = []
        optimizer_times.clear()
        load0 = cpu_sample()
        faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        tracker = Tracker("estimate-accuracy", store=False, handle_signals=False)
        with tracker:
            for _ in for_seconds(seconds / windows, at_least=5, at_most=20_000):
                a = time.perf_counter()
                step()
                times.append(time.perf_counter() - a)
        co_load = cpu_sample().others_cores(load0)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / len(times)
        snap = tracker.result.snapshot
        median = statistics.median(times)
        power_w = snap.energy_j / snap.duration_s
        results.append(
            (
                median,
                power_w * median,
                snap.energy_j / len(times),
                snap.provenance.value,
                len(times),
                co_load,
                statistics.median(optimizer_times) if optimizer_times else None,
                faults,
            )
        )
    return min(results, key=lambda r: r[0])


def run(args: argparse.Namespace) -> tuple[list[Case], object, dict]:
    from greenai.estimation.calibrate import calibrate, describe
    from greenai.estimation.counting import count_ops
    from greenai.estimation.predict import predict
    from greenai.estimation.profile import default_profile, load_profile

    info = {"load_before": os.getloadavg(), "waited_s": wait_for_quiet(args.max_wait)}
    reuse = Path(args.profile) if args.profile else None
    if reuse is not None and reuse.exists():  # iterate on counting/prediction without recalibrating
        profile = load_profile(reuse)
        info["calibration_wall_s"], info["calibrations"] = profile.calibration_s, 1
    else:
        for attempt in range(3):  # again if other jobs disturbed it (calibrate() notes it)
            t0 = time.perf_counter()
            profile = calibrate(
                args.budget, save=args.save or reuse is not None, path=reuse, progress=(print if args.verbose else None)
            )
            info["calibration_wall_s"] = time.perf_counter() - t0
            if not any(n.startswith("other processes kept") for n in profile.notes):
                break
            print(f"calibration disturbed by other jobs (attempt {attempt + 1}); waiting to redo it", flush=True)
            info["waited_s"] += wait_for_quiet(args.max_wait)
        info["calibrations"] = attempt + 1
    print(f"calibrated in {info['calibration_wall_s']:.1f} s (budget {args.budget:g} s)", flush=True)
    if args.verbose:
        print(describe(profile))
    defaults = default_profile()
    planned = []
    for name in args.model_names:
        for batch in args.batch_sizes:
            for mode in ("inference", "training"):
                model, x = build(name, batch)
                counts = count_ops(model, x, training=mode == "training", optimizer="adam")
                planned.append((name, batch, mode, counts, predict(counts, profile), predict(counts, defaults)))
    # every case is measured once per round, rounds interleaved (a slow spell of the shared
    # host hits one round of a case, not all); the least disturbed round is kept
    best: dict[int, tuple] = {}
    info["rounds"] = args.rounds
    for round_ in range(args.rounds):
        for i, (name, batch, mode, _counts, cal, _rough) in enumerate(planned):
            for attempt in range(args.attempts):  # measured again while other jobs disturbed it
                info["waited_s"] += wait_for_quiet(args.max_wait)
                # a fresh model each time, as predicted: thousands of steps of loss = sum drive a
                # model into denormals (the LSTM's backward then runs 13-20x slower, benchmarks/denormals.py)
                model, x = build(name, batch)
                measured = measure(model, x, mode, args.seconds)
                # no energy: the meters were dropped (a loaded machine can time their start out)
                if measured[1] > 0 and (measured[5] < QUIET_CPUS or attempt + 1 >= args.attempts):
                    break
            if measured[1] <= 0:
                print(
                    f"[{round_ + 1}/{args.rounds}] {name} b={batch} {mode}: no energy measured (meters dropped); skipped"
                )
                continue
            if i not in best or measured[0] < best[i][0]:
                best[i] = measured
            t, e, opt_s = measured[0], measured[1], measured[6]
            opt_note = ""
            if opt_s is not None:
                pred_opt = cal.per_pass["optimizer"][0]
                opt_note = (
                    f"  optimizer {opt_s * 1e3:6.2f} ms pred {pred_opt * 1e3:6.2f} ({pred_opt / opt_s - 1:+6.1%})"
                )
            print(
                f"[{round_ + 1}/{args.rounds}] {name:12s} b={batch:<4d} {mode:9s} time {t * 1e3:8.2f} ms "
                f"pred {cal.time_s * 1e3:8.2f} ({cal.time_s / t - 1:+6.1%})  energy {e * 1e3:8.2f} mJ "
                f"pred {cal.energy_j * 1e3:8.2f} ({cal.energy_j / e - 1:+6.1%}){opt_note}"
                f"  faults {measured[7]:7.0f}/step  co-load {measured[5]:.2f}",
                flush=True,
            )
    cases: list[Case] = []
    for i, (name, batch, mode, counts, cal, rough) in enumerate(planned):
        if i not in best:
            continue  # never measured with energy
        t, e, e_mean, prov, steps, co_load, opt_s, faults = best[i]
        cases.append(
            Case(
                name,
                batch,
                mode,
                len(counts.records),
                cal.time_s,
                cal.energy_j,
                rough.time_s,
                rough.energy_j,
                t,
                e,
                e_mean,
                prov,
                steps,
                co_load,
                tuple(n for n in cal.notes if "no time model" in n),
                opt_s,
                cal.per_pass["optimizer"][0] if opt_s is not None else None,
                band=(cal.time_low_s, cal.time_high_s, cal.energy_low_j, cal.energy_high_j),
                default_band=(rough.time_low_s, rough.time_high_s, rough.energy_low_j, rough.energy_high_j),
                faults=faults,
            )
        )
    info["load_after"] = os.getloadavg()
    return cases, profile, info


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def markdown(cases: list[Case], profile, info: dict, args: argparse.Namespace) -> str:
    import torch

    import greenai

    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    fp = profile.fingerprint
    title = "## Estimate accuracy (predicted vs measured, per step)"
    if args.set != "zoo":
        # a subsection of docs/benchmarks.md's "Estimates on models the calibration never saw"
        title = f"### Estimate accuracy per regime: the {args.set} set"
    lines = [
        title,
        "",
        (
            f"Measured {when} by `benchmarks/estimate_accuracy.py` on {fp.cpu_model} "
            f"({fp.logical_cpus} logical CPUs, {fp.usable_cpus:g} usable), {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), greenai {greenai.__version__}. Load average before "
            f"{info['load_before'][0]:.2f}, after {info['load_after'][0]:.2f} (the machine is shared)."
        ),
        "",
        (
            f"Command: `python benchmarks/estimate_accuracy.py --budget {args.budget:g} --batches "
            f"{args.batches} --seconds {args.seconds:g} --rounds {args.rounds}{f' --threads {args.threads}' if args.threads else ''}"
            f"{f' --set {args.set}' if args.set != 'zoo' else ''}{f' --models {args.models}' if args.models else ''}"
            f" --max-wait {args.max_wait:g} --attempts {args.attempts} --write`. Other processes kept {_coload(cases)} CPUs busy during "
            "the kept windows (median, max over the cases)."
        ),
        "",
        (
            f"**Calibration** (once{'' if info['calibrations'] == 1 else ' kept, after ' + str(info['calibrations'] - 1) + ' disturbed by other jobs and redone'}, "
            "micro-benchmarks only; the models below are never seen): "
            f"{info['calibration_wall_s']:.1f} s wall time for a budget of {args.budget:g} s, "
            f"{len(profile.points)} benchmark sizes, {len(profile.time_models)} rooflines; its own fit "
            f"error {_pct(profile.fit_mape_time)} (time), {_pct(profile.fit_mape_energy)} (energy). "
            f"Energy basis `{profile.energy_basis}`, fitted on `{profile.energy_provenance}` meters."
        ),
        "",
        (
            "**Measured**: a real run per case, started once other jobs on the machine had quieted "
            f"down (waited {info['waited_s']:.0f} s in all): 3 warm-up steps, then 3 windows of steps "
            f"({args.seconds:g} s in all), each inside a greenai Tracker; the window with the smallest "
            "median step time is kept (the least disturbed by other jobs): its median wall time per "
            "step, and the energy of that typical step = the Tracker's energy over the window / its "
            "duration x the median step time (energy / steps, which also carries the slow outlier "
            "steps, is compared in the summary too). Each case is measured so once per round, "
            f"{args.rounds} rounds interleaved over all cases, each on a freshly built model (the "
            "predicted one: seeded, untrained), and keeps its least disturbed round. "
            "The last column is the CPUs other processes (and the hypervisor's steal time) kept "
            "busy during the kept window. Inference: `model.eval()` under "
            "`torch.inference_mode()`. Training: zero_grad, forward, loss = output.sum(), backward, "
            "Adam step. **Predicted**: `count_ops` (fake tensors) + `predict`."
        ),
        "",
    ]
    cal_t = [c.time_err for c in cases]
    cal_e = [c.energy_err for c in cases]
    def_t = [c.default_time_err for c in cases]
    def_e = [c.default_energy_err for c in cases]
    lines += [
        "| | time MAPE | energy MAPE | cases |",
        "|---|---:|---:|---:|",
        f"| **calibrated** | **{mape(cal_t):.1%}** | **{mape(cal_e):.1%}** | {len(cases)} |",
        f"| calibrated, energy as tracker energy / steps | | {mape([c.energy_mean_err for c in cases]):.1%} | {len(cases)} |",
    ]
    quiet = [c for c in cases if c.co_load < QUIET_CPUS]
    lines.append(
        f"| calibrated, quiet cases only (other jobs < {QUIET_CPUS} CPU) | "
        f"{mape([c.time_err for c in quiet]):.1%} | {mape([c.energy_err for c in quiet]):.1%} | {len(quiet)} |"
    )
    for mode in ("inference", "training"):
        sub = [c for c in cases if c.mode == mode]
        lines.append(
            f"| calibrated, {mode} | {mape([c.time_err for c in sub]):.1%} | "
            f"{mape([c.energy_err for c in sub]):.1%} | {len(sub)} |"
        )
    trained = [c for c in cases if c.optimizer_s]
    if trained:
        errs = [c.err(c.pred_optimizer_s, c.optimizer_s) for c in trained]
        lines.append(
            f"| calibrated, `optimizer.step()` alone (training; median error {statistics.median(errs):+.1%}) "
            f"| {mape(errs):.1%} | | {len(trained)} |"
        )
    lines += [
        f"| default coefficients (uncalibrated) | {mape(def_t):.1%} | {mape(def_e):.1%} | {len(cases)} |",
        "",
        *regime_table(cases),
        band_coverage(cases),
        "",
        "| model | batch | step | ops | measured time | predicted | error | measured energy | predicted | error | provenance (measured) | default: time / energy error | faults per step | other jobs (CPUs) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for c in cases:
        lines.append(
            f"| {c.model} | {c.batch} | {c.mode} | {c.records} | {c.time_s * 1e3:.2f} ms | "
            f"{c.pred_time_s * 1e3:.2f} ms | {c.time_err:+.1%} | {c.energy_j * 1e3:.2f} mJ | "
            f"{c.pred_energy_j * 1e3:.2f} mJ | {c.energy_err:+.1%} | {c.provenance} | "
            f"{c.default_time_err:+.0%} / {c.default_energy_err:+.0%} | {c.faults:,.0f} | {c.co_load:.2f} |"
        )
    notes = sorted({n for c in cases for n in c.notes})
    lines += ["", "Notes:", ""]
    lines += [f"- {n}" for n in profile.notes]
    lines += [f"- prediction fallback: {n}" for n in notes]
    lines += [
        (
            "- Measured energy on a machine without hardware counters is itself an estimate "
            "(greenai's utilization-linear CPU model, ±50%); the calibrated prediction reproduces "
            "what greenai would report, not the true energy, on such machines."
        )
    ]
    return "\n".join(lines) + "\n"


def _coload(cases: list[Case]) -> str:
    loads = [c.co_load for c in cases]
    return f"{statistics.median(loads):.2f}, {max(loads):.2f}" if loads else "n/a"


def regime_table(cases: list[Case]) -> list[str]:
    """Time and energy MAPE per regime and mode (the zoo's one regime, the held-out set's four),
    with the measured minor page faults per step and the co-load; [] for the zoo alone."""
    regimes = sorted({c.regime for c in cases}, key=lambda r: (r != ZOO_REGIME, r))
    if regimes == [ZOO_REGIME]:
        return []
    out = [
        "| regime | step | time MAPE | energy MAPE | median time error | cases | faults per step (median) | co-load (median) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    held_out = [c for c in cases if c.regime != ZOO_REGIME]
    for kind in regimes:
        for mode in ("inference", "training", "both"):
            sub = [c for c in cases if c.regime == kind and mode in (c.mode, "both")]
            if not sub:
                continue
            out.append(
                f"| {kind} | {mode} | {mape([c.time_err for c in sub]):.1%} | {mape([c.energy_err for c in sub]):.1%} "
                f"| {statistics.median(c.time_err for c in sub):+.1%} | {len(sub)} "
                f"| {statistics.median(c.faults for c in sub):,.0f} | {statistics.median(c.co_load for c in sub):.2f} |"
            )
    if held_out:
        out.append(
            f"| **held-out, all** | both | **{mape([c.time_err for c in held_out]):.1%}** "
            f"| **{mape([c.energy_err for c in held_out]):.1%}** | {statistics.median(c.time_err for c in held_out):+.1%} "
            f"| {len(held_out)} | {statistics.median(c.faults for c in held_out):,.0f} "
            f"| {statistics.median(c.co_load for c in held_out):.2f} |"
        )
    return [*out, ""]


def band_coverage(cases: list[Case]) -> str:
    """How many measured cases fall inside the predictions' ~95 % bands."""
    n = len(cases)
    cal = [c.inside() for c in cases]
    rough = [c.inside(default=True) for c in cases]
    return (
        f"**Band**: the measured time fell inside the calibrated prediction's ~95 % band in "
        f"{sum(t for t, _ in cal)} of {n} cases, the measured energy in {sum(e for _, e in cal)} "
        f"of {n} (its band adds the meters' own, which a measurement by the same estimated "
        f"meters does not test); with the default coefficients {sum(t for t, _ in rough)} and "
        f"{sum(e for _, e in rough)} of {n}."
    )


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--budget", type=float, default=60.0, help="calibration budget, seconds")
    ap.add_argument("--batches", default="4,32", help="batch sizes, comma-separated")
    ap.add_argument("--seconds", type=float, default=3.0, help="measured run per case, seconds")
    ap.add_argument(
        "--rounds", type=int, default=2, help="interleaved rounds over all cases; each case keeps its least disturbed"
    )
    ap.add_argument(
        "--models", default="", help="comma-separated models, of the zoo or the held-out set (default: the whole --set)"
    )
    ap.add_argument(
        "--set", choices=SETS, default="zoo", help="the zoo, the held-out set (models kept aside, per regime), or all"
    )
    add_write(ap, "estimate")
    ap.add_argument("--save", action="store_true", help="save the calibration profile")
    ap.add_argument("--profile", default="", help="profile file: reused if it exists, else calibrated and saved there")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument(
        "--max-wait",
        type=float,
        default=60.0,
        help="seconds to wait for other jobs to quiet down before each measurement",
    )
    ap.add_argument(
        "--attempts", type=int, default=3, help="measurements of a case while other jobs keep the machine busy"
    )
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="diagnostic: glibc keeps freed memory mapped (greenai.tune.allocator.keep_freed_memory) "
        "before anything runs, so real steps do not page-fault as calibration's never do",
    )
    args = ap.parse_args(argv)
    if args.keep_freed_memory and args.write:
        ap.error("--keep-freed-memory is a diagnostic: the target is judged on runs as users make them (no --write)")
    args.model_names = zoo_models(ap, args.models, args.set)
    args.batch_sizes = ints(args.batches)
    if args.keep_freed_memory:
        from greenai.tune.allocator import keep_freed_memory

        keep_freed_memory()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    cases, profile, info = run(args)
    text = markdown(cases, profile, info, args)
    print()
    print(text)
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.write:
        write_section(args.write, "estimate" if args.set == "zoo" else "estimate-held-out", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
