"""`greenai jobs list | show` and `greenai runs show` of a rank's run, on a ledger holding jobs as
ranks write them (tests/distributed/job_world.py: no torchrun), driven as a user would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.distributed.job_world import BAD_CLOSE, EVIL_ID, LINK, TITLE_SHOWN, TRAIN, TRAIN_J, JobWorld, build
from tests.helpers import as_json, assert_one_line_error, greenai

from greenai.ledger import distributed as rows
from greenai.ledger.store import Ledger


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> JobWorld:
    return build(tmp_path_factory.mktemp("jobs") / "ledger.db")


def plain(proc) -> str:
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    out = proc.stdout + proc.stderr
    assert "\x1b" not in out and "\x07" not in out, out
    return out


def test_list_shows_each_job_with_its_ranks_nodes_and_energy(world: JobWorld) -> None:
    out = plain(greenai("jobs", "list", ledger=world.ledger))
    assert "2 job(s) (newest first)" in out
    assert out.index("evil") < out.index(TRAIN)  # newest first
    train_row = next(line for line in out.splitlines() if TRAIN in line)
    assert "completed" in train_row and "3/3" in train_row and "1,668.0 J ± 4%" in train_row
    assert "estimated" in train_row
    evil_row = next(line for line in out.splitlines() if line.startswith("│ evil"))
    assert "incomplete" in evil_row and "2/2" in evil_row
    listed = as_json(greenai("jobs", "list", "--json", ledger=world.ledger))
    assert [j["job_id"] for j in listed] == [EVIL_ID, TRAIN]
    train = listed[1]
    assert train["energy_j"] == pytest.approx(TRAIN_J) and train["world_size"] == 3 and train["node_count"] == 2
    assert train["provenance"] == "estimated" and train["cost"] is None
    one = greenai("jobs", "list", "--limit", "1", "--json", ledger=world.ledger)
    assert [j["job_id"] for j in as_json(one)] == [EVIL_ID] and "--limit N for more" in one.stderr


def test_show_gives_the_total_per_node_per_rank_and_who_read_each_device(world: JobWorld) -> None:
    out = plain(greenai("jobs", "show", "train-1f", ledger=world.ledger))  # a prefix
    assert f"Job train ({TRAIN})  status: completed  world size 3 on 2 node(s)" in out
    assert "Energy 1,668.0 J ± 4% (estimated; weakest source among devices), each physical device counted once" in out
    assert "id from TORCHELASTIC_RUN_ID" in out
    lines = out.splitlines()

    def row(*needles: str) -> str:
        return next(line for line in lines if all(n in line for n in needles))

    # per node: host-a's ranks 0 and 1 (its package, DRAM, network, two disks), host-b's rank 2
    assert "468.0 J" in row("boot:aaaaaaaa", "host-a", "0, 1") and "1,200.0 J" in row("boot:bbbbbbbb", "host-b", "2")
    # per rank: its part of the total; rank 2's run is in host-b's ledger
    assert "466.0 J" in row("│    0 ", world.run_ids[0][:8]) and "720 MB" in row("│    0 ")
    assert "(elsewhere)" in row("│    2 ") and "(elsewhere)" not in row("│    1 ")
    # device by device, the rank whose reading is counted
    assert "rank 0 (cpu:0)" in row("boot:aaaaaaaa/rapl/cpu:0") and "400.0 J ± 2%" in row("boot:aaaaaaaa/rapl/cpu:0")
    assert "rank 2 (gpu:0)" in row("GPU-0c1d2e3f") and "integrated" in row("GPU-0c1d2e3f")
    assert "rank 1 (disk)" in row("pid 101/disk") and "process" in row("pid 101/disk")
    assert "Nothing counted twice: 5 node device(s), 2 per-process share(s); each node device read by one rank." in out
    assert "Communication 3,000 collectives, 2.16 GB moved, 5.50 s in flight (longest rank)" in out
    assert "38.0 J apportioned to the phase" in out


def test_show_json_has_every_device_once_with_its_reader(world: JobWorld) -> None:
    data = as_json(greenai("jobs", "show", TRAIN, "--json", ledger=world.ledger))
    assert data["job_id"] == TRAIN and data["status"] == "completed" and data["energy_j"] == pytest.approx(TRAIN_J)
    assert sum(d["energy_j"] for d in data["devices"]) == pytest.approx(TRAIN_J)
    physical = [d["physical"] for d in data["devices"]]
    assert len(physical) == len(set(physical)) == 7
    readers = {
        d["physical"].rsplit("/", 1)[-1] if "/" in d["physical"] else "gpu": d["read_by_rank"] for d in data["devices"]
    }
    assert readers["network"] == 0 and readers["gpu"] == 2
    assert data["reported_by_several_ranks"] == []
    assert [n["energy_j"] for n in data["nodes"]] == [pytest.approx(468.0), pytest.approx(1200.0)]
    assert [r["counted_energy_j"] for r in data["ranks"]] == [pytest.approx(466.0), 2.0, pytest.approx(1200.0)]
    assert [r["run_in_this_ledger"] for r in data["ranks"]] == [True, True, False]
    assert data["communication"] == {
        "calls": 3000,
        "bytes": pytest.approx(2.16e9),
        "seconds": 5.5,
        "energy_j": pytest.approx(38.0),
        "network_j": pytest.approx(10.8),
    }
    with Ledger(world.ledger) as store:  # what the ledger's own tables say
        assert store.transaction(lambda c: rows.counted_twice(c, TRAIN), write=False) == []


def test_a_job_with_a_dead_rank_and_hostile_names_prints_as_text(world: JobWorld) -> None:
    out = plain(greenai("jobs", "show", "evil", ledger=world.ledger))
    assert TITLE_SHOWN in out and LINK in out and BAD_CLOSE in out
    assert "status: incomplete" in out
    assert "incomplete: rank(s) 1 did not report the end of their run" in out
    assert "running, no end reported" in out
    # both ranks reported the node's package: in the total once, rank 0's reading
    assert "rank 1: left out" in out
    assert "1 of 1 node device(s) reported by more than one rank: each counted once" in out
    assert "Energy 100.0 J" in out
    data = as_json(greenai("jobs", "show", "evil", "--json", ledger=world.ledger))
    assert data["job_id"] == EVIL_ID and data["missing_ranks"] == [1]
    (twice,) = data["reported_by_several_ranks"]
    assert twice["counted_from_rank"] == 0 and twice["left_out_from_ranks"] == [1]
    with Ledger(world.ledger) as store:
        assert store.transaction(lambda c: rows.counted_twice(c, EVIL_ID), write=False) == [(twice["physical"], [0, 1])]
    listed = plain(greenai("jobs", "list", ledger=world.ledger))
    assert f"evil{BAD_CLOSE}{TITLE_SHOWN}" in listed and "[link=http://evi" in listed


def test_an_unknown_job_is_one_line_and_exit_1(world: JobWorld, tmp_path: Path) -> None:
    assert_one_line_error(greenai("jobs", "show", "nope", ledger=world.ledger), 1, "no distributed job matches 'nope'")
    assert_one_line_error(greenai("jobs", "show", "nope", "--json", ledger=world.ledger), 1, "nope")
    assert_one_line_error(greenai("jobs", "list", ledger=tmp_path / "none.db"), 1, "no ledger at")
    Ledger(tmp_path / "empty.db").close()
    assert "No distributed jobs in" in plain(greenai("jobs", "list", ledger=tmp_path / "empty.db"))
    assert as_json(greenai("jobs", "list", "--json", ledger=tmp_path / "empty.db")) == []


def test_runs_show_of_a_ranks_run_names_its_job(world: JobWorld) -> None:
    out = plain(greenai("runs", "show", world.run_ids[0][:8], ledger=world.ledger))
    assert f"job: {TRAIN}, rank 0 of 3  (greenai jobs show {TRAIN})" in out
    assert TITLE_SHOWN in out  # the run's hostile name, as text
    data = json.loads(plain(greenai("runs", "show", world.run_ids[1], "--json", ledger=world.ledger)))
    assert data["job"] == {"job_id": TRAIN, "rank": 1, "world_size": 3, "in_this_ledger": True}
