"""Gradient probes: the subject's own gradients (user backward or autograd) vs finite differences.

* ``gradient_check`` — directional derivatives (one private random direction per input group:
  xs, h0 and each parameter) of ``sum(dhs * run)`` from `Subject.vjp` and from central finite
  differences in float64, for ONE step (T=1) and a SHORT UNROLL (T=3). Groups that disagree are
  then compared entry by entry (when small) to name the worst entry.
* ``gradient_flow`` — autograd subjects and sequence subjects with their own backward:
  ``∂(v·h_T)/∂x_t`` for every step t (and ∂/∂h0), from the subject's gradients and by finite
  differences, to find the step where backpropagation through time stops.

Both measure only; GD401/GD402 judge.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..subjects.base import GradientsUnavailable, Subject
from . import finite_differences as fd
from .base import Probe, ProbeContext, ProbeSkipped, register_probe

#: the unroll length of the "short unroll" scenario
UNROLL_STEPS = 3
#: groups whose directional relative error exceeds this are compared entry by entry
#: (far below GD401's default rtol/atol, so that any threshold override still has the detail)
PIN_DOWN_REL = 1e-6
PIN_DOWN_ABS = 1e-8
#: blocks up to this many entries are compared entry by entry (2 runs per entry); only the
#: worst failing parameter block and the worst of dx / dh_prev are
MAX_ENTRYWISE = 400
#: |autograd| below this fraction of |finite differences| counts as "no gradient flows"
CUT_RATIO = 1e-3


def _accepts_h0(subject: Subject) -> bool:
    return bool(getattr(subject, "accepts_h0", True))


def _check_runnable(subject: Subject, xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """Run twice: refuse non-deterministic or float32-only subjects (FD cannot judge them)."""
    hs = subject.run(xs, h0)
    again = subject.run(xs, h0)
    if not (np.all(np.isfinite(hs)) and np.all(np.isfinite(again))):
        raise ProbeSkipped("the forward pass returns NaN/Inf on the probe inputs, so finite "
                           "differences are meaningless")
    if not np.array_equal(hs, again):
        raise ProbeSkipped("two identical forward calls returned different states (state "
                           "carried between calls, dropout in training mode or other "
                           "randomness), so finite differences cannot be compared with "
                           "gradients")
    if fd.computes_in_float32(hs):
        raise ProbeSkipped("the subject computes in float32, where finite differences are "
                           "accurate to ~1e-3 only; gradient checks need float64 arithmetic")
    return hs


def custom_autograd_functions(subject: Subject, xs: np.ndarray, h0: np.ndarray) -> list[str] | None:
    """Names of custom ``torch.autograd.Function`` nodes in the subject's graph (None: unknown).

    Walks ``grad_fn`` from the output of ``torch_forward``: a node created by a user-defined
    Function is a ``BackwardCFunction`` (its backward is the user's, not PyTorch's).
    """
    forward = getattr(subject, "torch_forward", None)
    if forward is None:
        return None
    try:
        import torch
    except ImportError:  # pragma: no cover - torch subjects imply torch
        return None
    with torch.enable_grad():
        xs_t = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
        h0_t = torch.tensor(h0, dtype=torch.float64, requires_grad=True)
        out = forward(xs_t, h0_t)
        if isinstance(out, (tuple, list)):
            out = out[0]
        root = getattr(out, "grad_fn", None)
        names: list[str] = []
        seen: set[int] = set()
        stack = [root] if root is not None else []
        while stack:
            node = stack.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, torch.autograd.function.BackwardCFunction):
                name = type(node).__name__
                name = name[:-len("Backward")] if name.endswith("Backward") else name
                if name not in names:
                    names.append(name)
            stack.extend(fn for fn, _ in getattr(node, "next_functions", ()))
    return names


def _groups(subject: Subject, xs: np.ndarray, h0: np.ndarray) -> list[tuple[str, str, str | None]]:
    """(label, group, parameter name) for every input group."""
    groups = [("dx", "xs", None)]
    if _accepts_h0(subject):
        groups.append(("dh_prev", "h0", None))
    groups += [(f"d{name}", "param", name) for name in subject.parameters()]
    return groups


def _row_ranges(rows: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for r in rows:
        if out and r == out[-1][1] + 1:
            out[-1][1] = r
        else:
            out.append([r, r])
    return out


def _scenario(subject: Subject, ctx: ProbeContext, T: int, pin: bool = True) -> dict[str, Any]:
    xs, h0 = ctx.inputs(subject, "gradient_check", T, time=T)
    if not _accepts_h0(subject):
        h0 = np.zeros_like(h0)
    _check_runnable(subject, xs, h0)
    rng = ctx.rng("gradient_check", "directions", T)
    dhs = rng.normal(size=(T,) + h0.shape)
    try:
        grads = subject.vjp(xs, h0, dhs)
    except GradientsUnavailable as exc:
        raise ProbeSkipped(f"the subject offers no gradients to check ({exc})") from exc
    params = subject.parameters()
    blocks: list[dict[str, Any]] = []
    for label, group, name in _groups(subject, xs, h0):
        if group == "xs":
            shape, analytic_full = xs.shape, grads.xs
        elif group == "h0":
            shape, analytic_full = h0.shape, grads.h0
        else:
            shape, analytic_full = np.shape(params[name]), grads.params.get(name)
        provided = analytic_full is not None
        a_full = (np.zeros(shape) if analytic_full is None
                  else np.asarray(analytic_full, dtype=np.float64).reshape(shape))
        u = fd.unit_direction(rng, shape)
        blocks.append({"label": label, "group": group, "parameter": name, "shape": list(shape),
                       "provided": provided, "analytic": float(np.sum(a_full * u)),
                       "_analytic_full": a_full, "_direction": u})
    # dx and dh_prev in one call: they perturb inputs, not the parameters
    states = [b for b in blocks if b["group"] != "param"]
    numeric = fd.directionals(subject, xs, h0, dhs, [
        (b["_direction"], None) if b["group"] == "xs" else (None, b["_direction"])
        for b in states])
    for b, n in zip(states, numeric):
        b["numeric"] = float(n)
    for b in blocks:
        if b["group"] == "param":
            b["numeric"] = fd.directional(subject, xs, h0, dhs,
                                          dparams={b["parameter"]: b["_direction"]})
        b.update(abs_error=abs(b["analytic"] - b["numeric"]),
                 rel_error=fd.relative_error(b["analytic"], b["numeric"]))
    if pin:
        # entry-wise detail for the worst parameter block and the worst of dx / dh_prev
        for kinds in ({"param"}, {"xs", "h0"}):
            cands = [b for b in blocks if b["group"] in kinds and b["rel_error"] > PIN_DOWN_REL
                     and b["abs_error"] > PIN_DOWN_ABS
                     and int(np.prod(b["shape"])) <= MAX_ENTRYWISE]
            if cands:
                b = max(cands, key=lambda b: b["rel_error"])
                b.update(_pin_down(subject, xs, h0, dhs, b["group"], b["parameter"],
                                   b["_analytic_full"]))
    for b in blocks:
        del b["_analytic_full"], b["_direction"]
    return {"T": T, "batch": int(xs.shape[1]), "blocks": blocks,
            "gradient_norm": float(np.sqrt(sum(np.sum(np.square(np.nan_to_num(v)))
                                               for v in [grads.xs, grads.h0]
                                               + [p for p in grads.params.values()
                                                  if p is not None])))}


def _pin_down(subject: Subject, xs: np.ndarray, h0: np.ndarray, dhs: np.ndarray, group: str,
              name: str | None, analytic: np.ndarray) -> dict[str, Any]:
    numeric = fd.entrywise(subject, xs, h0, dhs, group, name)
    diff = np.abs(analytic - numeric)
    scale = max(float(np.max(np.abs(numeric))), float(np.max(np.abs(analytic))), 1e-12)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    bad = diff > 1e-5 * scale + 1e-9
    out: dict[str, Any] = {
        "entrywise_rel_error": fd.relative_error(analytic, numeric),
        "worst_index": list(worst),
        "worst_analytic": float(analytic[worst]),
        "worst_numeric": float(numeric[worst]),
        "bad_entries": int(bad.sum()),
        "entries": int(bad.size),
    }
    # the ratio analytic/numeric over the bad entries: a constant ratio names a missing factor
    both = bad & (np.abs(numeric) > 1e-6 * scale)
    if both.any():
        ratio = analytic[both] / numeric[both]
        out["ratio_median"] = float(np.median(ratio))
        out["ratio_spread"] = float(np.max(ratio) - np.min(ratio))
    if group == "param" and analytic.ndim == 2:
        out["bad_rows"] = _row_ranges([int(r) for r in np.nonzero(bad.any(axis=1))[0]])
    return out


@register_probe
class GradientCheckProbe(Probe):
    """The subject's gradients vs float64 central finite differences, one step and a short unroll."""

    name = "gradient_check"
    title = "Gradients vs finite differences"

    def measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return self._measure(subject, ctx)

    def _measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        if subject.gradient_source is None:
            raise ProbeSkipped("the subject offers no gradients (no autograd and no backward), "
                               "so there is no gradient to check")
        result: dict[str, Any] = {"source": subject.gradient_source, "eps": fd.DEFAULT_EPS}
        result["one_step"] = one = _scenario(subject, ctx, 1)
        # entry-wise detail only where one step does not already pin the error down
        pinned = any("worst_index" in b for b in one["blocks"])
        result["unroll"] = _scenario(subject, ctx, UNROLL_STEPS, pin=not pinned)
        customs = None
        if subject.gradient_source == "autograd":
            xs, h0 = ctx.inputs(subject, "gradient_check", 1, time=1)
            customs = custom_autograd_functions(subject, xs, h0)
        result["custom_functions"] = customs
        return result


