"""The overview's tables as columns: which ones, how wide, which go first when space is short.
The live view (vramtop.tui) and its first paint (vramtop.export.overview) both lay out these."""

from __future__ import annotations

from vramtop import serving
from vramtop.model import ModelReading
from vramtop.records import record


@record(slots=False)
class Col:
    key: str
    label: str
    width: int
    priority: int = 0  # 0 is always shown; higher numbers go first when space is short
    justify: str = "left"
    flex: bool = False  # takes a share of the spare width
    sortable: bool = True
    max_width: int = 0  # for flex columns; 0: no limit


MIN_FLEX = 6
PADDING = 1  # blank cells on each side of a column


def fit_columns(cols: tuple[Col, ...], width: int, padding: int = PADDING) -> list[tuple[Col, int]]:
    """Columns (in order) with their widths: as many as fit, most important first."""
    chosen: set[int] = set()
    used = 0
    for i, col in sorted(enumerate(cols), key=lambda ic: (ic[1].priority, ic[0])):
        need = col.width + 2 * padding
        if used + need <= width or col.priority == 0:
            chosen.add(i)
            used += need
    spare = width - used
    flex = [i for i in sorted(chosen) if cols[i].flex]
    widths = {i: cols[i].width for i in chosen}
    for i in reversed(flex):  # too narrow even so: flexible columns give up to MIN_FLEX
        if spare >= 0:
            break
        take = min(widths[i] - MIN_FLEX, -spare)
        if take > 0:
            widths[i] -= take
            spare += take
    while spare > 0 and flex:
        share = max(1, spare // len(flex))
        grown = False
        for i in flex:
            cap = cols[i].max_width or 10**6
            extra = min(share, spare, cap - widths[i])
            if extra > 0:
                widths[i] += extra
                spare -= extra
                grown = True
        if not grown:
            break
    return [(cols[i], widths[i]) for i in sorted(chosen)]


GPU_COLUMNS: tuple[Col, ...] = (
    Col("index", "#", 2, justify="right"),
    Col("name", "Name", 15, priority=4),
    Col("bar", "VRAM", 10, flex=True, max_width=50),
    Col("used", "Used", 9, justify="right"),
    Col("share", "Mem", 4, priority=3, justify="right"),
    Col("util", "Util", 4, justify="right"),
    Col("temp", "Temp", 4, priority=1, justify="right"),
    Col("power", "Power", 9, priority=2, justify="right"),
    Col("spark", "History", 8, priority=1, flex=True, sortable=False),
    Col("procs", "Procs", 5, priority=3, justify="right"),
    # The longest word is "retire pending"; at 80 columns Mem % and Procs make room.
    Col("health", "Health", 13, flex=True, max_width=14),
)
GPU_HOST = Col("host", "Host", 12, priority=2, flex=True, max_width=32)


def gpu_spec(spans_hosts: bool) -> tuple[Col, ...]:
    """GPUs of several hosts (the whole fleet on one overview) say whose each one is."""
    return (GPU_COLUMNS[0], GPU_HOST, *GPU_COLUMNS[1:]) if spans_hosts else GPU_COLUMNS


# Every column the Models table can show, in its order; ``columns = [...]`` picks among these.
MODEL_COLUMNS: tuple[Col, ...] = (
    Col("name", "Model", 16, flex=True, max_width=48),
    Col("vram", "VRAM", 7, justify="right"),
    Col("kv", "KV%", 4, priority=1, justify="right"),
    Col("p50", "p50", 6, priority=2, justify="right"),
    Col("p95", "p95", 6, justify="right"),
    Col("ttft", "TTFT", 6, priority=1, justify="right"),
    Col("itl", "ITL", 6, priority=2, justify="right"),
    Col("p99", "p99", 6, priority=1, justify="right"),
    Col("tokens", "Tok/s", 6, priority=2, justify="right"),
    Col("running", "Run", 4, priority=2, justify="right"),
    Col("rps", "Req/s", 7, justify="right"),
    Col("err", "Err", 6, justify="right"),
    Col("queue", "Queue", 5, justify="right"),
    Col("preempt", "Pre/s", 6, priority=3, justify="right"),
    Col("gpus", "GPUs", 5, priority=3),
    Col("hosts", "Hosts", 12, priority=4, flex=True, max_width=40),
    Col("via", "Via", 7, priority=5),
)
MODEL_KEYS = tuple(c.key for c in MODEL_COLUMNS)
assert MODEL_KEYS == serving.MODEL_COLUMNS, "the config's column names are the table's"
# Shown when no ``columns`` are configured; the serving ones join when a model has them.
MODEL_BASE = ("name", "vram", "p50", "p95", "p99", "rps", "err", "queue", "gpus", "hosts", "via")
# column -> the extras figure behind it
SERVING = {
    "kv": "kv_cache_usage_ratio",
    "ttft": "ttft_p95_seconds",
    "itl": "inter_token_p95_seconds",
    "tokens": "generation_tokens_per_second",
    "running": "running_requests",
    "preempt": "preemptions_per_second",
}
AUTO = ("kv", "ttft")  # joined automatically when any model has them


def auto_columns(models: tuple[ModelReading, ...]) -> tuple[str, ...]:
    """The default columns for these models: the base set, plus KV% and TTFT where known."""
    have = {k for k in AUTO if any(SERVING[k] in m.extras for m in models)}
    return tuple(c.key for c in MODEL_COLUMNS if c.key in MODEL_BASE or c.key in have)


def model_spec(keys: tuple[str, ...]) -> tuple[Col, ...]:
    """The columns for these keys, in the table's order; the name always first."""
    wanted = {"name", *keys}
    return tuple(c for c in MODEL_COLUMNS if c.key in wanted)


PROCESS_COLUMNS: tuple[Col, ...] = (
    Col("pid", "PID", 7, justify="right"),
    Col("gpu", "GPU", 3, priority=2, justify="right"),
    Col("user", "User", 10, priority=1),
    Col("vram", "VRAM", 7, justify="right"),
    Col("sm", "SM%", 4, priority=1, justify="right"),
    Col("mem", "Mem%", 4, priority=2, justify="right"),
    Col("cpu", "CPU%", 5, priority=2, justify="right"),
    Col("rss", "RSS", 6, priority=3, justify="right"),
    Col("age", "Age", 5, priority=3, justify="right"),
    Col("model", "Model", 14, priority=1, flex=True, max_width=36),
    Col("command", "Command", 20, flex=True),
)

ALERT_COLUMNS: tuple[Col, ...] = (
    Col("state", "State", 8),
    Col("severity", "Severity", 8, priority=1),
    Col("age", "Age", 5, priority=1, justify="right"),
    Col("name", "Alert", 14, flex=True, max_width=32),
    Col("summary", "Summary", 16, priority=2, flex=True),
    Col("source", "From", 5, priority=2),  # after the summary when space is short
)
