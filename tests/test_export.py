"""Text, Markdown and JSON exports of one Frame."""

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from samples import HOSTILE, empty_frame, frame

from vramtop.clean import literal as fmt_literal
from vramtop.clean import width as fmt_width
from vramtop.collector import models_of
from vramtop.export import render
from vramtop.model import AlertReading, Frame, ModelReading, ProcessReading, SourceStatus, freeze

SCHEMA = json.loads(
    (Path(__file__).parent.parent / "vramtop" / "schemas" / "vramtop-1.schema.json").read_text()
)
ESC = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.mark.parametrize("make", [frame, empty_frame])
def test_json_matches_the_schema(make):
    doc = json.loads(render(make(), "json"))
    jsonschema.validate(doc, SCHEMA)
    assert doc["schema"] == "vramtop/1" and doc["time"] == "2026-11-18T11:06:40Z"


def test_json_values_not_available_are_null_never_zero():
    doc = json.loads(render(frame(), "json"))
    g0, _, lost = doc["gpus"]
    assert g0["temperature_c"] is None
    assert g0["unavailable"]["temperature_c"] == "not supported on this GPU"
    assert g0["processes"][1]["used_memory_bytes"] is None
    assert g0["processes"][1]["detail"].startswith("not visible here")
    assert lost["state"] == "lost" and lost["memory_used_bytes"] is None
    assert isinstance(g0["memory_total_bytes"], int) and g0["memory_total_bytes"] == 80 * 2**30
    assert doc["sources"][1] == {
        "name": "nvml",
        "status": "stale",
        "detail": "no answer within 5 s",
        "since": "2026-11-18T11:06:30Z",
    }


def test_json_models_sum_their_processes():
    doc = json.loads(render(frame(), "json"))
    llama = next(m for m in doc["models"] if m["name"] == "llama")
    assert {k: llama[k] for k in ("name", "vram_bytes", "processes", "gpus", "model_sources")} == {
        "name": "llama",
        "vram_bytes": 40 * 2**30,
        "processes": [101],
        "gpus": [0],
        "model_sources": ["cmdline"],
    }
    assert llama["latency_p95_seconds"] is None and llama["instances"] == []


def test_json_keeps_hostile_text_exactly_and_ascii_only():
    text = render(frame(), "json")
    assert text.isascii() and not ESC.search(text)
    doc = json.loads(text)
    assert doc["gpus"][1]["processes"][0]["command"] == HOSTILE


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_text_formats_show_hostile_text_literally(fmt):
    out = render(frame(), fmt)
    assert not ESC.search(out), "a control character from outside reached the output"
    assert "\\x1b" in out and "\\x9b31m" in out
    assert "[bold red]x[/]" in out.replace("\\", "")


def test_text_has_every_section_host_time_and_no_ansi():
    out = render(frame(), "text")
    assert "\x1b" not in out
    assert out.splitlines()[0] == "vramtop · gpu-box-01 · 2026-11-18T11:06:40Z · driver 550.54.15"
    for section in ("Host", "GPUs", "Processes", "Models", "Sources"):
        assert f"\n{section}\n" in out
    assert "79.0 / 80.0 GiB (99%)" in out and "LOST" in out
    assert "GPU 0 temperature_c: not supported on this GPU" in out
    assert "stale since 11:06:30Z" in out


def test_text_colour_only_on_request():
    assert "\x1b[31;1m" in render(frame(), "text", color=True)


def test_markdown_tables_survive_pipes():
    out = render(frame(), "markdown")
    assert out.startswith("## vramtop · gpu-box-01 · 2026-11-18T11:06:40Z")
    rows = [line for line in out.splitlines() if line.startswith("| 1 | 103 ")]
    assert len(rows) == 1
    # every unescaped pipe is a column separator: the row has exactly the header's columns
    cells = re.split(r"(?<!\\)\|", rows[0])
    assert len(cells) == 13 + 2


def test_empty_host_without_gpu():
    out = render(empty_frame(), "text")
    assert "(no GPUs)" in out and "libnvidia-ml.so.1 not found" in out


# -- hostile labels: bounded cells, invisible characters escaped ------------------------------

LONG = "m" * 10_000
INVISIBLE = {
    "\u202e": "\\u202e",  # right-to-left override
    "\u2066": "\\u2066",  # left-to-right isolate
    "\u2069": "\\u2069",  # pop directional isolate
    "\u200b": "\\u200b",  # zero-width space
    "\u200d": "\\u200d",  # zero-width joiner
    "\u200f": "\\u200f",  # right-to-left mark
    "\u2060": "\\u2060",  # word joiner
    "\ufeff": "\\ufeff",  # byte order mark
    "\u2028": "\\u2028",  # line separator
    "\u2029": "\\u2029",  # paragraph separator
    "\U000e0041": "\\U000e0041",  # a tag character
    "\t": "\\x09",
}
HOSTILE_LABELS = [
    LONG,
    "evil\u202eoprah" + "x" * 300,
    "a\u200db\u2066c\u2069" * 500,
    "tab\there\tand\tthere" * 300,
    "[bold]" * 2000,
    "|pipe|" * 2000,
    "漢字" * 3000,  # wide characters: two columns each
    "e\u0301" * 5000,  # combining marks: no column of their own
    "&lt;script&gt;" * 500,
]


def hostile_frame(name: str) -> Frame:
    base = frame()
    proc = ProcessReading(7, 0, 2**30, "compute", name, name, name, name, "rule")
    gpu = replace(base.gpus[0], name=name, uuid=name, processes=(proc,), host=name)
    alert = AlertReading(name, name, "firing", name, freeze({"x": name}))
    return replace(
        base,
        host=replace(base.host, hostname=name, disk_path=name[:20]),
        gpus=(gpu,),
        models=(*models_of((gpu,)), ModelReading(name, 2**30, instances=(name, name))),
        alerts=(alert,),
        sources=(SourceStatus("scrape", "error", name),),
        driver_version=name,
    )


