"""`greenai monitor`: this machine's meters served as Prometheus metrics.

    exporter = Exporter(load_config(), port=9464, interval_s=1.0, record=True).start()
    ...                                  # scraped at http://127.0.0.1:9464/metrics
    result = exporter.stop()             # the machine's run, ended `completed`

The meters are the tracker's (`meters.discover`), given the whole machine as their scope
(`monitor.machine.MachineScope`), and a `Tracker` reads them: its sampler thread, at the
exporter's interval, with its deadlines, fault handling and carbon accounting. With
`record=True` that tracker also writes the machine to the ledger as a run of its own
(`monitor@<host>`), so the exporter's counters and the ledger come from the same readings;
without it the tracker stores nothing. Off the scrape path, `MachineWatch` turns the
tracker's totals into per-device figures and `RunsWatch` reads the runs in progress from the
ledger; a scrape only formats what they last published (`monitor.collector`).

prometheus-client is the `monitor` extra, imported when an exporter starts.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import logging
import signal
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from greenai._version import __version__
from greenai.config import Config, load_config
from greenai.errors import ConfigError, GreenAIError
from greenai.ledger.records import RunStatus
from greenai.ledger.store import default_ledger_path
from greenai.meters.base import Meter
from greenai.meters.discover import discover
from greenai.monitor.figures import LEDGER_POLL_MIN_S, MachineFigures, MachineWatch, Periodic, RunsFigures, RunsWatch
from greenai.monitor.health import WatchedMeter
from greenai.monitor.machine import MachineScope
from greenai.tracking.result import RunResult
from greenai.tracking.tracker import Tracker

log = logging.getLogger("greenai.monitor")

DEFAULT_PORT = 9464  # the port commonly used by Prometheus exporters of this kind (OpenTelemetry's)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_INTERVAL_S = 1.0
MIN_INTERVAL_S = 0.1
MAX_INTERVAL_S = 60.0
FIRST_UPDATE_S = 0.25  # the tracker's first reading comes 0.2 s after its start
STOP_WAIT_S = 2.0  # a watch thread is waited for this long at most at the stop
INSTALL_HINT = "pip install 'greenai[monitor]'"


class Exporter:
    """Samples this machine's meters and serves them, with the ledger's runs in progress, on
    `http://host:port/metrics`. `port=0` takes any free port (see `port` once started)."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        interval_s: float = DEFAULT_INTERVAL_S,
        record: bool = False,
        meters: Sequence[Meter] | None = None,
        name: str | None = None,
    ) -> None:
        if not (isinstance(port, int) and 0 <= port <= 65535):
            raise ConfigError(f"port must be a number from 0 to 65535 (0: any free port), got {port!r}")
        if not (MIN_INTERVAL_S <= interval_s <= MAX_INTERVAL_S):
            raise ConfigError(
                f"interval must be from {MIN_INTERVAL_S:g} to {MAX_INTERVAL_S:g} seconds, got {interval_s!r}"
            )
        self.config = config if config is not None else load_config()
        self.host = host
        self.interval_s = float(interval_s)
        self.record = record
        self._host_name = socket.gethostname()
        self.name = name or f"monitor@{self._host_name}"
        self.ledger_path: Path = self.config.ledger or default_ledger_path()
        self._requested_port = port
        self._given_meters = meters
        self._server: Any = None
        self._serving: threading.Thread | None = None
        self._tracker: Tracker | None = None
        self._meters: list[WatchedMeter] = []
        self._machine: MachineWatch | None = None
        self._runs = RunsWatch(self.ledger_path)
        self._threads: list[Periodic] = []
        self.result: RunResult | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Exporter:
        """Listen (a port in use or a bad host fails here, before anything is recorded), start
        the meters and the tracker, then serve. Raises GreenAIError with the reason."""
        if self._server is not None:
            raise RuntimeError("this exporter was already started")
        app = self._app()
        self._server = _bind(self.host, self._requested_port, app)
        try:
            self._start_tracker()
        except BaseException:
            self._server.server_close()
            raise
        tracker = self._tracker
        assert tracker is not None
        self._machine = MachineWatch(
            tracker.snapshot,
            self._meters,
            tracker.intensity(),  # the run's own: held past a trace's end, one warning for both
            started_at=time.time(),
            stale_after_s=3 * self.interval_s + 1.0,
        )
        self._threads = [
            Periodic("greenai-monitor-machine", self.interval_s, self._machine.update, FIRST_UPDATE_S),
            Periodic("greenai-monitor-runs", max(self.interval_s, LEDGER_POLL_MIN_S), self._runs.update, 0.0),
        ]
        for thread in self._threads:
            thread.start()
        self._serving = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="greenai-monitor-http", daemon=True
        )
        self._serving.start()
        return self

    def stop(self) -> RunResult | None:
        """Stop serving, end the tracker (its run, with record=True, ends `completed`) and
        close the ledger. Idempotent; never raises for the run's sake (see Tracker.stop)."""
        if self._server is not None:
            if self._serving is not None:
                self._server.shutdown()
                self._serving.join()
                self._serving = None
            self._server.server_close()
        for thread in self._threads:
            thread.stop(STOP_WAIT_S)
        self._threads = []
        if self._tracker is not None and self.result is None:
            self.result = self._tracker.stop(RunStatus.COMPLETED)
        self._runs.close()
        return self.result

    def __enter__(self) -> Exporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what it serves ------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port listened on (the one the system chose for port=0)."""
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        address = str(self._server.server_address[0]) if self._server is not None else self.host
        shown = f"[{address}]" if ":" in address else address
        return f"http://{shown}:{self.port}/metrics"

    @property
    def exposed(self) -> bool:
        """True when it listens on an address other machines can reach (not loopback)."""
        address = str(self._server.server_address[0]) if self._server is not None else self.host
        try:
            return not ipaddress.ip_address(address.split("%")[0]).is_loopback
        except ValueError:
            return True

    @property
    def run_id(self) -> str | None:
        """The machine's run in the ledger (record=True), else None."""
        return self._tracker.run_id if self._tracker is not None and self.record else None

    @property
    def meters(self) -> list[WatchedMeter]:
        return list(self._meters)

    def machine_figures(self) -> MachineFigures | None:
        return self._machine.figures if self._machine is not None else None

    def runs_figures(self) -> RunsFigures:
        return self._runs.figures

    # -- plumbing ------------------------------------------------------------------------
    def _app(self) -> Any:
        try:
            from prometheus_client import CollectorRegistry, ProcessCollector, make_wsgi_app

            from greenai.monitor.collector import MonitorCollector
        except ImportError as e:
            raise GreenAIError(
                f"greenai monitor needs prometheus-client: {INSTALL_HINT} ({e.name} is missing)"
            ) from None
        registry = CollectorRegistry()
        registry.register(MonitorCollector(self.machine_figures, self.runs_figures, self._info))
        ProcessCollector(registry=registry)  # process_cpu_seconds_total etc. of the exporter itself
        return make_wsgi_app(registry)

    def _start_tracker(self) -> None:
        if self._given_meters is not None:
            found = list(self._given_meters)
        else:
            found = discover(self.config, MachineScope()).meters
        self._meters = [WatchedMeter(m) for m in found]
        config = dataclasses.replace(self.config, sample_hz=1.0 / self.interval_s)
        tracker = Tracker(
            self.name,
            config=config,
            meters=self._meters,
            store=self.record,
            handle_signals=False,
            tags={"source": "greenai monitor"},
        )
        try:
            tracker.start()
        except BaseException:
            for meter in found:
                try:
                    meter.close()
                except Exception:  # closing must not hide why the start failed
                    log.debug("closing a meter failed", exc_info=True)
            raise
        self._tracker = tracker

    def _info(self) -> dict[str, str]:
        return {"version": __version__, "host": self._host_name, "run_id": self.run_id or ""}


