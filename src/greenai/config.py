"""Configuration: file (greenai.toml or [tool.greenai] in pyproject.toml) -> GREENAI_* env
-> explicit arguments, later sources winning. Values are validated before anything is built.

Types are strict: a number is an int or a float, or a string of one from the environment (a
bool is not a number: ``pue = true`` is refused, not read as 1.0); paths and the intensity
are strings; ``meters`` is a list of strings or a comma-separated string. Every number is
finite and bounded (``Config.validate``); an ``intensity`` that is given must not be blank
(leave it out for the world average). A config file is a regular file of at most
``MAX_CONFIG_BYTES`` (``greenai.inputs``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Final

from greenai.errors import ConfigError
from greenai.hardware.coload import DISTURBED_CORES
from greenai.hardware.sysfs import POWERCAP_ROOT
from greenai.inputs import MIB, load_toml, read_user_file, real_number

MAX_CONFIG_BYTES = 4 * MIB  # greenai.toml or pyproject.toml
MAX_PUE = 10.0  # the worst data centres measured are near 3
MAX_PRICE_PER_KWH = 1_000_000.0  # in any currency


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
    # a run is `disturbed` when other processes (and hypervisor steal) kept at least this many
    # CPUs busy for a tenth of its time or more (hardware/coload.py; docs/measurement.md)
    coload_threshold_cores: float = DISTURBED_CORES

    def validate(self) -> Config:
        _positive("sample_hz", self.sample_hz, upper=1000.0)
        _positive("flush_interval_s", self.flush_interval_s, upper=60.0)
        _positive("coload_threshold_cores", self.coload_threshold_cores, upper=1_000_000.0)
        if not (_is_real(self.pue) and math.isfinite(self.pue) and 1.0 <= self.pue <= MAX_PUE):
            raise ConfigError(
                f"pue must be a number >= 1.0 (got {self.pue!r}); 1.0 means no overhead, {MAX_PUE:g} is the most"
            )
        if self.price_per_kwh is not None:
            real_number(self.price_per_kwh, "price_per_kwh", low=0.0, high=MAX_PRICE_PER_KWH, error=ConfigError)
        for key in ("cpu_idle_w", "cpu_max_w"):
            value = getattr(self, key)
            if value is not None:
                _positive(key, value, upper=10_000.0, allow_zero=key == "cpu_idle_w")
        if self.cpu_idle_w is not None and self.cpu_max_w is not None and self.cpu_idle_w > self.cpu_max_w:
            raise ConfigError(f"cpu_idle_w ({self.cpu_idle_w}) must not exceed cpu_max_w ({self.cpu_max_w})")
        if self.heat_reuse_fraction is not None and not (
            _is_real(self.heat_reuse_fraction)
            and math.isfinite(self.heat_reuse_fraction)
            and 0.0 <= self.heat_reuse_fraction <= 1.0
        ):
            raise ConfigError(
                f"heat_reuse_fraction must be a number from 0 to 1 (got {self.heat_reuse_fraction}): "
                "the share of the facility's energy reused"
            )
        for key in ("intensity", "currency"):
            if not isinstance(getattr(self, key), str):
                raise ConfigError(f"{key} must be a string (got {getattr(self, key)!r})")
        if not all(isinstance(m, str) for m in self.meters):
            raise ConfigError(f"meters must be names of meters (got {list(self.meters)!r})")
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


def _is_real(value: object) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive(key: str, value: float, *, upper: float, allow_zero: bool = False) -> None:
    ok = _is_real(value) and math.isfinite(value) and (value >= 0 if allow_zero else value > 0) and value <= upper
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{key} must be a number {bound} and <= {upper:g} (got {value!r})")


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


NUMBERS = frozenset({"sample_hz", "flush_interval_s", "pue", "coload_threshold_cores"})
OPTIONAL_NUMBERS = frozenset({"price_per_kwh", "cpu_idle_w", "cpu_max_w", "heat_reuse_fraction"})
PATHS = frozenset({"ledger", "rapl_root"})


def _number(raw: Any) -> float:
    """A number from a file (an int or a float; a bool is not one) or the environment (text)."""
    if _is_real(raw) or isinstance(raw, str):
        return float(raw)
    raise TypeError(raw)


def _coerce(key: str, raw: Any, source: str) -> Any:
    """Turn a raw file/env value into the field's type, with a one-line error naming the source."""
    try:
        if key in NUMBERS:
            return _number(raw)
        if key in OPTIONAL_NUMBERS:
            return None if raw in (None, "") else _number(raw)
        if key in PATHS:
            if not isinstance(raw, (str, os.PathLike)) or not str(raw).strip():
                raise TypeError(raw)
            return Path(os.path.expanduser(raw))
        if key == "meters":
            if isinstance(raw, str):
                items = raw.split(",")
            elif isinstance(raw, (list, tuple)) and all(isinstance(m, str) for m in raw):
                items = list(raw)
            else:
                raise TypeError(raw)
            return tuple(m.strip() for m in items if m.strip() and m.strip() != "auto")
        if key == "simulate":
            return parse_bool(raw, f"{source}: {key}")
        if key == "intensity" and _is_real(raw):  # intensity = 230 in a file
            return str(raw)
        if not isinstance(raw, str):
            raise TypeError(raw)
        if key == "intensity" and not raw.strip():
            raise ConfigError(
                f"{source}: intensity is empty; name a country, cloud region, number or trace, "
                "or leave it out for the world average"
            )
        return raw
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{source}: {key} has an invalid value {raw!r}; expected {_expected(key)}") from None


def _expected(key: str) -> str:
    if key in NUMBERS or key in OPTIONAL_NUMBERS:
        return "a number (true and false are not numbers)"
    if key in PATHS:
        return "a path (a non-empty string)"
    if key == "meters":
        return f"a list of meter names or a comma-separated string of them ({', '.join(sorted(KNOWN_METERS))})"
    return "a string"


FIELD_NAMES = tuple(f.name for f in fields(Config))


def _from_mapping(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in FIELD_NAMES:
            raise ConfigError(f"{source}: unknown setting {key!r}; known: {', '.join(FIELD_NAMES)}")
        out[key] = _coerce(key, raw, source)
    return out


def read_file_settings(directory: Path) -> dict[str, Any]:
    """Settings from greenai.toml, else [tool.greenai] of pyproject.toml, in `directory`.

    Each is a regular file of at most MAX_CONFIG_BYTES (a directory or a FIFO of that name is
    refused, not skipped); a table that is not a table (``[tool] greenai = 5``) is refused."""
    for name, table in (("greenai.toml", None), ("pyproject.toml", ("tool", "greenai"))):
        path = directory / name
        if not os.path.lexists(path):
            continue
        text = read_user_file(path, "config file", MAX_CONFIG_BYTES, ConfigError)
        data: Any = load_toml(text, str(path), ConfigError)
        for depth, part in enumerate(table or (), start=1):
            data = data.get(part, {})
            if not isinstance(data, dict):
                where = ".".join((table or ())[:depth])
                raise ConfigError(f"{path}: [{where}] must be a table of settings (got {data!r})")
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
