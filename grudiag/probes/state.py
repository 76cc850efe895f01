"""State probes: is the state kept between calls, and does the state (and its weights) matter?

* ``call-state``: determinism across calls (same input twice on one copy; batch A then batch B
  versus B on a fresh copy; a different batch size after earlier calls; and, where forward's h0
  has a default, the same input twice without h0).
* ``recurrence``: the effect of h_prev on one step (finite replacement), the finite-difference
  Jacobian ∂h'/∂h_prev (is it diagonal?), and the effect of each recurrent-shaped parameter
  (or gate block of a fused one) on the states, by finite perturbation; autograd's gradients
  are recorded alongside when the subject has them.

All runs compared with each other use fresh copies (`Subject.fresh`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..subjects.base import GradientsUnavailable, Subject, SubjectOutputError, SubjectRaised
from . import finite_differences as fd
from .base import Probe, ProbeContext, ProbeSkipped, register_probe
from .shapes import accepts_h0, failure, max_abs, require_finite, rounded, run_fresh


@register_probe
class CallStateProbe(Probe):
    """Does one copy of the subject give the same outputs for the same inputs, call after call?"""

    name = "call-state"
    title = "State kept between calls"

    def measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        xs, h0 = ctx.inputs(subject, "call-state", "a")
        xq, hq = ctx.inputs(subject, "call-state", "b")
        B = xs.shape[1]
        copy_1, copy_2 = subject.fresh(), subject.fresh()
        first = np.asarray(copy_1.run(xs, h0), dtype=np.float64)
        other_copy = np.asarray(copy_2.run(xs, h0), dtype=np.float64)
        require_finite(first, "call-state")
        scale = max(max_abs(first), 1e-12)
        out: dict[str, Any] = {"scale": scale, "batch": B, "time": int(xs.shape[0])}
        # Two fresh copies, same first call: any difference is randomness, not carried state.
        out["fresh_copies_diff"] = max_abs(other_copy - first)
        # The same copy, the same input, a second time.
        second = np.asarray(copy_1.run(xs, h0), dtype=np.float64)
        per_step = np.abs(second - first).max(axis=(1, 2))
        out["repeat_diff"] = float(per_step.max())
        out["repeat_diff_per_step"] = rounded(per_step)
        # Batch B after batch A on the same copy, versus B on a fresh copy.
        after = np.asarray(copy_1.run(xq, hq), dtype=np.float64)
        clean = run_fresh(subject, xq, hq)
        out["leak_diff"] = max_abs(after - clean)
        # A different batch size after earlier calls: a stored (B, H) state no longer fits.
        b2 = 2 if B != 2 else 4
        xr, hr = ctx.inputs(subject, "call-state", "c", batch=b2)
        resize: dict[str, Any] = {"batch": b2, "after_batch": B}
        try:
            clean_r = run_fresh(subject, xr, hr)
        except (SubjectRaised, SubjectOutputError) as exc:
            resize.update(fresh_ok=False, **failure(exc))
        else:
            resize["fresh_ok"] = True
            try:
                after_r = np.asarray(copy_1.run(xr, hr), dtype=np.float64)
            except (SubjectRaised, SubjectOutputError) as exc:
                resize.update(ok=False, **failure(exc))
            else:
                resize["ok"] = True
                resize["diff"] = max_abs(after_r - clean_r) if after_r.shape == clean_r.shape \
                    else float("inf")
        out["resize"] = resize
        out["default_state"] = self._default_state(subject, xs)
        return out

    @staticmethod
    def _default_state(subject: Subject, xs: np.ndarray) -> dict[str, Any] | None:
        """The same input twice on one copy, both times without h0: a model may keep its last
        state only for the call that lets it choose its own initial state."""
        if not subject.h0_optional:
            return None
        copy = subject.fresh()
        try:
            first = np.asarray(copy.run_default_state(xs), dtype=np.float64)
            second = np.asarray(copy.run_default_state(xs), dtype=np.float64)
        except (SubjectRaised, SubjectOutputError) as exc:
            return {"ok": False, **failure(exc)}
        return {"ok": True, "repeat_diff": max_abs(second - first),
                "scale": max(max_abs(first), 1e-12)}


class _FreshSteps:
    """Steps a fresh copy at every call: a subject that keeps state between calls (GD302) must
    not carry one finite-difference run into the next."""

    def __init__(self, subject: Subject):
        self.subject = subject

    def step(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        return self.subject.fresh().step(x, h)


def _segments(n: int, input_size: int, hidden_size: int) -> list[tuple[int, int]] | None:
    """How an axis of a weight splits into blocks that can be unused on their own.

    A multiple of hidden_size splits into gate blocks. A concatenated axis (hidden_size +
    input_size) splits at input_size and at hidden_size, so that the h part, first ([h, x])
    or last ([x, h]), is a union of whole pieces.
    """
    H = hidden_size
    if n % H == 0:
        return [(k * H, (k + 1) * H) for k in range(n // H)]
    if n == H + input_size:
        cuts = sorted({0, min(H, input_size), max(H, input_size), n})
        return list(zip(cuts[:-1], cuts[1:]))
    return None


def recurrent_layout(shape: tuple[int, ...], input_size: int,
                     hidden_size: int) -> tuple[list, list] | None:
    """Segments of both axes of a weight that can multiply h_prev, else None.

    A weight can act on h_prev when one axis is a multiple of hidden_size and the other a
    multiple of hidden_size (``U``, ``weight_hh``, Keras ``recurrent_kernel``) or
    hidden_size + input_size (a concatenated ``[h, x]`` weight). Input weights have an
    input_size axis instead (grudiag's default sizes make input_size ≠ hidden_size).
    """
    if len(shape) != 2:
        return None
    a, b = shape
    H, I = hidden_size, input_size
    mult = lambda n: n > 0 and n % H == 0  # noqa: E731
    concat = lambda n: n == H + I  # noqa: E731
    if not ((mult(a) and (mult(b) or concat(b))) or (mult(b) and concat(a))):
        return None
    return _segments(a, I, H), _segments(b, I, H)


@register_probe
class RecurrenceProbe(Probe):
    """Measure how much h_prev and the recurrent weights matter to the states."""

    name = "recurrence"
    title = "Effect of h_prev and of the recurrent weights"

    #: finite-difference step for the Jacobian ∂h'/∂h_prev (large enough for float32 cells)
    fd_eps = 1e-3
    #: at most this many columns of the Jacobian are measured (random ones beyond)
    max_columns = 48

    def measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        out: dict[str, Any] = {"accepts_h0": accepts_h0(subject),
                               "is_sequence": subject.is_sequence}
        xs, h0 = ctx.inputs(subject, "recurrence", time=3)
        rng = ctx.rng("recurrence", "perturb")
        subject, out["generic_point"] = self._generic_point(subject, ctx)
        if accepts_h0(subject):
            out.update(self._step_dependence(subject, xs[0], h0, rng))
            out.update(self._jacobian(subject, xs[0], h0, rng))
        out.update(self._parameters(subject, xs, h0, rng))
        out.update(self._autograd(subject, xs, h0, rng))
        return out

    #: noise added to every parameter for the generic point, times 1/sqrt(hidden_size)
    generic_noise = 0.5

    def _generic_point(self, subject: Subject, ctx: ProbeContext) -> tuple[Subject, bool]:
        """The subject at its parameters plus small noise: a generic point of parameter space.

        "Has no effect" must be structural (the code never reads the weight), not an accident
        of the current values: with zero-initialised U_n, U_r has no effect either, which is
        the zero-init-symmetry bug, not an ignored recurrence. Structural zeros stay exactly
        zero at every point; accidental ones vanish under noise.
        """
        params = subject.parameters()
        rng = ctx.rng("recurrence", "generic-point")
        sigma = self.generic_noise / np.sqrt(max(subject.hidden_size, 1))
        noisy = {}
        for name, value in params.items():
            value = np.asarray(value)
            if value.size and np.issubdtype(value.dtype, np.floating):
                noisy[name] = value + rng.normal(0.0, sigma, size=value.shape)
        if not noisy:
            return subject, False
        return subject.with_parameters(noisy), True

    # --- (a) does one step depend on h_prev at all? ------------------------------------------
    def _step_dependence(self, subject: Subject, x: np.ndarray, h: np.ndarray,
                         rng: np.random.Generator) -> dict[str, Any]:
        h_other = rng.uniform(-0.5, 0.5, size=h.shape)
        x_other = rng.normal(0.0, 1.0, size=x.shape)
        base, new_h, new_x = fd.fresh_steps(subject, [(x, h), (x, h_other), (x_other, h)])
        require_finite(base, "recurrence")
        dh = np.abs(new_h - base).max(axis=1)  # per sample
        dx = np.abs(new_x - base).max(axis=1)
        return {"h_effect": rounded(dh), "x_effect": rounded(dx),
                "h_effect_max": float(dh.max()), "x_effect_max": float(dx.max()),
                "step_scale": max(max_abs(base), 1e-12)}

    # --- (b) is ∂h'/∂h_prev diagonal? ---------------------------------------------------------
    def _jacobian(self, subject: Subject, x: np.ndarray, h: np.ndarray,
                  rng: np.random.Generator) -> dict[str, Any]:
        B, H = h.shape
        cols = np.arange(H)
        if H > self.max_columns:
            cols = np.sort(rng.choice(H, self.max_columns, replace=False))
        directions = np.zeros((B, H, len(cols)))
        directions[:, cols, np.arange(len(cols))] = 1.0
        # jac[b, i, k] = ∂h'_i / ∂h_cols[k]
        jac, _ = fd.step_tangents_checked(_FreshSteps(subject), x, h, directions, self.fd_eps)
        on_diag = np.zeros_like(jac, dtype=bool)
        on_diag[:, cols, np.arange(len(cols))] = True
        diag = float(np.abs(jac[on_diag]).max()) if on_diag.any() else 0.0
        off = float(np.abs(jac[~on_diag]).max()) if (~on_diag).any() else 0.0
        sample0 = np.abs(jac[0]) if len(cols) == H and H <= 16 else None
        return {"jacobian_diag_max": diag, "jacobian_offdiag_max": off,
                "jacobian_columns": len(cols),
                "jacobian_abs_sample0": None if sample0 is None else rounded(sample0, 3)}

    # --- (c) do the recurrent weights change anything? -----------------------------------------
    def _parameters(self, subject: Subject, xs: np.ndarray, h0: np.ndarray,
                    rng: np.random.Generator) -> dict[str, Any]:
        params = subject.parameters()
        base = run_fresh(subject, xs, h0)
        scale = max(max_abs(base), 1e-12)
        I, H = subject.input_size, subject.hidden_size
        report: dict[str, Any] = {}

        def effect(name: str, value: np.ndarray, index) -> float:
            new = value.copy()
            sigma = max(float(np.std(value)) if value.size > 1 else 0.0, 0.2)
            new[index] += rng.normal(0.0, sigma, size=new[index].shape)
            return max_abs(subject.with_parameters({name: new}).run(xs, h0) - base)

        for name, value in params.items():
            value = np.asarray(value, dtype=np.float64)
            if value.size == 0 or not np.issubdtype(value.dtype, np.floating):
                continue
            entry: dict[str, Any] = {"shape": list(value.shape),
                                     "effect": effect(name, value, (...,))}
            layout = recurrent_layout(value.shape, I, H)
            entry["recurrent_shaped"] = layout is not None
            if layout is not None and entry["effect"] > 0:
                rows, cols = layout
                blocks = []
                for r0, r1 in rows:
                    for c0, c1 in cols:
                        blocks.append({"rows": [r0, r1], "cols": [c0, c1],
                                       "effect": effect(name, value,
                                                        (slice(r0, r1), slice(c0, c1)))})
                entry["blocks"] = blocks
                entry["row_blocks"] = len(rows)
                entry["col_blocks"] = len(cols)
            report[name] = entry
        return {"parameters": report, "params_scale": scale,
                "input_size": I, "hidden_size": H}

    # --- corroboration from autograd -----------------------------------------------------------
    def _autograd(self, subject: Subject, xs: np.ndarray, h0: np.ndarray,
                  rng: np.random.Generator) -> dict[str, Any]:
        if subject.gradient_source != "autograd":
            return {"autograd": None}
        dhs = rng.normal(0.0, 1.0, size=(xs.shape[0], xs.shape[1], subject.hidden_size))
        try:
            grads = subject.fresh().vjp(xs, h0, dhs)
        except (GradientsUnavailable, SubjectRaised, SubjectOutputError) as exc:
            return {"autograd": {"error": str(getattr(exc, "message", exc))[:200]}}
        none = sorted(n for n, g in grads.params.items() if g is None)
        zero = sorted(n for n, g in grads.params.items()
                      if g is not None and not np.any(np.asarray(g)))
        return {"autograd": {"none": none, "zero": zero}}

    def summarize(self, data: dict[str, Any]) -> dict[str, Any]:
        return dict(data)


__all__ = ["CallStateProbe", "RecurrenceProbe", "recurrent_layout", "ProbeSkipped"]
