"""Plan and run one subject's diagnosis: selected checks -> needed probes -> measure once -> judge.

Whatever the subject does, this returns a `SubjectResult`: user exceptions become crash
findings (GD9xx), grudiag's own exceptions become GD999, and the other probes carry on.
"""
from __future__ import annotations

import sys
import traceback
from typing import Any

from . import checks as _checks  # noqa: F401 - registers every check
from . import probes as _probes  # noqa: F401 - registers every probe
from .checks.base import CHECKS, Check, CheckContext, SkipCheck, selected_checks
from .model import Finding, Location, SubjectInfo, SubjectResult, jsonable
from .options import Options
from .probes.base import PROBES, ProbeContext, ProbeSkipped, probe_order
from .subjects.base import (Candidate, Subject, SubjectOutputError, SubjectRaised,
                            SubjectTimeout)

#: every probe needs the subject to run at all; `forward` is measured first
FIRST_PROBE = "forward"


def diagnose_candidate(candidate: Candidate, options: Options) -> SubjectResult:
    """Build the candidate (the user's constructor runs here), then diagnose it."""
    try:
        subject = candidate.build()
    except SubjectRaised as exc:
        info = SubjectInfo(id=candidate.id, kind=candidate.kind, location=candidate.location)
        return SubjectResult(info, [crash_finding(candidate.id, exc, candidate.location)])
    except SubjectOutputError as exc:
        info = SubjectInfo(id=candidate.id, kind=candidate.kind, location=candidate.location)
        return SubjectResult(info, [output_finding(candidate.id, exc, candidate.location)])
    return diagnose(subject, options)


def diagnose(subject: Subject, options: Options) -> SubjectResult:
    from .subjects.loading import guarded_global_state

    with guarded_global_state():  # restores the thread count, dtype, grad mode and RNGs
        if "torch" in sys.modules:
            # Probes make hundreds of tiny calls: thread start-up would dominate them.
            sys.modules["torch"].set_num_threads(1)
        return _Diagnosis(subject, options).run()


class _Diagnosis:
    def __init__(self, subject: Subject, options: Options):
        self.subject = subject
        self.options = options
        self.info = SubjectInfo(
            id=subject.id, kind=subject.kind, input_size=subject.input_size,
            hidden_size=subject.hidden_size, layout=subject.layout,
            gradient_source=subject.gradient_source, location=subject.location,
            notes=list(subject.notes),
        )
        self.findings: list[Finding] = []
        self.measurements: dict[str, dict[str, Any]] = {}
        self.probe_skips: dict[str, str] = {}

    def run(self) -> SubjectResult:
        selected = list(selected_checks(self.options))
        needed = {FIRST_PROBE} | {p for c in selected for p in c.requires}
        ctx = ProbeContext(self.options, self.measurements)
        for name in probe_order(needed):
            self._measure(name, ctx)
        for check in selected:
            self._judge(check)
        self.info.notes = list(dict.fromkeys(self.info.notes + self.subject.notes))
        identified = self.measurements.get("conventions", {})
        if identified.get("status") == "identified":
            self.info.convention = identified.get("convention")
        summaries = {name: _rounded(jsonable(PROBES[name].summarize(data)))
                     for name, data in self.measurements.items()}
        return SubjectResult(self.info, self.findings, summaries)

    def _measure(self, name: str, ctx: ProbeContext) -> None:
        probe = PROBES[name]
        blocked = [d for d in (*probe.after, FIRST_PROBE) if d != name and d in self.probe_skips]
        if blocked:
            self.probe_skips[name] = self.probe_skips[blocked[0]]
            return
        subject = self._copy()
        try:
            self.measurements[name] = probe.measure(subject, ctx)
        except ProbeSkipped as exc:
            self.probe_skips[name] = exc.reason
        except SubjectRaised as exc:
            self._add_once(crash_finding(self.subject.id, exc, self.subject.location))
            self.probe_skips[name] = f"the subject raised {exc.message}"
        except SubjectOutputError as exc:
            self._add_once(output_finding(self.subject.id, exc, self.subject.location))
            self.probe_skips[name] = f"the subject returned a bad value: {exc.message}"
        except Exception as exc:  # noqa: BLE001 - a bug in grudiag must not lose the report
            self._internal(f"probe {name!r}", exc)
            self.probe_skips[name] = f"probe {name!r} failed inside grudiag"
        finally:
            if subject is not self.subject:
                self.subject.notes.extend(n for n in subject.notes if n not in self.subject.notes)

    def _copy(self) -> Subject:
        """A fresh copy per probe: a subject that keeps state on itself (GD302) must not make
        a later probe crash on a state left by an earlier one."""
        try:
            return self.subject.fresh()
        except Exception:  # noqa: BLE001 - a copy that cannot be made: share the original
            return self.subject

    def _judge(self, check: type[Check]) -> None:
        missing = [p for p in check.requires if p not in self.measurements]
        if missing:
            self.info.checks_skipped[check.code] = self.probe_skips.get(
                missing[0], f"probe {missing[0]!r} did not run")
            return
        ctx = CheckContext(check(), self.subject, self.measurements, self.options)
        try:
            found = list(check().judge(ctx))
        except SkipCheck as exc:
            self.info.checks_skipped[check.code] = exc.reason
            return
        except Exception as exc:  # noqa: BLE001
            self._internal(f"check {check.code}", exc)
            return
        self.info.checks_run.append(check.code)
        self.findings.extend(found)

    def _add_once(self, finding: Finding) -> None:
        if not any(f.code == finding.code and f.message == finding.message for f in self.findings):
            self.findings.append(finding)

    def _internal(self, where: str, exc: Exception) -> None:
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        self.findings.append(CHECKS["GD999"].make(
            self.subject.id,
            f"grudiag failed in {where}: {type(exc).__name__}: {exc}",
            "This is a bug in grudiag, not in your code; the other checks still ran. "
            "Please report it with the output of --debug",
            evidence={"traceback": "".join(tb)[-4000:] if self.options.debug else None},
        ))