@register_probe
class GradientFlowProbe(Probe):
    """∂(v·h_T)/∂x_t for every t (and ∂/∂h0) by autograd and by finite differences."""

    name = "gradient_flow"
    title = "Gradient flow back through time"

    def measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return self._measure(subject, ctx)

    def _measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        source = subject.gradient_source
        if source is None:
            raise ProbeSkipped("the subject offers no gradients, so there is no gradient flow "
                               "through time to check")
        if source != "autograd" and not subject.is_sequence:
            raise ProbeSkipped("the cell's own backward is chained over time by grudiag, so "
                               "the subject has no time loop of its own that could be cut")
        T = max(ctx.steps, 4)  # 2 runs per step
        xs, h0 = ctx.inputs(subject, "gradient_flow", time=T)
        accepts_h0 = _accepts_h0(subject)
        if not accepts_h0:
            h0 = np.zeros_like(h0)
        _check_runnable(subject, xs, h0)
        rng = ctx.rng("gradient_flow", "directions")
        v = fd.unit_direction(rng, h0.shape)
        dhs = np.zeros((T,) + h0.shape)
        dhs[-1] = v
        try:
            grads = subject.vjp(xs, h0, dhs)
        except GradientsUnavailable as exc:
            raise ProbeSkipped(f"the subject offers no gradients ({exc})") from exc
        autograd, directions = [], []
        for t in range(T):
            u = np.zeros_like(xs)
            u[t] = fd.unit_direction(rng, xs.shape[1:])
            autograd.append(float(np.sum(np.asarray(grads.xs) * u)))
            directions.append((u, None))
        if accepts_h0:
            u = fd.unit_direction(rng, h0.shape)
            h0_autograd = float(np.sum(np.asarray(grads.h0) * u))
            directions.append((None, u))
        numeric = [float(n) for n in fd.directionals(subject, xs, h0, dhs, directions)]
        h0_pair = (h0_autograd, numeric.pop()) if accepts_h0 else None
        customs = (custom_autograd_functions(subject, xs[:1], h0) if source == "autograd"
                   else None)
        return {"T": T, "source": source, "autograd": autograd, "numeric": numeric,
                "rel_error": [fd.relative_error(a, n) for a, n in zip(autograd, numeric)],
                "h0_autograd": None if h0_pair is None else h0_pair[0],
                "h0_numeric": None if h0_pair is None else h0_pair[1],
                "h0_rel_error": None if h0_pair is None else fd.relative_error(*h0_pair),
                "cut_ratio": CUT_RATIO, "custom_functions": customs}
