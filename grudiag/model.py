"""The report model every part of grudiag shares: findings, subjects, reports.

Probes measure, checks judge into `Finding`s, reporters render a `Report`. Nothing here computes.
"""
from __future__ import annotations

import enum
import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

#: Public contract (DESIGN §1): users filter on these strings. Add, never rename.
CATEGORIES = (
    "zero-init-symmetry",
    "missing-gradient-clipping",
    "exploding-gradients",
    "vanishing-gradients",
    "wrong-gradient",
    "truncated-bptt",
    "stale-hidden-state",
    "ignored-recurrence",
    "bad-shapes",
    "equation-mismatch",
    "gate-saturation",
    "numerical-instability",
    "crash",
    "convention",
    "internal",  # a bug in grudiag itself: reported, never hidden, exit code 3
)


class Severity(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "error": 2}[self.value]

    def __str__(self) -> str:
        return self.value


class ExitCode(enum.IntEnum):
    """Process exit codes (DESIGN §4)."""

    OK = 0  #: no finding at or above --fail-on
    FINDINGS = 1  #: findings at or above --fail-on
    CANNOT_DIAGNOSE = 2  #: bad arguments, missing file, import failure, no subjects
    INTERNAL_ERROR = 3  #: a bug in grudiag


@dataclass(frozen=True)
class Location:
    file: str | None = None
    line: int | None = None
    qualname: str | None = None

    @property
    def display_file(self) -> str | None:
        """The file relative to the working directory when it lies below it, so that reports
        read the same on every machine."""
        if not self.file or not os.path.isabs(self.file):
            return self.file
        rel = os.path.relpath(self.file)
        return self.file if rel.startswith("..") else rel

    def __str__(self) -> str:
        if not self.file:
            return self.qualname or "<unknown>"
        where = f"{self.display_file}:{self.line}" if self.line else self.display_file
        return f"{where} in {self.qualname}" if self.qualname else where

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if v is not None}
        if self.file:
            d["file"] = self.display_file
        return d


@dataclass
class Finding:
    subject: str
    code: str
    name: str
    category: str
    severity: Severity
    message: str
    hint: str = ""
    location: Location | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "code": self.code,
            "name": self.name,
            "category": self.category,
            "severity": self.severity.value,
            "message": self.message,
            "hint": self.hint,
            "location": self.location.to_dict() if self.location else None,
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        loc = d.get("location")
        return cls(
            subject=d["subject"],
            code=d["code"],
            name=d["name"],
            category=d["category"],
            severity=Severity(d["severity"]),
            message=d["message"],
            hint=d.get("hint", ""),
            location=Location(**loc) if loc else None,
            evidence=d.get("evidence", {}),
        )


@dataclass
class SubjectInfo:
    id: str
    kind: str
    input_size: int | None = None
    hidden_size: int | None = None
    layout: str | None = None
    convention: str | None = None
    gradient_source: str | None = None
    location: Location | None = None
    checks_run: list[str] = field(default_factory=list)
    checks_skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["location"] = self.location.to_dict() if self.location else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SubjectInfo:
        d = dict(d)
        loc = d.pop("location", None)
        return cls(location=Location(**loc) if loc else None, **d)


@dataclass
class Problem:
    """Why a target could not be diagnosed at all (exit code 2)."""

    target: str
    message: str
    location: Location | None = None

    def __str__(self) -> str:
        import os

        loc = self.location
        if not loc or not loc.file or os.path.basename(loc.file) in self.message:
            return self.message  # the message already names the file (and line)
        return f"{loc.file}:{loc.line}: {self.message}" if loc.line else f"{loc.file}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "message": self.message,
            "location": self.location.to_dict() if self.location else None,
        }


@dataclass
class SubjectResult:
    """What diagnosing one subject produced; travels from the worker process as JSON."""

    info: SubjectInfo
    findings: list[Finding] = field(default_factory=list)
    #: probe name -> small JSON-able summaries, for reporters and plots
    measurements: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "info": self.info.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "measurements": self.measurements,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SubjectResult:
        return cls(
            info=SubjectInfo.from_dict(d["info"]),
            findings=[Finding.from_dict(f) for f in d["findings"]],
            measurements=d.get("measurements", {}),
        )


@dataclass
class Report:
    results: list[SubjectResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    seed: int = 0
    fail_on: Severity = Severity.ERROR
    targets: list[str] = field(default_factory=list)
    reproduce: str = ""
    duration_s: float = 0.0

    @property
    def subjects(self) -> list[SubjectInfo]:
        return [r.info for r in self.results]

    @property
    def findings(self) -> list[Finding]:
        found = [f for r in self.results for f in r.findings]
        return sorted(found, key=lambda f: (f.subject, -f.severity.rank, f.code))

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    @property
    def exit_code(self) -> ExitCode:
        if self.problems:
            return ExitCode.CANNOT_DIAGNOSE
        if any(f.category == "internal" for f in self.findings):
            return ExitCode.INTERNAL_ERROR
        if any(f.severity.rank >= self.fail_on.rank for f in self.findings):
            return ExitCode.FINDINGS
        return ExitCode.OK

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK

    def checks_run(self) -> list[str]:
        return sorted({c for s in self.subjects for c in s.checks_run})

    def checks_skipped(self) -> dict[str, str]:
        """code -> reason, for checks skipped on every subject they could apply to."""
        run = set(self.checks_run())
        skipped: dict[str, str] = {}
        for s in self.subjects:
            for code, reason in s.checks_skipped.items():
                if code not in run:
                    skipped.setdefault(code, f"{reason} ({s.id})")
        return dict(sorted(skipped.items()))

    def to_dict(self) -> dict[str, Any]:
        from . import __version__

        summary = {s.value: self.count(s) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)}
        summary["exit_code"] = int(self.exit_code)
        return jsonable(
            {
                "schema_version": 1,
                "tool": {"name": "grudiag", "version": __version__},
                "seed": self.seed,
                "targets": self.targets,
                "reproduce": self.reproduce,
                "subjects": [s.to_dict() for s in self.subjects],
                "findings": [f.to_dict() for f in self.findings],
                "problems": [p.to_dict() for p in self.problems],
                "checks_run": self.checks_run(),
                "checks_skipped": self.checks_skipped(),
                "measurements": {r.info.id: r.measurements for r in self.results},
                "summary": summary,
                "duration_s": round(self.duration_s, 3),
            }
        )

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


def jsonable(value: Any) -> Any:
    """Make measurements JSON-safe: numpy scalars/arrays to Python, non-finite floats to strings."""
    kind = type(value)
    if kind is float:  # most values by far (arrays become lists of floats): the fast path first
        return value if math.isfinite(value) else _nonfinite(value)
    if kind is int or kind is str or kind is bool or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return jsonable(value.tolist())
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _nonfinite(value)
    return str(value)


def _nonfinite(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
