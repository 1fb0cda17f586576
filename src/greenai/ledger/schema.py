"""The ledger's schema: versioned SQL migrations, applied in one transaction.

The version lives in `PRAGMA user_version`; the `greenai_meta` table (`app = 'greenai'`)
tells a greenai ledger apart from any other SQLite file. Migration N (1-based) is
`MIGRATIONS[N - 1]`; a database at version V gets `MIGRATIONS[V:]`. Never edit a released
migration: append a new one.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from greenai.errors import LedgerError

APP = "greenai"

V1 = """
CREATE TABLE greenai_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO greenai_meta (key, value) VALUES ('app', 'greenai');

-- Measured figures are nullable: SQLite stores NaN as NULL, and a NaN must not fail a flush.
CREATE TABLE runs (
    run_id            TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN
                        ('running', 'completed', 'failed', 'interrupted', 'incomplete')),
    started_at        REAL NOT NULL,
    ended_at          REAL,
    updated_at        REAL NOT NULL,
    host              TEXT NOT NULL,
    pid               INTEGER NOT NULL,
    duration_s        REAL,
    energy_j          REAL,
    rel_uncertainty   REAL,
    provenance        TEXT NOT NULL,
    facility_energy_j REAL,
    carbon_g          REAL,
    cost              REAL,
    currency          TEXT NOT NULL DEFAULT '',
    carbon_source     TEXT NOT NULL DEFAULT '',
    pue               REAL,
    environment_json  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_started_at ON runs (started_at);
CREATE INDEX runs_status ON runs (status);

CREATE TABLE tags (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE TABLE devices (
    run_id          TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    device          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    energy_j        REAL,
    provenance      TEXT NOT NULL,
    rel_uncertainty REAL
);
CREATE INDEX devices_run ON devices (run_id);

CREATE TABLE phases (
    run_id     TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    phase      TEXT NOT NULL,
    device     TEXT NOT NULL,
    energy_j   REAL,
    duration_s REAL,
    calls      INTEGER NOT NULL
);
CREATE INDEX phases_run ON phases (run_id);

CREATE TABLE counters (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    name   TEXT NOT NULL,
    value  REAL,
    PRIMARY KEY (run_id, name)
);

CREATE TABLE samples (
    run_id     TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    t          REAL NOT NULL,
    device     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    power_w    REAL,
    energy_j   REAL,
    provenance TEXT NOT NULL
);
CREATE INDEX samples_run_t ON samples (run_id, t);
"""

# V2: forecasts made during runs, and what optimize, tune and schedule record beside runs. Each table belongs to one
# module (ledger/candidates.py, ledger/tuning.py, ledger/jobs.py) that reads and writes it.
V2 = """
-- The forecasts a run made as it went (one per flush once it had enough data): what the
-- run was heading for at each moment, to judge a forecast against the run's end.
CREATE TABLE forecasts (
    run_id          TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    made_at_s       REAL NOT NULL,
    progress        REAL,
    energy_j        REAL,
    energy_low_j    REAL,
    energy_high_j   REAL,
    duration_s      REAL,
    carbon_g        REAL,
    cost            REAL,
    provenance      TEXT NOT NULL,
    PRIMARY KEY (run_id, made_at_s)
);

CREATE TABLE optimize_candidates (
    study_id            TEXT NOT NULL,
    name                TEXT NOT NULL,
    created_at          REAL NOT NULL,
    transforms_json     TEXT NOT NULL DEFAULT '[]',
    status              TEXT NOT NULL CHECK (status IN ('measured', 'skipped', 'failed')),
    reason              TEXT NOT NULL DEFAULT '',
    run_id              TEXT REFERENCES runs (run_id) ON DELETE SET NULL,
    energy_per_sample_j REAL,
    rel_uncertainty     REAL,
    provenance          TEXT NOT NULL DEFAULT '',
    time_per_sample_s   REAL,
    quality             REAL,
    quality_name        TEXT NOT NULL DEFAULT '',
    size_bytes          INTEGER,
    parameters          INTEGER,
    nonzero_parameters  INTEGER,
    notes_json          TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (study_id, name)
);

-- One row per profiled setting; `work` counts the units the cost is per (samples, requests);
-- cost is NULL when the setting broke the objective's constraint or failed (notes say why).
CREATE TABLE tuning_trials (
    tuning_id         TEXT NOT NULL,
    trial             INTEGER NOT NULL,
    run_id            TEXT REFERENCES runs (run_id) ON DELETE SET NULL,
    created_at        REAL NOT NULL,
    setting_json      TEXT NOT NULL,
    iterations        INTEGER NOT NULL,
    warmup_iterations INTEGER NOT NULL DEFAULT 0,
    work              REAL,
    duration_s        REAL,
    energy_j          REAL,
    rel_uncertainty   REAL,
    provenance        TEXT NOT NULL DEFAULT '',
    objective         TEXT NOT NULL,
    cost              REAL,
    chosen            INTEGER NOT NULL DEFAULT 0,
    notes             TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tuning_id, trial)
);

