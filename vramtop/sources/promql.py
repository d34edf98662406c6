"""Per-model latency, rates, queues and VRAM, remote GPUs and hosts, through PromQL.

Each refresh issues a fixed set of instant queries (see queries.py), concurrently, all at one
evaluation time and each bounded by the timeout. Profiles are picked by which metric names
exist (``auto``) or forced by name. Histogram quantiles per model are computed here from bucket
rates (promquantile.py); the request for those rates may answer a refresh late (promlate.py).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from vramtop.model import GpuReading, HealthEvent, HostReading, ModelReading
from vramtop.profiles import Profile
from vramtop.records import record
from vramtop.serving import HISTORY_KEYS
from vramtop.sources import gcpause, promshadow
from vramtop.sources import promreadings as read
from vramtop.sources.base import SourceError
from vramtop.sources.http import Endpoint, QueryError, client, get_json
from vramtop.sources.pool import DaemonPool
from vramtop.sources.promapi import instant, matrix, number
from vramtop.sources.promlate import EVERY, HOLD, LateRequest
from vramtop.sources.promql_syntax import instance_selector
from vramtop.sources.promquantile import expand
from vramtop.sources.promreadings import Answer as _Answer
from vramtop.sources.promreadings import normalise_uuid
from vramtop.sources.queries import (
    BUCKETS,
    Query,
    detect_query,
    field_queries,
    last_up_query,
    model_queries,
    up_query,
)
from vramtop.sources.remote_health import XidWatch

__all__ = ["PromReading", "PromSource", "backfill", "normalise_uuid"]

DETECT_TTL = 60.0  # seconds between re-checks of which profiles have data
_TAG = "__vramtop_query"


@record
class PromReading:
    models: tuple[ModelReading, ...] = ()
    gpus: tuple[GpuReading, ...] = ()
    hosts: tuple[HostReading, ...] = ()
    profiles: tuple[str, ...] = ()
    queries: int = 0
    note: str = ""
    events: tuple[HealthEvent, ...] = ()  # the last XID each remote GPU reports (DCGM)


class PromSource:
    name = "prometheus"

    def __init__(
        self,
        endpoint: Endpoint,
        profiles: Sequence[Profile],
        forced: bool = False,
        instance: str | None = None,
        window: str = "2m",
        clock: Callable[[], float] = time.time,
        max_series: int = 200_000,
        match: tuple[tuple[str, str, str], ...] = (),
        host_label: str | None = None,
        this_host: str | None = None,
    ) -> None:
        """``match``: (label, op, value) matchers every query carries beside ``instance``;
        ``host_label``: the label naming a host (else the instance without its port);
        ``this_host``: this machine's name, when Prometheus runs here and a target on loopback
        is this machine."""
        self.endpoint = endpoint
        self._max_series = max_series  # per query; more is an error naming the cap
        self._profiles = list(profiles)
        self._forced = forced
        self._sel = instance_selector(instance, match)
        self._host_label = host_label
        self._naming = read.Naming(host_label, this_host)
        self._health = read.HealthMemo()
        # When each host last had a target up (this session's refreshes, or asked once when
        # a host is first seen down), and why it is unknown for the others.
        self._last_up: dict[str, float] = {}
        self._unknown_up: dict[str, str] = {}
        self._window = window
        self._clock = clock
        self._http = client(endpoint)
        self._pool = DaemonPool(16, "vramtop-promql")
        self._active: list[Profile] = list(profiles) if forced else []
        self._detected_at = -math.inf
        self._profile_of: dict[str, Profile] = {}
        self._requests = 0
        self._xids = XidWatch()
        self._cached_groups: tuple[tuple[str, ...] | None, list[list[Query]], list[Query]]
        self._cached_groups = (None, [], [])
        self._late = LateRequest(self._pool, self._batch)
        self._kept: dict[Query, tuple[float, _Answer]] = {}  # Query.every: (monotonic, answer)
        # Queries deferring to another GPU exporter (promshadow.py): left out while the last
        # check found them answering nothing, for at most RECHECK s after they were last asked.
        # _absent: what they asked for and no exporter had (see gaps()); None: not known, ask.
        self._deferring_at = -math.inf
        self._absent: set[promshadow.Gap] | None = None

    def close(self) -> None:
        self._pool.shutdown()
        self._http.close()

    # -- HTTP ------------------------------------------------------------------------------

    def _query(self, expr: str, at: float) -> list[tuple[dict[str, str], float | None]]:
        return self._split(expr, at)[0]

    def _split(
        self, expr: str, at: float, tag: str | None = None, parts: int = 1
    ) -> list[list[tuple[dict[str, str], float | None]]]:
        """An instant query's samples, in ``parts`` lists by the label ``tag`` (promapi.instant)."""
        body = get_json(
            self._http,
            self.endpoint,
            "/api/v1/query",
            "Prometheus",
            data={"query": expr, "time": f"{at:.3f}", "timeout": f"{self.endpoint.timeout:g}s"},
        )
        return instant(body, self.endpoint, self._max_series, tag, parts)

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Any]:
        body = get_json(
            self._http,
            self.endpoint,
            "/api/v1/query_range",
            "Prometheus",
            data={"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        return matrix(body, self.endpoint)

    # -- polling ---------------------------------------------------------------------------

    def _detect(self, at: float) -> None:
        if self._forced or at - self._detected_at < DETECT_TTL:
            return
        self._requests += 1
        samples = self._query(detect_query(self._profiles, self._sel), at)
        present = {labels.get("__name__") for labels, _ in samples}
        self._active = [p for p in self._profiles if present.intersection(p.detect)]
        self._detected_at = at

    def poll(self) -> PromReading:
        with gcpause.held():  # a fleet's answers: millions of objects that live on
            return self._poll()

    def _poll(self) -> PromReading:
        at = self._clock()
        started = time.monotonic()
        self._requests = 0  # what this refresh asked: detection only when it is due
        self._detect(at)
        groups, heavy, kept = self._due(started)
        if heavy:
            self._requests += self._late.start(heavy, at)
        queries = [q for g in groups for q in g]
        answers: list[_Answer] = []
        for batch, sent in self._pool.map(lambda g: self._batch(g, at), groups):
            answers += batch
            self._requests += sent
        answers += self._check_deferring(queries, answers + kept, at, started)
        for a in answers:
            if a.query.every and not a.error:
                self._kept[a.query] = (started, a)
        reused, late_note = self._collect_late(heavy, at, started, queries, answers)
        by_profile = {p.name: p for p in self._active}
        failed = [a for a in answers if a.error]
        transport = [a for a in failed if not a.error.startswith("!")]  # type: ignore[union-attr]
        if queries and len(transport) == len(queries):
            raise SourceError(transport[0].error or "Prometheus failed")
        note = ""
        if failed:
            first = failed[0].error.lstrip("!")  # type: ignore[union-attr]
            note = f"{len(failed)} of {len(queries)} queries failed: {first}"
        elif not self._active:
            note = "no known inference-server or GPU metrics found (see --profile)"
        note = "; ".join(n for n in (note, late_note) if n)
        answers += kept + reused
        answers = [
            x
            for a in answers
            for x in (expand(a, by_profile[a.query.profile]) if a.query.key == BUCKETS else [a])
        ]
        naming = self._naming
        models = read.models(answers, by_profile, naming, self._window)
        self._profile_of = {m.name: by_profile[m.profile] for m in models if m.profile}
        gpus, xids = read.gpus_and_xids(answers, by_profile, naming, self._health)
        known = {g.host for g in gpus} | {f.instance for m in models for f in m.by_instance}
        # The look-back is one more request after the others: only while time is left for it.
        spare = time.monotonic() - started < self.endpoint.timeout / 2
        return PromReading(
            models=models,
            gpus=gpus,
            hosts=self._hosts(answers, at, known, spare),
            profiles=tuple(p.name for p in self._active),
            queries=self._requests,
            note=note,
            events=self._xids.update(xids, at),
        )

    def _check_deferring(
        self, queries: list[Query], answers: list[_Answer], at: float, started: float
    ) -> list[_Answer]:
        """Whether the queries deferring to another exporter may be left out next refresh
        (promshadow.py); where this refresh left them out and they would answer something now,
        their answers (added to ``queries``), in one more request."""
        deferring = [q for g in self._groups()[0] for q in g if q.defers_to]
        if not deferring:
            return []
        profiles = {p.name: p for p in self._active}
        more: list[_Answer] = []
        if not any(q.defers_to for q in queries):  # left out by _due
            found = promshadow.gaps(answers, profiles, deferring)
            if found is not None and self._absent is not None and found <= self._absent:
                return []
            more, sent = self._batch(deferring, at)
            self._requests += sent
            queries += deferring
        self._deferring_at = started
        self._absent = promshadow.gaps(answers + more, profiles, deferring)
        return more

    def _collect_late(
        self,
        heavy: list[Query],
        at: float,
        started: float,
        queries: list[Query],
        answers: list[_Answer],
    ) -> tuple[list[_Answer], str]:
        """The slow request's answer: this refresh's (added to ``queries`` and ``answers``) if it
        comes within HOLD of the refresh's start, else the last one (returned, with a note of
        its age). A first answer is waited for as long as the request may take."""
        if not heavy:
            return [], ""
        hold = started + HOLD - time.monotonic()
        late = self._late.collect(heavy, hold, self.endpoint.timeout + 1)
        if late is None:
            return [], "latency percentiles not in yet: Prometheus is still computing them"
        self._requests += late.requests
        if late.at < at:
            if at - late.at < 1:
                return late.answers, ""  # answered since the last refresh, evaluated just before
            return late.answers, (
                f"latency percentiles from {at - late.at:.0f} s ago "
                f"(at this fleet's size asked every {EVERY:g} s)"
            )
        queries += heavy
        answers += late.answers
        return [], ""

    def _hosts(
        self, answers: list[_Answer], at: float, known: set[str | None], spare: bool
    ) -> tuple[HostReading, ...]:
        """node_exporter's hosts and what ``up`` says of every host: see read.with_health."""
        by_host = read.targets(answers, self._naming)
        for key, targets in by_host.items():
            if any(t.up for t in targets):
                self._last_up[key] = at
                self._unknown_up.pop(key, None)
        gone = {
            key: [t.instance for t in targets]
            for key, targets in by_host.items()
            if key not in self._last_up and key not in self._unknown_up
        }
        if gone and spare:
            self._ask_last_up(gone, at)
        found = read.hosts(answers, self._naming)
        return read.with_health(found, by_host, known, self._last_up, self._unknown_up)

    def _ask_last_up(self, gone: dict[str, list[str]], at: float) -> None:
        """Hosts first seen with every target down: when they last answered, in ONE query
        over their own ``up`` series (the last hour, to 10 s), asked once per host."""
        self._requests += 1
        expr = last_up_query(sorted({i for names in gone.values() for i in names}), self._sel)
        try:
            samples = self._query(expr, at)
        except SourceError as err:
            for key in gone:
                self._unknown_up[key] = f"Prometheus could not say when it was up: {err.reason}"
            return
        for labels, value in samples:
            key = self._naming.of(labels)
            if key in gone and value is not None:
                self._last_up[key] = max(value, self._last_up.get(key, value))
        for key in gone:
            if key not in self._last_up:
                self._unknown_up[key] = "not up at any time in the last hour"

    def backfill(self, model: str, window: float) -> dict[str, list[tuple[float, float]]]:
        """History of one model's figures, from the profile that reported it; its VRAM from
        vramtop's exporter where the server itself does not say."""
        profile = self._profile_of.get(model)
        if profile is None:
            return {}
        end = self._clock()
        out = backfill(self.query_range, profile, model, window, end, self._sel, self._window)
        measured = next((p for p in self._active if read.vram_only(p)), None)
        if "vram_bytes" not in out and measured is not None and measured is not profile:
            more = backfill(self.query_range, measured, model, window, end, self._sel, "1m")
            out.update({k: v for k, v in more.items() if k == "vram_bytes"})
        return out

    def _groups(self) -> tuple[list[list[Query]], list[Query]]:
        """The requests of a refresh, each a list of queries: one per active profile, one for
        each GPU exporter's figures (Query.alone), and the heavy one of every profile's rates
        over a histogram's buckets (each replica's p95, each histogram's buckets), which
        Prometheus evaluates in parallel with the rest and which may answer late (promlate.py).
        Not one each: at a few models, requests cost vramtop more than they save. They change
        only when detection does."""
        key = tuple(p.name for p in self._active)
        if self._cached_groups[0] != key:
            groups: list[list[Query]] = []
            alone: list[list[Query]] = []  # Query.alone: each in a request of its own
            heavy: list[Query] = []
            for i, p in enumerate(self._active):
                queries = (
                    model_queries(p, self._sel, self._window, self._host_label, buckets=True)
                    if p.kind == "model"
                    else field_queries(
                        p, self._sel, self._window, self._active[:i], self._host_label
                    )
                )
                light = [q for q in queries if not q.heavy and not q.alone]
                groups += [light] if light else []
                alone += [[q] for q in queries if q.alone]
                heavy += [q for q in queries if q.heavy]
            # Which hosts are down rides along in the first request: none of its own.
            if groups:
                groups[0].append(up_query(self._sel))
            else:
                groups.append([up_query(self._sel)])
            groups = alone + groups  # the largest answers asked first
            self._cached_groups = (key, groups, heavy)
        return self._cached_groups[1], self._cached_groups[2]

    def _due(self, now: float) -> tuple[list[list[Query]], list[Query], list[_Answer]]:
        """This refresh's requests without the queries whose last answer may still be reused
        (Query.every), the heavy request's queries, and those reused answers."""
        groups, heavy = self._groups()
        wanted = {q for g in groups for q in g}
        fresh = {q: a for q, (t, a) in self._kept.items() if q in wanted and now - t < q.every}
        self._kept = {q: self._kept[q] for q in fresh}  # detection may have dropped some
        skip = self._absent is not None and now - self._deferring_at < promshadow.RECHECK
        if not fresh and not skip:
            return groups, heavy, []
        due = [[q for q in g if q not in fresh and not (skip and q.defers_to)] for g in groups]
        return [g for g in due if g], heavy, list(fresh.values())

    def _batch(self, group: list[Query], at: float) -> tuple[list[_Answer], int]:
        """A group's queries in ONE request (see _groups): each tagged with label_replace and
        joined with ``or`` (the tag keeps ``or`` from dropping series), then split by the tag;
        and the number of requests sent. For light queries HTTP and JSON cost more than
        Prometheus's evaluation. If Prometheus rejects the batch, the queries go one by one,
        so the note can say which failed."""
        if len(group) == 1:
            return [self._answer(group[0], at)], 1
        expr = " or ".join(
            f'label_replace(({q.expr}), "{_TAG}", "{i}", "", "")' for i, q in enumerate(group)
        )
        try:
            parts = self._split(expr, at, _TAG, len(group))
        except QueryError:
            return [self._answer(q, at) for q in group], 1 + len(group)
        except SourceError as err:
            return [_Answer(q, error=err.reason) for q in group], 1
        return [_Answer(q, samples) for q, samples in zip(group, parts, strict=True)], 1

    def _answer(self, q: Query, at: float) -> _Answer:
        try:
            return _Answer(q, self._query(q.expr, at))
        except QueryError as err:
            return _Answer(q, error="!" + err.reason)  # "!" marks: server up, query refused
        except SourceError as err:
            return _Answer(q, error=err.reason)


# -- history for one model (drill-down charts) ----------------------------------------------------

_SERIES_NAMES = {
    "latency.0.5": "latency_p50_seconds",
    "latency.0.95": "latency_p95_seconds",
    "latency.0.99": "latency_p99_seconds",
    "requests": "requests_per_second",
    "queue": "queue_length",
    "vram": "vram_bytes",
    **{f"extras.{k}": k for k in HISTORY_KEYS},
}
MAX_POINTS = 240  # per series: enough for a chart, far below Prometheus's 11,000-point limit


def backfill(
    query_range: Callable[[str, float, float, float], list[Any]],
    profile: Profile,
    model: str,
    window: float,
    end: float,
    instance_sel: str,
    rate_window: str,
) -> dict[str, list[tuple[float, float]]]:
    """Range queries for one model over ``window`` seconds, so its charts are full at once."""
    from vramtop.sources.promql_syntax import matcher

    step = max(1.0, window / MAX_POINTS)
    sel = f"{matcher(profile.model_label, model)},{instance_sel}"
    raw: dict[str, dict[float, float]] = defaultdict(dict)
    for q in model_queries(profile, sel, rate_window):
        key = f"{q.key}.{q.quantile}" if q.key == "latency" else q.key
        if key not in _SERIES_NAMES and q.key not in ("successes", "errors"):
            continue
        for series in query_range(q.expr, end - window, end, step):
            for t, text in series.get("values") or []:
                value = number(text)
                if value is None:
                    continue
                bucket = raw[key]
                t = float(t)
                scaled = value * q.scale
                bucket[t] = (
                    max(bucket.get(t, scaled), scaled)
                    if q.combine == "max"
                    else (bucket.get(t, 0.0) + scaled)
                )
    if "requests" not in raw and "successes" in raw:
        raw["requests"] = {
            t: v + raw.get("errors", {}).get(t, 0.0) for t, v in raw["successes"].items()
        }
    out = {name: sorted(raw[key].items()) for key, name in _SERIES_NAMES.items() if raw.get(key)}
    if raw.get("errors") and raw.get("requests"):
        req = raw["requests"]
        out["error_ratio"] = sorted((t, e / req[t]) for t, e in raw["errors"].items() if req.get(t))
    return out
