"""A GPU figure two exporters report (DCGM and vramtop's exporter on the same host) is taken
from the first; the second profile's query for it asks only for the GPUs the first has no
number for (queries._shadowed: ``X unless on (uuid) first's X``). Where the first covers every
GPU, that join returns nothing and still costs Prometheus both sides' series: at 1000 hosts x
8 GPUs, four such queries were a quarter of its CPU per refresh.

So once a refresh shows that those queries answered nothing, they are left out (what they
would say is known: nothing) while each later refresh's own answers show the same: every GPU
the second profile reports has the first's number for each such figure, or had none from
either when they were last asked. They are asked again at least every RECHECK seconds; a
refresh that left them out and finds a GPU the first no longer covers asks them at once, in
one more request, so that GPU's figures are in the same refresh, as before."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from vramtop.profiles import Profile
from vramtop.sources.promreadings import Answer
from vramtop.sources.queries import Query

RECHECK = 30.0  # seconds: what the check cannot see (a figure either exporter starts to report)

Gap = tuple[Query, str]  # a deferring query, and a GPU (UUID as written) it would ask for


def gaps(
    answers: Iterable[Answer], profiles: Mapping[str, Profile], deferring: Iterable[Query]
) -> set[Gap] | None:
    """The GPUs each query in ``deferring`` asks for, by what ``answers`` say: those its
    profile reports for which no profile it defers to has a number for that figure. None
    where that is not known (an answer of a GPU profile failed) or a deferring query's own
    answer among ``answers`` holds series."""
    deferring = list(deferring)
    mine = {q.profile for q in deferring}
    # (metric, UUID label) -> the UUIDs with a number for it; NaN (None) is none, as ">= -Inf"
    # drops it there
    have: dict[tuple[str, str], set[str | None]] = {
        pair: set() for q in deferring for pair in q.defers_to
    }
    reported: dict[str, set[str | None]] = {}  # profile -> the UUIDs it reports
    for a in answers:
        p = profiles.get(a.query.profile)
        if p is None or p.kind != "gpu" or not p.uuid_label:
            continue
        if a.error or (a.query.defers_to and a.samples):
            return None
        label = p.uuid_label
        if p.name in mine:
            reported.setdefault(p.name, set()).update(labels.get(label) for labels, _ in a.samples)
        for labels, value in a.samples:
            if value is not None:
                found = have.get((labels.get("__name__", ""), label))
                if found is not None:
                    found.add(labels.get(label))
    out: set[Gap] = set()
    for q in deferring:
        covered = set().union(*(have[pair] for pair in q.defers_to))
        out.update((q, uuid) for uuid in reported.get(q.profile, set()) - covered if uuid)
    return out
