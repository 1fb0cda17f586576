"""Read and validate a carbon intensity trace: a CSV of (timestamp, gCO2e/kWh) rows.

Columns are found by header name (case-insensitive): time in ``Time``, ``timestamp`` or
``datetime``; intensity in ``Carbon Intensity``, ``intensity`` or ``g_co2e_per_kwh`` (the
first two are the headers of the "Let's Wait Awhile" traces, Wiesner et al., Middleware 2021).
Timestamps are ISO 8601; those without an offset are read in the given time zone.
Intensities are finite numbers from 0 to ``greenai.carbon.intensity.MAX_INTENSITY_G_PER_KWH``.
A leading UTF-8 byte-order mark is dropped.

Bounds: a trace file holds at most ``MAX_TRACE_BYTES`` (64 MiB) and ``MAX_TRACE_ROWS``
(1,000,000 data rows: over a century of hourly data, nearly two years of minutes), and must
be a regular file (a FIFO, a device or a directory is refused before anything is read; see
``greenai.inputs``). Gaps are refused by ``greenai.carbon.step.find_gap``'s rule.

Every problem is a ``CarbonDataError`` naming the file and the line.

``read_trace_file`` opens a file (a path or a packaged resource) and reads it;
``time_zone`` parses the time zone naive timestamps are read in. Both readers of traces
(``greenai.carbon.trace`` and ``greenai.carbon.grid_forecast``) use them.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from greenai.carbon.intensity import MAX_INTENSITY_G_PER_KWH
from greenai.carbon.step import find_gap
from greenai.errors import CarbonDataError, ConfigError
from greenai.inputs import MIB, read_user_file
from greenai.units import format_duration  # the one duration formatter (importable from here)

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

TIME_COLUMNS = ("time", "timestamp", "datetime")
INTENSITY_COLUMNS = ("carbon intensity", "intensity", "g_co2e_per_kwh")
MAX_TRACE_BYTES = 64 * MIB
MAX_TRACE_ROWS = 1_000_000


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
    if not math.isfinite(value) or not 0 <= value <= MAX_INTENSITY_G_PER_KWH:
        raise CarbonDataError(
            f"trace {name} line {line}: intensity {text!r} must be a finite number >= 0 and <= "
            f"{MAX_INTENSITY_G_PER_KWH:g} gCO2e/kWh"
        )
    return value


def read_trace(
    rows: Iterable[str],
    name: str,
    tz: tzinfo,
    *,
    max_gap_s: float | None = None,
    time_column: str | None = None,
    intensity_column: str | None = None,
    max_rows: int = MAX_TRACE_ROWS,
) -> tuple[list[float], list[float]]:
    """Unix times (s) and intensities (gCO2e/kWh) of the CSV text lines ``rows``, validated.

    Times must strictly increase. A step longer than ``max_gap_s`` (default: the rule of
    ``greenai.carbon.step.find_gap``) is a gap in the data and is rejected rather than
    silently bridged. More than ``max_rows`` data rows are refused.
    """
    reader = csv.reader(rows)
    header = next(reader, None)
    if header is None:
        raise CarbonDataError(f"trace {name}: file is empty")
    if header:
        header = [header[0].removeprefix("\ufeff"), *header[1:]]  # a byte-order mark is not part of the name
    ti = _column(header, time_column, TIME_COLUMNS, "time", name)
    vi = _column(header, intensity_column, INTENSITY_COLUMNS, "intensity", name)
    times: list[float] = []
    values: list[float] = []
    lines: list[int] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        line = reader.line_num
        if len(times) >= max_rows:
            raise CarbonDataError(f"trace {name}: more than {max_rows:,} data rows (line {line}); split it")
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
        raise CarbonDataError(
            f"trace {name}: gap of {format_duration(gap.step_s)} between line {lines[gap.row]} and "
            f"line {lines[gap.row + 1]} exceeds {format_duration(gap.limit_s)} ({gap.rule}); "
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
    """``read_trace`` of a UTF-8 file (a regular file of at most ``MAX_TRACE_BYTES``, or a
    packaged resource); a file that cannot be read is a ``CarbonDataError``."""
    if isinstance(path, (str, os.PathLike)):
        text = read_user_file(path, "trace", MAX_TRACE_BYTES, CarbonDataError)
    else:  # a packaged resource (a shipped trace)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as e:
            raise CarbonDataError(f"cannot read trace {name}: {e.strerror or e}") from e
        except UnicodeDecodeError as e:
            raise CarbonDataError(f"trace {name} is not UTF-8 text: {e.reason}") from e
    # universal newlines, as a file opened in text mode reads them
    rows = io.StringIO(text, newline=None)
    return read_trace(rows, name, tz, max_gap_s=max_gap_s, time_column=time_column, intensity_column=intensity_column)
