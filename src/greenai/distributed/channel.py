"""How the ranks of a job tell each other what they read: a small key-value transport.

Each rank publishes, under keys of its own, what node-wide devices it can see (at start) and
its totals (every `publish_interval_s`, and once more, final, at its end); the job's writer
reads them. Nobody ever waits on a peer except for a bounded time: a rank for the lower
ranks of its node at start (`join_timeout_s`), the writer for the final totals at the end
(`aggregation_timeout_s`). A rank that dies leaves its last published totals behind.

Transports (`KeyValue`):
- `TorchStoreKV`: the launcher's TCP store (torchrun's agent hosts one at
  MASTER_ADDR:MASTER_PORT; so does rank 0 of an `env://` process group), as a second client
  with keys under `greenai/`. It outlives a rank that dies (torchrun's agent holds it), and
  no collective is ever issued: the training's own collectives are never interleaved with
  greenai's, and a dead rank cannot hang anyone.
- `MemoryKV`: one process (tests, threads).
- Ray: an actor (greenai.distributed.ray).
Without any (ranks launched with RANK/WORLD_SIZE only), the job goes through the ledger
(`LedgerChannel`): each rank's row in it is its report; that works for ranks sharing a ledger
file (one node, or a shared file system).

Values are JSON, never pickles: a store reachable over the network must not run code.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Protocol

from greenai.errors import ChannelError  # defined there; re-exported here, where it is raised
from greenai.ledger.distributed import CommTotals, DeviceRead, RankReport, read_ranks, sequence_of
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind, Provenance

PREFIX = "greenai"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 1.0  # a read of the ranks' rows in a shared ledger (LedgerChannel) waits this long at most
_POLL_S = (0.01, 0.1)  # first and longest pause between looks while waiting


class KeyValue(Protocol):
    """A key-value store shared by the ranks. `get` never waits for a key; `first(key, value)`
    stores `value` unless the key holds one already, and returns what the key holds."""

    def set(self, key: str, value: str) -> None: ...

    def get(self, key: str) -> str | None: ...

    def first(self, key: str, value: str) -> str: ...

    def close(self) -> None: ...


class MemoryKV:
    """A KeyValue in this process."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}
        self._lock = threading.Lock()

    def set(self, key: str, value: str) -> None:
        with self._lock:
            self._data[key] = value

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._data.get(key)

    def first(self, key: str, value: str) -> str:
        with self._lock:
            return self._data.setdefault(key, value)

    def close(self) -> None:
        pass


