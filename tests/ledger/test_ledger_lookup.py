""" "An exact id or a unique prefix": the one rule (ledger/lookup.py), tested once on a table of
its own, then once per caller (runs, distributed jobs, schedule batches, optimization studies)
that the caller follows it."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator

import pytest
from ledger_factories import make_start

from greenai.errors import GreenAIError, LedgerError, RunNotFoundError
from greenai.ledger.candidates import CandidateRow, one_study, record_candidates, study_candidates
from greenai.ledger.distributed import resolve_job_id
from greenai.ledger.jobs import JobRow, JobStatus, add_jobs, batch_jobs
from greenai.ledger.lookup import matching_ids, resolve
from greenai.ledger.store import Ledger

IDS = ("abc", "abcd", "abce", "a_b", "a%b", "aXb", "ABC", "zz1", "zz2", "zz3", "zz4")


class NoSuch(GreenAIError):
    pass


class TooMany(GreenAIError):
    pass


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(":memory:")
    c.execute("CREATE TABLE things (thing_id TEXT NOT NULL)")
    c.executemany("INSERT INTO things VALUES (?)", [(i,) for i in IDS] + [("abcd",)])  # a duplicate id: one match
    yield c
    c.close()


def _resolve(conn: sqlite3.Connection, text: str, shown: int = 10) -> str:
    return resolve(conn, "things", "thing_id", text, what="thing", not_found=NoSuch, ambiguous=TooMany, shown=shown)


def test_an_exact_id_wins_over_the_longer_ids_it_is_a_prefix_of(conn: sqlite3.Connection) -> None:
    assert _resolve(conn, "abc") == "abc"
    assert _resolve(conn, "  abc\n") == "abc"  # the text is stripped
    assert matching_ids(conn, "things", "thing_id", "abc") == ["abc"]


def test_a_unique_prefix_names_its_id_and_a_duplicated_id_is_one_match(conn: sqlite3.Connection) -> None:
    assert _resolve(conn, "zz3") == "zz3"
    assert _resolve(conn, "aX") == "aXb"
    assert _resolve(conn, "abcd") == "abcd"


def test_an_ambiguous_prefix_is_an_error_naming_a_few_candidates(conn: sqlite3.Connection) -> None:
    with pytest.raises(TooMany, match=r"^thing id 'ab' is ambiguous; it matches abc, abcd, abce$"):
        _resolve(conn, "ab")
    with pytest.raises(TooMany, match=r"it matches zz1, zz2, \.\.\.$"):  # more than `shown`: ", ..."
        _resolve(conn, "zz", shown=2)
    assert matching_ids(conn, "things", "thing_id", "zz", shown=2) == ["zz1", "zz2", "zz3"]


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_an_empty_text_is_not_found_not_a_prefix_of_everything(conn: sqlite3.Connection, text: str) -> None:
    with pytest.raises(NoSuch, match="no thing id given"):
        _resolve(conn, text)
    assert matching_ids(conn, "things", "thing_id", text) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [("a_", "a_b"), ("a%", "a%b"), ("%", None), ("_", None), ("a_b", "a_b"), ("*", None), ("a[", None), ("ABC", "ABC")],
)
def test_wildcards_in_the_text_are_themselves_and_case_counts(
    conn: sqlite3.Connection, text: str, found: str | None
) -> None:
    if found is None:
        with pytest.raises(NoSuch, match=re.escape(f"no thing matches {text!r}")):
            _resolve(conn, text)
    else:
        assert _resolve(conn, text) == found


# -- each caller follows the rule ------------------------------------------------------------


def test_runs(ledger: Ledger) -> None:
    for run_id in ("ab" + "0" * 30, "ab" + "0" * 29 + "1", "a_" + "0" * 30):
        ledger.begin_run(make_start(run_id=run_id))
    assert ledger.get_run("ab" + "0" * 30).start.run_id == "ab" + "0" * 30  # exact, though a prefix of none
    assert ledger.get_run("a_").start.run_id == "a_" + "0" * 30  # not a wildcard: "ab..." is not matched
    with pytest.raises(RunNotFoundError, match="no run matches '%'"):
        ledger.get_run("%")
    with pytest.raises(RunNotFoundError, match="no run id given"):
        ledger.get_run(" ")
    with pytest.raises(LedgerError, match=r"run id 'ab' is ambiguous; it matches ab0+, ab0+1$"):
        ledger.get_run("ab")


def _job(conn: sqlite3.Connection, job_id: str) -> None:
    now = time.time()
    conn.execute(
        "INSERT INTO distributed_jobs (job_id, name, status, world_size, started_at, updated_at, writer_host,"
        " writer_pid, writer_started_at) VALUES (?, 'j', 'completed', 2, ?, ?, 'h', 1, ?)",
        (job_id, now, now, now),
    )


def test_distributed_jobs(ledger: Ledger) -> None:
    for job_id in ("job-1", "job-10", "job_2"):
        ledger.transaction(lambda conn, j=job_id: _job(conn, j), write=True)

    def resolved(text: str) -> str:
        return ledger.transaction(lambda conn: resolve_job_id(conn, text), write=False)

    assert resolved("job-1") == "job-1"  # exact wins over job-10
    assert resolved("job_") == "job_2"
    with pytest.raises(LedgerError, match=r"distributed job id 'job' is ambiguous; it matches job-1, job-10, job_2"):
        resolved("job")
    with pytest.raises(RunNotFoundError, match="no distributed job matches 'jo%'"):
        resolved("jo%")
    with pytest.raises(RunNotFoundError, match="no distributed job id given"):
        resolved("")


def test_schedule_batches(ledger: Ledger) -> None:
    add_jobs(
        ledger,
        [JobRow(b, "a", "a", JobStatus.PENDING) for b in ("b2", "b2-x", "b2-y", "c_1")],
    )
    assert [r.batch_id for r in batch_jobs(ledger, "b2")] == ["b2"]  # exact wins (it used to be ambiguous)
    assert [r.batch_id for r in batch_jobs(ledger, "c_")] == ["c_1"]
    assert batch_jobs(ledger, "c%") == []  # not found: no jobs, as before
    assert batch_jobs(ledger, "") == []  # empty: not a prefix of every batch
    with pytest.raises(LedgerError, match=r"schedule batch id 'b2-' is ambiguous; it matches b2-x, b2-y"):
        batch_jobs(ledger, "b2-")


def test_optimization_studies(ledger: Ledger) -> None:
    record_candidates(
        ledger,
        [CandidateRow(s, "baseline", "measured", created_at=1.0) for s in ("st1", "st12", "st13", "s_x")],
    )
    assert {r.study_id for r in one_study(ledger, "st1")} == {"st1"}  # exact wins over st12, st13
    assert {r.study_id for r in one_study(ledger, "s_")} == {"s_x"}
    assert {r.study_id for r in study_candidates(ledger, "st1")} == {"st1"}
    assert {r.study_id for r in study_candidates(ledger, "st")} == {"st1", "st12", "st13"}  # callers judge these
    assert study_candidates(ledger, " ") == []
    with pytest.raises(RunNotFoundError, match=r"optimization study id 'st' is ambiguous; it matches st1, st12, st13"):
        one_study(ledger, "st")
    with pytest.raises(RunNotFoundError, match=r"no optimization study matches 's%' \(see `greenai studies`\)"):
        one_study(ledger, "s%")
    with pytest.raises(RunNotFoundError, match="no optimization study id given"):
        one_study(ledger, "")
