"""Shape-contract and dependence-structure probes: a grid of sizes, batch and time dependence.

Every comparison runs on fresh copies of the subject (`Subject.fresh`), so a subject that keeps
state between calls cannot make two runs differ for reasons other than the perturbation.
All perturbations are finite (an input replaced by another random draw): they need no gradients
and work for every subject style. A sample or step that is not used at all changes nothing,
bit for bit, so "no dependence" measures exactly 0.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..subjects.base import Subject, SubjectOutputError, SubjectRaised
from . import finite_differences as fd
from .base import Probe, ProbeContext, ProbeSkipped, register_probe


def run_fresh(subject: Subject, xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """Run on a new copy, so state kept by the subject between calls cannot leak in."""
    return np.asarray(subject.fresh().run(xs, h0), dtype=np.float64)


def accepts_h0(subject: Subject) -> bool:
    """Sequence models may take no initial state (then h0 is ignored and treated as zeros)."""
    return bool(getattr(subject, "accepts_h0", True))


def max_abs(a: np.ndarray) -> float:
    a = np.abs(np.asarray(a, dtype=np.float64))
    return float(a.max()) if a.size else 0.0


def require_finite(hs: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(hs)):
        raise ProbeSkipped(f"the states are not finite on the {what} inputs, so dependences "
                           "cannot be measured (see GD501)")


def rounded(a: np.ndarray, digits: int = 4) -> list:
    """A small array as nested lists with a few significant digits (for JSON and plots)."""
    a = np.asarray(a, dtype=np.float64)
    return [float(f"{v:.{digits}g}") for v in a] if a.ndim == 1 else [rounded(r, digits) for r in a]


def failure(exc: Exception) -> dict[str, Any]:
    """What a failed call looked like, in JSON-able form."""
    loc = getattr(exc, "location", None)
    out: dict[str, Any] = {"error": getattr(exc, "message", str(exc))[:300]}
    if isinstance(exc, SubjectOutputError):
        out["kind"] = exc.kind
        out["expected"] = list(exc.expected) if exc.expected is not None else None
        got = exc.got if isinstance(exc.got, (tuple, list)) else getattr(exc.got, "shape", None)
        out["got"] = [int(n) for n in got] if got is not None else None
    else:
        out["kind"] = "raised"
        out["exception"] = getattr(exc, "exc_type", type(exc).__name__)
    if loc is not None and getattr(loc, "file", None):
        out["location"] = {"file": loc.file, "line": loc.line}
    return out


@register_probe
class SizeGridProbe(Probe):
    """Run the subject over a grid of batch and time sizes, and through its unbatched path.

    Each grid input reuses the first samples/steps of a reference input at the default sizes,
    so the states of a working grid point must equal the matching slice of the reference run.
    """

    name = "size-grid"
    title = "Shape contract over a grid of batch and time sizes"

    def measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        B, T = ctx.options.batch, ctx.steps
        # Reference inputs large enough for every grid point.
        big_b = max(B, 5)
        xs_all, h0_all = ctx.inputs(subject, "size-grid", batch=big_b, time=T)
        ref = run_fresh(subject, xs_all[:, :B], h0_all[:B])
        scale = max(max_abs(ref), 1e-12)
        grid = sorted({(1, T), (2, T), (big_b, T), (B, 1), (B, 2), (1, 1)} - {(B, T)})
        points = []
        for b, t in grid:
            point: dict[str, Any] = {"batch": b, "time": t}
            try:
                hs = run_fresh(subject, xs_all[:t, :b], h0_all[:b])
            except (SubjectRaised, SubjectOutputError) as exc:
                point.update(ok=False, **failure(exc))
            else:
                point["ok"] = True
                n = min(b, B)
                if hs.shape == (t, b, subject.hidden_size) and np.all(np.isfinite(hs)):
                    point["max_abs_diff"] = max_abs(hs[:, :n] - ref[:t, :n])
                    point["rel_diff"] = point["max_abs_diff"] / scale
            points.append(point)
        unbatched: dict[str, Any] = {"supported": bool(subject.supports_unbatched)}
        if subject.supports_unbatched:
            try:
                hu = np.asarray(subject.fresh().run_unbatched(xs_all[:, 0], h0_all[0]),
                                dtype=np.float64)
            except NotImplementedError:
                unbatched["supported"] = False
            except (SubjectRaised, SubjectOutputError) as exc:
                unbatched.update(ok=False, **failure(exc))
            else:
                unbatched["ok"] = True
                if hu.shape == ref[:, 0].shape:
                    unbatched["max_abs_diff"] = max_abs(hu - ref[:, 0])
                    unbatched["rel_diff"] = unbatched["max_abs_diff"] / scale
                else:
                    unbatched.update(ok=False, kind="shape", got=list(hu.shape),
                                     expected=list(ref[:, 0].shape),
                                     error=f"returned shape {tuple(hu.shape)}, expected "
                                           f"{tuple(ref[:, 0].shape)}")
        return {"default": {"batch": B, "time": T}, "scale": scale, "points": points,
                "unbatched": unbatched}


@register_probe
class BatchDependenceProbe(Probe):
    """Replace sample j (its inputs at every step and its h0) and see which samples change.

    ``matrix[i][j]`` is max |Δh| over steps and units of sample i when sample j is replaced; a
    correct subject has a diagonal matrix (samples are independent).
    """

    name = "batch-dependence"
    title = "Batch independence: which samples change when one sample changes"

    def measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        xs, h0 = ctx.inputs(subject, "batch-dependence")
        B = xs.shape[1]
        if B < 2:
            raise ProbeSkipped("batch independence needs a probe batch of at least 2")
        base = run_fresh(subject, xs, h0)
        require_finite(base, "batch-dependence")
        rng = ctx.rng("batch-dependence", "perturb")
        matrix = np.zeros((B, B))
        first_step = np.full((B, B), -1, dtype=int)
        for j in range(B):
            xp, hp = xs.copy(), h0.copy()
            xp[:, j] = rng.normal(0.0, 1.0, size=xp[:, j].shape)
            hp[j] = rng.uniform(-0.5, 0.5, size=hp[j].shape)
            d = np.abs(run_fresh(subject, xp, hp) - base)  # (T, B, H)
            matrix[:, j] = d.max(axis=(0, 2))
            for i in range(B):
                steps = np.nonzero(d[:, i].max(axis=1) > 0)[0]
                first_step[i, j] = int(steps[0]) if steps.size else -1
        return {"matrix": matrix, "first_changed_step": first_step.tolist(),
                "scale": max(max_abs(base), 1e-12), "batch": B, "time": int(xs.shape[0])}

    def summarize(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "matrix": rounded(data["matrix"])}


@register_probe
class TimeDependenceProbe(Probe):
    """Replace the inputs of step s (all samples) and see which output steps change.

    ``matrix[t][s]`` is max |Δh_t| (over samples and units) when x_s is replaced: a causal
    recurrent model is lower-triangular (zero above the diagonal), and a model that carries its
    state has a non-zero first sub-diagonal (h_t depends on x_{t-1}). ``h0_dependence[t]`` is
    max |Δh_t| when h0 is replaced (None when the subject takes no initial state). One run per
    replaced step, all of them side by side in one batch (`fd.side_by_side`).
    """

    name = "time-dependence"
    title = "Time structure: which output steps change when one input step changes"

    def measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        xs, h0 = ctx.inputs(subject, "time-dependence")
        T = xs.shape[0]
        rng = ctx.rng("time-dependence", "perturb")
        runs = [(xs, h0)]
        for s in range(T):
            xp = xs.copy()
            xp[s] = rng.normal(0.0, 1.0, size=xp[s].shape)
            runs.append((xp, h0))
        if accepts_h0(subject):
            runs.append((xs, rng.uniform(-0.5, 0.5, size=h0.shape)))
        # the unperturbed run in the same call as the others: an unused step changes nothing,
        # bit for bit, as in separate calls
        base, *perturbed = fd.side_by_side(lambda x, h: run_fresh(subject, x, h), runs)
        require_finite(base, "time-dependence")
        changed = [np.abs(hs - base).max(axis=(1, 2)) for hs in perturbed]
        matrix = np.stack(changed[:T], axis=1)
        h0_dep = changed[T] if accepts_h0(subject) else None
        return {"matrix": matrix, "h0_dependence": h0_dep, "accepts_h0": accepts_h0(subject),
                "scale": max(max_abs(base), 1e-12), "time": T, "batch": int(xs.shape[1])}

    def summarize(self, data: dict[str, Any]) -> dict[str, Any]:
        h0 = data["h0_dependence"]
        return {**data, "matrix": rounded(data["matrix"]),
                "h0_dependence": None if h0 is None else rounded(h0)}
