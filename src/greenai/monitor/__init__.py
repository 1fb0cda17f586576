"""`greenai monitor`: a Prometheus exporter of this machine's energy, power and carbon, and of
the runs in progress in the ledger (docs/monitor.md lists every metric).

`Exporter` (monitor/exporter.py) does the work; prometheus-client, the `monitor` extra, is
imported only when one starts.
"""

from __future__ import annotations

from greenai.monitor.exporter import Exporter, StopSignals

__all__ = ["Exporter", "StopSignals"]