def crash_finding(subject_id: str, exc: SubjectRaised, fallback: Location | None) -> Finding:
    where = exc.location or fallback
    at = f" at {_short(where)}" if where and where.file else ""
    if isinstance(exc.exc, SubjectTimeout):
        return CHECKS["GD902"].make(
            subject_id, f"the {exc.during} {exc.exc}{' (stopped' + at + ')' if at else ''}",
            "Look for a loop that never ends or a call that waits for input", location=where,
            evidence={"during": exc.during})
    if exc.during == "construct":
        code, what = "GD906", "building the subject raised"
    elif exc.is_memory_error:
        code, what = "GD904", f"the {exc.during} ran out of memory"
    else:
        code, what = "GD901", f"the {exc.during} raised"
    if isinstance(exc.exc, SystemExit):
        detail = f"sys.exit({exc.exc.code!r})"
        hint = "Raise an exception instead of exiting the process from a cell"
    else:
        detail = exc.message
        hint = ("Check the sizes: grudiag uses input, hidden, batch and time sizes that all "
                "differ, so a hard-coded or swapped size fails here")
    if code == "GD904":
        hint = "Look for an allocation that grows with every call or an outer product"
    return CHECKS[code].make(subject_id, f"{what} {detail}{at}", hint, location=where,
                             evidence={"exception": exc.exc_type, "during": exc.during})


def output_finding(subject_id: str, exc: SubjectOutputError, fallback: Location | None) -> Finding:
    where = exc.location or fallback
    if exc.kind == "shape":
        return CHECKS["GD101"].make(
            subject_id, exc.message,
            "Return a state of shape (batch, hidden_size) per step; check for broadcasting "
            "between (batch, hidden) and (hidden,) or (batch, 1) arrays",
            location=where,
            evidence={"expected": list(exc.expected or ()), "got": _shape_of(exc.got)},
        )
    return CHECKS["GD905"].make(
        subject_id, exc.message, "Return the new hidden state (or a tuple holding it)",
        location=where, evidence={"got": _type_name(exc.got)},
    )


def _rounded(value: Any, digits: int = 6) -> Any:
    """Measurements feed plots, not verdicts: 6 significant digits halve the report's size."""
    if type(value) is float:
        return float(f"{value:.{digits}g}")
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    return value


def _short(loc: Location) -> str:
    import os

    return f"{os.path.basename(loc.file)}:{loc.line}" if loc.line else os.path.basename(loc.file)


def _shape_of(value: Any) -> Any:
    shape = getattr(value, "shape", value)
    try:
        return list(shape)
    except TypeError:
        return str(shape)


def _type_name(value: Any) -> str:
    return type(value).__name__ if value is not None else "None"
