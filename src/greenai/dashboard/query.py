"""The dashboard's run list: search, filters, sorting and paging, done in SQL.

One page of runs costs a filtered count and one indexed `LIMIT`/`OFFSET` select whatever the
ledger holds (100,000 runs included): the rows of the page are found first by `rowid` alone
(on the `runs_started_at` index for the default order, so skipped rows are never read), then
read with their tags in one more query. Nothing here writes: the queries run in the ledger's
read transactions (`Ledger.transaction(..., write=False)`) on a ledger opened read-only.

A run still marked `running` whose process is gone is shown (and filtered) as `incomplete`,
as `greenai runs list` shows it (`ledger.reconcile.find_abandoned`).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from greenai.errors import FilterError
from greenai.ledger.lookup import matching_ids
from greenai.ledger.reconcile import find_abandoned
from greenai.ledger.records import RunStatus
from greenai.ledger.store import Ledger

PER_PAGE = 50
PER_PAGE_CHOICES = (25, 50, 100, 200)
MAX_PER_PAGE = 500
# pages past this are all past the last one (5 x 10^11 runs at 500 a page): the OFFSET of any
# page asked for stays an integer SQLite holds (a page of 2^63 was an OverflowError, a 500)
MAX_PAGE = 10**9
# sort key -> SQL expression (a fixed table: user input never reaches the SQL text)
SORTS: dict[str, str] = {
    "started": "r.started_at",
    "name": "r.name COLLATE NOCASE",
    "status": "r.status",
    "host": "r.host",
    "duration": "r.duration_s",
    "energy": "r.energy_j",
    "carbon": "r.carbon_g",
}
DEFAULT_ORDER = {"started": "desc", "duration": "desc", "energy": "desc", "carbon": "desc"}
MAX_HOSTS = 200


@dataclass(frozen=True)
class RunFilter:
    """What the run list shows: a search, filters, an order and a page (all optional)."""

    q: str = ""  # substring of the name, host, a tag's key or value, or a run id prefix
    name: str = ""  # exact name
    tags: tuple[str, ...] = ()  # "key=value" or "key" (the run has that tag); all must hold
    status: str = ""
    host: str = ""
    since: str = ""  # YYYY-MM-DD (UTC), started on or after that day
    until: str = ""  # YYYY-MM-DD (UTC), started on or before that day
    sort: str = "started"
    order: str = "desc"
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def parse(cls, params: Mapping[str, Any], tags: Sequence[str] = ()) -> tuple[RunFilter, list[str]]:
        """A filter from query parameters; what could not be used is left out and described
        (the page shows why) rather than failing the page."""
        problems: list[str] = []

        def text(key: str) -> str:
            value = params.get(key)
            return str(value).strip() if value is not None else ""

        sort = text("sort") or "started"
        if sort not in SORTS:
            problems.append(f"unknown sort {sort!r}: sorted by start time")
            sort = "started"
        order = text("order").lower() or DEFAULT_ORDER.get(sort, "asc")
        if order not in ("asc", "desc"):
            problems.append(f"unknown order {order!r}: use asc or desc")
            order = DEFAULT_ORDER.get(sort, "asc")
        status = text("status")
        if status and status not in RunStatus.ALL:
            problems.append(f"unknown status {status!r}: use one of {', '.join(RunStatus.ALL)}")
            status = ""
        dates = {}
        for key in ("since", "until"):
            value = text(key)
            if value:
                try:
                    day_start(value)
                except FilterError as e:
                    problems.append(str(e))
                    value = ""
            dates[key] = value
        page = _int(text("page"), 1, "page", problems)
        per_page = _int(text("per_page"), PER_PAGE, "per_page", problems)
        return (
            cls(
                q=text("q"),
                name=text("name"),
                tags=tuple(t.strip() for t in tags if t and t.strip()),
                status=status,
                host=text("host"),
                since=dates["since"],
                until=dates["until"],
                sort=sort,
                order=order,
                page=min(max(page, 1), MAX_PAGE),
                per_page=min(max(per_page, 1), MAX_PER_PAGE),
            ),
            problems,
        )

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """Query parameters for a link to this list with `changes` (page, sort...), leaving
        out the defaults."""
        f = replace(self, **changes)
        out: list[tuple[str, str]] = []
        for key in ("q", "name", "status", "host", "since", "until"):
            value = getattr(f, key)
            if value:
                out.append((key, value))
        out.extend(("tag", t) for t in f.tags)
        if f.sort != "started" or f.order != "desc":
            out.extend([("sort", f.sort), ("order", f.order)])
        if f.per_page != PER_PAGE:
            out.append(("per_page", str(f.per_page)))
        if f.page != 1:
            out.append(("page", str(f.page)))
        return out

    @property
    def active(self) -> bool:
        return bool(self.q or self.name or self.tags or self.status or self.host or self.since or self.until)


@dataclass(frozen=True)
class RunRow:
    """One run of the list: its own row's figures and its tags (no samples, no phases)."""

    run_id: str
    name: str
    status: str
    started_at: float
    ended_at: float | None
    host: str
    duration_s: float
    energy_j: float
    rel_uncertainty: float
    provenance: str
    carbon_g: float
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.run_id[:8]

    @property
    def started_utc(self) -> str:
        return utc_text(self.started_at)


