"""Process -> model attribution, from command lines people really run."""

import os
import re
import subprocess
import sys
import time

import pytest
from conftest import wait_for_exec

from vramtop.attribution import Attributor, Rule, model_from_argv
from vramtop.sources.procs import GONE, ProcessInspector, ProcInfo


@pytest.mark.parametrize(
    ("argv", "model"),
    [
        (
            ["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct", "--port", "8000"],
            "meta-llama/Llama-3.1-8B-Instruct",
        ),
        (
            [
                "/usr/bin/python3",
                "-m",
                "vllm.entrypoints.openai.api_server",
                "--model",
                "Qwen/Qwen2.5-7B",
                "--served-model-name",
                "qwen",
            ],
            "qwen",
        ),
        (
            ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model=/models/mistral-7b"],
            "/models/mistral-7b",
        ),
        (
            [
                "python",
                "-u",
                "-m",
                "sglang.launch_server",
                "--model-path",
                "deepseek-ai/DeepSeek-V3",
                "--tp",
                "8",
            ],
            "deepseek-ai/DeepSeek-V3",
        ),
        (
            ["text-generation-launcher", "--model-id", "bigscience/bloom-560m"],
            "bigscience/bloom-560m",
        ),
        (["text-generation-server", "serve", "tiiuae/falcon-7b"], "tiiuae/falcon-7b"),
        (["tritonserver", "--model-repository=/srv/models/"], "triton:models"),
        (
            [
                "tritonserver",
                "--model-repository",
                "/models",
                "--model-control-mode=explicit",
                "--load-model",
                "resnet50",
            ],
            "resnet50",
        ),
        (
            ["./llama-server", "-m", "/data/gguf/Llama-3.2-3B-Instruct-Q4_K_M.gguf", "-ngl", "99"],
            "Llama-3.2-3B-Instruct-Q4_K_M",
        ),
        (["llama-server", "-m", "x.gguf", "--alias", "chat"], "chat"),
        (["ollama", "run", "llama3.1"], "llama3.1"),
        (
            [
                "/usr/lib/ollama/runner",
                "--model",
                "/root/.ollama/models/blobs/sha256-6a0746a1ec1aef3e7ec53868f220ff6e389f6f8ef87a01d77c96807de94ca2aa",
            ],
            "ollama:sha256-6a0746a1ec1a",
        ),
        (
            [
                "torchrun",
                "--nproc_per_node",
                "2",
                "serve.py",
                "--model-name",
                "facesocial-yolov10n",
            ],
            "facesocial-yolov10n",
        ),
        (
            ["env", "CUDA_VISIBLE_DEVICES=1", "python", "app.py", "--model_name_or_path", "gpt2"],
            "gpt2",
        ),
        # python's own -m names a module, never a model
        (["python", "-m", "http.server", "8000"], None),
        (["python", "train.py", "-m", "0.9"], None),
        (["bash", "-c", "sleep 1"], None),
        ([], None),
    ],
)
def test_model_from_command_line(argv, model):
    assert model_from_argv(argv) == model


def test_rules_win_over_the_command_line_and_say_so():
    rules = [Rule(re.compile(r"yolo"), "face-detector")]
    info = ProcInfo(1, argv=("python", "serve.py", "--model", "yolov10n.onnx"))
    assert Attributor(rules).attribute(info) == ("face-detector", "rule")
    assert Attributor().attribute(info) == ("yolov10n.onnx", "cmdline")


def test_container_rule_and_parent_launcher():
    rules = [Rule(re.compile(r"^abc123"), "embedder", "container")]
    info = ProcInfo(1, argv=("python", "worker.py"), container="abc123def456")
    assert Attributor(rules).attribute(info) == ("embedder", "container")
    worker = ProcInfo(
        2,
        argv=("python", "-c", "from multiprocessing.spawn import spawn_main; spawn_main()"),
        ancestors=((1, ("vllm", "serve", "org/m", "--tensor-parallel-size", "2")),),
    )
    assert Attributor().attribute(worker) == ("org/m", "parent")
    assert Attributor().attribute(ProcInfo(3, argv=("sleep", "5"))) == (None, None)


@pytest.mark.parametrize("proc_stat", [None, False], ids=["proc", "psutil"])
def test_real_child_processes_through_proc_and_psutil(proc_stat):
    script = "import time; time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", script, "--served-model-name", 'my model "q"'])
    wait_for_exec(child, ["--served-model-name", 'my model "q"'])
    try:
        inspector = ProcessInspector(proc_stat=proc_stat)
        info = inspector.describe(child.pid)
        assert info.argv[-2:] == ("--served-model-name", 'my model "q"')
        assert info.name and info.user and info.detail is None
        assert info.ancestors == (), "launchers are looked up only when needed"
        full = inspector.with_ancestors(info)
        assert full.ancestors and full.ancestors[0][0] == os.getpid()
        assert Attributor().attribute(info) == ('my model "q"', "cmdline")
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("proc_stat", [None, False], ids=["proc", "psutil"])
def test_pid_that_cannot_be_found_gets_a_reason(proc_stat):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    info = ProcessInspector(proc_stat=proc_stat).describe(child.pid)
    assert info.detail == GONE and info.argv == () and info.user is None


@pytest.mark.parametrize("proc_stat", [None, False], ids=["proc", "psutil"])
def test_zombie_is_reported_as_exited_not_raised(proc_stat):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    import psutil

    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        info = ProcessInspector(proc_stat=proc_stat).describe(child.pid)
        assert info.detail is not None and "exited" in info.detail
    finally:
        child.wait()


def test_cache_is_per_process_lifetime():
    inspector = ProcessInspector()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "--model", "a"])
    wait_for_exec(child, ["--model", "a"])
    try:
        first = inspector.describe(child.pid)
        assert inspector.describe(child.pid) is first
    finally:
        child.kill()
        child.wait()
    assert inspector.describe(child.pid).detail == GONE


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["vllm", "serve", "m", "--api-key", "sk-123"], ["vllm", "serve", "m", "--api-key", "***"]),
        (["srv", "--hf-token=hf_abc", "--model", "x"], ["srv", "--hf-token=***", "--model", "x"]),
        (
            ["env", "HF_TOKEN=hf_abc", "OPENAI_API_KEY=sk", "python", "a.py"],
            ["env", "HF_TOKEN=***", "OPENAI_API_KEY=***", "python", "a.py"],
        ),
        (["w", "--db", "postgres://u:pw@db:5432/x"], ["w", "--db", "postgres://u:***@db:5432/x"]),
        (["tgi", "--password", "--model", "m"], ["tgi", "--password", "--model", "m"]),
        (["python", "-m", "x", "--max-tokens", "5"], ["python", "-m", "x", "--max-tokens", "5"]),
    ],
)
def test_secrets_in_command_lines_are_masked(argv, shown):
    from vramtop import redact

    assert list(redact.argv(argv)) == shown


def test_a_real_process_with_a_secret_never_shows_it():
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(30)",
            "--model",
            "m",
            "--api-key",
            "sk-live",
        ]
    )
    wait_for_exec(child, ["--api-key", "sk-live"])
    try:
        info = ProcessInspector().describe(child.pid)
        assert "sk-live" not in (info.command or "") and info.argv[-1] == "***"
        assert Attributor().attribute(info) == ("m", "cmdline")
    finally:
        child.kill()
        child.wait()
