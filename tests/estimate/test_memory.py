"""estimation/memory.py: the caches read from sysfs, and memory beyond them measured for
calibration (a stream's bandwidth, the cost of fresh memory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenai.estimation import memory
from greenai.estimation.memory import BeyondCache, buffer_bytes, cache_sizes, stream_costs


def _cache(root: Path, index: str, size: str) -> None:
    (root / index).mkdir(parents=True)
    (root / index / "size").write_text(size + "\n")


def test_cache_sizes_read_every_index_and_skip_other_entries(tmp_path: Path) -> None:
    """sysfs's cache directory holds `uevent` beside the `index*` directories: reading it as a
    cache used to make the whole list empty (no last-level cache known)."""
    _cache(tmp_path, "index0", "32K")
    _cache(tmp_path, "index1", "32K")
    _cache(tmp_path, "index2", "1024K")
    _cache(tmp_path, "index3", "32768K")
    (tmp_path / "uevent").write_text("")
    _cache(tmp_path, "index4", "garbage")
    assert cache_sizes(str(tmp_path)) == [32 * 1024, 1024 * 1024, 32 * 1024**2]
    assert cache_sizes(str(tmp_path / "missing")) == []


def test_the_buffer_is_beyond_the_last_level_cache_within_bounds() -> None:
    mib = 1 << 20
    assert buffer_bytes(32 * mib) == 64 * mib
    assert buffer_bytes(0.0) == 64 * mib  # unknown cache: still beyond most
    assert buffer_bytes(96 * mib) == 192 * mib
    assert buffer_bytes(1024 * mib) == 256 * mib


def test_stream_costs_from_an_in_place_and_a_fresh_add() -> None:
    """In place: 3 tensors' bytes moved (read x and y, write x); into a fresh output the same
    bytes plus the mapping of the output: the difference per byte of the output."""
    bandwidth, per_byte = stream_costs(0.03, 0.09, 1e8)
    assert bandwidth == pytest.approx(3e8 / 0.03)
    assert per_byte == pytest.approx(0.06 / 1e8)
    assert stream_costs(0.03, 0.02, 1e8)[1] == 0.0  # never negative (a noisy pair)
    assert stream_costs(0.0, 0.02, 1e8)[0] == 0.0


def test_beyond_cache_costs_measures_both_on_real_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    monkeypatch.setattr(memory, "MIN_BUFFER_BYTES", 1 << 20)  # 1 MiB tensors: fast (not the real regime)
    monkeypatch.setattr(memory, "MATMUL_COLUMNS", 256)
    got = memory.beyond_cache_costs(0.02, llc_bytes=0.0)
    assert isinstance(got, BeyondCache) and got.llc_bytes == 0.0
    assert got.dram_bandwidth_bps > 0 and got.mapped_s_per_byte >= 0 and got.matmul_bandwidth_bps > 0