CREATE TABLE schedule_jobs (
    batch_id              TEXT NOT NULL,
    job_id                TEXT NOT NULL,
    name                  TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN
                            ('pending', 'running', 'completed', 'failed', 'deferred')),
    node                  TEXT NOT NULL DEFAULT '',
    run_id                TEXT REFERENCES runs (run_id) ON DELETE SET NULL,
    submitted_at          REAL,
    started_at            REAL,
    ended_at              REAL,
    duration_s            REAL,
    energy_j              REAL,
    rel_uncertainty       REAL,
    provenance            TEXT NOT NULL DEFAULT '',
    carbon_g              REAL,
    error                 TEXT NOT NULL DEFAULT '',
    scheduling_overhead_s REAL,
    predicted_energy_j    REAL,
    predicted_duration_s  REAL,
    PRIMARY KEY (batch_id, job_id)
);
"""

_JOB_COLUMNS = """batch_id, job_id, name, status, node, run_id, submitted_at, started_at, ended_at,
    duration_s, energy_j, rel_uncertainty, provenance, carbon_g, error, scheduling_overhead_s,
    predicted_energy_j, predicted_duration_s"""

V3 = f"""
-- An interruptible job can be paused by its executor: a 'paused' status and a count of pauses.
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt and its rows
-- copied (https://www.sqlite.org/lang_altertable.html#otheralter).
CREATE TABLE schedule_jobs_v3 (
    batch_id              TEXT NOT NULL,
    job_id                TEXT NOT NULL,
    name                  TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN
                            ('pending', 'running', 'completed', 'failed', 'deferred', 'paused')),
    node                  TEXT NOT NULL DEFAULT '',
    run_id                TEXT REFERENCES runs (run_id) ON DELETE SET NULL,
    submitted_at          REAL,
    started_at            REAL,
    ended_at              REAL,
    duration_s            REAL,
    energy_j              REAL,
    rel_uncertainty       REAL,
    provenance            TEXT NOT NULL DEFAULT '',
    carbon_g              REAL,
    error                 TEXT NOT NULL DEFAULT '',
    scheduling_overhead_s REAL,
    predicted_energy_j    REAL,
    predicted_duration_s  REAL,
    pauses                INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, job_id)
);
-- a run_id whose run is gone (written while foreign keys were off) is copied as NULL, as
-- ON DELETE SET NULL would have left it, so the copy cannot fail on old data
INSERT INTO schedule_jobs_v3 ({_JOB_COLUMNS})
    SELECT {_JOB_COLUMNS.replace("run_id,", "(SELECT r.run_id FROM runs r WHERE r.run_id = j.run_id),")}
    FROM schedule_jobs j ORDER BY j.rowid;
DROP TABLE schedule_jobs;
ALTER TABLE schedule_jobs_v3 RENAME TO schedule_jobs;
"""

# V4: what reports draw. Each sample row names the phase that held most of its sampling interval
# (NULL outside any phase and in rows written before V4), so a report or dashboard can shade
# phases under the power series; each job keeps when it arrived, so its wait is known.
V4 = """
ALTER TABLE samples ADD COLUMN phase TEXT;
ALTER TABLE schedule_jobs ADD COLUMN arrived_at REAL;
"""

# V5: the process that runs a batch (`greenai schedule run`), so that a job it never finished is
# read `incomplete` once that process is gone (ledger/jobs.py; judged as runs are, ledger/reconcile.py).
V5 = """
ALTER TABLE schedule_jobs ADD COLUMN owner_host TEXT NOT NULL DEFAULT '';
ALTER TABLE schedule_jobs ADD COLUMN owner_pid INTEGER;
ALTER TABLE schedule_jobs ADD COLUMN owner_started_at REAL;
"""

# V6: distributed jobs (greenai.distributed; read and written by ledger/distributed.py). A job is
# one training launched on several processes (ranks), each tracked as its own run; the job's
# totals count every physical device once. `distributed_ranks.run_id` is not a foreign key:
# a rank's run lives in its own host's ledger, which may not be this one. `distributed_devices`
# says which rank read which device (`physical`: what names it on its machine, a RAPL package
# of a node, a GPU's UUID, a rank's own process tree), so the ledger shows nothing was
# counted twice.
V6 = """
CREATE TABLE distributed_jobs (
    job_id            TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN
                        ('running', 'completed', 'failed', 'interrupted', 'incomplete')),
    id_source         TEXT NOT NULL DEFAULT '',
    world_size        INTEGER NOT NULL,
    ranks_reported    INTEGER NOT NULL DEFAULT 0,
    nodes             INTEGER NOT NULL DEFAULT 0,
    started_at        REAL NOT NULL,
    ended_at          REAL,
    updated_at        REAL NOT NULL,
    writer_host       TEXT NOT NULL,
    writer_pid        INTEGER NOT NULL,
    writer_started_at REAL NOT NULL,
    duration_s        REAL,
    energy_j          REAL,
    rel_uncertainty   REAL,
    provenance        TEXT NOT NULL DEFAULT 'estimated',
    facility_energy_j REAL,
    carbon_g          REAL,
    cost              REAL,
    currency          TEXT NOT NULL DEFAULT '',
    comm_bytes        REAL,
    comm_calls        INTEGER,
    comm_s            REAL,
    comm_energy_j     REAL,
    comm_network_j    REAL,
    notes_json        TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX distributed_jobs_started_at ON distributed_jobs (started_at);

