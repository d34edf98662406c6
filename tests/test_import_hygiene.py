"""The core must stay usable without a terminal: nothing outside vramtop/tui imports textual."""

import pkgutil
import subprocess
import sys

import vramtop


def core_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(vramtop.__path__, "vramtop."):
        if info.name.startswith("vramtop.tui") or info.name == "vramtop.__main__":
            continue
        names.append(info.name)
    return names


def test_core_modules_exist():
    names = core_modules()
    assert {"vramtop.cli", "vramtop.collector", "vramtop.sources.nvml"} <= set(names)


def test_no_core_module_imports_textual():
    code = (
        "import importlib, sys\n"
        f"names = {core_modules()!r}\n"
        "bad = []\n"
        "for n in names:\n"
        "    importlib.import_module(n)\n"
        "    if any(m == 'textual' or m.startswith('textual.') for m in sys.modules):\n"
        "        bad.append(n); break\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_one_shot_path_imports_no_http_or_tui_stack():
    # --once must stay cheap: it loads neither Textual nor an HTTP client it does not use.
    code = (
        "import sys\n"
        "from vramtop.cli import main\n"
        "main(['--once', '--format', 'json', '--output', '/dev/null'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('textual', 'httpx', 'requests', 'rich', 'prometheus_api_client'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
