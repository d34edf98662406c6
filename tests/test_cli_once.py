"""`vramtop --once` end to end: a real subprocess, the real pynvml, the fake driver."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import jsonschema

from vramtop.demo.scenario import Gpu, Process, Scenario

GIB = 2**30
SCHEMA = json.loads(
    (Path(__file__).parent.parent / "vramtop/schemas/vramtop-1.schema.json").read_text()
)
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def host_with(pids: list[int]) -> Scenario:
    return Scenario(
        gpus=(
            Gpu(
                uuid="GPU-aaaa-1111",
                memory_used=40 * GIB,
                processes=tuple(Process(pid, 20 * GIB) for pid in pids),
            ),
            Gpu(uuid="GPU-bbbb-2222", errors={"temperature": "NOT_SUPPORTED"}),
        )
    )


def test_text_frame(run_vramtop, spawn):
    child = spawn("vllm", "serve", "--served-model-name", "llama-3-8b")
    out = run_vramtop("--once", scenario=host_with([child.pid]))
    assert out.returncode == 0, out.stderr
    assert out.stderr == "" and "\x1b" not in out.stdout
    first = out.stdout.splitlines()[0]
    assert first.startswith("vramtop · ") and ISO.search(first)
    for needle in (
        "GPU-aaaa-1111",
        "llama-3-8b",
        "cmdline",
        "40.0 / 80.0 GiB (50%)",
        "GPU 1 temperature_c: not supported on this GPU",
        "nvml    ok",
    ):
        assert needle in out.stdout, needle
    assert run_vramtop("-1", scenario=host_with([])).returncode == 0


def test_json_frame_matches_schema(run_vramtop, spawn):
    child = spawn("--model", "org/m")
    for args in (["--json"], ["--once", "--format", "json"]):
        out = run_vramtop(*args, scenario=host_with([child.pid]))
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        jsonschema.validate(doc, SCHEMA)
        assert doc["gpus"][0]["processes"][0]["model"] == "org/m"
        assert doc["gpus"][1]["temperature_c"] is None
        (model,) = doc["models"]
        assert {k: model[k] for k in ("name", "vram_bytes", "processes", "gpus")} == {
            "name": "org/m",
            "vram_bytes": 20 * GIB,
            "processes": [child.pid],
            "gpus": [0],
        }
        assert model["model_sources"] == ["cmdline"] and model["latency_p95_seconds"] is None


def test_markdown_and_output_file(run_vramtop, tmp_path):
    target = tmp_path / "frame.md"
    out = run_vramtop("--once", "--format", "markdown", "-o", str(target), scenario=host_with([]))
    assert out.returncode == 0 and out.stdout == ""
    text = target.read_text()
    assert text.startswith("## vramtop · ") and "| # | Name | UUID |" in text
    assert list(tmp_path.glob("frame.md.tmp*")) == []


def test_unwritable_output_is_one_sentence_exit_2(run_vramtop, tmp_path):
    out = run_vramtop(
        "--once", "-o", str(tmp_path / "no" / "such" / "dir.txt"), scenario=host_with([])
    )
    assert out.returncode == 2
    assert out.stderr.startswith("vramtop: cannot write ") and out.stderr.count("\n") == 1


def test_machine_without_gpu_driver(run_vramtop):
    out = run_vramtop("--once", env={"LD_LIBRARY_PATH": "/nonexistent"})
    assert out.returncode == 0, out.stderr
    assert "no NVIDIA driver on this host (libnvidia-ml.so.1 not found)" in out.stdout
    assert "(no GPUs)" in out.stdout and "of " in out.stdout  # host CPU still complete


def test_cuda_visible_devices_and_gpus_flag(run_vramtop):
    scenario = host_with([])
    doc = json.loads(
        run_vramtop("--json", scenario=scenario, env={"CUDA_VISIBLE_DEVICES": "GPU-bbbb"}).stdout
    )
    assert [g["index"] for g in doc["gpus"]] == [1]
    doc = json.loads(
        run_vramtop(
            "--json", "--gpus", "0", scenario=scenario, env={"CUDA_VISIBLE_DEVICES": "1"}
        ).stdout
    )
    assert [g["index"] for g in doc["gpus"]] == [0]
    doc = json.loads(run_vramtop("--json", scenario=scenario, env={"VRAMTOP_GPUS": "1,0"}).stdout)
    assert [g["index"] for g in doc["gpus"]] == [0, 1]


def test_config_file_rules_apply(run_vramtop, spawn, tmp_path):
    child = spawn("serve.py", "--weights", "/w/yolov10n.onnx")
    conf = tmp_path / "xdg" / "vramtop"
    conf.mkdir(parents=True)
    (conf / "config.toml").write_text(
        '[[attribution]]\npattern = "yolov10"\nmodel = "face-detector"\n'
    )
    doc = json.loads(run_vramtop("--json", scenario=host_with([child.pid])).stdout)
    p = doc["gpus"][0]["processes"][0]
    assert (p["model"], p["model_source"]) == ("face-detector", "rule")


def test_hostile_command_line_is_shown_literally(run_vramtop, spawn):
    child = spawn("--served-model-name", "[bold red]evil[/]\x1b[2J\x1b]0;title\x07")
    out = run_vramtop("--once", scenario=host_with([child.pid]))
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout
    assert "[bold red]evil[/]\\x1b[2J" in out.stdout
    doc = json.loads(run_vramtop("--json", scenario=host_with([child.pid])).stdout)
    assert doc["models"][0]["name"] == "[bold red]evil[/]\x1b[2J\x1b]0;title\x07"


def on_a_terminal(run_vramtop, *args: str, env: dict | None = None) -> str:
    """Runs vramtop with stdout on a pseudo-terminal, as a person at a shell would."""
    import os
    import pty

    primary, secondary = pty.openpty()
    try:
        out = run_vramtop(*args, scenario=host_with([]), env=env, stdout=secondary)
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
    assert out.returncode == 0, out.stderr
    return b"".join(chunks).decode()


def test_colour_only_on_a_terminal_and_never_with_no_color(run_vramtop):
    assert "\x1b[" in on_a_terminal(run_vramtop, "--once")
    assert "\x1b[" not in on_a_terminal(run_vramtop, "--once", "--no-color")
    assert "\x1b[" not in on_a_terminal(run_vramtop, "--once", env={"NO_COLOR": "1"})
    assert "\x1b[" not in on_a_terminal(run_vramtop, "--once", env={"VRAMTOP_NO_COLOR": "true"})


def test_demo_once_every_format(run_vramtop):
    out = run_vramtop("--demo", "--json", env={"LD_LIBRARY_PATH": "/nonexistent"})
    doc = json.loads(out.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert doc["demo"] is True and doc["host"]["name"] == "demo-gpu-host"
    assert len(doc["gpus"]) == 4 and {m["name"] for m in doc["models"]} >= {
        "llama-3.1-70b",
        "yolov10n",
        "bge-large-en-v1.5",
    }
    text = run_vramtop("--demo", "--once").stdout
    assert "DEMO (simulated host)" in text.splitlines()[0]
    assert "## vramtop · demo-gpu-host" in run_vramtop("--demo", "--format", "markdown").stdout


def test_output_to_a_device_writes_in_place_and_never_replaces_it(run_vramtop, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    import threading

    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    out = run_vramtop("--json", "-o", str(fifo), scenario=host_with([]))
    reader.join(timeout=30)
    assert out.returncode == 0, out.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode), "the FIFO must still be a FIFO"
    assert json.loads(got[0])["schema"] == "vramtop/1"
    assert run_vramtop("--json", "-o", os.devnull, scenario=host_with([])).returncode == 0
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