CREATE TABLE distributed_ranks (
    job_id          TEXT NOT NULL,
    rank            INTEGER NOT NULL,
    local_rank      INTEGER,
    node            TEXT NOT NULL,
    host            TEXT NOT NULL,
    pid             INTEGER NOT NULL,
    run_id          TEXT NOT NULL,
    status          TEXT NOT NULL,
    final           INTEGER NOT NULL DEFAULT 0,
    started_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    duration_s      REAL,
    energy_j        REAL,
    rel_uncertainty REAL,
    provenance      TEXT NOT NULL DEFAULT 'estimated',
    carbon_g        REAL,
    comm_bytes      REAL,
    comm_calls      INTEGER,
    comm_s          REAL,
    comm_energy_j   REAL,
    PRIMARY KEY (job_id, rank)
);
CREATE INDEX distributed_ranks_run ON distributed_ranks (run_id);

CREATE TABLE distributed_devices (
    job_id          TEXT NOT NULL,
    rank            INTEGER NOT NULL,
    device          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    physical        TEXT NOT NULL,
    scope           TEXT NOT NULL CHECK (scope IN ('node', 'process')),
    energy_j        REAL,
    provenance      TEXT NOT NULL,
    rel_uncertainty REAL,
    PRIMARY KEY (job_id, rank, device)
);
"""

# V7: the co-load each run ran under (hardware/coload.py, tracking/coload.py): per run, over
# windows of about a second, the CPUs other processes kept busy (steal included: median and max),
# steal alone, the share of the time at or above the threshold (recorded with it) and whether that
# made the run `disturbed`; per window, the `coload` rows (NULL and none for runs before V7).
V7 = """
ALTER TABLE runs ADD COLUMN coload_median_cores REAL;
ALTER TABLE runs ADD COLUMN coload_max_cores REAL;
ALTER TABLE runs ADD COLUMN steal_median_cores REAL;
ALTER TABLE runs ADD COLUMN steal_max_cores REAL;
ALTER TABLE runs ADD COLUMN coload_busy_share REAL;
ALTER TABLE runs ADD COLUMN coload_threshold_cores REAL;
ALTER TABLE runs ADD COLUMN coload_seconds REAL;
ALTER TABLE runs ADD COLUMN disturbed INTEGER;

CREATE TABLE coload (
    run_id       TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    t            REAL NOT NULL,
    span_s       REAL,
    others_cores REAL,
    steal_cores  REAL
);
CREATE INDEX coload_run_t ON coload (run_id, t);
"""

# V8: what `greenai run` ran and how it ended (NULL for runs of other kinds and before V8), and
# what a scheduled job runs (`job_key`: a hash of its command, or of its callable and kwargs;
# '' before V8), so that its predictions come from past runs of the same work, not of any job
# that had the same name.
V8 = """
ALTER TABLE runs ADD COLUMN command_json TEXT;
ALTER TABLE runs ADD COLUMN exit_code INTEGER;
ALTER TABLE schedule_jobs ADD COLUMN job_key TEXT NOT NULL DEFAULT '';
CREATE INDEX schedule_jobs_key ON schedule_jobs (name, job_key, node);
"""

# V9: an overview of each run's samples, so that a chart of a long run reads a few thousand rows,
# not millions (ledger/series.py). For each run, device and fixed-width bucket (1, 10, 100 and
# 1000 s: `bucket` = floor(t / width_s)), the bucket's row count and its first, lowest, highest and
# last sample (time, power, cumulative energy; the lowest and highest leave NaN powers out, ties go
# to the earlier sample); for each run, bucket and phase ('' outside any phase), the rows that
# named it and their first and last time. A trigger keeps both as samples are inserted, whoever
# inserts them. Runs begun before V9 have `overview` = 0 (their early samples are not in it):
# they are read from the samples table.
V9 = """
CREATE TABLE sample_overview (
    run_id  TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    width_s INTEGER NOT NULL,
    device  TEXT NOT NULL,
    bucket  INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    first_t REAL NOT NULL,
    first_w REAL,
    first_j REAL,
    last_t  REAL NOT NULL,
    last_w  REAL,
    last_j  REAL,
    min_t   REAL,
    min_w   REAL,
    min_j   REAL,
    max_t   REAL,
    max_w   REAL,
    max_j   REAL,
    PRIMARY KEY (run_id, width_s, device, bucket)
) WITHOUT ROWID;

