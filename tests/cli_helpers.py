"""Run the real `grudiag` CLI in a subprocess, as a user would."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "tests" / "hostile"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict:
        return json.loads(self.stdout)

    def findings(self, subject_suffix: str | None = None) -> list[dict]:
        return [f for f in self.json["findings"]
                if subject_suffix is None or f["subject"].endswith(subject_suffix)]


def grudiag(*args: str, timeout: float = 240) -> CliResult:
    proc = subprocess.run([sys.executable, "-m", "grudiag", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
