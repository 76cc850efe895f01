"""Assertion helpers for a user's own test suite.

    from grudiag.testing import assert_no_findings
    def test_my_cell():
        assert_no_findings(MyGRUCell(5, 7))

Failures read like pytest.approx: what was found, the worst number and where, what was
allowed, the hint, and how to reproduce. They hide grudiag's frames (``__tracebackhide__``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .model import Finding, Report, Severity


class GrudiagAssertionError(AssertionError):
    """An assertion helper failed; ``report`` holds the whole diagnosis."""

    def __init__(self, message: str, report: Report | None = None):
        super().__init__(message)
        self.report = report


def _report(obj_or_report: Any, **options: Any) -> Report:
    if isinstance(obj_or_report, Report):
        return obj_or_report
    from .api import check

    return check(obj_or_report, **options)


def _describe(finding: Finding) -> str:
    lines = [f"  {finding.code} [{finding.severity.value}] {finding.name}: {finding.message}"]
    if finding.location and finding.location.file:
        lines.append(f"    --> {finding.location}")
    if finding.hint:
        lines.append(f"    help: {finding.hint}")
    return "\n".join(lines)


def _reproduce(report: Report) -> str:
    return (f"Reproduce: grudiag.check(..., seed={report.seed}) or pytest "
            f"--grudiag-seed={report.seed}")


def assert_no_findings(obj_or_report: Any, fail_on: str = "error", **options: Any) -> Report:
    """Fail when grudiag reports anything at or above `fail_on` ("error", "warning", "info")."""
    __tracebackhide__ = True
    report = _report(obj_or_report, **options)
    threshold = Severity(fail_on)
    bad = [f for f in report.findings if f.severity.rank >= threshold.rank]
    if report.problems or bad:
        counts = {s: sum(1 for f in bad if f.severity is s) for s in Severity}
        summary = ", ".join(f"{n} {s.value}" for s, n in sorted(counts.items(),
                            key=lambda kv: -kv[0].rank) if n)
        head = (f"grudiag found {summary} in {', '.join(report.targets)} "
                f"(fail_on={threshold.value}):" if bad else
                f"grudiag could not diagnose {', '.join(report.targets)}:")
        body = [_describe(f) for f in bad] + [f"  {p}" for p in report.problems]
        raise GrudiagAssertionError("\n".join([head, *body, _reproduce(report)]), report)
    return report


def assert_findings(obj_or_report: Any, expected: Iterable[str], **options: Any) -> Report:
    """Fail unless every expected code ("GD401") or category ("wrong-gradient") was reported.

    For tests that keep a known-buggy cell and assert that grudiag still catches it.
    """
    __tracebackhide__ = True
    report = _report(obj_or_report, **options)
    wanted = list(expected)
    missing = [e for e in wanted
               if not any(e in (f.code, f.category, f.name) for f in report.findings)]
    if missing:
        seen = "\n".join(_describe(f) for f in report.findings) or "  (no findings)"
        raise GrudiagAssertionError(
            f"grudiag did not report {', '.join(missing)} for {', '.join(report.targets)}; "
            f"it reported:\n{seen}\n{_reproduce(report)}", report)
    return report


def assert_gradients_match(obj: Any, **options: Any) -> Report:
    """Fail when the cell's hand-written backward (or custom autograd.Function) disagrees with
    finite differences, or when the gradient is cut through time."""
    __tracebackhide__ = True
    options.setdefault("select", ("wrong-gradient", "truncated-bptt"))
    return assert_no_findings(obj, **options)


def assert_matches_reference(cell: Any, reference: str | Callable[..., Any] = "torch.nn.GRUCell",
                             *, atol: float = 1e-6, rtol: float = 1e-5, seed: int = 0,
                             steps: int = 6, batch: int = 3) -> None:
    """Fail unless `cell` computes the same states as `reference`.

    `reference` is ``"torch.nn.GRUCell"`` (the PyTorch convention: reset-after, h' = (1-z)n + zh),
    a variant name from `grudiag.reference.ALL_VARIANTS` (e.g. ``"reset-before"``), or a
    callable ``f(x, h) -> h`` taking row-layout NumPy arrays. For a name, the cell's own weights
    are mapped onto the reference; the message says which convention the cell implements instead.
    """
    __tracebackhide__ = True
    from .probes.base import ProbeContext
    from .options import Options
    from .subjects.discovery import discover_object

    candidates = discover_object(cell, Options(seed=seed))
    if len(candidates) != 1:
        raise GrudiagAssertionError(f"expected one cell, found {len(candidates)} subjects")
    subject = candidates[0].build()
    ctx = ProbeContext(Options(seed=seed, time=steps, batch=batch))
    xs, h0 = ctx.inputs(subject, "assert_matches_reference")
    actual = subject.run(xs, h0)
    if callable(reference):
        h, states = h0, []
        for x in xs:
            h = np.asarray(reference(x, h), dtype=np.float64)
            states.append(h)
        _compare(actual, np.stack(states), atol, rtol, getattr(reference, "__name__", "reference"))
        return
    _compare_with_variant(subject, reference, xs, h0, actual, atol, rtol)


def _compare(actual: np.ndarray, expected: np.ndarray, atol: float, rtol: float,
             name: str) -> None:
    __tracebackhide__ = True
    if actual.shape != expected.shape:
        raise GrudiagAssertionError(f"states have shape {actual.shape}, {name} gives "
                                    f"{expected.shape}")
    diff = np.abs(actual - expected)
    allowed = atol + rtol * np.abs(expected)
    bad = diff > allowed
    if bad.any():
        t, b, u = np.unravel_index(np.argmax(diff - allowed), diff.shape)
        raise GrudiagAssertionError(
            f"cell does not match {name}: {int(bad.sum())} of {diff.size} state values differ\n"
            f"  worst |Δh| = {diff[t, b, u]:.3g} at step {t}, sample {b}, unit {u} "
            f"(cell {actual[t, b, u]:.6g}, {name} {expected[t, b, u]:.6g})\n"
            f"  allowed: atol={atol:g} + rtol={rtol:g}·|expected|")


def _compare_with_variant(subject, reference: str, xs, h0, actual, atol, rtol) -> None:
    __tracebackhide__ = True
    from .reference import ALL_VARIANTS, PYTORCH
    from .probes.conventions import convention_string
    from .reference.identify import NotMappable, identify

    wanted = PYTORCH if reference in ("torch.nn.GRUCell", "torch.nn.GRU", "pytorch") else next(
        (v for v in ALL_VARIANTS if v.name == reference), None)
    if wanted is None:
        names = ", ".join(["torch.nn.GRUCell"] + [v.name for v in ALL_VARIANTS])
        raise ValueError(f"unknown reference {reference!r}; use one of: {names} or a callable")
    try:
        result = identify(subject, np.random.default_rng(0))
    except NotMappable as exc:
        raise GrudiagAssertionError(
            f"cell does not match {wanted.name}: its parameters cannot be mapped onto a GRU "
            f"({exc})") from None
    match = result.match
    if result.status != "identified" or match is None:
        what = f"it makes a known mistake: {result.mistake}" if result.status == "mistake" \
            else "no correct GRU variant reproduces it"
        nearest = f"; nearest: {convention_string(match)}" if match is not None else ""
        raise GrudiagAssertionError(f"cell does not match {wanted.name}: {what}{nearest}")
    family, update = match.model.family, match.model.update
    if (family, update) != (wanted.family, wanted.update):
        raise GrudiagAssertionError(
            f"cell does not match {wanted.name}: it implements {convention_string(match)} "
            f"(max |Δh| {max(match.error_random, match.error_own):.2g} against that variant)\n"
            f"  {wanted.name}: {wanted.description}")
    error = max(match.error_random, match.error_own)
    if error > atol:
        raise GrudiagAssertionError(
            f"cell implements {wanted.name} but differs from it by {error:.3g} (atol={atol:g})")
