"""Gradient flow through time: one-step Jacobian spectra and ‖∂L/∂h_t‖ along a long trajectory.

The probe runs the subject for T = 30 steps (x ~ N(0, 1), h0 ~ U(-0.5, 0.5), batch 3) and, at
every step, measures the one-step Jacobian J_t = ∂h_t/∂h_{t-1} of every sample by float64
central differences (2·H one-step runs per step). Finite differences measure the *function*,
so a wrong backward or a cut graph (GD401/GD402) cannot distort this measurement, and every
subject style is covered the same way.

From the Jacobians:

* ``sigma_max[t]`` / ``sigma_min[t]``: the largest / smallest singular value of J_t (median over
  samples);
* ``grad_norms[t]`` = ‖∂L/∂h_t‖ for t = 0..T, with L = v·h_T, v a private random unit vector
  per sample: one exact backward pass through the measured Jacobians (g_{t-1} = J_tᵀ g_t),
  geometric mean over samples, so ``grad_norms[T] = 1``;
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


def _horizon(norms: list[float], level: float) -> int | None:
    """Steps back from the end until norms fall below ``level`` (norms[-1] is 1)."""
    T = len(norms) - 1
    for k in range(1, T + 1):
        if norms[T - k] < level:
            return k
    return None


def _singular_values(J: np.ndarray) -> np.ndarray:
    """Singular values of every (…, H, H) Jacobian, largest first, from one stacked
    ``eigvalsh(JᵀJ)``: about twice as fast as SVDs. The largest are exact to rounding; the
    smallest lose relative precision beyond a condition number of ~1e8 (only plotted)."""
    gram = np.einsum("...ji,...jk->...ik", J, J)
    return np.sqrt(np.clip(np.linalg.eigvalsh(gram)[..., ::-1], 0.0, None))


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
        if not np.array_equal(hs, subject.run(xs, h0), equal_nan=True):
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
        v = rng.normal(size=h0.shape)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        result: dict[str, Any] = {
            "T": finite_steps, "batch": int(h0.shape[0]), "eps": eps, "float32": float32,
            "loss": "L = v·h_T, v a random unit vector per sample",
            "max_abs_state": float(np.max(np.abs(hs[:finite_steps]))),
            "state_norm_growth": float(np.mean(np.linalg.norm(hs[finite_steps - 1], axis=1))
                                       / max(float(np.mean(np.linalg.norm(h0, axis=1))), 1e-12)),
        }
        if accepts_h0:
            result.update(self._from_jacobians(subject, xs[:finite_steps], h0,
                                               hs[:finite_steps], v, eps))
        else:
            result.update(self._from_inputs(subject, xs[:finite_steps], h0, v, eps))
        norms = result["grad_norms"]
        Tm = len(norms) - 1
        result["rate"] = float(norms[0] ** (1.0 / Tm)) if norms[0] > 0 else 0.0
        result["total_change"] = float(norms[0])
        result["horizon_1e3"] = _horizon(norms, 1e-3)
        result["horizon_e"] = _horizon(norms, math.exp(-1.0))
        return result

    @staticmethod
    def _from_jacobians(subject: Subject, xs: np.ndarray, h0: np.ndarray, hs: np.ndarray,
                        v: np.ndarray, eps: float) -> dict[str, Any]:
        T = xs.shape[0]
        prev = np.concatenate([h0[None], hs[:-1]], axis=0)
        jacobians = [fd.step_jacobian(subject, xs[t], prev[t], eps) for t in range(T)]
        if not all(np.all(np.isfinite(J)) for J in jacobians):
            raise ProbeSkipped("the one-step Jacobian has NaN/Inf entries on the trajectory")
        svals = _singular_values(np.stack(jacobians))  # (T, B, H), largest first
        g = v.copy()
        g_norms = [np.linalg.norm(g, axis=1)]
        for t in reversed(range(T)):
            g = np.einsum("bij,bi->bj", jacobians[t], g)
            g_norms.append(np.linalg.norm(g, axis=1))
        norms = _geo_mean_norms(np.array(g_norms[::-1]))  # index t: ‖∂L/∂h_t‖
        sigma_max = np.median(svals[:, :, 0], axis=1)
        return {
            "method": "one-step Jacobians by finite differences",
            "grad_norms": norms,
            "sigma_max": [float(s) for s in sigma_max],
            "sigma_min": [float(s) for s in np.median(svals[:, :, -1], axis=1)],
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
