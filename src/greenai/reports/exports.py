"""A run's figures in formats other tools read: the Hugging Face model card's
`co2_eq_emissions` metadata, and CodeCarbon's `emissions.csv`.

Model card (https://huggingface.co/docs/hub/model-cards-co2): a YAML block for the card's
front matter, with `emissions` in grams of CO2-equivalent, `source`, `training_type`,
`geographical_location` and `hardware_used`. It is written as YAML that is also plain
JSON-quoted strings, so no YAML library is needed and any value is quoted safely.

CodeCarbon: one row per run with the columns of CodeCarbon's `EmissionsData` (the fields of
its `emissions.csv`, codecarbon 3.x), in its units: duration in s, emissions in kg CO2eq,
emissions_rate in kg/s, powers in W, energies in kWh. Figures greenai does not have (water,
utilization percentages, coordinates) are left empty rather than invented. CodeCarbon's
`energy_consumed` is IT energy (cpu + gpu + ram); greenai's disk and network estimates are
added to it, so it equals greenai's `energy_j`, and `emissions` is greenai's (charged on
facility energy, IT energy x PUE, as CodeCarbon does when given a PUE).
"""

from __future__ import annotations

import io
import json
import math
import platform
from collections.abc import Sequence
from typing import Any

from greenai.carbon.intensity import cloud_regions, countries
from greenai.carbon.iso_codes import to_alpha3
from greenai.errors import GreenAIError
from greenai.ledger.export import csv_cells, csv_writer, iso_utc
from greenai.ledger.records import RunRecord
from greenai.meters.base import DeviceKind, Provenance
from greenai.units import J_PER_KWH

CODECARBON_COLUMNS = (
    "timestamp",
    "project_name",
    "run_id",
    "experiment_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_utilization_percent",
    "ram_utilization_percent",
    "ram_used_gb",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "water_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "longitude",
    "latitude",
    "ram_total_size",
    "tracking_mode",
    "on_cloud",
    "pue",
    "wue",
)
FORMATS = ("html", "model-card", "codecarbon-csv")


def _env(record: RunRecord) -> dict[str, Any]:
    env = record.start.environment
    return env if isinstance(env, dict) else {}


def _intensity_spec(record: RunRecord) -> str:
    config = _env(record).get("config")
    return str((config or {}).get("intensity") or "") if isinstance(config, dict) else ""


def location(record: RunRecord) -> dict[str, str]:
    """country_name, country_iso_code, cloud_provider, cloud_region, region, label: where the
    run's intensity says it ran (what the user configured; greenai does not geolocate)."""
    spec = _intensity_spec(record).strip()
    out = {"country_name": "", "country_iso_code": "", "cloud_provider": "", "cloud_region": "", "label": ""}
    prefix, colon, rest = spec.partition(":")
    if colon and prefix.lower() in {p for p, _ in cloud_regions()}:
        region = cloud_regions().get((prefix.lower(), rest.strip().lower()))
        out.update(cloud_provider=prefix.lower(), cloud_region=rest)
        if region is not None:
            out["country_iso_code"] = region.country_iso_code
            out["country_name"] = _country_name(region.country_iso_code)
            out["label"] = f"{region.city}, {out['country_name'] or region.country_iso_code} ({spec})"
        else:
            out["label"] = spec
        return out
    code = rest if colon and prefix.lower() == "country" else spec
    if code.isalpha() and len(code) in (2, 3):
        alpha3 = to_alpha3(code)
        out.update(country_iso_code=alpha3, country_name=_country_name(alpha3))
        out["label"] = out["country_name"] or alpha3
        return out
    if not spec:
        out["label"] = "unknown (no grid intensity configured; the world average was used)"
    else:
        out["label"] = f"unknown (grid intensity {spec})"
    return out


def _country_name(alpha3: str) -> str:
    row = countries().get(alpha3)
    return row.country if row is not None else ""


def hardware(record: RunRecord) -> tuple[str, int, str, int]:
    """(cpu model, usable CPUs, gpu models, gpu count) from the run's environment."""
    env = _env(record)
    cpu: dict[str, Any] = env["cpu"] if isinstance(env.get("cpu"), dict) else {}
    gpus: list[str] = []
    for meter in env.get("meters") or ():
        if not isinstance(meter, dict) or not str(meter.get("name", "")).startswith("nvml"):
            continue
        for part in str(meter.get("detail", "")).removeprefix("NVML: ").split("; "):
            # "gpu:0 (physical 0, NVIDIA A100-SXM4-40GB, GPU-...): energy counter"
            if part.startswith("gpu:") and "(physical" in part:
                inside = part.split("(", 1)[1]
                fields = [f.strip() for f in inside.split(",")]
                if len(fields) >= 2:
                    gpus.append(fields[1])
    usable = cpu.get("usable_cpus")
    try:
        count = int(float(usable)) if usable is not None else 0
    except (TypeError, ValueError):
        count = 0
    # GPUs no NVML meter named (simulated, or estimated from a configured power) still count
    unnamed = [d for d in record.snapshot.devices if d.kind == DeviceKind.GPU][len(gpus) :]
    gpus += [f"{d.provenance.value} GPU" if d.provenance == Provenance.SIMULATED else "unknown GPU" for d in unnamed]
    models = sorted(set(gpus))
    gpu_model = ", ".join(f"{gpus.count(m)} x {m}" for m in models)
    return str(cpu.get("model") or "unknown CPU"), count, gpu_model, len(gpus)