class TorchStoreKV:
    """A client of torch.distributed's TCPStore at `host:port` (connected on first use; each
    operation waits `timeout_s` at most). Thread-safe: one lock around the client."""

    def __init__(self, host: str, port: int, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self.host, self.port, self._timeout_s = host, port, timeout_s
        self._store: Any = None
        self._lock = threading.Lock()

    def _client(self) -> Any:
        if self._store is None:
            import datetime

            import torch.distributed as dist

            self._store = dist.TCPStore(
                self.host,
                self.port,
                is_master=False,
                timeout=datetime.timedelta(seconds=self._timeout_s),
                wait_for_workers=False,
            )
        return self._store

    def listening(self, timeout_s: float) -> bool:
        """Whether something accepts a connection at the store's address within `timeout_s`,
        a refusal retried (the store may not be up yet). Quick where nothing listens (the
        client's own retries took 8 s here); says nothing of whether the store answers."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=max(deadline - time.monotonic(), 0.01)):
                    return True
            except OSError:
                if time.monotonic() + _POLL_S[1] >= deadline:
                    return False
                time.sleep(_POLL_S[1])

    def set(self, key: str, value: str) -> None:
        with self._lock:
            self._client().set(key, value)

    def get(self, key: str) -> str | None:
        with self._lock:
            store = self._client()
            if not store.check([key]):
                return None
            return bytes(store.get(key)).decode()

    def first(self, key: str, value: str) -> str:
        with self._lock:
            return bytes(self._client().compare_set(key, "", value)).decode()

    def close(self) -> None:
        with self._lock:
            self._store = None  # the client's socket closes with it


class JobChannel:
    """One job's keys on a KeyValue: inventories (node devices a rank can see) and reports."""

    def __init__(self, kv: KeyValue, job_id: str) -> None:
        self.kv = kv
        self.job_id = job_id
        self._base = f"{PREFIX}/{job_id}"

    # -- inventories: at start ------------------------------------------------------
    def publish_inventory(self, rank: int, node: str, local_rank: int | None, physical: Sequence[str]) -> None:
        value = json.dumps({"rank": rank, "node": node, "local_rank": local_rank, "physical": list(physical)})
        self.kv.set(f"{self._base}/inventory/rank/{rank}", value)
        if local_rank is not None:
            self.kv.set(f"{self._base}/inventory/node/{node}/{local_rank}", value)

    def wait_inventories(self, keys: Sequence[str], timeout_s: float) -> dict[str, dict[str, Any]]:
        """The inventories under `keys` (`rank/R` or `node/N/L`) that arrive within `timeout_s`."""
        found: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout_s
        pause = _POLL_S[0]
        while True:
            for key in keys:
                if key not in found:
                    raw = self.kv.get(f"{self._base}/inventory/{key}")
                    if raw is not None:
                        found[key] = _inventory(raw)
            if len(found) == len(keys) or time.monotonic() >= deadline:
                return found
            time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
            pause = min(pause * 2, _POLL_S[1])

    # -- reports: as the ranks go, and final -----------------------------------------
    def publish(self, report: RankReport) -> None:
        self.kv.set(f"{self._base}/report/{report.rank}", encode_report(report))

    def reports(self, world_size: int, timeout_s: float | None = None) -> list[RankReport]:
        """Each rank's last report (`timeout_s` is the store's own: each operation is bounded)."""
        out = []
        for rank in range(world_size):
            raw = self.kv.get(f"{self._base}/report/{rank}")
            if raw is not None:
                out.append(decode_report(raw))
        return out

    def wait_final(self, world_size: int, timeout_s: float) -> list[RankReport]:
        """Every rank's report once all are final, or what there is after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        pause = _POLL_S[0]
        final: dict[int, RankReport] = {}
        while True:
            for rank in range(world_size):
                if rank not in final:
                    raw = self.kv.get(f"{self._base}/report/{rank}")
                    report = decode_report(raw) if raw is not None else None
                    if report is not None and report.final:
                        final[rank] = report
            if len(final) == world_size or time.monotonic() >= deadline:
                break
            time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
            pause = min(pause * 2, _POLL_S[1])
        return list(sequence_of([*self.reports(world_size), *final.values()]))


class LedgerChannel:
    """A job through a ledger the ranks share: each rank's report is its row there (written
    by the rank itself, greenai.distributed.membership); no inventories."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.ledger: Ledger | None = None  # the writer's, set when its run begins

    def publish_inventory(self, rank: int, node: str, local_rank: int | None, physical: Sequence[str]) -> None:
        pass

    def wait_inventories(self, keys: Sequence[str], timeout_s: float) -> dict[str, dict[str, Any]]:
        return {}

    def publish(self, report: RankReport) -> None:
        pass  # the rank's own ledger row is its report

    def reports(self, world_size: int, timeout_s: float | None = None) -> list[RankReport]:
        """The ranks' rows, read within `timeout_s` (READ_TIMEOUT_S by default) at most."""
        ledger = self.ledger
        if ledger is None:
            return []
        wait_s = READ_TIMEOUT_S if timeout_s is None else max(timeout_s, 0.01)
        return ledger.read(lambda conn: read_ranks(conn, self.job_id), timeout_s=wait_s)

    def wait_final(self, world_size: int, timeout_s: float) -> list[RankReport]:
        deadline = time.monotonic() + timeout_s
        pause = _POLL_S[0]
        while True:
            reports = self.reports(world_size, min(READ_TIMEOUT_S, deadline - time.monotonic()))
            if sum(r.final for r in reports) >= world_size or time.monotonic() >= deadline:
                return reports
            time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
            pause = min(pause * 2, _POLL_S[1])


Channel = JobChannel | LedgerChannel


def encode_report(report: RankReport) -> str:
    data = asdict(report)
    data["provenance"] = Provenance(report.provenance).value
    data["devices"] = [
        {**asdict(d), "kind": DeviceKind(d.kind).value, "provenance": Provenance(d.provenance).value}
        for d in report.devices
    ]
    return json.dumps(data)


def decode_report(raw: str) -> RankReport:
    try:
        data = json.loads(raw)
        devices = tuple(
            DeviceRead(
                str(d["device"]),
                DeviceKind(d["kind"]),
                str(d["physical"]),
                str(d["scope"]),
                float(d["energy_j"]),
                Provenance(d["provenance"]),
                float(d["rel_uncertainty"]),
            )
            for d in data.pop("devices")
        )
        comm = CommTotals(**data.pop("comm"))
        data["provenance"] = Provenance(data["provenance"])
        return RankReport(**data, devices=devices, comm=comm)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ChannelError(f"a rank's report could not be read: {e}") from e


def _inventory(raw: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
        return {
            "rank": int(data["rank"]),
            "node": str(data["node"]),
            "local_rank": None if data["local_rank"] is None else int(data["local_rank"]),
            "physical": [str(p) for p in data["physical"]],
        }
    except (ValueError, TypeError, KeyError) as e:
        raise ChannelError(f"a rank's inventory could not be read: {e}") from e
