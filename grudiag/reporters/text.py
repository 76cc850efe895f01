"""Terminal output: the full format (message, location, hint) and a concise one-line format."""
from __future__ import annotations

import os

import click

from ..model import Finding, Report, Severity

_SEVERITY_COLOUR = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def render(report: Report, *, concise: bool = False) -> str:
    lines: list[str] = []
    for info in report.subjects:
        sizes = (f"{info.input_size} → {info.hidden_size}" if info.input_size else "not built")
        extra = ", ".join(x for x in (info.layout, info.convention) if x)
        lines.append(click.style(f"● {info.id}", bold=True)
                     + f"  {info.kind}, {sizes}" + (f", {extra}" if extra else ""))
    if report.subjects:
        lines.append("")
    for finding in report.findings:
        # Info findings (the identified convention) are context, not problems: one line each.
        brief = concise or finding.severity is Severity.INFO
        lines.extend(_concise(finding) if brief else _full(finding))
    lines.append(summary_line(report))
    if report.reproduce:
        lines.append(f"Reproduce: {report.reproduce}")
    return "\n".join(lines)


def _full(f: Finding) -> list[str]:
    head = (click.style(f.code, bold=True) + " "
            + click.style(f"[{f.severity.value}]", fg=_SEVERITY_COLOUR[f.severity], bold=True)
            + f" {f.name}: {f.message}")
    out = [head]
    if f.location and f.location.file:
        out.append(click.style(" --> ", fg="blue") + _relative(str(f.location)))
    out.append(f" subject: {f.subject}")
    if f.hint:
        out.append(click.style(" help: ", fg="green") + f.hint)
    out.append("")
    return out


def _concise(f: Finding) -> list[str]:
    where = _relative(f"{f.location.file}:{f.location.line}") if f.location and f.location.file \
        else f.subject
    severity = click.style(f"[{f.severity.value}]", fg=_SEVERITY_COLOUR[f.severity], bold=True)
    return [f"{where}: {click.style(f.code, bold=True)} {severity} {f.name}: {f.message}"]


def summary_line(report: Report) -> str:
    counts = {s: report.count(s) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)}
    parts = [f"{n} {s.value}{'s' if n != 1 and s is not Severity.INFO else ''}"
             for s, n in counts.items()]
    n_subjects = len(report.subjects)
    run, skipped = len(report.checks_run()), len(report.checks_skipped())
    reasons = sorted(set(report.checks_skipped().values()))
    why = f": {_short(reasons[0])}" + (f" and {len(reasons) - 1} more" if len(reasons) > 1
                                        else "") if reasons else ""
    text = (f"Found {', '.join(parts)} in {n_subjects} subject{'s' if n_subjects != 1 else ''} "
            f"({run} checks run, {skipped} skipped{why})")
    if report.problems:
        text += f"; {len(report.problems)} target(s) could not be diagnosed"
    colour = "red" if report.exit_code else "green"
    return click.style(text, fg=colour, bold=True)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _relative(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if not rel.startswith("..") else path
