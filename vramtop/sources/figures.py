"""Per-model figures (as computed by PromQL or between two scrapes) -> one ModelReading."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vramtop.model import ModelReading, freeze
from vramtop.profiles import Profile

MAX_BYTES = 2**63 - 1  # what any byte counter can hold; beyond is a broken exporter


def serving_reasons(
    p: Profile, f: Mapping[str, float], nodata: set[str], where: str, idle: str
) -> dict[str, str]:
    """Why each latency or serving figure the profile names is missing for one model: no
    requests in the window (the metric is there, its rate is 0/0: ``idle`` says so), the metric
    not found (an
    older or newer server, a flag not set), or what the profile says the server never exports.
    Keys as in ``unavailable``: latency_p95_seconds, extras.<key>."""
    out: dict[str, str] = {}
    for key, s in p.series.items():
        if key == "latency":
            have, reason_key = "latency.0.95" in f, "latency_p95_seconds"
        elif key.startswith("extras."):
            have, reason_key = key in f, key
        else:
            continue
        if have:
            continue
        if key in nodata:
            out[reason_key] = idle
        else:
            out[reason_key] = f"metric `{s.metrics[0]}` not found {where}"
    for key, why in p.absent.items():
        figure = "latency.0.95" if key == "latency_p95_seconds" else f"extras.{key}"
        if figure not in f:
            out["latency_p95_seconds" if key == "latency_p95_seconds" else figure] = why
    return out


def model_from_figures(
    name: str,
    f: Mapping[str, float],
    profile: str | None,
    instances: tuple[str, ...],
    missing: Mapping[str, str] | None = None,
) -> ModelReading:
    """``f`` holds latency.0.5/0.95/0.99, requests or successes, errors, queue, vram and
    extras.*; the error ratio is errors over all requests (successes + errors where a server
    counts them apart, as Triton does)."""
    requests = f.get("requests")
    if requests is None and "successes" in f:
        requests = f["successes"] + f.get("errors", 0.0)
    errors = f.get("errors")
    ratio = None
    if errors is not None and requests:
        ratio = errors / requests
    elif errors == 0 and requests == 0:
        ratio = 0.0
    reasons = {k: v for k, v in (missing or {}).items() if k not in f}  # another target had it
    if "latency.0.95" in f:
        reasons.pop("latency_p95_seconds", None)
    if f.get("latency.0.95") is None and not {"latency", "latency_p95_seconds"} & set(reasons):
        reasons["latency_p95_seconds"] = "no requests in the rate window, or no latency metric"
    if ratio is None and "error_ratio" not in reasons:
        reasons["error_ratio"] = "no requests in the rate window, or no error counter"
    extras = {k.removeprefix("extras."): v for k, v in f.items() if k.startswith("extras.")}
    vram = f.get("vram")
    if vram is not None and not 0 <= vram <= MAX_BYTES:
        reasons["vram"] = f"{vram:.3g} bytes is not a possible size"
        vram = None
    return ModelReading(
        name=name,
        vram_bytes=None if vram is None else int(vram),
        latency_p50_seconds=f.get("latency.0.5"),
        latency_p95_seconds=f.get("latency.0.95"),
        latency_p99_seconds=f.get("latency.0.99"),
        requests_per_second=requests,
        error_ratio=ratio,
        queue_length=f.get("queue"),
        instances=instances,
        profile=profile,
        extras=MappingProxyType(extras),
        unavailable=freeze(reasons),
    )
