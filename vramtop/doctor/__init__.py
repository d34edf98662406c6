"""``vramtop doctor``: a one-shot check a user runs when a figure is missing.

Each check is one PASS, WARN or FAIL line with one sentence; the run exits 1 when any FAILs.
The checks themselves live in local.py (NVML, PID namespaces), remote.py (Prometheus,
Alertmanager, a server's /metrics) and profiles.py (which of a profile's metrics exist, and a
starter profile for a server family vramtop does not know).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from vramtop.records import record

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"


@record
class Check:
    status: str  # PASS, WARN or FAIL
    name: str  # what was checked, e.g. "prometheus" or "profile vllm"
    message: str  # one sentence a person can act on


@dataclass(slots=True)
class Report:
    checks: list[Check] = field(default_factory=list)
    starter_profile: str | None = None  # TOML, for an unknown server family

    def add(self, status: str, name: str, message: str) -> None:
        self.checks.append(Check(status, name, message))

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    def text(self) -> str:
        lines = [f"{c.status}  {c.name}: {c.message}" for c in self.checks]
        if self.starter_profile:
            lines += [
                "",
                "# A starter profile for the unknown server family:",
                self.starter_profile,
            ]
        return "\n".join(lines) + "\n"

    def json(self) -> str:
        body = {
            "ok": not self.failed,
            "checks": [asdict(c) for c in self.checks],
            "starter_profile": self.starter_profile,
        }
        return json.dumps(body, indent=2) + "\n"
