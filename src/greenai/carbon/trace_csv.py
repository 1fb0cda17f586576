"""Read and validate a carbon intensity trace: a CSV of (timestamp, gCO2e/kWh) rows.

Columns are found by header name (case-insensitive): time in ``Time``, ``timestamp`` or
``datetime``; intensity in ``Carbon Intensity``, ``intensity`` or ``g_co2e_per_kwh`` (the
first two are the headers of the "Let's Wait Awhile" traces, Wiesner et al., Middleware 2021).
Timestamps are ISO 8601; those without an offset are read in the given time zone.

Every problem is a ``CarbonDataError`` naming the file and the line.

``read_trace_file`` opens a file (a path or a packaged resource) and reads it;
``time_zone`` parses the time zone naive timestamps are read in. Both readers of traces
(``greenai.carbon.trace`` and ``greenai.carbon.grid_forecast``) use them.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from greenai.carbon.step import find_gap
from greenai.errors import CarbonDataError, ConfigError
from greenai.units import format_duration  # the one duration formatter (importable from here)

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

TIME_COLUMNS = ("time", "timestamp", "datetime")
INTENSITY_COLUMNS = ("carbon intensity", "intensity", "g_co2e_per_kwh")


def time_zone(name: str) -> tzinfo:
    """The time zone of an IANA name (e.g. 'Europe/Paris') or 'UTC'; ConfigError if unknown."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r}; use an IANA name such as 'Europe/Paris'") from None


def _column(header: list[str], wanted: str | None, accepted: tuple[str, ...], what: str, name: str) -> int:
    names = [h.strip().lower() for h in header]
    for candidate in (wanted.strip().lower(),) if wanted else accepted:
        if candidate in names:
            return names.index(candidate)
    expected = repr(wanted) if wanted else " or ".join(repr(a) for a in accepted)
    raise CarbonDataError(f"trace {name}: no {what} column {expected} in header {header}")


def _parse_time(text: str, tz: tzinfo, name: str, line: int) -> float:
    try:
        stamp = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CarbonDataError(f"trace {name} line {line}: cannot read time {text!r} as ISO 8601") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=tz)
    return stamp.timestamp()


def _parse_value(text: str, name: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CarbonDataError(f"trace {name} line {line}: intensity {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise CarbonDataError(f"trace {name} line {line}: intensity {text!r} must be a finite number >= 0")
    return value


def read_trace(
    rows: Iterable[str],
    name: str,
    tz: tzinfo,
    *,
    max_gap_s: float | None = None,
    time_column: str | None = None,
    intensity_column: str | None = None,
) -> tuple[list[float], list[float]]:
    """Unix times (s) and intensities (gCO2e/kWh) of the CSV text lines ``rows``, validated.

    Times must strictly increase. A step longer than ``max_gap_s`` (default: twice the
    median step) is a gap in the data and is rejected rather than silently bridged.
    """
    reader = csv.reader(rows)
    header = next(reader, None)
    if header is None:
        raise CarbonDataError(f"trace {name}: file is empty")
    ti = _column(header, time_column, TIME_COLUMNS, "time", name)
    vi = _column(header, intensity_column, INTENSITY_COLUMNS, "intensity", name)
    times: list[float] = []
    values: list[float] = []
    lines: list[int] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        line = reader.line_num
        if len(row) <= max(ti, vi):
            raise CarbonDataError(f"trace {name} line {line}: expected {max(ti, vi) + 1} columns, found {len(row)}")
        t = _parse_time(row[ti], tz, name, line)
        if times and t <= times[-1]:
            kind = "repeats" if t == times[-1] else "goes back before"
            raise CarbonDataError(
                f"trace {name} line {line}: time {row[ti].strip()!r} {kind} the time on line "
                f"{lines[-1]}; times must strictly increase"
            )
        times.append(t)
        values.append(_parse_value(row[vi], name, line))
        lines.append(line)
    if len(times) < 2:
        found = "no data rows" if not times else "one data row"
        raise CarbonDataError(f"trace {name}: {found}; a trace needs at least two rows")
    _check_gaps(times, lines, name, max_gap_s)
    return times, values


def _check_gaps(times: list[float], lines: list[int], name: str, max_gap_s: float | None) -> None:
    gap = find_gap(times, max_gap_s)
    if gap is not None:
        i, step, limit, median = gap
        why = "max_gap_s" if max_gap_s is not None else f"2x the median step of {format_duration(median)}"
        raise CarbonDataError(
            f"trace {name}: gap of {format_duration(step)} between line {lines[i]} and "
            f"line {lines[i + 1]} exceeds {format_duration(limit)} ({why}); "
            "fill it or pass a larger max_gap_s"
        )


def read_trace_file(
    path: str | os.PathLike[str] | Traversable,
    name: str,
    tz: tzinfo,
    *,
    max_gap_s: float | None = None,
    time_column: str | None = None,
    intensity_column: str | None = None,
) -> tuple[list[float], list[float]]:
    """``read_trace`` of a UTF-8 file; a file that cannot be read is a ``CarbonDataError``."""
    file = Path(path) if isinstance(path, (str, os.PathLike)) else path
    try:
        with file.open("r", encoding="utf-8") as f:
            return read_trace(
                f, name, tz, max_gap_s=max_gap_s, time_column=time_column, intensity_column=intensity_column
            )
    except OSError as e:
        raise CarbonDataError(f"cannot read trace {name}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise CarbonDataError(f"trace {name} is not UTF-8 text: {e.reason}") from e
