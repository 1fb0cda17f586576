"""The benchmarks' shared modules (benchmarks/_harness.py, _zoo.py, _denormals.py, ...) are
imported as a script run from benchmarks/ imports them: with benchmarks/ on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
