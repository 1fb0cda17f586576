"""The environment record stored with each run: host, software, meters and settings."""

from __future__ import annotations

import dataclasses
import platform
import socket
import sys
from collections.abc import Sequence
from typing import Any

from greenai._version import __version__
from greenai.config import Config
from greenai.hardware.cpu import read_cpu_info
from greenai.meters.base import Meter, Unavailable, max_power_of
from greenai.meters.process import ProcessScope


def describe_environment(
    meters: Sequence[Meter], unavailable: Sequence[Unavailable], config: Config, scope: ProcessScope
) -> dict[str, Any]:
    cpu = read_cpu_info()
    torch = sys.modules.get("torch")  # reported only if the user's code imported it
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "greenai": __version__,
        "torch": getattr(torch, "__version__", None),
        "cpu": {"model": cpu.model_name, "hypervisor": cpu.hypervisor, "usable_cpus": scope.usable_cpus()},
        "meters": [_info(m) for m in meters],
        "unavailable": [{"name": u.name, "reason": u.reason} for u in unavailable],
        "config": {k: str(v) if v is not None else None for k, v in dataclasses.asdict(config).items()},
    }


def _info(meter: Meter) -> dict[str, Any]:
    info = meter.info()
    return {
        "name": info.name,
        "devices": list(info.devices),
        "provenance": info.provenance.value,
        "detail": info.detail,
        # device -> {"watts", "source"}: the maxima reports divide mean power by (RUR)
        "max_power_w": {d: {"watts": w, "source": s} for d, (w, s) in max_power_of(meter).items()},
    }
