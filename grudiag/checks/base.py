"""Checks judge measurements into findings. Each is one small class whose docstring is its doc.

A check has a permanent code (``GD`` + 3 digits; the hundreds digit is the family), a kebab-case
name that names the defect, a category from DESIGN §1 and a default severity. Its docstring has
the sections below; `grudiag rule CODE` prints it and the HTML report embeds it.
"""
from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from ..model import CATEGORIES, Finding, Location, Severity
from ..options import Options
from ..subjects.base import Subject

REQUIRED_SECTIONS = ("## What it checks", "## Why is this bad?", "## How it is detected",
                     "## Example", "## Use instead")

FAMILIES = {
    "1": "shapes and API contract",
    "2": "gate maths and conventions",
    "3": "recurrence and state",
    "4": "gradients",
    "5": "numerics",
    "6": "parameters and initialisation",
    "7": "training runs",
    "9": "harness: the subject could not be run",
}


class SkipCheck(Exception):
    """The check cannot judge this subject; the reason goes to `checks_skipped`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Check:
    code: ClassVar[str]
    name: ClassVar[str]
    category: ClassVar[str]
    severity: ClassVar[Severity]
    #: the probes whose measurements this check reads
    requires: ClassVar[tuple[str, ...]] = ()
    #: named, documented, overridable thresholds (``--threshold GD401.rtol=1e-5``)
    thresholds: ClassVar[dict[str, float]] = {}
    #: harness checks are emitted by the runner/worker, not judged from measurements
    harness: ClassVar[bool] = False

    def judge(self, ctx: CheckContext) -> Iterable[Finding]:
        raise NotImplementedError

    @classmethod
    def doc(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def section(cls, heading: str) -> str:
        """The text of one docstring section, e.g. ``section("Why is this bad?")``."""
        doc = cls.doc()
        match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", doc, re.M | re.S)
        return match.group(1).strip() if match else ""

    @classmethod
    def summary(cls) -> str:
        return cls.doc().split("\n", 1)[0].strip()

    @classmethod
    def family(cls) -> str:
        return FAMILIES.get(cls.code[2], "other")

    @classmethod
    def source_location(cls) -> Location:
        return Location(inspect.getsourcefile(cls), inspect.getsourcelines(cls)[1], cls.__qualname__)

    @classmethod
    def make(cls, subject_id: str, message: str, hint: str = "", *,
             location: Location | None = None, evidence: dict[str, Any] | None = None,
             severity: Severity | None = None) -> Finding:
        return Finding(subject=subject_id, code=cls.code, name=cls.name, category=cls.category,
                       severity=severity or cls.severity, message=message, hint=hint,
                       location=location, evidence=evidence or {})


@dataclass
class CheckContext:
    check: Check
    subject: Subject
    measurements: dict[str, dict[str, Any]]
    options: Options

    def m(self, probe: str) -> dict[str, Any]:
        return self.measurements[probe]

    def threshold(self, name: str) -> float:
        overrides = self.options.thresholds
        key = f"{self.check.code}.{name}"
        if key in overrides:
            return float(overrides[key])
        if name in overrides:
            return float(overrides[name])
        return float(self.check.thresholds[name])

    def finding(self, message: str, hint: str = "", *, location: Location | None = None,
                evidence: dict[str, Any] | None = None,
                severity: Severity | None = None) -> Finding:
        return self.check.make(self.subject.id, message, hint,
                               location=location or self.subject.location,
                               evidence=evidence, severity=severity)


CHECKS: dict[str, type[Check]] = {}

_CODE = re.compile(r"^GD[1-9]\d\d$")
_NAME = re.compile(r"^[a-z]+(-[a-z0-9]+)*$")


def register_check(cls: type[Check]) -> type[Check]:
    """Validate the metadata at import time, so a malformed check cannot ship."""
    problems = []
    if not _CODE.match(cls.code):
        problems.append(f"code {cls.code!r} is not GD + 3 digits")
    if not _NAME.match(cls.name):
        problems.append(f"name {cls.name!r} is not kebab-case")
    if cls.category not in CATEGORIES:
        problems.append(f"category {cls.category!r} is not one of DESIGN §1")
    missing = [s for s in REQUIRED_SECTIONS if s not in cls.doc()]
    if missing:
        problems.append(f"docstring lacks {missing}")
    if cls.code in CHECKS or any(c.name == cls.name for c in CHECKS.values()):
        problems.append("code or name registered twice")
    if problems:
        raise TypeError(f"{cls.__name__}: " + "; ".join(problems))
    CHECKS[cls.code] = cls
    return cls


def lookup(selector: str) -> type[Check] | None:
    selector = selector.strip()
    if selector.upper() in CHECKS:
        return CHECKS[selector.upper()]
    return next((c for c in CHECKS.values() if c.name == selector), None)


def matches(check: type[Check], selectors: Iterable[str]) -> bool:
    """A selector is a code, a code prefix (GD4), a check name or a category."""
    for s in selectors:
        s = s.strip()
        if not s:
            continue
        if check.code.startswith(s.upper()) or s in (check.name, check.category):
            return True
    return False


def selected_checks(options: Options) -> Iterator[type[Check]]:
    for code in sorted(CHECKS):
        check = CHECKS[code]
        if check.harness:
            continue
        if options.select and not matches(check, options.select):
            continue
        if options.ignore and matches(check, options.ignore):
            continue
        yield check
