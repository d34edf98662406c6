"""The layers: nothing outside vramtop/tui imports Textual, the one-shot path stays light, and
every import between vramtop's parts follows an arrow allowed below."""

import ast
import pkgutil
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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
    # --once must stay cheap: it loads neither Textual nor an HTTP client it does not use, nor
    # what pynvml's unused find_library (subprocess) and argparse's terminal width (shutil) cost.
    code = (
        "import sys\n"
        "from vramtop.cli import main\n"
        "main(['--once', '--format', 'json', '--output', '/dev/null'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('textual', 'httpx', 'requests', 'rich', 'prometheus_api_client', 'subprocess', "
        "'shutil'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# -- the layers: every allowed arrow between vramtop's parts, as data -------------------------
# A part is a top-level module or package of vramtop. An arrow A -> B means code in A may import
# B. Adding an arrow is a one-line change here, made on purpose and reviewed; anything else
# fails the test below with the file, the line and the arrow. Every part may import the package
# root (the version) and ``records`` (how an immutable record is declared); only tui imports
# Textual.
ALLOWED: dict[str, set[str]] = {
    "records": set(),
    "model": set(),  # the Frame and its readings: nothing of vramtop but records
    "units": set(),
    "durations": set(),
    "redact": set(),
    "futures": set(),  # the Future the workers hand out (no concurrent.futures: its logging)
    "worker": {"futures"},
    "clean": {"units"},
    "serving": {"units"},  # the serving figures' registry: labels, units, formats
    "profiles": set(),
    "history": {"model", "serving"},
    "fleet": {"model"},  # hosts of a Frame: what the Hosts screen and the exports share
    "attribution": {"model"},
    "health": {"model"},  # a GPU's worst finding, XID meanings (package data), nvml alerts
    "links": {"model"},  # [links] URL templates filled for a model, GPU or alert
    # Alert rules on Frame figures, evaluated in-process (alerts without Prometheus)
    "local_rules": {"model", "units", "durations", "links", "redact", "fleet"},
    "config": {"attribution", "durations", "redact", "serving", "local_rules", "links"},
    "silencing": {"model", "durations", "clean"},  # a silence's matchers, as values
    "sources": {"model", "profiles", "clean", "redact", "fleet", "health", "silencing"}
    | {"serving", "links", "futures"},
    "collector": {"model", "attribution", "sources", "clean", "redact", "worker", "fleet"}
    | {"health", "local_rules", "futures"},
    "record": {"model", "health"},  # the file format; health: replay's "next change" digest
    "export": {"model", "clean", "units", "fleet", "health", "silencing", "serving", "links"},
    "actions": {"model", "clean", "units"},  # signals to local processes: psutil, no screen
    "feeds": {"model", "history", "record", "clean", "redact", "worker"},
    # The fleet hosts run vramtop exporters; health: the XIDs' meanings.
    "demo": {"model", "profiles", "sources", "serve", "health"},
    "wiring": {"config", "attribution", "collector", "demo", "durations", "profiles", "redact"}
    | {"sources", "fleet", "local_rules"},
    # The screen consumes feeds of Frames: it never reaches a source, the collector or wiring.
    "tui": {"model", "config", "history", "export", "feeds", "record", "clean", "units"}
    | {"redact", "worker", "fleet", "health", "actions", "silencing", "serving", "links"},
    # doctor: one-shot checks over the same wiring, profiles and sources as the live path.
    "doctor": {"config", "wiring", "profiles", "sources"},
    "serve": {"model"},  # the exporter: Frame -> metric families
    "cli": {"config", "wiring", "export", "record", "feeds", "tui", "model", "durations", "serve"}
    | {"collector", "doctor", "fleet", "futures"}
    # sources.cpu_window and sources.nvml_start only: the host CPU window opens and NVML
    # starts before the imports
    | {"sources"},
}
# Modules that belong to another part: credentials.py is the config layer's secret reading,
# entry.py and __main__.py start the command line.
# choices.py holds the values the flag parser shares with config, without importing config.
PART_OF = {"credentials": "config", "choices": "config", "entry": "cli", "__main__": "cli"}
PACKAGE = Path(vramtop.__file__).parent
EVERYONE = {"records"}  # parts every part may import


def _part(module: str) -> str:
    name = module.split(".")[1] if "." in module else ""
    return PART_OF.get(name, name)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every vramtop module (or textual) a file imports, lazily or not, with its line."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module == "vramtop":  # from vramtop import redact, __version__
                for alias in node.names:
                    yield node.lineno, f"vramtop.{alias.name}"
            else:
                yield node.lineno, node.module


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        yield ".".join(rel.parts).removesuffix(".__init__"), path


def forbidden_arrows() -> list[str]:
    bad = []
    for module, path in _modules():
        if module == "vramtop":
            continue
        here = _part(module)
        for line, target in _imports(path):
            where = f"{path.relative_to(PACKAGE.parent)}:{line}"
            top = target.split(".")[0]
            if top == "textual" and here != "tui":
                bad.append(f"{where}: {here} -> textual (only tui may import Textual)")
            if top != "vramtop" or target in ("vramtop", "vramtop.__version__"):
                continue
            there = _part(target)
            if there != here and there not in ALLOWED.get(here, set()) | EVERYONE:
                bad.append(f"{where}: {here} -> {there} ({target})")
    return bad


def test_every_part_is_on_the_map():
    parts = {_part(m) for m, _ in _modules() if m != "vramtop"}
    assert parts == set(ALLOWED), f"add {parts - set(ALLOWED)} to ALLOWED (or drop a stale one)"


def test_every_import_follows_an_allowed_arrow():
    bad = forbidden_arrows()
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_the_layer_check_sees_a_forbidden_import(tmp_path, monkeypatch):
    # The check itself can fail: a copy of the package where the model imports the TUI.
    copy = tmp_path / "vramtop"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    model = copy / "model.py"
    model.write_text(model.read_text() + "\nfrom vramtop.tui import cells  # noqa\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", copy)
    bad = forbidden_arrows()
    assert len(bad) == 1 and bad[0].startswith("vramtop/model.py:") and "model -> tui" in bad[0]