CREATE TABLE phase_overview (
    run_id  TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    width_s INTEGER NOT NULL,
    bucket  INTEGER NOT NULL,
    phase   TEXT NOT NULL,
    n       INTEGER NOT NULL,
    first_t REAL NOT NULL,
    last_t  REAL NOT NULL,
    PRIMARY KEY (run_id, width_s, bucket, phase)
) WITHOUT ROWID;

ALTER TABLE runs ADD COLUMN overview INTEGER NOT NULL DEFAULT 1;
UPDATE runs SET overview = 0;

CREATE TRIGGER samples_overview AFTER INSERT ON samples BEGIN
    INSERT INTO sample_overview (run_id, width_s, device, bucket, n, first_t, first_w, first_j,
        last_t, last_w, last_j, min_t, min_w, min_j, max_t, max_w, max_j)
    SELECT NEW.run_id, w.width_s, NEW.device, CAST(NEW.t / w.width_s AS INTEGER), 1,
        NEW.t, NEW.power_w, NEW.energy_j, NEW.t, NEW.power_w, NEW.energy_j,
        CASE WHEN NEW.power_w IS NULL THEN NULL ELSE NEW.t END, NEW.power_w,
        CASE WHEN NEW.power_w IS NULL THEN NULL ELSE NEW.energy_j END,
        CASE WHEN NEW.power_w IS NULL THEN NULL ELSE NEW.t END, NEW.power_w,
        CASE WHEN NEW.power_w IS NULL THEN NULL ELSE NEW.energy_j END
    FROM (SELECT 1 AS width_s UNION ALL SELECT 10 UNION ALL SELECT 100 UNION ALL SELECT 1000) AS w WHERE true
    ON CONFLICT (run_id, width_s, device, bucket) DO UPDATE SET
        n = n + 1,
        first_t = CASE WHEN excluded.first_t < first_t THEN excluded.first_t ELSE first_t END,
        first_w = CASE WHEN excluded.first_t < first_t THEN excluded.first_w ELSE first_w END,
        first_j = CASE WHEN excluded.first_t < first_t THEN excluded.first_j ELSE first_j END,
        last_t = CASE WHEN excluded.last_t >= last_t THEN excluded.last_t ELSE last_t END,
        last_w = CASE WHEN excluded.last_t >= last_t THEN excluded.last_w ELSE last_w END,
        last_j = CASE WHEN excluded.last_t >= last_t THEN excluded.last_j ELSE last_j END,
        min_t = CASE WHEN excluded.min_w < min_w
            OR (min_w IS NULL AND excluded.min_w IS NOT NULL)
            OR (excluded.min_w = min_w AND excluded.min_t < min_t)
            THEN excluded.min_t ELSE min_t END,
        min_w = CASE WHEN excluded.min_w < min_w
            OR (min_w IS NULL AND excluded.min_w IS NOT NULL)
            OR (excluded.min_w = min_w AND excluded.min_t < min_t)
            THEN excluded.min_w ELSE min_w END,
        min_j = CASE WHEN excluded.min_w < min_w
            OR (min_w IS NULL AND excluded.min_w IS NOT NULL)
            OR (excluded.min_w = min_w AND excluded.min_t < min_t)
            THEN excluded.min_j ELSE min_j END,
        max_t = CASE WHEN excluded.max_w > max_w
            OR (max_w IS NULL AND excluded.max_w IS NOT NULL)
            OR (excluded.max_w = max_w AND excluded.max_t < max_t)
            THEN excluded.max_t ELSE max_t END,
        max_w = CASE WHEN excluded.max_w > max_w
            OR (max_w IS NULL AND excluded.max_w IS NOT NULL)
            OR (excluded.max_w = max_w AND excluded.max_t < max_t)
            THEN excluded.max_w ELSE max_w END,
        max_j = CASE WHEN excluded.max_w > max_w
            OR (max_w IS NULL AND excluded.max_w IS NOT NULL)
            OR (excluded.max_w = max_w AND excluded.max_t < max_t)
            THEN excluded.max_j ELSE max_j END;
    INSERT INTO phase_overview (run_id, width_s, bucket, phase, n, first_t, last_t)
    SELECT NEW.run_id, w.width_s, CAST(NEW.t / w.width_s AS INTEGER), coalesce(NEW.phase, ''), 1, NEW.t, NEW.t
    FROM (SELECT 1 AS width_s UNION ALL SELECT 10 UNION ALL SELECT 100 UNION ALL SELECT 1000) AS w WHERE true
    ON CONFLICT (run_id, width_s, bucket, phase) DO UPDATE SET
        n = n + 1,
        first_t = min(first_t, excluded.first_t),
        last_t = max(last_t, excluded.last_t);
