"""The sysfs roots are named once, in hardware.sysfs, and are what meters and knobs default to."""

from __future__ import annotations

import inspect
from pathlib import Path

from greenai.hardware.sysfs import CPU_ROOT, POWERCAP_ROOT
from greenai.meters.rapl import RaplMeter, probe_rapl
from greenai.tune.knobs.cpu import CpuFreqCapKnob, RaplPowerCapKnob


def test_meters_and_knobs_default_to_the_one_powercap_root() -> None:
    assert POWERCAP_ROOT == Path("/sys/class/powercap") and CPU_ROOT == Path("/sys/devices/system/cpu")
    for reader in (RaplMeter, probe_rapl, RaplPowerCapKnob):
        assert inspect.signature(reader).parameters["root"].default is POWERCAP_ROOT, reader
    assert inspect.signature(CpuFreqCapKnob).parameters["root"].default is CPU_ROOT