def model_card(record: RunRecord, training_type: str | None = None) -> str:
    """The `co2_eq_emissions` block for a Hugging Face model card's YAML front matter."""
    snap = record.snapshot
    if not math.isfinite(snap.carbon_g):
        raise GreenAIError(f"run {record.start.run_id[:8]} has no carbon figure to export")
    cpu, cpus, gpu_model, gpu_count = hardware(record)
    used = f"{gpu_model}; " if gpu_count else ""
    used += f"{cpu} ({cpus} CPUs)" if cpus else cpu
    kind = training_type or record.start.tags.get("training_type") or "unknown"
    source = (
        f"greenai {_env(record).get('greenai', '')}: {snap.provenance.value} energy "
        f"{snap.energy_j / J_PER_KWH:.6g} kWh (±{snap.rel_uncertainty:.0%}), x PUE {snap.pue:g}, "
        f"x grid intensity: {snap.carbon_source}; run {record.start.run_id}"
    )
    values = {
        "emissions": round(snap.carbon_g, 6),
        "source": source,
        "training_type": kind,
        "geographical_location": location(record)["label"],
        "hardware_used": used,
    }
    lines = ["co2_eq_emissions:"]
    for key, value in values.items():
        lines.append(f"  {key}: {json.dumps(value, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def codecarbon_rows(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    rows = []
    for record in records:
        snap, env = record.snapshot, _env(record)
        energy = {"cpu": 0.0, "gpu": 0.0, "dram": 0.0, "other": 0.0}
        for d in snap.devices:
            key = d.kind.value if d.kind.value in energy else "other"
            energy[key] += d.energy_j if math.isfinite(d.energy_j) else 0.0
        duration = snap.duration_s if math.isfinite(snap.duration_s) and snap.duration_s > 0 else 0.0
        kg = snap.carbon_g / 1000 if math.isfinite(snap.carbon_g) else None
        where = location(record)
        cpu, cpus, gpu_model, gpu_count = hardware(record)
        meters = {str(m.get("name", "")) for m in env.get("meters") or () if isinstance(m, dict)}
        machine = any(name.startswith(("rapl", "nvml")) for name in meters)

        rows.append(
            {
                "timestamp": iso_utc(record.ended_at or record.updated_at)[:19],
                "project_name": record.start.name,
                "run_id": record.start.run_id,
                "experiment_id": record.start.tags.get("experiment_id", ""),
                "duration": duration,
                "emissions": kg if kg is not None else "",
                "emissions_rate": kg / duration if kg is not None and duration else "",
                "cpu_utilization_percent": "",
                "ram_utilization_percent": "",
                "ram_used_gb": "",
                "cpu_power": _power(energy["cpu"], duration),
                "gpu_power": _power(energy["gpu"], duration),
                "ram_power": _power(energy["dram"], duration),
                "cpu_energy": energy["cpu"] / J_PER_KWH,
                "gpu_energy": energy["gpu"] / J_PER_KWH,
                "ram_energy": energy["dram"] / J_PER_KWH,
                "energy_consumed": snap.energy_j / J_PER_KWH if math.isfinite(snap.energy_j) else "",
                "water_consumed": "",
                "country_name": where["country_name"],
                "country_iso_code": where["country_iso_code"],
                "region": "",
                "cloud_provider": where["cloud_provider"],
                "cloud_region": where["cloud_region"],
                "os": env.get("platform", platform.platform()),
                "python_version": env.get("python", ""),
                "codecarbon_version": "",
                "cpu_count": cpus or "",
                "cpu_model": cpu,
                "gpu_count": gpu_count,
                "gpu_model": gpu_model,
                "longitude": "",
                "latitude": "",
                "ram_total_size": "",
                "tracking_mode": "machine" if machine else "process",
                "on_cloud": "Y" if where["cloud_provider"] else "N",
                "pue": snap.pue if math.isfinite(snap.pue) else 1.0,
                "wue": "",
            }
        )
    return rows


def _power(energy_j: float, duration_s: float) -> float | str:
    return energy_j / duration_s if duration_s else ""


def codecarbon_csv(records: Sequence[RunRecord]) -> str:
    """CodeCarbon's columns, written by the ledger's CSV writer (text quoted, a cell a spreadsheet
    would run as a formula neutralised: a run named `=HYPERLINK(...)`)."""
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(CODECARBON_COLUMNS)
    for row in codecarbon_rows(records):
        writer.writerow(csv_cells(row, CODECARBON_COLUMNS))
    return out.getvalue()
