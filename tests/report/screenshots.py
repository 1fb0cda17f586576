"""The screenshots in docs/img: a run's report and a comparison, drawn in Debian's chromium.

Tracks two short runs with simulated meters (a 20 s training loop with an evaluation every
5 s, a plan and an energy budget; the second at lower GPU power), writes their reports and
screenshots them with the browser helper the tests use (network blocked).

    python -m tests.report.screenshots [--out docs/img] [--seconds 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.browser import browser_page, wait_for_charts

from greenai.config import Config
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter, Sinusoid
from greenai.tracking.budget import Budget
from greenai.tracking.tracker import Tracker
from greenai.units import J_PER_KWH

ROOT = Path(__file__).resolve().parents[2]


def track(ledger: Path, name: str, gpu_w: float, seconds: float) -> str:
    cfg = Config(ledger=ledger, intensity="trace:gb_2020", sample_hz=10.0, pue=1.2, price_per_kwh=0.25).validate()
    meters = [
        SimulatedMeter("gpu:0", DeviceKind.GPU, Sinusoid(gpu_w, 0.15 * gpu_w, 7.0)),
        SimulatedMeter("cpu:0", DeviceKind.CPU, Sinusoid(45.0, 8.0, 3.0)),
        SimulatedMeter("dram:0", DeviceKind.DRAM, 6.0),
    ]
    steps = int(seconds / 0.05)
    with Tracker(
        name,
        config=cfg,
        meters=meters,
        tags={"model": "resnet18", "dataset": "cifar10"},
        planned_steps=steps,
        budgets=[Budget(energy_kwh=gpu_w * seconds * 0.6 / J_PER_KWH, action="warn")],
    ) as run:
        for step in range(steps):
            with run.phase("train"):
                with run.phase("forward"):
                    time.sleep(0.015)
                with run.phase("backward"):
                    time.sleep(0.025)
                with run.phase("optimizer_step"):
                    time.sleep(0.005)
            run.count("samples", 64)
            run.count("steps")
            if step % 100 == 99:
                with run.phase("eval"):
                    time.sleep(0.8)
    assert run.result is not None
    return run.result.run_id


def shoot(html: Path, out: Path, height: int) -> None:
    with browser_page(viewport=(1280, height)) as (page, blocked):
        page.goto(html.resolve().as_uri())
        wait_for_charts(page, page.evaluate("document.querySelectorAll('.chart > div').length"))
        page.wait_for_timeout(300)
        page.screenshot(path=str(out), full_page=False)
        assert not blocked, blocked


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args(argv)
    import greenai

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "ledger.db"
        first = track(ledger, "resnet18-fp32", 240.0, args.seconds)
        second = track(ledger, "resnet18-bf16", 170.0, args.seconds)
        run = greenai.report(first, ledger=ledger, output=Path(tmp) / "run.html")
        cmp = greenai.report(first, second, ledger=ledger, output=Path(tmp) / "cmp.html")
        shoot(run, args.out / "report-run.png", 1500)
        shoot(cmp, args.out / "report-compare.png", 1200)
    print(f"wrote {args.out / 'report-run.png'} and {args.out / 'report-compare.png'}")


if __name__ == "__main__":
    main()
