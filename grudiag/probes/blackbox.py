"""Black-box GRU properties for cells whose parameters cannot be mapped (measurement only).

Every GRU of every convention computes ``h' = (1-z)·n + z·h`` (or with z and 1-z exchanged) with
z in [0, 1] and a tanh candidate n in [-1, 1], so each unit of the new state lies between its
previous value and some value in [-1, 1]: ``min(h, -1) ≤ h' ≤ max(h, 1)``. This probe steps the
subject on ordinary and large inputs with states inside and outside [-1, 1] and records how far
any unit leaves that interval. It needs no parameters, so it serves when ``conventions`` cannot
map them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..subjects.base import Subject
from .base import Probe, ProbeContext, ProbeSkipped, register_probe
from .shapes import accepts_h0

#: input scales and state ranges probed
X_SCALES = (1.0, 3.0, 10.0)
H_RANGES = (0.5, 2.0)


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
        runs = []
        for xs_scale in X_SCALES:
            for h_range in H_RANGES:
                x = rng.normal(0.0, xs_scale, size=(B, subject.input_size))
                h = rng.uniform(-h_range, h_range, size=(B, H))
                h_new = np.asarray(subject.fresh().step(x, h), dtype=np.float64)
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
                "conventions_mapped": "conventions" in ctx.measurements}
