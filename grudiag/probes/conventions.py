"""Which GRU variant the subject implements, or which known mistake it makes (measurement only).

The search lives in :mod:`grudiag.reference.identify`; this probe runs it, describes the result
in JSON-able terms, and, when nothing matches, measures where the subject departs from the
nearest correct candidate on a probe sequence with the subject's own parameters.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..reference.identify import MISTAKES, Layout, Match, NotMappable, identify
from ..subjects.base import Subject
from .base import Probe, ProbeContext, ProbeSkipped, register_probe

FAMILY_LABELS = {
    ("reset-after", "torch"): "reset-after GRU (PyTorch / cuDNN / Keras reset_after=True)",
    ("reset-after", "chung"): "reset-after GRU with the flipped update (1-z)·h + z·n",
    ("reset-before", "torch"): "reset-before GRU (Cho et al. 2014 / Keras reset_after=False / TF1)",
    ("reset-before", "chung"): "reset-before GRU with the Chung update (Chung et al. 2014 / "
                               "Andrew Ng)",
}


def convention_string(match: Match) -> str:
    """Short variant label for the subject's JSON, e.g. ``"reset-before, chung update"``."""
    m = match.model
    parts = [m.family]
    if m.update == "chung":
        parts.append("chung update")
    if m.gate != "sigmoid":
        parts.append(f"{m.gate} gates")
    return ", ".join(parts)


def describe_layout(layout: Layout) -> dict[str, Any]:
    weights = [b for b, _ in layout.weights]
    if any(b.kind == "cat" for b in weights):
        arrangement = "concatenated [h, x] weights" if layout.cat_order == "hx" else \
            "concatenated [x, h] weights"
    elif any(b.nblocks > 1 for b in weights):
        arrangement = "fused weights"
    else:
        arrangement = "split weights"
    orients = {"row" if b.orient == "view" else b.orient for b in weights}
    orientation = {frozenset({"col"}): "W x", frozenset({"row"}): "x W"}.get(
        frozenset(orients), "mixed W x and x W")
    orders = layout.gate_orders()
    weight_orders = {o for name, o in orders.items() if any(b.name == name for b in weights)}
    gate_order = weight_orders.pop() if len(weight_orders) == 1 else (
        "; ".join(f"{k} {v}" for k, v in orders.items()) if orders else "one parameter per gate")
    roles = [r for _, r in layout.biases]
    if not layout.biases:
        biases = "no biases"
    elif roles.count("r") >= 2 or roles.count("z") >= 2:
        biases = "input and recurrent biases"
    else:
        biases = "one bias per gate" + (" plus b_hn" if "hn" in roles else "")
    return {"arrangement": arrangement, "orientation": orientation, "gate_order": gate_order,
            "biases": biases, "gate_orders": orders, "mapping": layout.mapping(),
            "unusual": layout.unusual()}


@register_probe
class ConventionsProbe(Probe):
    """Map the parameters onto the canonical GRU and find the variant (or mistake) it computes."""

    name = "conventions"
    title = "GRU variant identification against the reference"
    after = ("forward",)

    def measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        try:
            result = identify(subject, ctx.rng("conventions", "search"))
        except NotMappable as exc:
            raise ProbeSkipped(f"could not map the parameters onto a GRU: {exc}; identifying a "
                               "cell without mappable parameters is not implemented yet") from exc
        out: dict[str, Any] = {"status": result.status, "subject_calls": result.subject_calls,
                               "candidates": result.candidates}
        match = result.match
        if match is None:  # unreachable in practice: the nearest search always returns one
            raise ProbeSkipped("no candidate layout of the parameters could be evaluated")
        m = match.model
        out.update({
            "convention": convention_string(match),
            "family": m.family, "update": m.update, "gate_activation": m.gate,
            "update_form": m.update_form,
            "label": FAMILY_LABELS[(m.family, m.update if m.update in ("torch", "chung") else
                                    "torch")],
            "error_random": match.error_random, "error_own": match.error_own,
            "max_abs_diff": max(match.error_random, match.error_own),
            **describe_layout(match.layout),
        })
        if result.status == "mistake":
            out["mistake"] = result.mistake
            out["mistake_text"] = MISTAKES[result.mistake]
            out["mistake_detail"] = result.mistake_detail
            out["family_matters"] = m.family_matters
        if result.status == "unmatched":
            out["disagreement"] = self._disagreement(subject, ctx, match)
            out["subject_hs"] = out["disagreement"].pop("subject_hs")
            out["reference_hs"] = out["disagreement"].pop("reference_hs")
            out["reference_name"] = f"nearest: {convention_string(match)}"
        return out

    @staticmethod
    def _disagreement(subject: Subject, ctx: ProbeContext, match: Match) -> dict[str, Any]:
        """Where the subject (own parameters) departs from the nearest candidate on a sequence."""
        xs, h0 = ctx.inputs(subject, "conventions", "disagreement")
        if not getattr(subject, "accepts_h0", True):
            h0 = np.zeros_like(h0)
        hs = np.asarray(subject.run(xs, h0), dtype=np.float64)
        own = {k: np.asarray(v, dtype=np.float64) for k, v in subject.parameters().items()}
        ref = match.model.run(match.layout.canonical(own), xs, h0)
        diff = np.abs(hs - ref)
        t, b, u = (int(i) for i in np.unravel_index(int(np.nanargmax(diff)), diff.shape))
        per_step = [float(v) for v in diff.reshape(diff.shape[0], -1).max(axis=1)]
        first = next((i for i, v in enumerate(per_step) if v > 1e-6), None)
        # a cell that mixes samples is a bad-shapes defect; its equations are not comparable
        alone = np.concatenate([np.asarray(subject.run(xs[:, i:i + 1], h0[i:i + 1]), dtype=np.float64)
                                for i in range(xs.shape[1])], axis=1)
        batch_dependent = bool(np.max(np.abs(alone - hs)) > 1e-9)
        return {"batch_dependent": batch_dependent, "max_abs_diff": float(diff[t, b, u]), "step": t, "sample": b, "unit": u,
                "first_step_over_1e-6": first, "per_step_max": per_step,
                "subject_value": float(hs[t, b, u]), "reference_value": float(ref[t, b, u]),
                # the trajectories, for the subject-vs-reference plot
                "subject_hs": hs, "reference_hs": ref}
