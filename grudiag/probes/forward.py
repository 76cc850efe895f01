"""The first measurement of every subject: one plain run on standard inputs."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..subjects.base import Subject
from .base import Probe, ProbeContext, register_probe


@register_probe
class ForwardProbe(Probe):
    """Run the subject once on standard inputs; record the states, finiteness and FP warnings."""

    name = "forward"
    title = "One forward run on standard inputs"

    def measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        xs, h0 = ctx.inputs(subject, "forward", time=ctx.options.time)  # the whole length
        with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn"):
            warnings.simplefilter("always")
            hs = subject.run(xs, h0)
        finite = np.isfinite(hs)
        first_bad = None
        if not finite.all():
            t, b, u = np.argwhere(~finite)[0]
            first_bad = {"t": int(t), "batch": int(b), "unit": int(u)}
        return {
            "xs": xs,
            "h0": h0,
            "hs": hs,
            "non_finite_count": int((~finite).sum()),
            "size": int(hs.size),
            "first_non_finite": first_bad,
            "max_abs_state": float(np.nanmax(np.abs(np.where(finite, hs, np.nan))))
            if finite.any() else float("nan"),
            "fp_warnings": sorted({str(w.message)[:200] for w in caught
                                   if issubclass(w.category, RuntimeWarning)}),
        }
