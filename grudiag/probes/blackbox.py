"""Black-box GRU properties for cells whose parameters cannot be mapped (measurement only).

Every GRU of every convention computes ``h' = (1-z)·n + z·h`` (or with z and 1-z exchanged) with
z in [0, 1] and a tanh candidate n in [-1, 1]. Two consequences need no parameters, so they
serve when ``conventions`` cannot map them:

* **the convex-blend bound**: each unit of the new state lies between its previous value and
  some value in [-1, 1], ``min(h, -1) ≤ h' ≤ max(h, 1)``. The probe steps the subject on
  ordinary and large inputs with states inside and outside [-1, 1] and records how far any unit
  leaves that interval;
* **carry under a saturated update gate**: at inputs scaled by 1e6 every gate saturates, so
  each unit of h' is either h_prev exactly (the update gate passes the state) or a saturated
  candidate ±1 that does not depend on h_prev. The probe steps the subject at ``+s·x`` and
  ``-s·x`` (which flips the saturated gates) from two different states and records, among the
  units that respond to the input at all, those that are neither carried nor replaced.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..subjects.base import Subject
from . import finite_differences as fd
from .base import Probe, ProbeContext, ProbeSkipped, register_probe
from .shapes import accepts_h0

#: input scales and state ranges probed
X_SCALES = (1.0, 3.0, 10.0)
H_RANGES = (0.5, 2.0)
#: input scale at which every sigmoid and tanh of a GRU saturates to 0, 1 or ±1 exactly
SATURATING_SCALE = 1e6
#: |h' − h_prev| (carried) or |h' − (±1)| (replaced) below this counts as exact (float32 room)
CARRY_TOLERANCE = 1e-5


@register_probe
class BlackboxProbe(Probe):
    """Step the subject and measure how far the new state leaves [min(h, -1), max(h, 1)]."""

    name = "blackbox"
    title = "Convex-blend bound of the new state (black box)"
    after = ("forward",)

    def measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        if not accepts_h0(subject):
            raise ProbeSkipped("the subject takes no initial state, so h_prev cannot be chosen")
        rng = ctx.rng("blackbox")
        B, H = 8, subject.hidden_size
        settings = [(xs_scale, h_range) for xs_scale in X_SCALES for h_range in H_RANGES]
        cases = [(rng.normal(0.0, xs_scale, size=(B, subject.input_size)),
                  rng.uniform(-h_range, h_range, size=(B, H))) for xs_scale, h_range in settings]
        runs = []
        for (xs_scale, h_range), (_, h), h_new in zip(settings, cases,
                                                      fd.fresh_steps(subject, cases)):
            if not np.all(np.isfinite(h_new)):
                continue          # non-finite output is GD501/GD502's business
            above = h_new - np.maximum(h, 1.0)
            below = np.minimum(h, -1.0) - h_new
            excess = np.maximum(above, below)
            worst = np.unravel_index(int(np.argmax(excess)), excess.shape)
            runs.append({"x_scale": xs_scale, "h_range": h_range,
                         "max_excess": float(excess[worst]),
                         "fraction_outside": float(np.mean(excess > 1e-6)),
                         "worst": {"sample": int(worst[0]), "unit": int(worst[1]),
                                   "h_prev": float(h[worst]), "h_new": float(h_new[worst])}})
        worst = max(runs, key=lambda r: r["max_excess"]) if runs else None
        return {"runs": runs, "worst": worst,
                "max_excess": worst["max_excess"] if worst else 0.0,
                "carry": self._carry(subject, rng),
                "conventions_mapped": "conventions" in ctx.measurements}

    @staticmethod
    def _carry(subject: Subject, rng: np.random.Generator) -> dict[str, Any]:
        B, H = 8, subject.hidden_size
        x = SATURATING_SCALE * rng.normal(size=(B, subject.input_size))
        h_a, h_b = rng.uniform(-0.9, 0.9, size=(2, B, H))
        keys = [(sign, name) for sign in (1.0, -1.0) for name in ("a", "b")]
        with np.errstate(all="ignore"):
            steps = fd.fresh_steps(subject, [(sign * x, h_a if name == "a" else h_b)
                                             for sign, name in keys])
        new = dict(zip(keys, steps))
        if not all(np.all(np.isfinite(v)) for v in new.values()):
            return {"measured": False, "reason": "the state is not finite at saturating inputs"}
        # units whose new state does not respond to the input at all say nothing about the
        # gates (e.g. all-zero weights: that is GD601's business)
        responds = np.abs(new[1.0, "a"] - new[-1.0, "a"]) > CARRY_TOLERANCE
        carried, neither = {}, {}
        for sign in (1.0, -1.0):
            a, b = new[sign, "a"], new[sign, "b"]
            kept = (np.abs(a - h_a) <= CARRY_TOLERANCE) & (np.abs(b - h_b) <= CARRY_TOLERANCE)
            replaced = ((np.abs(a - b) <= CARRY_TOLERANCE)
                        & (np.abs(np.abs(a) - 1.0) <= CARRY_TOLERANCE))
            carried[sign] = kept & responds
            neither[sign] = ~(kept | replaced) & responds
        judged = max(int(responds.sum()), 1)
        odd = neither[1.0] | neither[-1.0]
        out: dict[str, Any] = {
            "measured": True, "scale": SATURATING_SCALE, "tolerance": CARRY_TOLERANCE,
            "units_judged": int(responds.sum()), "units_total": B * H,
            "fraction_carried": float((carried[1.0] | carried[-1.0]).sum() / judged),
            "fraction_neither": float(odd.sum() / judged), "example": None}
        if odd.any():
            sign = 1.0 if neither[1.0].any() else -1.0
            sample, unit = (int(i) for i in np.argwhere(neither[sign])[0])
            out["example"] = {"sample": sample, "unit": unit,
                              "input_sign": "+" if sign > 0 else "-",
                              "h_prev": [float(h_a[sample, unit]), float(h_b[sample, unit])],
                              "h_new": [float(new[sign, "a"][sample, unit]),
                                        float(new[sign, "b"][sample, unit])]}
        return out
