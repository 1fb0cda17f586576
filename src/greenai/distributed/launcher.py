"""Ranks seen in a process tree, for `greenai run -- torchrun ...`: one run for the whole tree,
which says how many ranks it saw.

A launcher gives each rank its identity in the environment it starts it with (torchrun and
most launchers: RANK, WORLD_SIZE, LOCAL_RANK, TORCHELASTIC_RUN_ID). The watcher looks at
every process of the tree once (its `/proc/<pid>/environ`, the environment it was started
with), twice a second, and keeps the distinct ranks. Processes of other users cannot be read
and are not counted.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import psutil

LAUNCHERS = ("torchrun", "torch.distributed.run", "torch.distributed.launch", "deepspeed", "accelerate", "mpirun")
_INTERPRETER_OPTIONS_WITH_VALUE = ("-W", "-X", "-Q")  # the next word is the option's, not a script


def launcher_of(argv: Sequence[str]) -> str | None:
    """The launcher a command line runs, by whole names: the program itself
    (`/usr/bin/torchrun`, `accelerate launch ...`), or the module (`python -m
    torch.distributed.run`) or script (`python /venv/bin/torchrun`) a Python interpreter runs.
    A name inside another word (`python train_accelerated.py`) or among the program's own
    arguments is not a launcher."""
    if not argv:
        return None
    program = os.path.basename(argv[0])
    if program in LAUNCHERS:
        return program
    if not program.startswith("python"):
        return None
    words = iter(argv[1:])
    for word in words:
        if word == "-m":
            module = next(words, "")
            return module if module in LAUNCHERS else None
        if word.startswith("-m"):  # -mtorch.distributed.run
            return word[2:] if word[2:] in LAUNCHERS else None
        if word == "-c" or word == "-":  # a command or stdin: no script
            return None
        if word in _INTERPRETER_OPTIONS_WITH_VALUE:
            next(words, None)
            continue
        if word.startswith("-"):
            continue
        script = os.path.basename(word)
        return script if script in LAUNCHERS else None
    return None


@dataclass
class RanksSeen:
    ranks: set[tuple[str, int]] = field(default_factory=set)  # (launch: run id or master address, rank)
    world_size: int | None = None
    launcher: str | None = None  # the launcher's name when one was seen in the tree
    launches: set[str] = field(default_factory=set)

    @property
    def count(self) -> int:
        return len(self.ranks)

    def describe(self) -> str:
        if not self.ranks:
            return ""
        by = f" ({self.launcher})" if self.launcher else ""
        world = f", world size {self.world_size}" if self.world_size else ""
        launches = f", {len(self.launches)} launches" if len(self.launches) > 1 else ""
        return f"saw {self.count} rank{'s' if self.count != 1 else ''}{by}{world}{launches}"


def rank_of(environ: dict[str, str]) -> tuple[str, int, int | None] | None:
    """(launch, rank, world size) from a process's environment, or None if it is no rank."""
    raw = environ.get("RANK")
    if raw is None:
        return None
    try:
        rank = int(raw)
        world = int(environ["WORLD_SIZE"]) if environ.get("WORLD_SIZE") else None
    except ValueError:
        return None
    launch = environ.get("TORCHELASTIC_RUN_ID") or f"{environ.get('MASTER_ADDR', '')}:{environ.get('MASTER_PORT', '')}"
    return launch, rank, world


class RankWatcher:
    """Watches the process tree under `root_pid` for ranks, in a thread, until `stop()`."""

    def __init__(self, root_pid: int, interval_s: float = 0.5) -> None:
        self.root_pid = root_pid
        self.seen = RanksSeen()
        self._interval_s = interval_s
        self._looked: set[tuple[int, float]] = set()  # (pid, create time) already read
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="greenai-ranks", daemon=True)

    def start(self) -> RankWatcher:
        self._thread.start()
        return self

    def stop(self) -> RanksSeen:
        """One last look, then the ranks seen."""
        self._stop.set()
        self._thread.join(2.0)
        self.look()
        return self.seen

    def _loop(self) -> None:
        while True:
            self.look()
            if self._stop.wait(self._interval_s):
                return

    def look(self) -> None:
        try:
            root = psutil.Process(self.root_pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        for process in processes:
            try:
                # asked at every look until found: `greenai run` holds the program in a
                # bootstrap (`python -c ...`) that execs it under the same pid and start time
                if self.seen.launcher is None:
                    self.seen.launcher = launcher_of(process.cmdline())
                key = (process.pid, process.create_time())
                if key in self._looked:
                    continue
                self._looked.add(key)
                self._note(process)
            except psutil.Error:
                continue

    def _note(self, process: psutil.Process) -> None:
        try:
            environ = process.environ()
        except psutil.Error:
            return
        found = rank_of(environ)
        if found is None:
            return
        launch, rank, world = found
        self.seen.ranks.add((launch, rank))
        self.seen.launches.add(launch)
        if world is not None:
            self.seen.world_size = max(self.seen.world_size or 0, world)
