"""A rank's periodic publication, on a thread of its own.

The sampler thread tells the rank about every tick; when a publication is due it builds the
report (cheap, in memory) and hands it here. Publishing it (the store's calls, the rank's row
and on the writer the job in the ledger) happens on the publisher's thread, so a store that
hangs (a frozen TCP store blocks a read for ever) holds that thread, never the sampler: the
run goes on being read, and its stop() is not kept waiting for a sampler stuck in a store.
Only the newest publication waits: one handed over while another is under way replaces any
older one still waiting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("greenai.distributed")


class Publisher:
    """Runs the newest `offer`ed publication on a daemon thread (started at the first offer)."""

    def __init__(self, name: str = "greenai-job-publish") -> None:
        self._name = name
        self._ready = threading.Condition()
        self._pending: Callable[[], None] | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    def offer(self, publish: Callable[[], None]) -> None:
        """Publish with `publish()` on the publisher's thread, in place of any publication
        still waiting; never blocks for long (nothing after `close`)."""
        with self._ready:
            if self._closed:
                return
            self._pending = publish
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._ready.notify()

    def close(self) -> None:
        """Publish nothing more (a publication under way is not waited for)."""
        with self._ready:
            self._closed = True
            self._pending = None
            self._ready.notify()

    def _loop(self) -> None:
        while True:
            with self._ready:
                while self._pending is None and not self._closed:
                    self._ready.wait()
                publish, self._pending = self._pending, None
                if self._closed or publish is None:
                    return
            try:
                publish()
            except Exception:  # the rank's own run goes on regardless
                log.debug("greenai: a publication of this rank's totals failed", exc_info=True)