def _bind(host: str, port: int, app: Any) -> Any:
    """A threading WSGI server bound to host:port (not serving yet), IPv4 or IPv6 as `host`
    resolves; a clear GreenAIError when that cannot be done."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client.exposition import ThreadingWSGIServer

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass  # one line per scrape on stderr would drown the exporter's own messages

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise ConfigError(f"cannot listen on host {host!r}: it does not resolve to an address ({e})") from None
    family, _, _, _, sockaddr = infos[0]

    class Server(ThreadingWSGIServer):
        address_family = family

    try:
        return make_server(str(sockaddr[0]), port, app, Server, handler_class=Quiet)
    except OSError as e:
        why = {
            errno.EADDRINUSE: "the port is already in use (another exporter?); choose another with --port",
            errno.EACCES: "permission denied (ports below 1024 need privileges); choose --port 1024 or above",
            errno.EADDRNOTAVAIL: "the address is not one of this machine's",
        }.get(e.errno or 0, e.strerror or str(e))
        raise GreenAIError(f"cannot listen on {host}:{port}: {why}") from None


class StopSignals:
    """SIGTERM and SIGINT caught from `__enter__` on (so one that comes while the exporter is
    starting is kept, not fatal); `wait()` blocks the main thread until one has come and
    returns it; `__exit__` puts the previous handlers back."""

    def __init__(self, signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self._signals = tuple(signals)
        self._previous: dict[signal.Signals, Any] = {}
        self._arrived = threading.Event()
        self.received: signal.Signals | None = None

    def __enter__(self) -> StopSignals:
        self._previous = {s: signal.signal(s, self._handler) for s in self._signals}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def wait(self) -> signal.Signals:
        while not self._arrived.wait(0.5):  # with a timeout: the handler runs between two waits
            pass
        assert self.received is not None
        return self.received

    def _handler(self, signum: int, frame: object) -> None:
        if self.received is None:
            self.received = signal.Signals(signum)
        self._arrived.set()
