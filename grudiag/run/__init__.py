"""`grudiag run train.py`: run a training script under instrumentation and judge what it did.

    report = grudiag.run.run("train.py", ["--lr", "0.1"], max_steps=200)

The script runs unmodified as ``__main__`` in a worker process (`script.py`), observed through
public PyTorch hooks (`instrument.py`); the record is judged into GD7xx findings (`judge.py`)
and returned as the same `Report` that `grudiag check` produces.
"""
from __future__ import annotations

import os
import shlex
import time
from collections.abc import Sequence

from ..model import Location, Problem, Report, Severity
from .instrument import DEFAULT_SAMPLE_EVERY

DEFAULT_RUN_TIMEOUT_S = 600.0


def run(path: str, args: Sequence[str] = (), *, max_steps: int | None = None,
        timeout: float = DEFAULT_RUN_TIMEOUT_S, sample_every: int = DEFAULT_SAMPLE_EVERY,
        fail_on: str | Severity = Severity.ERROR, thresholds: dict[str, float] | None = None,
        seed: int = 0, cwd: str | None = None) -> tuple[Report, str]:
    """Run `path` with `args`; returns the report and what the script printed."""
    from ..checks import training  # noqa: F401 - the GD7xx checks are registered
    from ..plots import training as _plots  # noqa: F401 - the "training" plot is registered
    from .judge import judge
    from .script import run_script

    started = time.monotonic()
    fail = Severity(fail_on) if isinstance(fail_on, str) else fail_on
    command = "grudiag run " + shlex.quote(path) + (
        f" --max-steps {max_steps}" if max_steps is not None else "") + (
        " -- " + " ".join(shlex.quote(a) for a in args) if args else "")
    report = Report(seed=seed, fail_on=fail, targets=[path], reproduce=command)
    if not os.path.isfile(path):
        report.problems.append(Problem(path, f"{path}: no such file", Location(path)))
        return report, ""
    try:
        compile(open(path, encoding="utf-8").read(), path, "exec")
    except SyntaxError as exc:
        report.problems.append(Problem(path, f"{path}:{exc.lineno}: syntax error: {exc.msg}",
                                       Location(path, exc.lineno)))
        return report, ""
    outcome = run_script(path, list(args), max_steps=max_steps, timeout=timeout,
                         sample_every=sample_every, seed=seed, cwd=cwd)
    result = judge(path, outcome, thresholds)
    steps = (outcome.get("recording") or {}).get("steps") or []
    if not steps and not result.findings:
        report.problems.append(Problem(
            path, f"{os.path.basename(path)} finished without a single torch.optim optimizer "
            "step: nothing to diagnose (grudiag run observes optimizer.step())", Location(path)))
    report.results.append(result)
    report.duration_s = time.monotonic() - started
    return report, outcome.get("output", "")


__all__ = ["DEFAULT_RUN_TIMEOUT_S", "run"]
