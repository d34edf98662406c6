"""The tools vramtop is compared with, and the profilers: nvitop and gpustat from PyPI in their
own venv (bench/.peers, reused while the pins match), btop and htop from Debian."""

from __future__ import annotations

import re
import shutil
import subprocess
import venv
from dataclasses import dataclass
from pathlib import Path

PEERS = ("nvitop==1.7.2", "gpustat==1.1.1")
PROFILERS = ("py-spy==0.4.3", "pyinstrument==5.1.3")
DEBIAN = ("btop", "htop")


def ensure_venv(path: Path) -> Path:
    """The venv's bin/ with the pinned peers and profilers installed (pip, from PyPI)."""
    wanted = "\n".join(PEERS + PROFILERS) + "\n"
    stamp = path / "bench-peers.txt"
    bin_dir = path / "bin"
    if stamp.is_file() and stamp.read_text() == wanted and (bin_dir / "nvitop").exists():
        return bin_dir
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *PEERS, *PROFILERS], check=True)
    stamp.write_text(wanted)
    return bin_dir


def debian_tools() -> dict[str, str]:
    """Path of each Debian tool; RuntimeError naming the package to install when missing."""
    found = {name: shutil.which(name) for name in DEBIAN}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise RuntimeError(
            f"not on PATH: {', '.join(missing)} (apt-get install {' '.join(missing)})"
        )
    return {name: str(path) for name, path in found.items()}


def version(argv: list[str]) -> str:
    out = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=30)
    text = (out.stdout or out.stderr).strip().splitlines()
    m = re.search(r"\d+\.\d+(\.\d+)?", text[0] if text else "")
    return m.group(0) if m else "?"


def write_btop_config(xdg: Path, update_ms: int) -> None:
    conf = xdg / "btop" / "btop.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(f"update_ms = {update_ms}\n")


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    live: list[str]  # the live view at 1 s
    once: list[str] | None = None  # a one-shot frame, if the tool has one
    version: str = ""


def peer_tools(bin_dir: Path | None, debian: dict[str, str]) -> list[Tool]:
    tools = []
    if bin_dir is not None:
        nvitop, gpustat = str(bin_dir / "nvitop"), str(bin_dir / "gpustat")
        tools += [
            Tool("nvitop", [nvitop, "--interval", "1"], [nvitop, "--once"], version([nvitop])),
            Tool("gpustat", [gpustat, "-i", "1"], [gpustat], version([gpustat])),
        ]
    if "btop" in debian:
        tools.append(Tool("btop", [debian["btop"]], None, version([debian["btop"]])))
    if "htop" in debian:
        tools.append(Tool("htop", [debian["htop"], "-d", "10"], None, version([debian["htop"]])))
    return tools
