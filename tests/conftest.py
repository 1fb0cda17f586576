"""Shared fixtures: every test gets its own ledger and no user config leaks in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Point the default ledger into tmp and drop the caller's GREENAI_* settings."""
    import os

    for key in list(os.environ):
        if key.startswith("GREENAI_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("GREENAI_LEDGER", str(tmp_path / "default-ledger.db"))
    monkeypatch.chdir(tmp_path)
    yield


QUIET_PROC_STAT = "cpu  1000 0 500 100000 0 0 0 0 0 0\n"


@pytest.fixture(autouse=True, scope="session")
def quiet_machine(tmp_path_factory):
    """The machine as greenai's co-load reader sees it in tests: a /proc/stat whose counters
    never move, so no other process seems busy and no run is `disturbed` by whatever else runs
    on this machine (a shared VM: other work would make every figure here depend on it). For
    the whole session, module-scoped fixtures included; tests of co-load itself ask for
    `real_machine`; commands run as subprocesses read the real one."""
    from greenai.hardware import coload

    path = tmp_path_factory.getbasetemp() / "quiet-proc-stat"
    path.write_text(QUIET_PROC_STAT)
    real, coload.PROC_STAT = coload.PROC_STAT, path
    yield
    coload.PROC_STAT = real


@pytest.fixture
def real_machine(quiet_machine, monkeypatch):
    """The real /proc/stat, for the tests of co-load itself."""
    from pathlib import Path

    from greenai.hardware import coload

    monkeypatch.setattr(coload, "PROC_STAT", Path("/proc/stat"))
    yield


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny models on a shared 2-core machine: one intra-op thread is faster than two
    contended ones. Restores the previous setting."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
