"""The tracker's and the distributed job's signatures name the types they take and give
(mypy checks their callers only then): no `Any` where the type is known."""

from __future__ import annotations

import typing
from collections.abc import Mapping

import pytest

from greenai.distributed import channel, comm, membership, spec
from greenai.distributed.channel import KeyValue
from greenai.distributed.spec import Join
from greenai.ledger.distributed import JobRecord
from greenai.ledger.records import RunSnapshot, SampleRow
from greenai.tracking import joining
from greenai.tracking.progress import ProgressSeries
from greenai.tracking.tracker import Tracker

NAMES = {"Tracker": Tracker, "KeyValue": KeyValue, "JobRecord": JobRecord, "Join": Join}


def hints(obj: object) -> dict[str, object]:
    return typing.get_type_hints(obj, localns=NAMES)


@pytest.mark.parametrize(
    ("obj", "name", "expected"),
    [
        (Tracker.snapshot, "return", RunSnapshot),
        (Tracker._flush_to_ledger, "snapshot", RunSnapshot),
        (Tracker._flush_to_ledger, "rows", list[SampleRow]),
        (Tracker._forecast_from, "series", ProgressSeries),
        (comm.lane_of, "run", Tracker),
        (comm.comm_seconds, "run", Tracker),
        (comm.comm_hook, "run", Tracker),
        (comm.instrument_ddp, "run", Tracker),
        (comm.communication, "run", Tracker),
        (membership.join, "tracker", Tracker),
        (membership.join, "wanted", bool | Join | None),
        (membership.RankMembership.__init__, "tracker", Tracker),
        (membership.RankMembership.ended, "return", tuple[JobRecord | None, tuple[str, ...]]),
        (spec.Join, "store", KeyValue | None),
        (joining.switched_off, "environ", Mapping[str, str]),
    ],
    ids=lambda v: getattr(v, "__qualname__", str(v)),
)
def test_known_types_are_named(obj: object, name: str, expected: object) -> None:
    assert hints(obj)[name] == expected
    assert channel.KeyValue is KeyValue
