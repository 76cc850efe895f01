"""Gradient flow through time: one-step Jacobians and ‖∂L/∂h_t‖ along a long trajectory.

The probe runs the subject for T = 30 steps (x ~ N(0, 1), h0 ~ U(-0.5, 0.5), batch 3) and
follows k = min(H, 8) tangent directions per sample along it, the standard QR method for
Lyapunov exponents: at every step the one-step Jacobian J_t = ∂h_t/∂h_{t-1} is applied to the
current orthonormal directions Q_{t-1} by float64 central differences (2·k one-step runs, in
one stacked call), and J_t·Q_{t-1} = Q_t·R_t re-orthonormalises them. The cost is a fixed
multiple of a forward pass (it does not grow with H), and after a few steps Q_t spans the
directions that the dynamics amplify most, which are the ones that decide whether gradients
explode or vanish. With H ≤ 8 the directions span the whole state space and everything below
is exact. Finite differences measure the *function*, so a wrong backward or a cut graph
(GD401/GD402) cannot distort this measurement, and every subject style is covered alike.

From the R_t (the Jacobian restricted to the tracked directions, J_t·Q_{t-1} = Q_t·R_t):

* ``sigma_max[t]``: the largest singular value of J_t on the tracked directions (median over
  samples; a lower bound of J_t's largest, equal to it when k = H), and ``sigma_min[t]``, the
  smallest singular value of J_t (only when k = H);
* ``grad_norms[t]`` = ‖∂L/∂h_t‖ for t = 0..T, with L = v·h_T, v a private random unit vector
  per sample in the tracked directions at T: one exact backward pass g_{t-1} = R_tᵀ g_t, the
  gradient's component in the tracked directions (all of it when k = H), geometric mean over
  samples, so ``grad_norms[T] = 1``;
* ``rate``: the geometric-mean per-step ratio ‖∂L/∂h_{t-1}‖ / ‖∂L/∂h_t‖ = (grad_norms[0])^(1/T);
* ``horizon_1e3`` / ``horizon_e``: steps back from T until the norm falls below 1e-3 / 1/e
  (None: not within T steps).

Sequence subjects that ignore h0 cannot be stepped from an arbitrary state; for them the norms
are ‖∂L/∂x_t‖ (by finite differences on whole runs), which decay at the same rate, and no
spectrum is measured.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ..subjects.base import Subject
from . import finite_differences as fd
from .base import Probe, ProbeContext, ProbeSkipped, register_probe

#: the trajectory length: long enough to see a geometric trend (documented in GD403/GD404)
JACOBIAN_STEPS = 30
#: tangent directions followed per sample: enough to hold the few most amplified directions,
#: few enough that the probe costs a fixed multiple of a forward pass at any hidden size
TRACKED_DIRECTIONS = 8


def _horizon(norms: list[float], level: float) -> int | None:
    """Steps back from the end until norms fall below ``level`` (norms[-1] is 1)."""
    T = len(norms) - 1
    for k in range(1, T + 1):
        if norms[T - k] < level:
            return k
    return None


def _geo_mean_norms(g_norms: np.ndarray) -> list[float]:
    """(T+1, B) per-sample norms -> geometric mean over samples (0 stays 0)."""
    with np.errstate(divide="ignore"):
        logs = np.log(g_norms)
    return [float(np.exp(np.mean(row))) for row in logs]


@register_probe
class JacobianSpectrumProbe(Probe):
    """One-step Jacobian spectra and gradient norms through time along a 30-step trajectory."""

    name = "jacobian_spectrum"
    title = "Gradient norm through time and one-step Jacobian spectra"

    def measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        # overflow warnings of user code on perturbed inputs are not this probe's business
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return self._measure(subject, ctx)

    def _measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        T = JACOBIAN_STEPS
        xs, h0 = ctx.inputs(subject, "jacobian_spectrum", time=T)
        accepts_h0 = bool(getattr(subject, "accepts_h0", True))
        if not accepts_h0:
            h0 = np.zeros_like(h0)
        hs = subject.run(xs, h0)
        # a state carried between calls or dropout shows from the first steps of a second call
        if not np.array_equal(hs[:2], subject.run(xs[:2], h0), equal_nan=True):
            raise ProbeSkipped("two identical forward calls returned different states (state "
                               "carried between calls, dropout in training mode or other "
                               "randomness), so the Jacobian of one step cannot be measured")
        finite_steps = T
        bad = ~np.isfinite(hs).reshape(T, -1).all(axis=1)
        if bad.any():
            finite_steps = int(np.argmax(bad))
        if finite_steps < 5:
            raise ProbeSkipped(f"the states become NaN/Inf after {finite_steps} steps, too "
                               "early to measure gradient flow")
        float32 = fd.computes_in_float32(hs[:finite_steps])
        eps = fd.FLOAT32_EPS if float32 else fd.DEFAULT_EPS
        rng = ctx.rng("jacobian_spectrum", "projection")
        result: dict[str, Any] = {
            "T": finite_steps, "batch": int(h0.shape[0]), "eps": eps, "float32": float32,
            "loss": "L = v·h_T, v a random unit vector per sample",
            "max_abs_state": float(np.max(np.abs(hs[:finite_steps]))),
            "state_norm_growth": float(np.mean(np.linalg.norm(hs[finite_steps - 1], axis=1))
                                       / max(float(np.mean(np.linalg.norm(h0, axis=1))), 1e-12)),
        }
        if accepts_h0:
            result.update(self._from_tangents(subject, xs[:finite_steps], h0,
                                              hs[:finite_steps], rng, eps))
        else:
            v = rng.normal(size=h0.shape)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            result.update(self._from_inputs(subject, xs[:finite_steps], h0, v, eps))
        norms = result["grad_norms"]
        Tm = len(norms) - 1
        result["rate"] = float(norms[0] ** (1.0 / Tm)) if norms[0] > 0 else 0.0
        result["total_change"] = float(norms[0])
        result["horizon_1e3"] = _horizon(norms, 1e-3)
        result["horizon_e"] = _horizon(norms, math.exp(-1.0))
        return result

    @staticmethod
    def _from_tangents(subject: Subject, xs: np.ndarray, h0: np.ndarray, hs: np.ndarray,
                       rng: np.random.Generator, eps: float) -> dict[str, Any]:
        T, B, H = hs.shape
        k = min(H, TRACKED_DIRECTIONS)
        prev = np.concatenate([h0[None], hs[:-1]], axis=0)
        Q = np.linalg.qr(rng.normal(size=(B, H, k)))[0]
        Rs = np.empty((T, B, k, k))
        for t in range(T):
            if t == 0:
                JQ, stacked = fd.step_tangents_checked(subject, xs[0], prev[0], Q, eps)
            else:
                JQ = fd.step_tangents(subject, xs[t], prev[t], Q, eps, stacked=stacked)
            if not np.all(np.isfinite(JQ)):
                raise ProbeSkipped("the one-step Jacobian has NaN/Inf entries on the trajectory")
            Q, Rs[t] = np.linalg.qr(JQ)
        svals = np.linalg.svd(Rs, compute_uv=False)  # (T, B, k), largest first
        g = rng.normal(size=(B, k))
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        g_norms = [np.linalg.norm(g, axis=1)]
        for t in reversed(range(T)):
            g = np.einsum("bij,bi->bj", Rs[t], g)  # g_{t-1} = R_tᵀ g_t
            g_norms.append(np.linalg.norm(g, axis=1))
        norms = _geo_mean_norms(np.array(g_norms[::-1]))  # index t: ‖∂L/∂h_t‖
        sigma_max = np.median(svals[:, :, 0], axis=1)
        full = k == H
        return {
            "method": ("one-step Jacobians by finite differences" if full else
                       f"one-step Jacobians by finite differences on the {k} most amplified "
                       f"directions of {H} (QR method)"),
            "tracked_directions": k,
            "grad_norms": norms,
            "sigma_max": [float(s) for s in sigma_max],
            "sigma_min": ([float(s) for s in np.median(svals[:, :, -1], axis=1)]
                          if full else None),
            "sigma_max_median": float(np.median(sigma_max)),
            "sigma_max_max": float(np.max(svals[:, :, 0])),
            "fraction_sigma_above_1": float(np.mean(svals[:, :, 0] > 1.0)),
            "mean_spectrum": [float(s) for s in svals.mean(axis=(0, 1))],
            "jacobian_zero": bool(np.max(svals) < 1e-9),
        }

    @staticmethod
    def _from_inputs(subject: Subject, xs: np.ndarray, h0: np.ndarray, v: np.ndarray,
                     eps: float) -> dict[str, Any]:
        T = xs.shape[0]
        sens = np.array([np.linalg.norm(fd.input_sensitivity(subject, xs, h0, v, t, eps), axis=1)
                         for t in range(T)])  # (T, B): ‖∂L/∂x_t‖
        ref = sens[-1]
        if not np.all(ref > 0):
            raise ProbeSkipped("the last state does not depend on the last input, so the decay "
                               "of the input sensitivity cannot be measured")
        rel = sens / ref  # index t (x_t feeds h_{t+1})
        norms = _geo_mean_norms(rel)
        # grad_norms[t] = ‖∂L/∂x_t‖ / ‖∂L/∂x_{T-1}‖ for t = 0..T-1 (one entry fewer than
        # the Jacobian method; rate and horizons are computed the same way)
        return {"method": "input sensitivities ‖∂L/∂x_t‖ by finite differences (the subject "
                          "ignores h0, so the state cannot be set)",
                "grad_norms": norms,
                "sigma_max": None, "sigma_min": None, "sigma_max_median": None,
                "sigma_max_max": None, "fraction_sigma_above_1": None, "mean_spectrum": None,
                "jacobian_zero": bool(np.all(sens[:-1] == 0))}
