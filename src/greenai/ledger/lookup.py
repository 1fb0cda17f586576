"""The one rule for finding a thing by "an exact id or a unique prefix" (runs, distributed jobs,
schedule batches, optimization studies).

- The text is stripped; an empty text is not found (it is not a prefix of everything).
- An id equal to the text wins, even when it is also the prefix of longer ids.
- Else the ids that start with the text, compared as text (`substr`, never LIKE or GLOB: `%`,
  `_`, `*`, `?` and `[` in the text are themselves, and case counts).
- One such id is the answer; several are an error that names the first `AMBIGUOUS_SHOWN` of
  them (in id order), with ", ..." when there are more; none is an error.

Each caller passes its own error types and the words for the thing, so that its messages and
exceptions stay what its users (the CLI, the dashboard, the reports) expect.
"""

from __future__ import annotations

import sqlite3

from greenai.errors import GreenAIError, LedgerError, RunNotFoundError

AMBIGUOUS_SHOWN = 10


def matching_ids(
    conn: sqlite3.Connection, table: str, column: str, text: str, shown: int = AMBIGUOUS_SHOWN
) -> list[str]:
    """The ids in `table.column` that `text` names: [text] when it is an id exactly, else the
    distinct ids it is a prefix of, in id order, `shown + 1` at most (more than `shown` says
    "and more"); [] for an empty text. `table` and `column` are the caller's constants."""
    wanted = text.strip()
    if not wanted:
        return []
    if conn.execute(f"SELECT 1 FROM {table} WHERE {column} = ? LIMIT 1", (wanted,)).fetchone():
        return [wanted]
    rows = conn.execute(
        f"SELECT DISTINCT {column} FROM {table} WHERE {column} >= ? AND substr({column}, 1, ?) = ?"
        f" ORDER BY {column} LIMIT ?",  # `>=`: an index on the column, where there is one, starts there
        (wanted, len(wanted), wanted, shown + 1),
    )
    return [str(row[0]) for row in rows]


def resolve(
    conn: sqlite3.Connection,
    table: str,
    column: str,
    text: str,
    *,
    what: str,
    not_found: type[GreenAIError] = RunNotFoundError,
    ambiguous: type[GreenAIError] = LedgerError,
    shown: int = AMBIGUOUS_SHOWN,
) -> str:
    """The one id in `table.column` that `text` names (module docstring). `not_found` when
    `text` is empty ("no {what} id given") or names nothing ("no {what} matches 'x'");
    `ambiguous` when it is the prefix of several ids ("{what} id 'x' is ambiguous; it matches
    a, b, ...")."""
    wanted = text.strip()
    if not wanted:
        raise not_found(f"no {what} id given")
    matches = matching_ids(conn, table, column, wanted, shown)
    if not matches:
        raise not_found(f"no {what} matches {wanted!r}")
    if len(matches) > 1:
        more = ", ..." if len(matches) > shown else ""
        raise ambiguous(f"{what} id {wanted!r} is ambiguous; it matches {', '.join(matches[:shown])}{more}")
    return matches[0]
