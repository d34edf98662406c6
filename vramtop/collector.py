"""Runs the sources, each bounded by a timeout on its own thread, and builds one Frame.

Each source has one worker thread. A source still busy with an earlier request is not asked
again, so a hung driver or server never piles up threads; its last good reading is shown as
stale instead.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from functools import partial
from types import MappingProxyType
from typing import Any, Protocol

from vramtop import local_rules, redact
from vramtop.attribution import Attributor
from vramtop.clean import one_line
from vramtop.futures import Future
from vramtop.health import critical_alerts
from vramtop.model import (
    LOCAL_SOURCES,
    MODEL_FIGURES,
    Frame,
    GpuReading,
    HealthEvent,
    HostReading,
    InstanceFigures,
    ModelReading,
    ProcessReading,
    SourceStatus,
    alert_order,
)
from vramtop.sources.base import SourceError
from vramtop.sources.nvml import NvmlReading
from vramtop.sources.procs import DENIED, EXITED, GONE, ProcessInspector
from vramtop.worker import Worker

DEFAULT_TIMEOUT = 5.0
_ORDER = {"host": 0, "nvml": 1, "prometheus": 2, "alerts": 3, "silences": 4}
# Sources whose answers change only when Prometheus scrapes or evaluates its rules: read at
# most every ``remote_every`` seconds (direct scrapes of /metrics are not among them).
PACED = frozenset({"prometheus", "alerts", "silences"})
# A paced source is due a little early: refreshes drift by a few ms, and a period of 5 s at an
# interval of 1 s should read every fifth refresh, not every sixth.
_DUE_SLACK = 0.25


class Source(Protocol):
    name: str

    def poll(self) -> Any: ...


@dataclass(slots=True)
class _Last:
    """A source's last answer and when it came."""

    value: Any = None
    at: float | None = None


