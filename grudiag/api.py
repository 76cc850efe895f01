"""`grudiag.check`: the one entry point that the CLI, the pytest plugin and notebooks use."""
from __future__ import annotations

import os
import shlex
import time
from collections.abc import Sequence
from typing import Any

from .model import Problem, Report, Severity
from .options import Options


def check(target: Any, *, isolate: bool | None = None, **options: Any) -> Report:
    """Diagnose a file (or several), or an object: a module instance, a class, a NumPy object,
    a function (with its params as ``(function, params)``).

    Paths run in a worker process by default (``isolate=True``): a hang, a crash or
    ``os._exit`` in the user's code becomes a finding instead of ending the caller. Objects are
    probed in this process; grudiag never changes them, nor the global RNG, grad mode or
    default dtype.

    Options: ``seed``, ``timeout``, ``fail_on`` ("error" | "warning" | "info"), ``select``,
    ``ignore``, ``thresholds``, ``input_size``, ``hidden_size``, ``batch``, ``time``, ``debug``.
    """
    opts = make_options(**options)
    started = time.monotonic()
    paths = _as_paths(target)
    report = Report(seed=opts.seed, fail_on=opts.fail_on)
    if paths is not None:
        report.targets = paths
        report.reproduce = reproduce_command(paths, opts)
        for path in paths:
            _check_path(path, opts, report, isolate is not False)
    else:
        report.targets = [_describe(target)]
        _check_object(target, opts, report)
    report.duration_s = time.monotonic() - started
    return report


def make_options(**options: Any) -> Options:
    fail_on = options.pop("fail_on", Severity.ERROR)
    for key in ("select", "ignore"):
        if isinstance(options.get(key), str):
            options[key] = tuple(s for s in options[key].split(",") if s)
        elif key in options:
            options[key] = tuple(options[key])
    return Options(fail_on=Severity(fail_on), **options)


def reproduce_command(paths: Sequence[str], opts: Options) -> str:
    parts = ["grudiag", "check", *paths, "--seed", str(opts.seed)]
    if opts.select:
        parts += ["--select", ",".join(opts.select)]
    return " ".join(shlex.quote(p) for p in parts)


def _as_paths(target: Any) -> list[str] | None:
    if isinstance(target, (str, os.PathLike)):
        return [os.fspath(target)]
    if isinstance(target, (list, tuple)) and target and all(
            isinstance(t, (str, os.PathLike)) for t in target):
        return [os.fspath(t) for t in target]
    return None


def _check_path(path: str, opts: Options, report: Report, isolate: bool) -> None:
    if not os.path.isfile(path):
        why = "is a directory, not a .py file" if os.path.isdir(path) else "does not exist"
        report.problems.append(Problem(path, f"{path} {why}"))
        return
    if isolate:
        from .isolation import check_file

        outcome = check_file(path, opts)
        report.results.extend(outcome.results)
        report.problems.extend(outcome.problems)
        return
    from .runner import diagnose_candidate
    from .subjects.base import DiscoveryProblem
    from .subjects.discovery import discover_path
    from .subjects.loading import guarded_global_state

    try:
        with guarded_global_state():
            _module, candidates = discover_path(path, opts)
    except DiscoveryProblem as exc:
        report.problems.append(Problem(path, exc.message, exc.location))
        return
    report.results.extend(diagnose_candidate(c, opts) for c in candidates)


def _check_object(target: Any, opts: Options, report: Report) -> None:
    from .runner import diagnose_candidate
    from .subjects.base import DiscoveryProblem
    from .subjects.discovery import discover_object

    try:
        candidates = discover_object(target, opts)
    except DiscoveryProblem as exc:
        report.problems.append(Problem(report.targets[0], exc.message, exc.location))
        return
    report.results.extend(diagnose_candidate(c, opts) for c in candidates)


def _describe(target: Any) -> str:
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"<{name}>"
