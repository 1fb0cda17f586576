"""The dashboard's distributed jobs: /jobs (the list), /jobs/{id} (total, per node, per rank,
which rank read each device, communication) and /api/jobs/{id}; on jobs built as ranks write
them (tests/distributed/job_world.py)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient
from tests.distributed.job_world import EVIL_ID, SCRIPT, TRAIN, TRAIN_J, JobWorld, build

from greenai.dashboard.app import create_app
from greenai.ledger import distributed as rows
from greenai.ledger.store import Ledger


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> JobWorld:
    world = build(tmp_path_factory.mktemp("job-pages") / "ledger.db")
    restarted = replace(world.train, job_id=f"{TRAIN}-restart1", ranks=())  # shares the prefix "train"
    with Ledger(world.ledger) as store:
        store.write(lambda c: rows.write_job(c, restarted), timeout_s=5)
    return world


def client(ledger: Path) -> TestClient:
    return TestClient(create_app(ledger), base_url="http://127.0.0.1")


def test_the_job_list_links_each_job(jobs: JobWorld) -> None:
    r = client(jobs.ledger).get("/jobs")
    assert r.status_code == 200 and '<a href="/jobs" class="here">Jobs</a>' in r.text
    links = re.findall(r'<a class="mono" href="(/jobs/[^"]+)">', r.text)
    assert f"/jobs/{quote(TRAIN, safe='')}" in links and len(links) == 3
    assert SCRIPT not in r.text and "&lt;script&gt;" in r.text  # the evil job's name, as text


def test_a_job_page_shows_nodes_ranks_and_who_read_each_device(jobs: JobWorld) -> None:
    c = client(jobs.ledger)
    r = c.get(f"/jobs/{TRAIN}")
    assert r.status_code == 200
    page = r.text
    assert "Distributed job train" in page and "1,668.0 J" in page and "estimated" in page
    assert "Nothing counted twice: 5 node device(s), 2 per-process share(s)" in page
    assert f'<a class="mono" href="/runs/{jobs.run_ids[0]}">{jobs.run_ids[0][:8]}</a>' in page  # rank 0's run
    assert "(in its host's ledger)" in page  # rank 2's run is on host-b
    assert re.search(r"boot:aaaaaaaa/rapl/cpu:0</td><td>node</td><td>cpu</td><td>rank 0 ", page)
    assert 'data-figure="job-ranks"' in page
    assert c.get(f"/runs/{jobs.run_ids[0]}").status_code == 200  # the link leads somewhere
    data = c.get(f"/api/jobs/{TRAIN}").json()
    assert data["energy_j"] == pytest.approx(TRAIN_J) and len(data["devices"]) == 7


def test_an_incomplete_hostile_job_a_prefix_an_ambiguous_one_and_an_unknown_one(jobs: JobWorld) -> None:
    c = client(jobs.ledger)
    r = c.get("/jobs/evil")  # a unique prefix
    assert r.status_code == 200
    assert SCRIPT not in r.text and "This job is <b>incomplete</b>" in r.text and "rank 1 (left out)" in r.text
    assert c.get(f"/jobs/{quote(EVIL_ID, safe='')}").status_code == 200
    which = c.get("/jobs/train")  # the job and its restart
    assert which.status_code == 400 and "matches several jobs" in which.text
    assert f'href="/jobs/{quote(TRAIN + "-restart1", safe="")}"' in which.text
    missing = c.get("/jobs/nope")
    assert missing.status_code == 404 and "no distributed job matches" in missing.text
    assert c.get("/api/jobs/nope").json()["status"] == 404