class Collector:
    def __init__(
        self,
        host: Source,
        nvml: Source | None = None,
        inspector: ProcessInspector | None = None,
        attributor: Attributor | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        demo: bool = False,
        clock: Callable[[], float] = time.time,
        remote: Sequence[Source] = (),
        rules: local_rules.LocalRules | None = None,
        remote_every: float = 0.0,
    ) -> None:
        """``remote``: Prometheus, alerts and scrape sources (anything whose reading has
        ``models``, ``gpus``, ``hosts`` or ``alerts``). ``rules``: alert rules evaluated on
        each Frame (alerts with source ``local``). ``remote_every``: seconds between reads of
        the PACED sources (Prometheus, Alertmanager); 0 reads them on every collect()."""
        self._sources = [s for s in (host, nvml, *remote) if s is not None]
        self.remote_every = remote_every if any(s.name in PACED for s in self._sources) else 0.0
        # name -> (monotonic time its last good read was asked for, its status then)
        self._paced: dict[str, tuple[float, SourceStatus]] = {}
        # Attribution (psutil per process) runs on the NVML worker, overlapping the other
        # sources instead of following them.
        self._workers = {
            s.name: Worker(
                _polling(s, self._attribute_all if s is nvml else None), f"vramtop-{s.name}"
            )
            for s in self._sources
        }
        self._hostname = getattr(host, "hostname", "localhost")
        self._inspector = inspector or ProcessInspector()
        self._attributor = attributor or Attributor()
        self._timeout = timeout
        self._demo = demo
        self._clock = clock
        self._last = {s.name: _Last() for s in self._sources}
        self._has_nvml = nvml is not None
        self._rules = rules
        # pid -> (start time, what _describe found): a process's user, command line and model
        # do not change while it lives, so psutil and the rules run once per process, not once
        # per refresh.
        self._described: dict[int, tuple[float, dict[str, Any]]] = {}
        self._started: dict[str, Future[Any]] | None = None
        self._started_at = 0.0

    def start(self, local_first: bool = False) -> None:
        """Starts every source's poll now, without waiting: the next collect() takes their
        answers, even those that came before it was called. The live view calls this before
        it imports Textual, so that the first frame's reads overlap the imports and the
        screen's set-up instead of following them.

        ``local_first``: the remote sources' polls start once the local ones have answered.
        Their first request imports httpx (~80 ms of CPU): beside the local reads it would
        hold the first paint of the local panels back by as much."""
        self._started_at = self._clock()
        local = {n: w for n, w in self._workers.items() if n in LOCAL_SOURCES}
        if not (local_first and local):
            self._started = {name: w.submit() for name, w in self._workers.items()}
            return
        started = {name: w.submit() for name, w in local.items()}
        later = {n: (w, Future[Any]()) for n, w in self._workers.items() if n not in local}
        waiting = [len(started)]
        lock = threading.Lock()

        def local_done(_: Future[Any]) -> None:
            with lock:
                waiting[0] -= 1
                if waiting[0]:
                    return
            for worker, placeholder in later.values():
                worker.submit().add_done_callback(partial(_settle, placeholder))

        for fut in started.values():
            fut.add_done_callback(local_done)
        self._started = {**started, **{n: f for n, (_, f) in later.items()}}

    @property
    def started(self) -> dict[str, Future[Any]]:
        """The polls start() began and no collect() has taken yet (the first paint's)."""
        return dict(self._started or {})

    def preview(self) -> tuple[Frame, tuple[str, ...]]:
        """A Frame of the polls start() began that have answered, and the names of those
        still running. Nothing is kept: the next collect() builds the Frame of record."""
        started = self._started or {}
        results: dict[str, Any] = {}
        statuses = []
        pending = []
        for name, fut in started.items():
            if not fut.done():
                pending.append(name)
            elif fut.cancelled() or (err := fut.exception()) is not None:
                reason = getattr(err, "reason", "") if not fut.cancelled() else ""
                statuses.append(SourceStatus(name, "error", reason or "no answer"))
            else:
                results[name] = fut.result()
                statuses.append(SourceStatus(name, "ok"))
        # Local rules keep when each breach began: a copy evaluates this Frame, not them.
        frame = self._build(self._started_at, results, statuses, copy.copy(self._rules))
        return frame, tuple(pending)

    def read_remote_next(self) -> None:
        """The next collect() reads the paced sources whatever their period ("refresh now")."""
        self._paced.clear()

    def collect(self) -> Frame:
        started, self._started = self._started, None
        now = self._started_at if started else self._clock()
        asked = time.monotonic()
        results: dict[str, Any] = {}
        statuses: list[SourceStatus] = []
        if started:  # start()'s polls, every source's
            futures = started
        else:
            futures = {}
            for name, worker in self._workers.items():
                paced = self._paced.get(name)
                if paced is not None and asked - paced[0] < self.remote_every - _DUE_SLACK:
                    # Prometheus has nothing newer yet: its last answer, as it was, still holds.
                    results[name], status = self._last[name].value, paced[1]
                    statuses.append(status)
                    continue
                futures[name] = worker.submit()
        # A little slack: a source's own timeout (e.g. HTTP) says more than ours can.
        deadline = time.monotonic() + self._timeout * 1.2 + 0.25
        for name, fut in futures.items():
            try:
                value = fut.result(timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                reason = f"no answer within {self._timeout:g} s"
                value, status = self._fallback(name, reason)
            except SourceError as err:
                value, status = self._fallback(name, err.reason)
            except Exception as err:
                # A bug's text may quote what a server sent: masked like any server text.
                value, status = self._fallback(
                    name, f"internal error: {one_line(redact.text(err))}"
                )
            else:
                self._last[name] = _Last(value, now)
                notes = (getattr(value, "note", ""), getattr(value, "events_note", ""))
                detail = "; ".join(n for n in notes if n)
                status = SourceStatus(name, "ok", detail)
                if self.remote_every > 0 and name in PACED:
                    self._paced[name] = (asked, status)
            if status.state != "ok":
                self._paced.pop(name, None)  # a failed read is tried again next refresh
            results[name] = value
            statuses.append(status)
        return self._build(now, results, statuses, self._rules)

    def close(self) -> None:
        """Stops the workers and closes the sources that hold threads or connections (NVML's
        event and PCIe threads, HTTP clients). The CLI's exit does this anyway; a program or
        test that builds several collectors in one process must not leave them running."""
        for worker in self._workers.values():
            worker.stop()
        for source in self._sources:
            if callable(close := getattr(source, "close", None)):
                close()

    @property
    def silences(self) -> Any:
        """The Alertmanager silence client (vramtop.sources.silences), when one is configured."""
        return next((s.client for s in self._sources if s.name == "silences"), None)

    def backfill(self, model: str, window: float) -> dict[str, list[tuple[float, float]]]:
        """One model's recent history from a source that keeps it (Prometheus), for charts
        that are full the moment they open. Blocking: call it from a worker."""
        for source in self._sources:
            fill = getattr(source, "backfill", None)
            if fill is not None:
                try:
                    series = fill(model, window)
                except SourceError:
                    continue
                if series:
                    return series
        return {}

    def _fallback(self, name: str, reason: str) -> tuple[Any, SourceStatus]:
        last = self._last[name]
        if last.value is not None:
            return last.value, SourceStatus(name, "stale", reason, since=last.at)
        return None, SourceStatus(name, "error", reason)

    def _build(
        self,
        now: float,
        results: dict[str, Any],
        statuses: list[SourceStatus],
        rules: local_rules.LocalRules | None = None,
    ) -> Frame:
        if not self._has_nvml:
            statuses.append(SourceStatus("nvml", "disabled", "NVML is turned off"))
        statuses.sort(key=lambda s: _ORDER.get(s.name, 9))
        host: HostReading = results.get("host") or HostReading(hostname=self._hostname)
        nvml: NvmlReading | None = results.get("nvml")
        local = nvml.gpus if nvml else ()
        remote = [r for name, r in results.items() if name not in ("host", "nvml") and r]
        # A GPU seen by NVML and by exporters, or by two remote sources, is listed once.
        known = {g.uuid for g in local if g.uuid}
        gpus = list(local)
        for g in (g for r in remote for g in getattr(r, "gpus", ())):
            if not g.uuid or g.uuid not in known:
                gpus.append(g)
                known.add(g.uuid)
        served = [m for r in remote for m in getattr(r, "models", ())]
        alerts = tuple(
            sorted((a for r in remote for a in getattr(r, "alerts", ())), key=alert_order)
        )
        frame = Frame(
            time=now,
            host=host,
            gpus=tuple(gpus),
            models=merge_models(models_of(local), served, host.hostname),
            alerts=alerts,
            sources=tuple(statuses),
            driver_version=nvml.driver_version if nvml else None,
            demo=self._demo,
            hosts=tuple(h for r in remote for h in getattr(r, "hosts", ())),
            events=_events(nvml, remote),
            silences=tuple(s for r in remote for s in getattr(r, "silences", ())),
        )
        # A critical GPU finding fires as an alert even where no Prometheus is configured.
        if found := critical_alerts(frame):
            frame = replace(frame, alerts=tuple(sorted(alerts + found, key=alert_order)))
        # Local rules fire without Prometheus; where Prometheus has the same alert, it wins.
        if rules is not None and (mine := rules.evaluate(frame)):
            alerts = local_rules.merge(frame.alerts, mine, host.hostname)
            frame = replace(frame, alerts=alerts)
        return frame

    def _attribute_all(self, reading: NvmlReading) -> NvmlReading:
        gpus = tuple(self._attribute(g) for g in reading.gpus)
        live = {p.pid for g in gpus for p in g.processes}
        self._inspector.forget_except(live)
        for pid in [pid for pid in self._described if pid not in live]:
            del self._described[pid]
        return replace(reading, gpus=gpus)

    def _attribute(self, gpu: GpuReading) -> GpuReading:
        if not gpu.processes:
            return gpu
        procs = []
        for p in gpu.processes:
            usage = self._inspector.usage(p.pid)  # its start time tells a reused pid apart
            started = usage.started_at
            known = self._described.get(p.pid)
            if known is not None and started is not None and known[0] == started:
                fields = known[1]
            else:
                fields, lasting = self._describe(p.pid)
                if lasting and started is not None:
                    self._described[p.pid] = (started, fields)
            procs.append(usage.apply(replace(p, **fields)))
        return replace(gpu, processes=tuple(procs))

    def _describe(self, pid: int) -> tuple[dict[str, Any], bool]:
        """Who runs it, its command line and model; and whether that holds for the process's
        lifetime (not where it could not be read: gone, denied, exiting)."""
        info = self._inspector.describe(pid)
        model, how = self._attributor.attribute(info)
        if model is None and info.argv:
            # Only now look up the launcher: most processes name their model themselves.
            model, how = self._attributor.attribute(self._inspector.with_ancestors(info))
        fields = {
            "user": info.user,
            "name": info.name,
            "command": info.command,
            "model": model,
            "model_source": how,
            "detail": info.detail,
        }
        return fields, bool(info.argv) and info.detail not in (GONE, DENIED, EXITED)


def _events(nvml: NvmlReading | None, remote: list[Any]) -> tuple[HealthEvent, ...]:
    """This machine's events, then remote GPUs' (DCGM's last XID), oldest first."""
    local = nvml.events if nvml else ()
    far = [e for r in remote for e in getattr(r, "events", ())]
    if not far:
        return local
    return tuple(sorted((*local, *far), key=lambda e: e.time))


def _settle(placeholder: Future[Any], done: Future[Any]) -> None:
    """``placeholder`` ends as ``done`` ended."""
    if done.cancelled():
        placeholder.cancel()
    elif (err := done.exception()) is not None:
        placeholder.set_exception(err)
    else:
        placeholder.set_result(done.result())


def _polling(source: Source, then: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    def poll(_: Any) -> Any:
        value = source.poll()
        return then(value) if then else value

    return poll


def models_of(gpus: Iterable[GpuReading]) -> tuple[ModelReading, ...]:
    """VRAM per model is the sum of its processes' VRAM on every GPU they touch."""
    grouped: dict[str, list[ProcessReading]] = {}
    for gpu in gpus:
        for p in gpu.processes:
            if p.model:
                grouped.setdefault(p.model, []).append(p)
    models = []
    for name, procs in grouped.items():
        known = [p.used_memory_bytes for p in procs if p.used_memory_bytes is not None]
        models.append(
            ModelReading(
                name=name,
                vram_bytes=sum(known) if known else None,
                processes=tuple(sorted({p.pid for p in procs})),
                gpus=tuple(sorted({p.gpu_index for p in procs})),
                sources=tuple(sorted({p.model_source or "" for p in procs} - {""})),
            )
        )
    models.sort(key=lambda m: (-(m.vram_bytes or 0), m.name))
    return tuple(models)


def merge_models(
    local: Iterable[ModelReading], served: Iterable[ModelReading], hostname: str | None = None
) -> tuple[ModelReading, ...]:
    """One row per model name: serving figures from the server's metrics, VRAM and processes from
    NVML where this machine runs it (else the VRAM the server itself reports). A model served
    across a fleet keeps its fleet total: NVML's figure is this machine's (``hostname``) share."""
    merged: dict[str, ModelReading] = {}
    for m in served:
        old = merged.get(m.name)
        merged[m.name] = m if old is None else _combine_served(old, m)
    for m in local:
        s = merged.get(m.name)
        if s is None:
            merged[m.name] = m
        else:
            fleet = len(s.by_instance) > 1 and s.vram_bytes is not None
            vram, shares = s.vram_bytes if m.vram_bytes is None or fleet else m.vram_bytes, ()
            if s.by_instance and hostname is not None and m.vram_bytes is not None:
                shares = _with_local_vram(s.by_instance, hostname, m.vram_bytes)
                known = [f.vram_bytes for f in shares if f.vram_bytes is not None]
                vram = sum(known) if known else None
            merged[m.name] = replace(
                s,
                vram_bytes=vram,
                processes=m.processes,
                gpus=m.gpus,
                sources=m.sources,
                by_instance=shares or s.by_instance,
            )
    return tuple(sorted(merged.values(), key=lambda m: (-(m.vram_bytes or 0), m.name)))


def _with_local_vram(
    shares: tuple[InstanceFigures, ...], hostname: str, vram: int | None
) -> tuple[InstanceFigures, ...]:
    """This machine's share takes NVML's VRAM (exact, per process) over a server's own."""
    if vram is None:
        return shares
    if not any(f.instance == hostname for f in shares):
        shares = (*shares, InstanceFigures(hostname))
    out = (replace(f, vram_bytes=vram) if f.instance == hostname else f for f in shares)
    return tuple(sorted(out, key=lambda f: f.instance))


def _combine_served(a: ModelReading, b: ModelReading) -> ModelReading:
    """The same model reported twice (two profiles, two sources). Replicas on the same host are
    one InstanceFigures, gaps filled; on other hosts they are listed side by side. Two readings
    of disjoint hosts are two parts of the fleet: VRAM, rate and queue add up, latency is the
    worst. Otherwise they saw the same servers: fill gaps, never add twice."""
    shares = {f.instance: f for f in a.by_instance}
    for f in b.by_instance:
        shares[f.instance] = _fill(shares[f.instance], f) if f.instance in shares else f
    sizes = len(a.by_instance), len(b.by_instance)
    apart = all(sizes) and len(shares) == sum(sizes)
    values = {}
    for name in MODEL_FIGURES:
        x, y = getattr(a, name), getattr(b, name)
        values[name] = _add(name, x, y, a, b) if apart and None not in (x, y) else _first(x, y)
    return replace(
        a,
        **values,
        instances=tuple(sorted(set(a.instances) | set(b.instances))),
        by_instance=tuple(shares[k] for k in sorted(shares)),
        extras=MappingProxyType({**b.extras, **a.extras}),
    )


def _first(x: Any, y: Any) -> Any:
    return x if x is not None else y


def _fill(a: InstanceFigures, b: InstanceFigures) -> InstanceFigures:
    names = [f.name for f in fields(InstanceFigures) if f.name != "instance"]
    return replace(a, **{n: _first(getattr(a, n), getattr(b, n)) for n in names})


def _add(name: str, x: float, y: float, a: ModelReading, b: ModelReading) -> float:
    if name.startswith("latency"):
        return max(x, y)
    if name == "error_ratio":  # weighted by each part's rate, where both are known
        ra, rb = a.requests_per_second, b.requests_per_second
        return (
            (x * ra + y * rb) / (ra + rb)
            if ra is not None and rb is not None and ra + rb
            else max(x, y)
        )
    return x + y