@pytest.mark.parametrize("name", HOSTILE_LABELS, ids=range(len(HOSTILE_LABELS)))
def test_hostile_labels_keep_every_line_bounded(name):
    f = hostile_frame(name)
    for fmt_name in ("text", "markdown"):
        out = render(f, fmt_name)
        widest = max(fmt_width(line) for line in out.splitlines())
        assert widest < 1500, (fmt_name, widest)
        assert "\t" not in out and "\u202e" not in out and "\u200d" not in out
    doc = json.loads(render(f, "json"))
    assert doc["models"][-1]["name"] == name and doc["gpus"][0]["name"] == name  # JSON: whole


def test_invisible_and_direction_characters_are_escaped():
    for raw, shown in INVISIBLE.items():
        assert fmt_literal(f"a{raw}b") == f"a{shown}b", repr(raw)
        f = hostile_frame(f"model{raw}name")
        for fmt_name in ("text", "markdown"):
            out = render(f, fmt_name)
            assert raw not in out, (fmt_name, repr(raw))
            assert shown.replace("\\", "\\\\" if fmt_name == "markdown" else "\\") in out


def test_every_unicode_format_character_is_escaped():
    import sys
    import unicodedata

    shown_raw = [
        hex(code)
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in ("Cc", "Cf", "Zl", "Zp")
        and fmt_literal(chr(code)) == chr(code)
    ]
    assert shown_raw == []


def test_text_table_columns_line_up_with_wide_and_hostile_names():
    out = render(hostile_frame("漢字\u202e" * 3), "text")
    lines = out.split("\nModels\n")[1].splitlines()[:2]  # header and the first row
    head, row = lines
    assert fmt_width(head[: head.index("VRAM")]) == fmt_width(row[: row.index("1.0 GiB")])


def test_markdown_escapes_ampersand_and_keeps_the_table_shape():
    out = render(hostile_frame("a&lt;b&amp;|c"), "markdown")
    assert "a\\&lt;b\\&amp;\\|c" in out
    rows = [line for line in out.splitlines() if line.startswith("| a\\&lt;b\\&amp;\\|c | 1.0 GiB")]
    assert rows and all(len(re.split(r"(?<!\\)\|", r)) == 11 + 2 for r in rows)


# -- values: non-finite and huge ----------------------------------------------------------------

ODD = [math.nan, math.inf, -math.inf, 1e308, -1.0, 1e20, 0.0]


def odd_frame(v: float) -> Frame:
    base = frame()
    big = int(v) if math.isfinite(v) else None
    gpu = replace(
        base.gpus[0],
        utilization_percent=v,
        temperature_c=v,
        power_watts=v,
        power_limit_watts=v,
        memory_used_bytes=big,
        memory_total_bytes=big,
    )
    model = ModelReading(
        "odd",
        big,
        latency_p50_seconds=v,
        latency_p95_seconds=v,
        latency_p99_seconds=v,
        requests_per_second=v,
        error_ratio=v,
        queue_length=v,
        extras=freeze({"kv": v}),
    )
    host = replace(base.host, cpu_percent=v, load_average=(v, v, v), memory_used_bytes=big)
    return replace(base, gpus=(gpu,), models=(model,), host=host)


@pytest.mark.parametrize("v", ODD, ids=str)
def test_odd_values_never_print_as_nan_inf_or_hundreds_of_digits(v):
    f = odd_frame(v)
    for fmt_name in ("text", "markdown"):
        out = render(f, fmt_name)
        assert not re.search(r"\b(nan|inf|infinity)\b", out, re.IGNORECASE), out
        assert not re.search(r"\d{19}", out), "a huge value printed in full"

    def refuse(name):
        raise AssertionError(f"{name} in JSON")

    doc = json.loads(render(f, "json"), parse_constant=refuse)
    jsonschema.validate(doc, SCHEMA)
    model, gpu = doc["models"][0], doc["gpus"][0]
    if not math.isfinite(v):
        assert model["queue_length"] is None and "queue_length" in model["unavailable"]
        assert "kv" not in model["extras"] and "extras.kv" in model["unavailable"]
        assert gpu["temperature_c"] is None and "temperature_c" in gpu["unavailable"]
    if math.isfinite(v) and v >= 1e20:
        assert model["vram_bytes"] is None and "vram_bytes" in model["unavailable"]
        assert gpu["memory_used_bytes"] is None and "memory_used_bytes" in gpu["unavailable"]
    if v == 0:
        assert model["queue_length"] == 0 and gpu["memory_used_bytes"] == 0
    if v == -1:  # a gauge may go below zero; a byte count or a ratio may not
        assert model["queue_length"] == -1 and model["error_ratio"] is None
        assert gpu["memory_used_bytes"] is None and "memory_used_bytes" in gpu["unavailable"]


def test_live_view_number_cells_have_no_nan_or_long_digits():
    from vramtop.tui import cells

    for v in ODD:
        for fn in (cells.seconds, cells.rate, cells.percent_ratio, cells.count, cells.gib):
            shown = fn(v)
            assert len(shown) <= 12, (fn.__name__, v, shown)
            assert not re.search(r"nan|inf", shown, re.IGNORECASE), (fn.__name__, v, shown)
        assert cells.used_total(int(v) if math.isfinite(v) else None, 2**40) != ""
        assert len(cells.bar(v, 10, "", "").plain) == 10
        assert len(cells.spark([v, 0.5], 4, "").plain) == 4
