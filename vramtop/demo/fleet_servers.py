"""The demo fleet's servers, on 127.0.0.1 ephemeral ports: per host a real vramtop exporter (the
FrameExporter and prometheus_client HTTP server of ``--serve-metrics``) over the host's
simulated Frame, and its simulated inference servers. A down host's port is bound but never
listens, so connecting to it is refused, and no other program can take the port meanwhile."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from prometheus_client.exposition import start_wsgi_server

from vramtop.demo.exporter import SimulatedExporter
from vramtop.demo.fleet import HOSTS, frame_at, loads_at
from vramtop.serve import FrameExporter, registry_for


class DemoFleet:
    """Starts the fleet's servers on first use and moves their readings with the clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._targets: list[tuple[str, str]] = []
        self._exporters: dict[int, FrameExporter] = {}
        self._servers: dict[int, dict[str, SimulatedExporter]] = {}
        self._httpds: list = []
        self._held: list[socket.socket] = []

    def models(self) -> frozenset[str]:
        """Every model some host of the fleet serves."""
        return frozenset(rep.model for host in HOSTS for rep in host.replicas)

    def targets(self) -> list[tuple[str, str]]:
        """(host key, metrics URL) for every target of the fleet, its exporter first."""
        with self._lock:
            if not self._targets:
                self._start()
            return list(self._targets)

    def _start(self) -> None:
        t = self._clock()
        for i, host in enumerate(HOSTS):
            if host.down:
                held = socket.socket()
                held.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
                self._held.append(held)
                self._targets.append((host.name, _url(held.getsockname()[1])))
                continue
            exporter = FrameExporter()
            exporter.update(frame_at(i, t))
            httpd, _ = start_wsgi_server(0, addr="127.0.0.1", registry=registry_for(exporter))
            self._httpds.append(httpd)
            self._exporters[i] = exporter
            self._targets.append((host.name, _url(httpd.server_port)))
            self._servers[i] = {}
            for family, models in loads_at(i, t).items():
                server = SimulatedExporter(
                    family, models, gpus=(), host=host.name, triton_summaries=True
                )
                self._targets.append((host.name, server.start()))
                self._servers[i][family] = server

    def advance(self) -> None:
        t = self._clock()
        with self._lock:
            for i, exporter in self._exporters.items():
                exporter.update(frame_at(i, t))
                for family, models in loads_at(i, t).items():
                    server = self._servers[i][family]
                    if server.models != tuple(models):
                        server.set_models(models)

    def stop(self) -> None:
        with self._lock:
            # Each shutdown waits for its server's next poll (half a second): all at once.
            stopping = [threading.Thread(target=h.shutdown) for h in self._httpds]
            for thread in stopping:
                thread.start()
            for servers in self._servers.values():
                for server in servers.values():
                    server.stop()
            for thread in stopping:
                thread.join()
            for httpd in self._httpds:
                httpd.server_close()
            for held in self._held:
                held.close()
            self._httpds, self._held, self._targets = [], [], []
            self._exporters.clear()
            self._servers.clear()


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}/metrics"
