"""Which model a GPU process serves, and how we know.

Order: the user's explicit rules, then the process's own command line, then its launcher's
(vLLM/SGLang tensor-parallel workers carry no ``--model`` of their own), then rules on the
container id. ``model_source`` records which of these answered.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from vramtop.model import ProcInfo
from vramtop.records import record

# Flags that name the model in the servers people run, most specific first: a served name is
# what the server reports in its metrics, so it wins over the weights' path.
_NAME_FLAGS = ("--served-model-name", "--alias", "-a")
_MODEL_FLAGS = (
    "--model",
    "--model-path",
    "--model-id",
    "--model-name",
    "--model_name_or_path",
    "--model-name-or-path",
    "--load-model",
    "-m",
    "-hf",
    "--hf-repo",
)
_POSITIONAL_AFTER = {"vllm": "serve", "text-generation-server": "serve", "ollama": "run"}
_PYTHON = re.compile(r"^(python|pypy)[0-9.]*$")


@record
class Rule:
    """``[[attribution]]`` in the config: a regex on the command line (or container) -> model."""

    pattern: re.Pattern[str]
    model: str
    match: str = "cmdline"  # cmdline | container | user


def model_from_argv(argv: Sequence[str]) -> str | None:
    """The model a server's command line names, or None.

    Flags are looked for anywhere, so wrappers (torchrun, env, uv run, python -m) need no
    special case; only the interpreter's own ``-m module`` is not a model."""
    args = list(argv)
    skip = _interpreter_module(args)
    found: dict[str, str] = {}
    for i, arg in enumerate(args):
        if i in skip:
            continue
        flag, eq, value = arg.partition("=")
        if flag not in _NAME_FLAGS and flag not in _MODEL_FLAGS:
            continue
        if not eq:
            if i + 1 >= len(args) or args[i + 1].startswith("-"):
                continue
            value = args[i + 1]
        if value and not _is_number(value) and flag not in found:
            found[flag] = value
    programs = [os.path.basename(a) for a in args]
    for flag in _NAME_FLAGS:
        if flag in found:
            return found[flag]
    if "tritonserver" in programs:
        return found.get("--load-model") or _triton_repository(args)
    program = next((p for p in programs if p in _POSITIONAL_AFTER), "")
    for flag in _MODEL_FLAGS:
        if flag in found:
            return _tidy(found[flag], program)
    if program:
        k = programs.index(program)
        sub = args[k + 1 : k + 3]
        if len(sub) == 2 and sub[0] == _POSITIONAL_AFTER[program] and not sub[1].startswith("-"):
            return _tidy(sub[1], program)
    return None


def _interpreter_module(args: Sequence[str]) -> set[int]:
    """Indices of ``-m module`` belonging to a Python interpreter at the front of argv."""
    for i, arg in enumerate(args[:3]):
        if _PYTHON.match(os.path.basename(arg)):
            j = i + 1
            while j < len(args) and args[j].startswith("-") and args[j] != "-m":
                j += 1
            return {j, j + 1} if j < len(args) and args[j] == "-m" else set()
    return set()


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _tidy(value: str, program: str) -> str:
    """GGUF paths and Ollama blobs read better as their file's stem; other names stay as given,
    since that is what the server reports in its metrics."""
    if value.endswith(".gguf"):
        return os.path.basename(value)[: -len(".gguf")]
    if "/blobs/sha256" in value:
        return "ollama:" + os.path.basename(value)[:19]
    return value


def _triton_repository(rest: Sequence[str]) -> str | None:
    for i, arg in enumerate(rest):
        flag, eq, value = arg.partition("=")
        if flag in ("--model-repository", "--model-store"):
            if not eq and i + 1 < len(rest):
                value = rest[i + 1]
            if value:
                return "triton:" + (os.path.basename(value.rstrip("/")) or value)
    return None


class Attributor:
    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self._rules = tuple(rules)

    def attribute(self, info: ProcInfo) -> tuple[str | None, str | None]:
        """(model, model_source) for one process; (None, None) when nothing says."""
        command = " ".join(info.argv)
        for rule in self._rules:
            subject = {"cmdline": command, "user": info.user or "", "container": info.container}
            text = subject.get(rule.match)
            if text and rule.pattern.search(text):
                return rule.model, ("container" if rule.match == "container" else "rule")
        model = model_from_argv(info.argv)
        if model:
            return model, "cmdline"
        for _, argv in info.ancestors:
            model = model_from_argv(argv)
            if model:
                return model, "parent"
        return None, None
