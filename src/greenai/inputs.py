"""Bounds on what a user hands greenai: the files it names and the numbers it gives.

Every file a user names (a carbon trace, a job file, a calibration profile, greenai.toml or
pyproject.toml) is read by ``read_user_file``:

- it must be a regular file: a directory, a FIFO, a socket or a device (``/dev/zero``) is
  refused before a byte is read, so a named pipe cannot block a command nor a device fill
  memory (the file is opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open file);
- it must hold at most ``max_bytes`` (each reader documents its maximum; a file that grows
  while it is read is caught too, as no more than ``max_bytes + 1`` bytes are ever read);
- it must be UTF-8 text; a leading byte-order mark is dropped (spreadsheets write one).

``load_json`` and ``load_toml`` parse such text; data nested deeper than ``MAX_NESTING``
levels (100) is refused with the reader's own error, whether the parser gave up on it
(Python's RecursionError) or not (so that nothing later recurses into it either). ``real_number`` checks a number a user gave: an
int or float (a bool is not a number), finite, within bounds.

Every problem is raised as the caller's error class (a ``GreenAIError``), so the CLI prints
it as one line.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tomllib
from collections.abc import Callable
from typing import Any

from greenai.errors import GreenAIError

MIB = 1024 * 1024
MAX_NESTING = 100  # levels of lists and tables in a JSON or TOML file a user names


def describe_size(n_bytes: int) -> str:
    """``64 MiB``, ``512 KiB``, ``10 bytes``."""
    if n_bytes >= MIB:
        return f"{n_bytes / MIB:g} MiB"
    if n_bytes >= 1024:
        return f"{n_bytes / 1024:g} KiB"
    return f"{n_bytes} bytes"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_user_bytes(
    path: str | os.PathLike[str], what: str, max_bytes: int, error: type[GreenAIError] = GreenAIError
) -> bytes:
    """The bytes of the regular file at ``path``, at most ``max_bytes`` of them; ``what``
    names it in messages ("trace", "job file"), ``error`` is the class raised."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise error(f"cannot read {what} {name}: {e.strerror or e}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {name} is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > max_bytes:
            raise error(f"{what} {name} is {info.st_size:,} bytes, over the maximum of {describe_size(max_bytes)}")
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = os.read(fd, min(max_bytes + 1 - size, MIB))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > max_bytes:
            raise error(f"{what} {name} grew over the maximum of {describe_size(max_bytes)} while being read")
        return b"".join(chunks)
    except OSError as e:
        raise error(f"cannot read {what} {name}: {e.strerror or e}") from None
    finally:
        os.close(fd)


def read_user_file(
    path: str | os.PathLike[str], what: str, max_bytes: int, error: type[GreenAIError] = GreenAIError
) -> str:
    """``read_user_bytes`` decoded as UTF-8, a leading byte-order mark dropped."""
    data = read_user_bytes(path, what, max_bytes, error)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise error(f"{what} {os.fspath(path)} is not UTF-8 text ({e.reason} at byte {e.start})") from None


def load_json(text: str, where: str, error: type[GreenAIError] = GreenAIError) -> Any:
    """JSON of ``text``; invalid JSON, or JSON nested deeper than ``MAX_NESTING``, is an
    ``error`` naming ``where``."""
    return _load(json.loads, json.JSONDecodeError, "JSON", text, where, error)


def load_toml(text: str, where: str, error: type[GreenAIError] = GreenAIError) -> dict[str, Any]:
    """TOML of ``text``; invalid TOML, or TOML nested deeper than ``MAX_NESTING``, is an
    ``error`` naming ``where``."""
    return _load(tomllib.loads, tomllib.TOMLDecodeError, "TOML", text, where, error)


def _load(
    parse: Callable[[str], Any],
    invalid: type[ValueError],
    language: str,
    text: str,
    where: str,
    error: type[GreenAIError],
) -> Any:
    """``parse(text)``; its ``invalid`` error, a RecursionError or data nested deeper than
    ``MAX_NESTING`` become an ``error`` naming ``where`` and the ``language``."""
    too_deep = error(f"{where}: {language} nested more than {MAX_NESTING} levels deep")
    try:
        data = parse(text)
    except invalid as e:
        raise error(f"{where}: not valid {language} ({e})") from None
    except RecursionError:
        raise too_deep from None
    if nesting(data) > MAX_NESTING:
        raise too_deep
    return data


def nesting(data: object) -> int:
    """Levels of lists and dicts in ``data`` (a scalar: 0), counted without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def real_number(
    value: object,
    what: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    error: type[GreenAIError] = GreenAIError,
) -> float:
    """``value`` as a float if it is an int or float (not a bool), finite and within
    ``[low, high]`` (``(low, high]`` with ``low_open``); else an ``error`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(f"{what} must be a number (got {value!r})")
    try:
        x = float(value)
    except OverflowError:  # an int too large for a float
        x = math.inf
    below = x <= low if low_open else x < low
    if not math.isfinite(x) or below or x > high:
        lower = f"> {low:g}" if low_open else f">= {low:g}"
        bounds = " and ".join(
            part for part, on in ((lower, math.isfinite(low)), (f"<= {high:g}", math.isfinite(high))) if on
        )
        raise error(f"{what} must be a finite number{' ' + bounds if bounds else ''} (got {value!r})")
    return x
