"""One rank's part in a distributed job: joining, choosing what to read, publishing, adding up.

At start (`join`, then `select` from the tracker's start): the rank learns who it is
(distributed.spec), agrees on the job id with the others, says which node devices it can
see and takes those no lower rank of its node sees (waiting `join_timeout_s` at most for
them). The store's part of that runs in a thread of its own, waited for until one deadline
(`join_bound_s`: START_TIMEOUT_S, and `join_timeout_s` for a rank that waits for lower
ranks): a store that does not answer by then leaves the rank tracked on its own, not joined
(`Unjoined`), or, when only the device exchange was late, joined and reading the node
devices it sees. While it runs, the sampler thread hands the rank's totals every
`publish_interval_s` to a publisher thread (distributed.publisher), which publishes them and
writes the rank's row in its ledger (the writer also writes the job as it stands). At the end
it publishes its final totals; the writer waits `aggregation_timeout_s` at most for the
others' and writes the job: `completed`, or `incomplete` with what a missing rank published.

The job id: `Join(job_id=...)`, else torchrun's TORCHELASTIC_RUN_ID (a fresh UUID per launch
unless `--rdzv-id` names one; `-restartN` after an elastic restart), else one agreed through
the launcher's store (the first rank to ask sets it), else one agreed over the initialised
process group (a broadcast from rank 0: every rank must then start its tracker at the same
point), else one derived from what the ranks share (MASTER_ADDR:MASTER_PORT), with a note.
A process's second distributed run gets the same id with `.1` (`.2`, ...): every rank starts
its runs in the same order (a given id is used as it is).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from greenai.config import Config
from greenai.distributed.aggregate import Writer, aggregate
from greenai.distributed.channel import CONNECT_TIMEOUT_S, Channel, JobChannel, KeyValue, LedgerChannel, TorchStoreKV
from greenai.distributed.comm import BYTES_COUNTER, CALLS_COUNTER, COMM_PHASE, comm_seconds
from greenai.distributed.deadline import within
from greenai.distributed.devices import Placement, node_ids_of, select
from greenai.distributed.publisher import Publisher
from greenai.distributed.spec import Join, RankEnv, rank_env
from greenai.ledger.distributed import PROCESS, CommTotals, DeviceRead, JobRecord, RankReport, write_job, write_rank
from greenai.ledger.records import RunSnapshot, RunStatus
from greenai.ledger.store import Ledger
from greenai.meters.base import Meter, Provenance
from greenai.meters.process import ProcessScope
from greenai.tracking.tracker import STOP_BOUND_S

if TYPE_CHECKING:
    import sqlite3

    from greenai.tracking.tracker import Tracker

log = logging.getLogger("greenai.distributed")

LEDGER_WRITE_TIMEOUT_S = 1.0  # a write of the rank's row or the job at start and while it runs
# A rank's start, beyond its wait for the lower ranks of its node (`join_timeout_s`): reach the
# launcher's store (CONNECT_TIMEOUT_S, 5 s, at most to find nothing listening at its address,
# then the ledger carries the job), agree on the job id, publish which devices it sees (each
# call well under a millisecond when the store is well). One deadline for the whole of it,
# kept by a thread of its own (distributed.deadline).
START_TIMEOUT_S = 10.0
# A rank's end, all in all, beyond the writer's wait for the others' final totals: its own
# published and its row (or, on the writer, the job) written, through the tracker's still-open
# ledger. One deadline for the whole of it, kept by a thread of its own: the transport's calls
# (a TCP store's 5 s each) cannot stretch it.
END_TIMEOUT_S = 5.0
JOB_WRITE_RESERVE_S = 1.0  # of the writer's deadline, kept for writing the job after the wait
_END_MARGIN_S = 0.5  # the steps' own deadline comes this much earlier (a busy wait may overshoot a little)
HOLD_SIGTERM_S = STOP_BOUND_S + END_TIMEOUT_S  # the tracker's stop and the rank's end (+ the aggregation timeout)
_sequence = itertools.count()  # distributed runs started in this process


class _HeldSigterm:
    """SIGTERM held back while a rank's end is published and the job written, then delivered:
    when a rank dies, torchrun sends SIGTERM to the others (and SIGKILL 30 s later), and rank 0
    should still write the job. Bounded: past `deadline` a SIGTERM is delivered at once (so a
    run whose end never came does not ignore it for ever). Main thread only."""

    def __init__(self, hold_s: float) -> None:
        self._deadline = time.monotonic() + hold_s
        self._received = False
        self._previous: Any = None
        self._installed = False
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handler)
            self._installed = True
        except ValueError:  # not the main interpreter
            pass

    def _handler(self, signum: int, frame: Any) -> None:
        self._received = True
        if time.monotonic() > self._deadline:
            self.release()

    def release(self) -> None:
        if not self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._installed = False
        signal.signal(signal.SIGTERM, self._previous)
        if self._received:
            signal.raise_signal(signal.SIGTERM)


def join(tracker: Tracker, wanted: bool | Join | None) -> RankMembership | Unjoined:
    """The tracking layer's joiner (tracking/joining.py): `wanted` is True, None or a Join.
    The store's part runs within the start's deadline (`join_bound_s`); past it the rank is
    tracked on its own (`Unjoined`), with a note and one warning."""
    spec = wanted if isinstance(wanted, Join) else Join()
    env = rank_env(spec)
    n = next(_sequence)
    bound_s = join_bound_s(spec, env)
    deadline = time.monotonic() + bound_s
    try:
        kv, agreed, notes = within(lambda: _reach(spec, env, n), deadline, "greenai-join")
    except TimeoutError:
        where = f" at {env.master[0]}:{env.master[1]}" if spec.store is None and env.master else ""
        return Unjoined(
            env,
            bound_s,
            f"this rank is not joined to its distributed job: the launcher's store{where} did not answer "
            f"within {bound_s:g} s; the run is tracked on its own ("
            + (
                "this rank writes the job, so no job is written: each rank's run stands alone"
                if env.rank == 0
                else "the job, if the others make it, is incomplete without this rank"
            )
            + ")",
        )
    job_id, source = agreed if agreed is not None else _job_id_without_store(env, n, notes)
    channel: Channel = JobChannel(kv, job_id) if kv is not None else LedgerChannel(job_id)
    return RankMembership(tracker, env, spec, job_id, source, channel, notes, deadline)


def join_bound_s(spec: Join, env: RankEnv) -> float:
    """How long a rank's start may wait for joining at most: START_TIMEOUT_S, and
    `join_timeout_s` besides for a rank that waits for lower ranks of its node."""
    waits = (env.local_rank if env.local_rank is not None else env.rank) > 0
    return START_TIMEOUT_S + (spec.join_timeout_s if waits else 0.0)


def _reach(spec: Join, env: RankEnv, n: int) -> tuple[KeyValue | None, tuple[str, str] | None, list[str]]:
    """In the joining thread: the transport, the job id if given or agreed in the store (None:
    neither), and the notes. Changes nothing shared (it may be given up on)."""
    notes: list[str] = []
    kv = _transport(spec, env, notes)
    suffix = f".{n}" if n else ""
    if spec.job_id:  # given (a Ray driver's): meant as is
        return kv, (spec.job_id, spec.id_source or "given"), notes
    if env.elastic_run_id:
        restart = f"-restart{env.restart}" if env.restart else ""
        return kv, (f"{env.elastic_run_id}{restart}{suffix}", "TORCHELASTIC_RUN_ID"), notes
    if kv is not None:
        return kv, (kv.first(f"greenai/job-id/{env.restart}/{n}", uuid.uuid4().hex), "launcher store"), notes
    return kv, None, notes


def _transport(spec: Join, env: RankEnv, notes: list[str]) -> KeyValue | None:
    if spec.store is not None:
        return spec.store
    if env.master is None:
        return None
    kv = TorchStoreKV(*env.master)
    try:
        # nothing listening is told within the connection timeout; a store that accepts and
        # then does not answer is left to the start's deadline
        if not kv.listening(CONNECT_TIMEOUT_S):
            raise ConnectionError(f"nothing accepted a connection within {CONNECT_TIMEOUT_S:g} s")
        kv.get("greenai/ping")
    except Exception as e:  # noqa: BLE001 - no store there: the ledger carries the job
        notes.append(
            f"the launcher's store at {env.master[0]}:{env.master[1]} could not be reached ({e}); "
            "the job is added up through the ledger (ranks that share it only)"
        )
        return None
    return kv


def _job_id_without_store(env: RankEnv, n: int, notes: list[str]) -> tuple[str, str]:
    """The job id when none is given and there is no store: broadcast over the initialised
    process group (on the rank's own thread, not within the start's deadline: a collective
    given up on would be matched with the training's own next one), else derived."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        box = [uuid.uuid4().hex if env.rank == 0 else None]
        dist.broadcast_object_list(box, src=0)
        return f"{box[0]}", "process group"
    seed = f"{env.master}|{env.restart}|{env.world_size}|{n}"
    notes.append(
        "no launcher id, store or process group to agree on a job id: it is derived from "
        f"MASTER_ADDR:MASTER_PORT ({env.master}); two launches on the same address share it"
    )
    return hashlib.sha1(seed.encode()).hexdigest()[:32], "derived"


def owned_without_exchange(env: RankEnv, ids: list[str]) -> set[str]:
    """The node devices among `ids` a rank reads when the ranks cannot say which they see:
    local rank 0 (the lowest rank of its node under torchrun and Ray Train) reads the node; a
    rank whose local rank is unknown reads what it sees (a job keeps one reading of each
    device); the others read their own process tree only."""
    return set(ids) if env.local_rank in (0, None) else set()


class Unjoined:
    """Implements tracking.joining.Membership for a rank whose joining did not finish within
    its start's deadline: its run is its own, and no job hears of it. It reads what a rank of
    a job without a device exchange reads (`owned_without_exchange`: the ranks' runs still
    hold each node device once); it is not joined later, because what a rank reads and what
    its run's record says are settled at start, and a store that hung once may hang again.
    `note` is warned once, kept in the run's environment and in its result's notes."""

    job_id = ""

    def __init__(self, env: RankEnv, bound_s: float, note: str) -> None:
        self.env = env
        self.rank = env.rank
        self.bound_s = bound_s
        self.note = note
        self._reads: dict[str, Placement] = {}
        self._dropped: list[str] = []

    def join_bound_s(self) -> float:
        return self.bound_s

    def select(self, meters: list[Meter], scope: ProcessScope, config: Config) -> list[Meter]:
        env = self.env
        owned = owned_without_exchange(env, node_ids_of(meters, env.node, env.pid))
        chosen = select(meters, owned, env.node, env.pid, scope, config)
        self._reads, self._dropped = chosen.reads, chosen.dropped
        return chosen.meters

    def describe(self) -> dict[str, Any]:
        env = self.env
        return {
            "joined": False,
            "job_id": None,
            "rank": env.rank,
            "world_size": env.world_size,
            "local_rank": env.local_rank,
            "node": env.node,
            "reads": {d: {"physical": p.physical, "scope": p.scope} for d, p in sorted(self._reads.items())},
            "left_to_other_ranks": self._dropped,
            "notes": [self.note],
        }

    def started(self, run_id: str, run_name: str, started_at: float, ledger: Ledger | None) -> None:
        log.warning("greenai: rank %d: %s", self.rank, self.note)

    def observe(self, snapshot: Callable[[], RunSnapshot]) -> None:
        pass

    def hold_sigterm(self) -> None:
        pass  # no job to write at the end

    def release_sigterm(self) -> None:
        pass

    def ended(self, status: str, snapshot: RunSnapshot) -> tuple[JobRecord | None, tuple[str, ...]]:
        return None, (self.note,)

    def detach(self) -> None:
        pass


class RankMembership:
    """Implements tracking.joining.Membership for one rank."""

    def __init__(
        self,
        tracker: Tracker,
        env: RankEnv,
        spec: Join,
        job_id: str,
        id_source: str,
        channel: Channel,
        notes: list[str],
        start_deadline: float = math.inf,
    ) -> None:
        self.job_id = job_id
        self.rank = env.rank
        self.env = env
        self.spec = spec
        self.id_source = id_source
        self.channel = channel
        self.writer = spec.writer == "rank0" and env.rank == 0
        self.notes = notes
        self._tracker = tracker
        self._name = tracker.name
        self._reads: dict[str, Placement] = {}
        self._dropped: list[str] = []
        self._run_id = ""
        self._started_at = time.time()
        self._ledger: Ledger | None = None  # the tracker's, open until ended() has returned
        self._next_publish = -math.inf
        self._lock = threading.Lock()
        self._warned = False
        self._detached = False
        self._job: JobRecord | None = None
        self._writer = Writer(env.host, env.pid, self._started_at)
        self._held: _HeldSigterm | None = None
        self._channel_failed = False
        self._ending = False  # ended() has begun: nothing more is published while it runs
        self._start_deadline = start_deadline  # joining's, kept by `select` too
        self._publisher = Publisher()

    # -- start ------------------------------------------------------------------------
    def select(self, meters: list[Meter], scope: ProcessScope, config: Config) -> list[Meter]:
        env = self.env
        ids = node_ids_of(meters, env.node, env.pid)
        try:  # the exchange within what is left of the start's deadline
            owned, notes = within(lambda: self._claim(ids), self._start_deadline, "greenai-join")
        except TimeoutError:
            owned, notes = (
                set(ids),
                [
                    "the launcher's store did not answer within the start's deadline "
                    f"({join_bound_s(self.spec, env):g} s) while the ranks said which devices they see: this "
                    "rank reads the node devices it sees, and the job counts each device once"
                ],
            )
        self.notes.extend(notes)
        chosen = select(meters, owned, env.node, env.pid, scope, config)
        self._reads, self._dropped = chosen.reads, chosen.dropped
        return chosen.meters

    def _claim(self, ids: list[str]) -> tuple[set[str], list[str]]:
        """In the joining thread: the node devices among `ids` that no lower rank of this node
        reads, and notes. Changes nothing shared (it may be given up on)."""
        env = self.env
        notes: list[str] = []
        try:
            self.channel.publish_inventory(env.rank, env.node, env.local_rank, ids)
        except Exception as e:  # noqa: BLE001
            notes.append(f"could not publish which devices this rank sees: {e}")
        if isinstance(self.channel, LedgerChannel) or env.local_rank == 0:
            return owned_without_exchange(env, ids), notes
        if env.local_rank is not None:
            keys = [f"node/{env.node}/{k}" for k in range(env.local_rank)]
        else:
            keys = [f"rank/{k}" for k in range(env.rank)]
        try:
            found = self.channel.wait_inventories(keys, self.spec.join_timeout_s)
        except Exception as e:  # noqa: BLE001
            found = {}
            notes.append(f"could not read which devices the other ranks see: {e}")
        covered = {p for inv in found.values() if inv["node"] == env.node for p in inv["physical"]}
        if len(found) < len(keys):
            notes.append(
                f"{len(keys) - len(found)} lower rank(s) of this node did not say within {self.spec.join_timeout_s:g} s "
                "which devices they read: this rank reads the node devices it sees that the others did not "
                "claim, and the job counts each device once"
            )
        return set(ids) - covered, notes

    def describe(self) -> dict[str, Any]:
        env = self.env
        return {
            "joined": True,
            "job_id": self.job_id,
            "id_source": self.id_source,
            "rank": env.rank,
            "world_size": env.world_size,
            "local_rank": env.local_rank,
            "node": env.node,
            "writer": self.writer,
            "channel": type(self.channel).__name__,
            "reads": {d: {"physical": p.physical, "scope": p.scope} for d, p in sorted(self._reads.items())},
            "left_to_other_ranks": self._dropped,
            "notes": list(self.notes),
        }

    def started(self, run_id: str, run_name: str, started_at: float, ledger: Ledger | None) -> None:
        self._run_id, self._name, self._started_at = run_id, run_name, started_at
        self._writer = Writer(self.env.host, self.env.pid, started_at)
        self._ledger = ledger
        if isinstance(self.channel, LedgerChannel):
            self.channel.ledger = ledger
        report = self._report(None, RunStatus.RUNNING, final=False)
        # the store and the ledger on the publisher's thread: the user's start waits for neither
        self._publisher.offer(lambda: self._publish_running(report))
        for note in self.notes:
            log.warning("greenai: job %s, rank %d: %s", self.job_id[:12], self.rank, note)

    # -- while it runs ------------------------------------------------------------------
    def observe(self, snapshot: Callable[[], RunSnapshot]) -> None:
        """Sampler thread: when due, the rank's totals are handed to the publisher's thread
        (the sampler never waits on the store or the job's lock)."""
        now = time.monotonic()
        if now < self._next_publish or self._detached or self._ending:
            return
        self._next_publish = now + self.spec.publish_interval_s
        report = self._report(snapshot(), RunStatus.RUNNING, final=False)
        self._publisher.offer(lambda: self._publish_running(report))

    def _publish_running(self, report: RankReport) -> None:
        """Publisher thread: publish `report`, write the rank's row (the job, on the writer)."""
        with self._lock:
            if self._ending or self._detached:
                return
            self._send(report, self._ledger, LEDGER_WRITE_TIMEOUT_S)
            if self.writer:
                others = self._reports()
                self._write_job([*others, report], ended=False, ledger=self._ledger, timeout_s=LEDGER_WRITE_TIMEOUT_S)

    def join_bound_s(self) -> float:
        """How long joining could hold the rank's start at most (`join_bound_s`)."""
        return join_bound_s(self.spec, self.env)

    # -- end ---------------------------------------------------------------------------
    def end_bound_s(self) -> float:
        """How long `ended` takes at most: END_TIMEOUT_S, and on the job's writer the
        aggregation timeout too (a distributed stop() returns within STOP_BOUND_S + this)."""
        return END_TIMEOUT_S + (self.spec.aggregation_timeout_s if self.writer else 0.0)

    def hold_sigterm(self) -> None:
        if self._held is None:
            self._held = _HeldSigterm(STOP_BOUND_S + self.end_bound_s())

    def release_sigterm(self) -> None:
        """Deliver a SIGTERM held back since `hold_sigterm` (main thread; idempotent)."""
        if self._held is not None:
            held, self._held = self._held, None
            held.release()

    def ended(self, status: str, snapshot: RunSnapshot) -> tuple[JobRecord | None, tuple[str, ...]]:
        if self._detached:
            return None, ()
        self._ending = True
        self._publisher.close()
        try:
            return self._end_within(status, snapshot, self.end_bound_s())
        finally:
            self.release_sigterm()

    def _end_within(
        self, status: str, snapshot: RunSnapshot, bound_s: float
    ) -> tuple[JobRecord | None, tuple[str, ...]]:
        """`_end` in a thread of its own, waited for `bound_s` at most: whatever the store, the
        ledger or the sampler thread (holding the lock while it publishes) do, the caller is
        back by then. `_end` keeps the same deadline in each of its steps, so it is normally
        done in time; past it, the job stays as last written, and a note says so."""
        deadline = time.monotonic() + bound_s
        try:
            return within(lambda: self._end(status, snapshot, deadline - _END_MARGIN_S), deadline, "greenai-job-end")
        except TimeoutError:
            note = (
                f"this rank's end of distributed job {self.job_id} did not finish within {bound_s:g} s "
                "(its store or ledger did not answer); the job is left as last written"
            )
            log.warning("greenai: %s", note)
            return None, (note,)

    def _end(self, status: str, snapshot: RunSnapshot, deadline: float) -> tuple[JobRecord | None, tuple[str, ...]]:
        """Publish the final totals; write the rank's row, or on the writer wait for the
        others' and write the job: every step within what is left before `deadline`."""

        def left() -> float:
            return max(deadline - time.monotonic(), 0.0)

        notes: list[str] = []
        if not self._lock.acquire(timeout=left()):
            notes.append(
                f"this rank's end of distributed job {self.job_id} could not be published: its last "
                "publication did not finish in time"
            )
            return None, tuple(notes)
        try:
            report = self._report(snapshot, status, final=True)
            ledger = self._ledger
            # the writer's own row is written with the job
            self._send(report, None if self.writer else ledger, left(), notes)
            if not self.writer:
                return None, tuple(notes)
            try:
                wait_s = min(self.spec.aggregation_timeout_s, max(left() - JOB_WRITE_RESERVE_S, 0.0))
                others = self.channel.wait_final(self.env.world_size, wait_s)
            except Exception as e:  # noqa: BLE001 - the job is written with what there is
                others = []
                notes.append(f"the other ranks' totals could not be read: {e}")
            job = self._write_job([*others, report], ended=True, ledger=ledger, timeout_s=left(), problems=notes)
            if job.status != RunStatus.COMPLETED:
                notes.append(f"distributed job {job.job_id}: {job.status}: " + "; ".join(job.notes))
            return job, tuple(notes)
        finally:
            self._lock.release()

    def detach(self) -> None:
        self._detached = True
        self._ledger = None

    # -- plumbing ----------------------------------------------------------------------
    def _reports(self) -> list[RankReport]:
        if self._channel_failed:
            return []
        try:
            return self.channel.reports(self.env.world_size)
        except Exception as e:  # noqa: BLE001
            self._channel_failed = True
            self._warn(f"could not read the other ranks' totals (not tried again until the end): {e}")
            return []

    def _send(
        self, report: RankReport, ledger: Ledger | None, timeout_s: float, problems: list[str] | None = None
    ) -> None:
        # a store that failed once (gone with the process that held it) is not waited on again
        # at every publish: the publisher would stall for its timeout each time; the final
        # totals are tried once more
        if not self._channel_failed or report.final:
            try:
                self.channel.publish(report)
            except Exception as e:  # noqa: BLE001 - the rank's own run goes on regardless
                self._channel_failed = True
                self._warn(f"could not publish this rank's totals (not tried again until its end): {e}")
        self._store(
            ledger,
            lambda conn: write_rank(conn, report),
            timeout_s,
            problems,
            warning="could not write this rank's row to the ledger",
            problem=f"this rank's row of distributed job {self.job_id} could not be written",
        )

    def _write_job(
        self,
        reports: list[RankReport],
        *,
        ended: bool,
        ledger: Ledger | None,
        timeout_s: float,
        problems: list[str] | None = None,
    ) -> JobRecord:
        job = aggregate(
            self.job_id,
            self._name,
            self.env.world_size,
            reports,
            self._writer,
            now=time.time(),
            ended=ended,
            id_source=self.id_source,
            notes=self.notes,
        )
        self._job = job
        self._store(
            ledger,
            lambda conn: write_job(conn, job),
            timeout_s,
            problems,
            warning="could not write the job to the ledger",
            problem=f"distributed job {self.job_id} could not be written to the ledger",
        )
        return job

    def _store(
        self,
        ledger: Ledger | None,
        work: Callable[[sqlite3.Connection], object],
        timeout_s: float,
        problems: list[str] | None,
        *,
        warning: str,
        problem: str,
    ) -> None:
        """One bounded ledger write; a failure is warned once and added to `problems` (the
        run's notes), never raised: the rank's own run goes on regardless."""
        if ledger is None:
            return
        try:
            ledger.write(work, timeout_s=timeout_s)
        except Exception as e:  # noqa: BLE001
            self._warn(f"{warning}: {e}")
            if problems is not None:
                problems.append(f"{problem}: {e}")

    def _warn(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("greenai: job %s, rank %d: %s", self.job_id[:12], self.rank, message)
        else:
            log.debug("greenai: job %s, rank %d: %s", self.job_id[:12], self.rank, message)

    def _report(self, snapshot: RunSnapshot | None, status: str, *, final: bool) -> RankReport:
        env = self.env
        devices: tuple[DeviceRead, ...] = ()
        comm = CommTotals()
        if snapshot is not None:
            devices = tuple(
                DeviceRead(
                    d.device,
                    d.kind,
                    self._placement(d.device).physical,
                    self._placement(d.device).scope,
                    d.energy_j,
                    d.provenance,
                    d.rel_uncertainty,
                )
                for d in snapshot.devices
            )
            comm = CommTotals(
                bytes=float(snapshot.counters.get(BYTES_COUNTER, 0.0)),
                calls=int(snapshot.counters.get(CALLS_COUNTER, 0.0)),
                seconds=comm_seconds(self._tracker),
                energy_j=sum(p.energy_j for p in snapshot.phases if p.phase == COMM_PHASE),
            )
        return RankReport(
            job_id=self.job_id,
            rank=env.rank,
            local_rank=env.local_rank,
            node=env.node,
            host=env.host,
            pid=env.pid,
            run_id=self._run_id,
            status=status,
            final=final,
            started_at=self._started_at,
            updated_at=time.time(),
            duration_s=snapshot.duration_s if snapshot is not None else 0.0,
            energy_j=snapshot.energy_j if snapshot is not None else 0.0,
            rel_uncertainty=snapshot.rel_uncertainty if snapshot is not None else 0.0,
            provenance=snapshot.provenance if snapshot is not None else Provenance.ESTIMATED,
            facility_energy_j=snapshot.facility_energy_j if snapshot is not None else 0.0,
            carbon_g=snapshot.carbon_g if snapshot is not None else 0.0,
            cost=snapshot.cost if snapshot is not None else 0.0,
            currency=snapshot.currency if snapshot is not None else "",
            devices=devices,
            comm=comm,
        )

    def _placement(self, device: str) -> Placement:
        found = self._reads.get(device)
        if found is not None:
            return found
        return Placement(f"{self.env.node}/pid {self.env.pid}/{device}", PROCESS)
