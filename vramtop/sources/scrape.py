"""Inference servers' and vramtop exporters' own /metrics, read directly when there is no
Prometheus: one target or a fleet of them, every target its host's (vramtop.fleet.host_key).

The same profiles as the PromQL source say which metric is which. Rates and quantiles need two
scrapes: they are computed between this scrape and the previous one; a one-shot run takes two
scrapes a short gap apart.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from vramtop import redact
from vramtop.fleet import host_key
from vramtop.model import GpuReading, HealthEvent, HostReading, ModelReading
from vramtop.profiles import Profile
from vramtop.records import record
from vramtop.sources import scrape_merge as merge
from vramtop.sources.base import SourceError
from vramtop.sources.exposition import Exposition, ExpositionError, Samples, TooManySeries, read
from vramtop.sources.http import Endpoint, client, fetch, safe_text
from vramtop.sources.pool import DaemonPool
from vramtop.sources.remote_health import XidWatch
from vramtop.sources.scrape_figures import Scrape, active, gpus, model_figures
from vramtop.sources.scrape_merge import TargetResult

if TYPE_CHECKING:
    import httpx

FIRST_GAP = 1.0  # seconds between the two scrapes of a first (or one-shot) reading
MAX_WORKERS = 64  # targets scraped at once; more wait for a free worker
# The text format first, OpenMetrics as the second choice: vramtop shows nothing only
# OpenMetrics carries (exemplars, _created), and prometheus_client's OpenMetrics parser costs
# about twice the text parser's CPU (bench/parse_exposition.py). Whichever format comes back is
# read by its Content-Type. The text format's version 1.0.0 comes first because
# prometheus_client's servers take the first type they know, ignoring q, and would pick
# OpenMetrics over a 0.0.4 listed before it. escaping=allow-utf-8: without it prometheus_client
# (>= 0.22, inside vLLM and SGLang) may write ``vllm:x`` as ``vllm_x``, and no profile would
# find its metrics.
ACCEPT = (
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=1.0,"
    "text/plain;version=0.0.4;q=0.9,"
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "*/*;q=0.1"
)


@record
class ScrapeReading:
    models: tuple[ModelReading, ...]
    note: str = ""
    hosts: tuple[HostReading, ...] = ()
    gpus: tuple[GpuReading, ...] = ()
    events: tuple[HealthEvent, ...] = ()  # the last XID each GPU reports (DCGM)


class ScrapeSource:
    name = "scrape"

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        profiles: Sequence[Profile],
        forced: bool = False,
        clock: Callable[[], float] = time.monotonic,
        first_gap: float = FIRST_GAP,
        window: float = 120.0,
        max_series: int = 200_000,
        hosts: Sequence[str] | None = None,
        wall: Callable[[], float] = time.time,
        jobs: Sequence[str | None] | None = None,
    ) -> None:
        """Rates are taken against the oldest scrape kept within ``window`` seconds (as
        ``rate(x[window])`` would), so polling faster than servers update stays smooth.
        ``hosts``: each endpoint's host key (None: vramtop.fleet.host_key of its URL).
        ``jobs``: each endpoint's ``job`` label, added where a sample has none, as Prometheus
        adds its scrape job's: what names the model of a server whose metrics carry no model
        label (llama.cpp, TGI; their profiles' model_label is ``job``)."""
        self._endpoints = list(endpoints)
        if hosts is not None and len(hosts) != len(self._endpoints):
            raise ValueError("hosts must name one host per endpoint")
        self._hosts = list(hosts) if hosts is not None else [_key(e.url) for e in self._endpoints]
        self._jobs = list(jobs) if jobs is not None else [None] * len(self._endpoints)
        if len(self._jobs) != len(self._endpoints):
            raise ValueError("jobs must name one job (or None) per endpoint")
        self._models = [p for p in profiles if p.kind == "model"]
        self._gpus = [p for p in profiles if p.kind == "gpu"]
        self._forced = forced
        self._clock = clock
        self._wall = wall
        self._gap = first_gap
        self._clients = [client(e) for e in self._endpoints]
        for e, c in zip(self._endpoints, self._clients, strict=True):
            if not _has_accept(e):  # a user's --header Accept wins
                c.headers["Accept"] = ACCEPT
        self._window = window
        self._max_series = max_series  # per target and scrape; more is an error naming the cap
        self._kept: list[deque[Scrape]] = [deque() for _ in self._endpoints]
        self._last_seen: dict[str, float] = {}
        self._xids = XidWatch()
        self._polled = False
        workers = min(MAX_WORKERS, max(1, len(self._endpoints)))
        self._pool = DaemonPool(workers, "vramtop-scrape")

    def close(self) -> None:
        self._pool.shutdown()
        for c in self._clients:
            c.close()

    def poll(self) -> ScrapeReading:
        """Every target at once, the whole poll within the endpoints' timeout; a target that
        fails is its host marked down, the others are read as usual."""
        started, first = time.monotonic(), not self._polled
        self._polled = True
        results = self._pool.map(lambda i: self._one(i, started, first), range(len(self._hosts)))
        down = [r for r in results if not r.ok]
        if len(results) == 1 and down:
            raise SourceError(down[0].error)  # one target: the source itself is in error
        for r in results:
            if r.ok:
                self._last_seen[r.host] = max(self._last_seen.get(r.host, 0.0), r.seen)
        xids = {uuid: x for r in results for uuid, x in r.xids.items()}
        notes = [f"{len(down)} of {len(results)} targets down: {down[0].error}"] if down else []
        notes += [r.note for r in results if r.ok and r.note][:3]
        return ScrapeReading(
            models=tuple(merge.models([r for r in results if r.ok], self._models)),
            note="; ".join(notes),
            hosts=merge.hosts(results, self._last_seen),
            gpus=tuple(sorted((g for r in results for g in r.gpus), key=_gpu_order)),
            events=self._xids.update(xids, self._wall()),
        )

    def _one(self, i: int, started: float, first: bool) -> TargetResult:
        endpoint, host, kept = self._endpoints[i], self._hosts[i], self._kept[i]
        try:
            if kept and self._clock() - kept[-1].at > self._window:
                kept.clear()  # down longer than the window: its old baseline is no rate's
            if not kept:
                kept.append(self._fetch(i, started))
                if not first:  # back up: gauges now, rates from the next refresh on
                    return self._read(i, kept[0], kept[0])
                # The first reading's gap, once for every target (they all sleep together),
                # shortened so that both scrapes fit the timeout.
                time.sleep(
                    max(0.0, started + min(self._gap, endpoint.timeout / 2) - time.monotonic())
                )
            current = self._fetch(i, started)
            while len(kept) > 1 and current.at - kept[1].at >= self._window:
                kept.popleft()
            before = kept[0]
            if current.at - kept[-1].at >= self._window / 16:  # a bounded number of baselines
                kept.append(current)
            return self._read(i, before, current)
        except SourceError as err:
            return TargetResult(host, {}, {}, error=err.reason)

    def _read(self, i: int, before: Scrape, now: Scrape) -> TargetResult:
        host, where = self._hosts[i], _instance(self._endpoints[i].url)
        samples = now.samples
        profiles = active(self._models, self._forced, samples)
        figures, missing = model_figures(profiles, before, now, where)
        found, xids = gpus(active(self._gpus, self._forced, samples), samples, host)
        return TargetResult(
            host, figures, missing, note=now.note, seen=now.seen, gpus=found, xids=xids
        )

    def _fetch(self, i: int, started: float) -> Scrape:
        endpoint, http = _bounded(self._endpoints[i], started), self._clients[i]
        where = f"metrics at {endpoint.safe_url}"
        # The URL itself, no trailing /; the whole answer within the timeout and the size cap.
        resp = fetch(http, endpoint, http.base_url, "metrics")
        if "html" in resp.headers.get("content-type", ""):
            raise SourceError(
                f"{where} answered with an HTML page (HTTP {resp.status_code}), not the metrics "
                "text format: a proxy or login page in the way, or the wrong URL"
            )
        if resp.status_code in (401, 403):
            raise SourceError(
                f"{where} refused access (HTTP {resp.status_code}): check the token or password"
            )
        if resp.status_code != 200:
            raise SourceError(f"{where} answered HTTP {resp.status_code}")
        try:
            got = _read(resp.text, _content_type(resp), where, self._max_series)
        except ExpositionError as err:
            raise SourceError(
                f"{where} are not in the Prometheus text format ({safe_text(err)})"
            ) from None
        samples = got.samples if self._jobs[i] is None else _with_job(got.samples, self._jobs[i])
        return Scrape(self._clock(), self._wall(), samples, _skipped(got, where))


def _bounded(endpoint: Endpoint, started: float) -> Endpoint:
    """The endpoint with what is left of this poll's time: a target that waited for a worker,
    or the first reading's second scrape, may not stretch the poll past the timeout."""
    left = started + endpoint.timeout - time.monotonic()
    if left >= endpoint.timeout * 0.9:
        return endpoint
    if left < 0.01:
        raise SourceError(
            f"metrics at {endpoint.safe_url} were not asked: the refresh's "
            f"{endpoint.timeout:g} s (--timeout) ran out while it waited for other targets"
        )
    return replace(endpoint, timeout=math.floor(left * 100) / 100)


def _with_job(samples: Samples, job: str) -> Samples:
    out: Samples = {}
    for name, series in samples.items():
        out[name] = {
            (key if any(k == "job" for k, _ in key) else tuple(sorted((*key, ("job", job))))): v
            for key, v in series.items()
        }
    return out


def _has_accept(endpoint: Endpoint) -> bool:
    return any(k.lower() == "accept" for k in endpoint.headers)


def _gpu_order(g: GpuReading) -> tuple:
    return (g.host or "", g.index, g.uuid or "")


def _key(url: str) -> str:
    return host_key(url) or _instance(url)


def _content_type(resp: httpx.Response) -> str:
    return resp.headers.get("content-type", "")


def _read(text: str, content_type: str, where: str, cap: int) -> Exposition:
    try:
        return read(text, content_type, cap)
    except TooManySeries:
        raise SourceError(
            f"{where} hold more than {cap} series (max_series): raise max_series "
            "(config or VRAMTOP_MAX_SERIES) or scrape a narrower endpoint"
        ) from None


def _skipped(got: Exposition, where: str) -> str:
    """Malformed lines are skipped and named in the note."""
    if not got.skipped:
        return ""
    lines = "1 malformed line" if got.skipped == 1 else f"{got.skipped} malformed lines"
    return f"skipped {lines} of {where} ({redact.text(got.problem)})"


def _instance(url: str) -> str:
    safe = redact.url(url)
    return safe.split("://", 1)[-1].split("/", 1)[0]
