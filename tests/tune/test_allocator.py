"""keep_freed_memory: a loop that frees megabytes together stops page-faulting them in again."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

from greenai.errors import ConfigError
from greenai.tune import allocator
from greenai.tune.allocator import glibc_version, keep_freed_memory, keep_freed_memory_env
from greenai.tune.knobs.base import KnobUnavailable

needs_glibc = pytest.mark.skipif(glibc_version() is None, reason="glibc's malloc only")

# five 4 MiB buffers allocated, touched and freed together, as a training step's temporaries;
# prints the minor page faults per iteration once glibc's thresholds have settled
STEP_LOOP = """
import resource, sys
if sys.argv[1] == "call":
    from greenai.tune.allocator import keep_freed_memory
    keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step():
    buffers = [bytearray(4 << 20) for _ in range(5)]
    del buffers
for _ in range(3):
    step()
before = faults()
for _ in range(5):
    step()
print((faults() - before) / 5)
"""


def _faults_per_step(mode: str, extra_env: dict[str, str] | None = None) -> float:
    ours = (*allocator.ENV_NAMES, "GLIBC_TUNABLES")  # glibc's defaults, whatever CI sets
    env = {k: v for k, v in os.environ.items() if k not in ours} | (extra_env or {})
    out = subprocess.run(
        [sys.executable, "-c", STEP_LOOP, mode], capture_output=True, text=True, check=True, env=env, timeout=60
    )
    return float(out.stdout.strip())


@needs_glibc
def test_default_glibc_faults_on_freed_buffers_and_keeping_them_mapped_stops_it():
    default = _faults_per_step("default")
    kept = _faults_per_step("call")
    # 20 MiB freed per step is 5,120 pages: glibc trims most of them and faults them in again
    assert default > 1000
    assert kept < default / 20


@needs_glibc
def test_the_environment_variables_do_the_same_for_a_program_about_to_start():
    default = _faults_per_step("default")
    assert _faults_per_step("default", keep_freed_memory_env()) < default / 20


def test_the_environment_names_glibcs_two_thresholds():
    env = keep_freed_memory_env(64 << 20)
    assert env == {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(64 << 20)}


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, 2**31])
def test_a_bad_threshold_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="keep_bytes"):
        keep_freed_memory(bad)
    with pytest.raises(ConfigError, match="keep_bytes"):
        keep_freed_memory_env(bad)


def test_off_glibc_it_says_so_and_changes_nothing(monkeypatch):
    monkeypatch.setattr(allocator.os, "confstr", lambda name: None)
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda *a: pytest.fail("mallopt must not be called"))
    assert glibc_version() is None
    with pytest.raises(KnobUnavailable, match="needs glibc"):
        keep_freed_memory()


@needs_glibc
def test_a_refused_value_is_reported(monkeypatch):
    def refuse(param: int, value: int) -> int:  # glibc's mallopt returns 0 on error
        return 0

    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda *a: types.SimpleNamespace(mallopt=refuse))
    with pytest.raises(KnobUnavailable, match="refused mallopt"):
        keep_freed_memory()
