"""Where Linux exposes the hardware greenai reads and sets: the sysfs roots, named once.

Meters and knobs take these as defaults and accept another root, so tests pass a fake tree
in a temp dir (greenai.testing.fake_powercap, greenai.testing.fake_sysfs).
"""

from __future__ import annotations

from pathlib import Path

# powercap zones (Documentation/power/powercap/powercap.rst): RAPL energy counters read by
# meters.rapl, package power limits set by tune.knobs.cpu.RaplPowerCapKnob
POWERCAP_ROOT = Path("/sys/class/powercap")
# cpuN/cpufreq (Documentation/admin-guide/pm/cpufreq.rst): frequency caps set by
# tune.knobs.cpu.CpuFreqCapKnob
CPU_ROOT = Path("/sys/devices/system/cpu")