@dataclass(frozen=True)
class RunPage:
    rows: tuple[RunRow, ...]
    total: int  # runs matching the filter
    filter: RunFilter

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.filter.per_page))

    @property
    def first(self) -> int:
        return (self.filter.page - 1) * self.filter.per_page + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


def list_runs(store: Ledger, f: RunFilter) -> RunPage:
    """The page of runs `f` asks for, and how many runs match it."""

    def work(conn: sqlite3.Connection) -> RunPage:
        abandoned = [run_id for run_id, _ in find_abandoned(conn)]
        where, params = _where(f, abandoned)
        total = int(conn.execute(f"SELECT count(*) FROM runs r WHERE {where}", params).fetchone()[0])
        direction = "DESC" if f.order == "desc" else "ASC"
        order = f"{SORTS[f.sort]} {direction}, r.rowid {direction}"
        offset = (f.page - 1) * f.per_page
        # rowids of the page first (an index walk for the default order), then their rows
        ids = [
            row[0]
            for row in conn.execute(
                f"SELECT r.rowid FROM runs r WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
                (*params, f.per_page, offset),
            )
        ]
        if not ids:
            return RunPage((), total, f)
        marks = ",".join("?" * len(ids))
        rows = conn.execute(
            "SELECT rowid, run_id, name, status, started_at, ended_at, host, duration_s, energy_j,"
            f" rel_uncertainty, provenance, carbon_g FROM runs WHERE rowid IN ({marks})",
            ids,
        ).fetchall()
        by_rowid = {row[0]: row for row in rows}
        run_ids = [by_rowid[i][1] for i in ids if i in by_rowid]
        tags: dict[str, dict[str, str]] = {}
        for run_id, key, value in conn.execute(
            f"SELECT run_id, key, value FROM tags WHERE run_id IN ({','.join('?' * len(run_ids))})"
            " ORDER BY run_id, key",
            run_ids,
        ):
            tags.setdefault(str(run_id), {})[_str(key)] = _str(value)
        gone = set(abandoned)
        out = []
        for i in ids:
            row = by_rowid.get(i)
            if row is None:
                continue
            run_id = str(row[1])
            status = RunStatus.INCOMPLETE if row[3] == RunStatus.RUNNING and run_id in gone else _str(row[3])
            out.append(
                RunRow(
                    run_id=run_id,
                    name=_str(row[2]),
                    status=status,
                    started_at=_num(row[4]),
                    ended_at=None if row[5] is None else _num(row[5]),
                    host=_str(row[6]),
                    duration_s=_num(row[7]),
                    energy_j=_num(row[8]),
                    rel_uncertainty=_num(row[9]),
                    provenance=_str(row[10]),
                    carbon_g=_num(row[11]),
                    tags=tags.get(run_id, {}),
                )
            )
        return RunPage(tuple(out), total, f)

    return store.transaction(work, write=False)


