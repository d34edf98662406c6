"""PCIe throughput, sampled off the refresh path.

nvmlDeviceGetPcieThroughput measures over 20 ms per direction: 8 GPUs would add 320 ms to every
refresh. A daemon thread samples each GPU in turn every PERIOD seconds instead, and a refresh
takes the latest sample. A round starts only once a refresh has asked since the last one, so
the sampling slows with the refreshes (a paused screen, a long interval) instead of running
on its own clock.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from vramtop.sources.nvml_calls import LOST, Calls, Lost

THROUGHPUT = "nvmlDeviceGetPcieThroughput"
PERIOD = 2.0  # seconds between rounds of samples
KIB = 1024  # NVML gives KB/s
FIELDS = ("pcie_tx_bytes_per_second", "pcie_rx_bytes_per_second")
NOT_YET = "not sampled yet (PCIe throughput is sampled on its own thread, from the second refresh)"

Sample = tuple[int | None, int | None, dict[str, str]]


class PcieSampler:
    def __init__(self, calls: Calls, period: float = PERIOD) -> None:
        self._calls = calls
        self._period = period
        self._latest: dict[int, Sample] = {}
        self._memo: dict[int, dict[str, str]] = {}
        self._stop = threading.Event()
        self._wanted = threading.Event()  # a refresh read a sample since the last round began
        self._thread: threading.Thread | None = None

    def start(self, devices: Sequence[tuple[int, Any]]) -> None:
        """Samples ``devices`` ((index, handle) pairs) until stop()."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, args=(tuple(devices),), name="vramtop-pcie", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def latest(self, index: int) -> Sample:
        self._wanted.set()
        return self._latest.get(index) or (None, None, dict.fromkeys(FIELDS, NOT_YET))

    def _run(self, devices: tuple[tuple[int, Any], ...]) -> None:
        nv = self._calls.nv
        while not self._stop.is_set():
            self._wanted.clear()
            asked = False
            for index, handle in devices:
                if self._stop.is_set():
                    return
                memo = self._memo.setdefault(index, {})
                asked |= not self._calls.known(THROUGHPUT, memo)
                reasons: dict[str, str] = {}
                counters = (nv.NVML_PCIE_UTIL_TX_BYTES, nv.NVML_PCIE_UTIL_RX_BYTES)
                try:
                    values = [
                        self._calls.get(reasons, (f,), THROUGHPUT, handle, counter, memo=memo)
                        for f, counter in zip(FIELDS, counters, strict=True)
                    ]
                except Lost:
                    values, reasons = [None, None], dict.fromkeys(FIELDS, LOST)
                tx, rx = (None if v is None else int(v) * KIB for v in values)
                self._latest[index] = (tx, rx, reasons)
            if not asked:
                return  # no GPU here can say (or the driver is too old): nothing to sample
            self._stop.wait(self._period)
            self._wanted.wait()
