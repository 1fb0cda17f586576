"""A fake machine at the co-load reader's real boundary: a /proc/stat file whose busy time
grows as if other processes kept `cores` CPUs busy (settable while it runs), on top of this
process's own CPU time, which the machine's counters include. Point
`greenai.hardware.coload.PROC_STAT` at `path` (tests: monkeypatch) and every co-load reading
sees it: the tracker's, optimize's, the tuner's, `wait_for_quiet`."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from greenai.hardware.coload import CLK_TCK


class FakeMachine:
    """`with FakeMachine(path, cores=1.5) as machine: ...; machine.cores = 0.0`."""

    def __init__(self, path: Path, cores: float = 0.0, steal_cores: float = 0.0, every_s: float = 0.01) -> None:
        self.path = Path(path)
        self._cores, self._steal_cores = cores, steal_cores
        self._every_s = every_s
        self._others_s = self._steal_s = 0.0
        self._last = time.perf_counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fake-machine", daemon=True)
        self.write()

    # a new load starts now: the time since the last write is charged at the load it had (the
    # writing thread may run late on a busy machine, and would charge it all at the new one)
    @property
    def cores(self) -> float:
        return self._cores

    @cores.setter
    def cores(self, value: float) -> None:
        with self._lock:
            self._advance()
            self._cores = value
        self.write()  # readers see the change at once, not at the writing thread's next turn

    @property
    def steal_cores(self) -> float:
        return self._steal_cores

    @steal_cores.setter
    def steal_cores(self, value: float) -> None:
        with self._lock:
            self._advance()
            self._steal_cores = value
        self.write()  # readers see the change at once, not at the writing thread's next turn

    def _advance(self) -> None:
        now = time.perf_counter()
        self._others_s += self._cores * (now - self._last)
        self._steal_s += self._steal_cores * (now - self._last)
        self._last = now

    def write(self) -> None:
        """Advance the counters to now and write the file (atomically)."""
        with self._lock:
            self._advance()
            busy_s = 1000.0 + self._others_s + time.process_time()
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(f"cpu  {round(busy_s * CLK_TCK)} 0 0 100000 0 0 0 {round(self._steal_s * CLK_TCK)} 0 0\n")
            tmp.replace(self.path)

    def _loop(self) -> None:
        while not self._stop.wait(self._every_s):
            self.write()

    def __enter__(self) -> FakeMachine:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