END;
"""

MIGRATIONS: tuple[str, ...] = (V1, V2, V3, V4, V5, V6, V7, V8, V9)


def migrate(conn: sqlite3.Connection, path: Path, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Bring the database up to `len(migrations)`; return the final version.

    `conn` must be in autocommit mode (`isolation_level=None`). All pending migrations and
    the new `user_version` commit together or not at all. The version is re-read under the
    write lock, so processes opening a fresh file at the same moment migrate it once.
    """
    target = len(migrations)
    if check_identity(conn, path, target) == target:
        return target
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = check_identity(conn, path, target)
        for script in migrations[version:]:
            for statement in split_statements(script):
                conn.execute(statement)
        # PRAGMA takes no bound parameters; `target` is an int computed here, not input.
        conn.execute(f"PRAGMA user_version = {int(target)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    return target


def check_identity(conn: sqlite3.Connection, path: Path, known: int) -> int:
    """Return the schema version of a greenai ledger (0 for an empty file).

    Raises LedgerError for a foreign SQLite file, one written by a newer greenai, or one whose
    version is not one greenai ever wrote (negative, or 0 with tables): migrating from a
    wrong version would re-apply migrations to tables that already have them.
    """
    # one read transaction for the three reads: between two autocommit reads another process
    # (or thread) may create the ledger, and a version read before it next to tables read after
    # it looked like a hand-edited version (two ranks opening a fresh ledger at once hit this)
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        app = None
        if "greenai_meta" in tables:
            app = conn.execute("SELECT value FROM greenai_meta WHERE key = 'app'").fetchone()
    finally:
        if own and conn.in_transaction:
            conn.execute("ROLLBACK")  # nothing was written: ending the read
    if version == 0 and not tables:
        return 0
    if app is None or app[0] != APP:
        raise LedgerError(
            f"ledger {path} is an SQLite database but not a greenai ledger; point GREENAI_LEDGER at another file"
        )
    if version > known:
        raise LedgerError(f"ledger {path} was written by a newer greenai (schema v{version}); upgrade greenai")
    if version < 1:
        raise LedgerError(
            f"ledger {path} is a greenai ledger with an unknown schema version ({version}; greenai writes 1 to "
            f"{known}): its user_version was changed by hand or by another tool; set it back or move it aside"
        )
    return version


@functools.cache
def expected_schema(version: int) -> dict[str, frozenset[str]]:
    """Table -> column names of a ledger at `version`, as the migrations build it."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for script in MIGRATIONS[:version]:
            conn.executescript(script)
        return _columns(conn)
    finally:
        conn.close()


def missing_schema(conn: sqlite3.Connection, version: int) -> list[str]:
    """What a ledger at `version` lacks of the tables and columns its migrations made
    (e.g. ["table samples", "column schedule_jobs.pauses"]); empty when it has them all."""
    have = _columns(conn)
    missing: list[str] = []
    for table, columns in sorted(expected_schema(version).items()):
        if table not in have:
            missing.append(f"table {table}")
        else:
            missing.extend(f"column {table}.{c}" for c in sorted(columns - have[table]))
    return missing


def _columns(conn: sqlite3.Connection) -> dict[str, frozenset[str]]:
    rows = conn.execute(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p"
        " WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"
    ).fetchall()
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    return {t: frozenset(c) for t, c in tables.items()}


def split_statements(script: str) -> Iterator[str]:
    """Split a script into complete statements (so they can run inside our transaction;
    `executescript` would commit first)."""
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                yield buffer
            buffer = ""
