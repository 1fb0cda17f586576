"""The one rule for printing text that comes from a user or a ledger (run names, tags, phases,
notes, errors, paths): every character that would act on a terminal (control characters, bidi
overrides, zero-width and line separators) is written as its Python escape (ESC as ``\\x1b``).

Layer 0, so the library's warnings (through `logging`) and the dashboard's start-up lines follow
the same rule as the CLI, which prints through `cli/render.py` (its consoles read no markup
either).
"""

from __future__ import annotations

import unicodedata

# control (C0, DEL, C1), format (bidi overrides, zero-width), surrogate, line and paragraph
# separator characters: they move the cursor, retitle the window, reorder or hide text
_ACTING_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def visible(value: object, *, newlines: bool = True) -> str:
    """`str(value)` with every character that would act on the terminal written as its
    Python escape (``\\x1b``, ``\\r``, ``\\t``, ``\\u202e``); line breaks are kept unless
    `newlines` is False (a name, an id: one line)."""
    s = str(value)
    if s.isprintable():
        return s
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in _ACTING_CATEGORIES and not (newlines and ch == "\n")
        else ch
        for ch in s
    )


def one_line(value: object) -> str:
    """A name, id, tag or path as one line of visible text (line breaks escaped too)."""
    return visible(value, newlines=False)