def hosts(store: Ledger) -> list[str]:
    """The hosts runs were recorded on, most runs first (for the host filter)."""

    def work(conn: sqlite3.Connection) -> list[str]:
        rows = conn.execute(
            "SELECT host FROM runs GROUP BY host ORDER BY count(*) DESC, host LIMIT ?", (MAX_HOSTS,)
        ).fetchall()
        return [_str(r[0]) for r in rows]

    return store.transaction(work, write=False)


def count_runs(store: Ledger) -> int:
    return int(store.transaction(lambda conn: conn.execute("SELECT count(*) FROM runs").fetchone()[0], write=False))


def resolve_run(store: Ledger, id_or_prefix: str, shown: int = 10) -> list[str]:
    """Run ids matching an id or an id prefix: one for a match, several for an ambiguous
    prefix (at most `shown` + 1), none for no match."""
    return store.transaction(lambda conn: matching_ids(conn, "runs", "run_id", id_or_prefix, shown), write=False)


def _where(f: RunFilter, abandoned: Sequence[str]) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if f.q:
        like = "%" + _escape_like(f.q) + "%"
        # the tags that match, found in one pass over the tags (a set), not looked up run by run:
        # on 100,000 runs 241 ms that way, 75 ms this way (benchmarks/run_list_queries.py)
        clauses.append(
            "(r.name LIKE ? ESCAPE '\\' OR r.host LIKE ? ESCAPE '\\' OR r.run_id LIKE ? ESCAPE '\\'"
            " OR r.run_id IN (SELECT t.run_id FROM tags t WHERE t.key LIKE ? ESCAPE '\\' OR t.value LIKE ? ESCAPE '\\'))"
        )
        params.extend([like, like, _escape_like(f.q.lower()) + "%", like, like])
    if f.name:
        clauses.append("r.name = ?")
        params.append(f.name)
    for tag in f.tags:
        key, sep, value = tag.partition("=")
        if sep:
            clauses.append("EXISTS (SELECT 1 FROM tags t WHERE t.run_id = r.run_id AND t.key = ? AND t.value = ?)")
            params.extend([key.strip(), value.strip()])
        else:
            clauses.append("EXISTS (SELECT 1 FROM tags t WHERE t.run_id = r.run_id AND t.key = ?)")
            params.append(key.strip())
    if f.host:
        clauses.append("r.host = ?")
        params.append(f.host)
    if f.since:
        clauses.append("r.started_at >= ?")
        params.append(day_start(f.since))
    if f.until:
        clauses.append("r.started_at < ?")
        params.append(day_start(f.until) + timedelta(days=1).total_seconds())
    if f.status:
        marks = ",".join("?" * len(abandoned))
        if f.status == RunStatus.RUNNING and abandoned:
            clauses.append(f"(r.status = ? AND r.run_id NOT IN ({marks}))")
            params.extend([RunStatus.RUNNING, *abandoned])
        elif f.status == RunStatus.INCOMPLETE and abandoned:
            clauses.append(f"(r.status = ? OR r.run_id IN ({marks}))")
            params.extend([RunStatus.INCOMPLETE, *abandoned])
        else:
            clauses.append("r.status = ?")
            params.append(f.status)
    return (" AND ".join(clauses) or "1 = 1"), params


def day_start(text: str) -> float:
    """Unix time of 00:00 UTC on the day YYYY-MM-DD."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise FilterError(f"{text!r} is not a date (YYYY-MM-DD): date filter left out") from None
    return day.timestamp()


def utc_text(t: float | None) -> str:
    if t is None or not math.isfinite(t):
        return "—"
    try:
        return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "—"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _int(text: str, default: int, name: str, problems: list[str]) -> int:
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        problems.append(f"{name}={text!r} is not a whole number: {default} used")
        return default


def _num(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return math.nan


def _str(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)
