"""Text, Markdown and JSON exports of one Frame."""

import json
import re
from pathlib import Path

import jsonschema
import pytest
from samples import HOSTILE, empty_frame, frame

from vramtop.export import render

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
    assert len(cells) == 8 + 2


def test_empty_host_without_gpu():
    out = render(empty_frame(), "text")
    assert "(no GPUs)" in out and "libnvidia-ml.so.1 not found" in out
