"""Reading one large /metrics answer: the hand-written parser vramtop used first against
prometheus_client's text and OpenMetrics parsers (and vramtop's reader around them).

    python bench/parse_exposition.py [--mb 2] [--runs 5]

The answer is what a busy vLLM host serves: many models, each with vLLM's gauges, counters
and latency histograms at the server's own buckets (current names), until it is ``--mb`` MB;
the OpenMetrics form of the same samples adds ``_created``, exemplars on every third bucket
and ``# EOF``. Parse time is the median CPU time of ``--runs`` runs (CPU, not wall: on a shared
machine the wall clock measures the neighbours); peak memory is tracemalloc's peak for one run
(a separate run: tracing slows parsing). Nothing else runs in this process.
"""

from __future__ import annotations

import argparse
import gc
import math
import re
import statistics
import sys
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as om_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

from vramtop.sources.exposition import read

OM_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TTFT = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10)
ITL = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
E2E = (0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960)
HISTOGRAMS = {
    "vllm:time_to_first_token_seconds": TTFT,
    "vllm:inter_token_latency_seconds": ITL,
    "vllm:e2e_request_latency_seconds": E2E,
    "vllm:request_queue_time_seconds": E2E,
    "vllm:request_prefill_time_seconds": E2E,
    "vllm:request_decode_time_seconds": E2E,
}
GAUGES = ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc")
COUNTERS = (
    "vllm:num_preemptions",
    "vllm:prompt_tokens",
    "vllm:generation_tokens",
    "vllm:prefix_cache_queries",
    "vllm:prefix_cache_hits",
)


# -- the hand-written parser, as vramtop shipped it before prometheus_client (commit 6dddd2d) --

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def old_parse(text: str) -> dict:
    out: dict = defaultdict(dict)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise ValueError(f"line {number} is not a metric sample")
        name, raw_labels, raw_value = m.groups()
        labels = _old_labels(raw_labels[1:-1], number) if raw_labels else ()
        out[name][labels] = float(raw_value)
    return dict(out)


def _old_labels(text: str, number: int) -> tuple:
    pairs, pos, text = [], 0, text.strip()
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if not m:
            raise ValueError(f"line {number} has malformed labels")
        value = re.sub(r"\\[\\\"n]", lambda e: _UNESCAPE[e.group()], m.group(2))
        pairs.append((m.group(1), value))
        pos = m.end()
    return tuple(sorted(pairs))


# -- the answer ---------------------------------------------------------------------------


def _fmt(v: float) -> str:
    return "+Inf" if math.isinf(v) else repr(float(v))


def _model(i: int, om: bool) -> list[str]:
    lab = f'model_name="org-{i % 17}/model-{i}-instruct",engine="0"'
    lines = []
    for n, g in enumerate(GAUGES):
        lines.append(f"{g}{{{lab}}} {(i * 7 + n) % 100 / 100}")
    for n, c in enumerate(COUNTERS):
        lines.append(f"{c}_total{{{lab}}} {1000.0 * (i + n + 1)}")
        if om:
            lines.append(f"{c}_created{{{lab}}} 1.7e9")
    for reason in ("stop", "length", "abort", "error"):
        lines.append(f'vllm:request_success_total{{{lab},finished_reason="{reason}"}} {i * 3.0}')
    for h, bounds in HISTOGRAMS.items():
        total = 5000 + i  # OpenMetrics wants whole bucket counts
        for k, le in enumerate((*bounds, math.inf)):
            count = int(total * min(1.0, (k + 1) / len(bounds)))
            seen = le / 2 if le != math.inf else 99  # an exemplar's value lies in its bucket
            ex = f' # {{trace_id="{i:08x}{k:04x}"}} {seen}' if om else ""
            lines.append(f'{h}_bucket{{{lab},le="{_fmt(le)}"}} {count}{ex if k % 3 == 0 else ""}')
        lines.append(f"{h}_sum{{{lab}}} {total * 0.4}")
        lines.append(f"{h}_count{{{lab}}} {total}")
        if om:
            lines.append(f"{h}_created{{{lab}}} 1.7e9")
    return lines


def _headers(om: bool) -> dict[str, str]:
    """The HELP/TYPE lines, emitted once before each family's first sample."""
    kinds = {**{g: "gauge" for g in GAUGES}, **{h: "histogram" for h in HISTOGRAMS}}
    kinds.update({c: "counter" for c in (*COUNTERS, "vllm:request_success")})
    return {name: f"# HELP {name} {name}.\n# TYPE {name} {kind}" for name, kind in kinds.items()}


def models_for(mb: float) -> int:
    """How many models make a text-format answer of ``mb`` MB."""
    per = sum(len(line) + 1 for line in _model(0, False))
    return max(1, round(mb * 1e6 / per))


def exposition(models: int, om: bool) -> str:
    """Families grouped as a server writes them: every model's samples under one TYPE line."""
    per_family: dict[str, list[str]] = defaultdict(list)
    for i in range(models):
        for line in _model(i, om):
            name = line.split("{", 1)[0]
            family = re.sub(r"_(bucket|sum|count|total|created)$", "", name)
            per_family[family].append(line)
    heads = _headers(om)
    parts = [heads[f] + "\n" + "\n".join(lines) for f, lines in per_family.items()]
    return "\n".join(parts) + ("\n# EOF\n" if om else "\n")


# -- measuring ----------------------------------------------------------------------------


def _consume(families) -> int:  # type: ignore[no-untyped-def]
    return sum(len(f.samples) for f in families)


def measure(parse: Callable[[], object], runs: int) -> tuple[float, float]:
    """(median CPU seconds, peak MiB)."""
    parse()  # warm: imports, regex compilation
    times = []
    for _ in range(runs):
        gc.collect()
        t0 = time.process_time()
        parse()
        times.append(time.process_time() - t0)
    gc.collect()
    tracemalloc.start()
    parse()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=2.0, help="size of the answer (default 2 MB)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per parser (default 5)")
    args = ap.parse_args()
    models = models_for(args.mb)
    text, om = exposition(models, False), exposition(models, True)
    samples = sum(1 for ln in text.splitlines() if ln and not ln.startswith("#"))
    print(
        f"text format {len(text) / 1e6:.2f} MB, OpenMetrics {len(om) / 1e6:.2f} MB: "
        f"{models} models, {samples} samples (text)"
    )
    # Before timing: every parser reads the same samples (OpenMetrics adds its _created).
    baseline = read(text, "text/plain").samples
    from_om = {k: v for k, v in read(om, OM_TYPE).samples.items() if not k.endswith("_created")}
    agree = old_parse(text) == baseline and from_om == baseline
    print(f"the parsers read the same samples: {'yes' if agree else 'NO'}")
    cases = (
        ("hand-written regex parser (old)", "text", lambda: old_parse(text)),
        ("prometheus_client text parser", "text", lambda: _consume(text_families(text))),
        ("vramtop read() on it", "text", lambda: read(text, "text/plain")),
        ("prometheus_client OpenMetrics parser", "OM", lambda: _consume(om_families(om))),
        ("vramtop read() on it", "OM", lambda: read(om, OM_TYPE)),
    )
    rows = []
    for name, fmt, parse in cases:
        seconds, peak = measure(parse, args.runs)
        rows.append((name, fmt, seconds, peak))
    base = rows[0][2]
    print(f"{'parser':<38} | format |   CPU time | peak memory | time / old")
    for name, fmt, seconds, peak in rows:
        print(
            f"{name:<38} | {fmt:>6} | {seconds * 1e3:>7.0f} ms | {peak:>7.1f} MiB | "
            f"{seconds / base:>9.2f}x"
        )
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
