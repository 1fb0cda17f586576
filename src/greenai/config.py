"""Configuration: file (greenai.toml or [tool.greenai] in pyproject.toml) -> GREENAI_* env
-> explicit arguments, later sources winning. Values are validated before anything is built.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Final

from greenai.errors import ConfigError
from greenai.hardware.sysfs import POWERCAP_ROOT


@dataclass(frozen=True)
class Config:
    ledger: Path | None = None  # None: GREENAI_LEDGER or ~/.local/share/greenai/ledger.db
    sample_hz: float = 10.0
    flush_interval_s: float = 1.0
    intensity: str = ""  # "FRA", "FR", "gcp:europe-west1", "230", "trace:PATH"; "" = world average (carbon.resolve)
    pue: float = 1.0
    price_per_kwh: float | None = None  # None: cost not configured
    currency: str = "EUR"
    cpu_idle_w: float | None = None  # overrides of the estimated CPU power model
    cpu_max_w: float | None = None
    rapl_root: Path = POWERCAP_ROOT
    meters: tuple[str, ...] = ()  # meters the user requires, e.g. ("rapl", "nvml"); () = auto
    simulate: bool = False
    # share of the facility's energy reused as heat (district heating...): reports give the
    # Green Grid's ERF and ERE from it; None = not configured
    heat_reuse_fraction: float | None = None

    def validate(self) -> Config:
        _positive("sample_hz", self.sample_hz, upper=1000.0)
        _positive("flush_interval_s", self.flush_interval_s, upper=60.0)
        if not (math.isfinite(self.pue) and self.pue >= 1.0):
            raise ConfigError(f"pue must be a number >= 1.0 (got {self.pue}); 1.0 means no overhead")
        if self.price_per_kwh is not None and not (math.isfinite(self.price_per_kwh) and self.price_per_kwh >= 0):
            raise ConfigError(f"price_per_kwh must be a number >= 0 (got {self.price_per_kwh})")
        for key in ("cpu_idle_w", "cpu_max_w"):
            value = getattr(self, key)
            if value is not None:
                _positive(key, value, upper=10_000.0, allow_zero=key == "cpu_idle_w")
        if self.cpu_idle_w is not None and self.cpu_max_w is not None and self.cpu_idle_w > self.cpu_max_w:
            raise ConfigError(f"cpu_idle_w ({self.cpu_idle_w}) must not exceed cpu_max_w ({self.cpu_max_w})")
        if self.heat_reuse_fraction is not None and not (
            math.isfinite(self.heat_reuse_fraction) and 0.0 <= self.heat_reuse_fraction <= 1.0
        ):
            raise ConfigError(
                f"heat_reuse_fraction must be a number from 0 to 1 (got {self.heat_reuse_fraction}): "
                "the share of the facility's energy reused"
            )
        unknown = set(self.meters) - KNOWN_METERS
        if unknown:
            raise ConfigError(f"unknown meter {sorted(unknown)[0]!r}; known meters: {', '.join(sorted(KNOWN_METERS))}")
        return self


class MeterName:
    """The meters greenai has, by the name each reports (`MeterInfo.name`, `Unavailable.name`)
    and `meters` accepts: the one list, which the meters in greenai.meters name themselves by.
    Plain strings, not an Enum, so that they stay plain in MeterInfo, JSON and the ledger."""

    RAPL: Final = "rapl"
    NVML: Final = "nvml"
    CPU_MODEL: Final = "cpu_model"
    DRAM_MODEL: Final = "dram_model"
    IO: Final = "io"
    SIMULATED: Final = "simulated"


KNOWN_METERS = frozenset(value for key, value in vars(MeterName).items() if key.isupper())


def _positive(key: str, value: float, *, upper: float, allow_zero: bool = False) -> None:
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0) and value <= upper
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{key} must be a number {bound} and <= {upper:g} (got {value})")


TRUE_WORDS = ("1", "true", "yes", "y", "on")
FALSE_WORDS = ("0", "false", "no", "n", "off", "")  # "": an empty variable or cell is unset


def parse_bool(value: object, what: str = "value") -> bool:
    """True or false from a bool or a word: 1, true, yes, y, on or 0, false, no, n, off, "" (any
    case; spaces around ignored). The one such parser: settings (GREENAI_SIMULATE=on) and the
    scheduling simulator's job traces (interruptible=y). Anything else is a ConfigError that
    names `what` and says what is accepted."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    accepted = f"{', '.join(TRUE_WORDS)} or {', '.join(w for w in FALSE_WORDS if w)} (any case)"
    raise ConfigError(f"{what} {value!r} is not true or false: use {accepted}")


def _coerce(key: str, raw: Any, source: str) -> Any:
    """Turn a raw file/env value into the field's type, with a one-line error naming the source."""
    try:
        if key in {"sample_hz", "flush_interval_s", "pue"}:
            return float(raw)
        if key in {"price_per_kwh", "cpu_idle_w", "cpu_max_w", "heat_reuse_fraction"}:
            return None if raw in (None, "") else float(raw)
        if key in {"ledger", "rapl_root"}:
            return Path(os.path.expanduser(str(raw)))
        if key == "meters":
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(m.strip() for m in items if str(m).strip() and m.strip() != "auto")
        if key == "simulate":
            return parse_bool(raw, f"{source}: {key}")
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {key} has an invalid value {raw!r}") from None


FIELD_NAMES = tuple(f.name for f in fields(Config))


def _from_mapping(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in FIELD_NAMES:
            raise ConfigError(f"{source}: unknown setting {key!r}; known: {', '.join(FIELD_NAMES)}")
        out[key] = _coerce(key, raw, source)
    return out


def read_file_settings(directory: Path) -> dict[str, Any]:
    """Settings from greenai.toml, else [tool.greenai] of pyproject.toml, in `directory`."""
    for name, table in (("greenai.toml", None), ("pyproject.toml", ("tool", "greenai"))):
        path = directory / name
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not valid TOML ({e})") from None
        for part in table or ():
            data = data.get(part, {})
        if table is None or data:
            return _from_mapping(data, str(path))
    return {}


def read_env_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    values = {k[len("GREENAI_") :].lower(): v for k, v in environ.items() if k.startswith("GREENAI_")}
    values = {k: v for k, v in values.items() if k in FIELD_NAMES}  # GREENAI_DEBUG etc. are not settings
    return _from_mapping(values, "environment")


def load_config(
    directory: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Config:
    """Merge file -> env -> overrides (None overrides are ignored) and validate."""
    merged: dict[str, Any] = {}
    merged.update(read_file_settings(directory or Path.cwd()))
    merged.update(read_env_settings(os.environ if environ is None else environ))
    merged.update(_from_mapping({k: v for k, v in overrides.items() if v is not None}, "argument"))
    return replace(Config(), **merged).validate()
