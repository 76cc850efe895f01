"""Large-input and gradient finiteness probes for the numerical-instability checks (GD502+).

Measures only. The same standard inputs (x ~ N(0, 1), h0 ~ U(-0.5, 0.5)) are run at scale 1 and
with x scaled ×30, ×300 and ×3000. Large scales are needed because the classic overflow only
happens far out: a naive ``1 / (1 + np.exp(-a))`` overflows in float64 for a < −709.78 (in
float32 already for a < −88.72), and with PyTorch's default init U(±1/√H) a pre-activation has a
standard deviation of about 0.5·|x|, so only inputs of a few thousand reach it reliably.

Recorded at every scale: the states' finiteness, NumPy floating-point RuntimeWarnings (with the
user's file and line NumPy attributes them to) and, for torch, every op that returns Inf/NaN from
finite inputs (torch emits no warnings; the op and line are recorded instead), and the
finiteness of the gradients of ``sum(dh · h)`` (``vjp``) when the subject offers gradients.
"""
from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from ..subjects.base import GradientsUnavailable, Subject, SubjectError
from .activations import ActivationRecorder
from .base import Probe, ProbeContext, register_probe

SCALES = (1.0, 30.0, 300.0, 3000.0)


@register_probe
class LargeInputsProbe(Probe):
    """Run and differentiate the subject on ordinary and on very large inputs."""

    name = "large_inputs"
    title = "Forward and gradients at inputs scaled ×1, ×30, ×300, ×3000"

    def measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        xs, h0 = ctx.inputs(subject, "large-inputs")
        if not getattr(subject, "accepts_h0", True):
            h0 = np.zeros_like(h0)
        dhs = ctx.rng("large-inputs", "dhs").normal(size=(xs.shape[0], xs.shape[1],
                                                           subject.hidden_size))
        runs = self._stacked(subject, xs, h0, dhs)
        if runs is None:
            runs = [self._one(subject, xs * scale, h0, dhs, scale) for scale in SCALES]
        return {"runs": runs, "scales": list(SCALES), "gradient_source": subject.gradient_source}

    def _stacked(self, subject: Subject, xs: np.ndarray, h0: np.ndarray,
                 dhs: np.ndarray) -> list[dict[str, Any]] | None:
        """All scales side by side in one batch: one forward and one backward instead of four.

        Batch rows are independent in a cell, so a clean stacked run (finite states and
        gradients, no warning, no overflowing op) means every scale is clean: a sum of
        per-row gradient terms is finite only when every term is. Anything else returns None
        and the scales are run one by one, to say which scale failed and where.
        """
        n, B = len(SCALES), xs.shape[1]
        all_xs = np.concatenate([xs * scale for scale in SCALES], axis=1)
        all_h0, all_dhs = np.tile(h0, (n, 1)), np.tile(dhs, (1, n, 1))
        try:
            hs, events = _watched(subject, lambda s: s.run(all_xs, all_h0))
        except SubjectError:
            return None
        if events or not np.isfinite(hs).all():
            return None
        try:
            grads, gevents = _watched(subject, lambda s: s.vjp(all_xs, all_h0, all_dhs))
        except GradientsUnavailable as exc:
            gradients = {"available": False, "reason": str(exc)}
        except SubjectError:
            return None
        else:
            params = [g for g in grads.params.values() if g is not None]
            if gevents or not all(np.isfinite(g).all() for g in (grads.xs, grads.h0, *params)):
                return None
            size = (np.size(grads.xs) + np.size(grads.h0)) // n + sum(np.size(g) for g in params)
            gradients = {"available": True, "source": grads.source, "non_finite": {},
                         "size": int(size), "events": []}
        runs = []
        for k, scale in enumerate(SCALES):
            part = hs[:, k * B:(k + 1) * B]
            runs.append({"scale": scale, "max_abs_x": float(np.max(np.abs(xs))) * scale,
                         "raised": None, "size": int(part.size), "non_finite": 0,
                         "first_non_finite": None, "max_abs_state": float(np.max(np.abs(part))),
                         "events": [], "gradients": dict(gradients)})
        return runs

    def _one(self, subject: Subject, xs: np.ndarray, h0: np.ndarray, dhs: np.ndarray,
             scale: float) -> dict[str, Any]:
        out: dict[str, Any] = {"scale": scale, "max_abs_x": float(np.max(np.abs(xs)))}
        try:
            hs, events = _watched(subject, lambda s: s.run(xs, h0))
        except SubjectError as exc:
            if scale == 1.0:
                raise
            out.update(raised=exc.message, events=[], non_finite=0, size=0)
            return out
        finite = np.isfinite(hs)
        out.update(
            raised=None,
            size=int(hs.size),
            non_finite=int((~finite).sum()),
            first_non_finite=_first(finite),
            max_abs_state=float(np.max(np.abs(hs[finite]))) if finite.any() else None,
            events=events,
        )
        try:
            grads, gevents = _watched(subject, lambda s: s.vjp(xs, h0, dhs))
        except GradientsUnavailable as exc:
            out["gradients"] = {"available": False, "reason": str(exc)}
            return out
        except SubjectError as exc:
            out["gradients"] = {"available": False, "reason": f"the backward raised {exc.message}"}
            return out
        bad: dict[str, int] = {}
        total = 0
        for name, g in (("x", grads.xs), ("h0", grads.h0), *grads.params.items()):
            if g is None:
                continue
            g = np.asarray(g, dtype=np.float64)
            total += g.size
            n = int((~np.isfinite(g)).sum())
            if n:
                bad[name] = n
        out["gradients"] = {"available": True, "source": grads.source, "non_finite": bad,
                            "size": total, "events": gevents}
        return out


def _watched(subject: Subject, fn):  # noqa: ANN001, ANN202
    """Call fn(subject) recording FP RuntimeWarnings (NumPy) and overflowing torch ops."""
    with warnings.catch_warnings(record=True) as caught, \
            np.errstate(over="warn", invalid="warn", divide="warn", under="ignore"):
        warnings.simplefilter("always")
        if subject.backend == "torch":
            with ActivationRecorder(subject, record_activations=False, watch_overflow=True) as rec:
                result = fn(subject)
            torch_events = [{"what": f"{e.op} returned Inf/NaN from finite inputs",
                             "file": e.location.file if e.location else None,
                             "line": e.location.line if e.location else None,
                             "count": e.count} for e in rec.overflows.values()]
        else:
            result = fn(subject)
            torch_events = []
    events: dict[tuple, dict[str, Any]] = {}
    for w in caught:
        if not issubclass(w.category, RuntimeWarning):
            continue
        text = str(w.message)[:200]
        if ("encountered" not in text and "overflow" not in text) or "underflow" in text:
            continue  # underflow to 0 is harmless
        key = (text, w.filename, w.lineno)
        if key in events:
            events[key]["count"] += 1
        else:
            events[key] = {"what": text,
                           "file": os.path.abspath(w.filename) if w.filename else None,
                           "line": w.lineno, "count": 1}
    return result, list(events.values()) + torch_events


def _first(finite: np.ndarray) -> dict[str, int] | None:
    if finite.all():
        return None
    idx = np.argwhere(~finite)[0]
    return {"t": int(idx[0]), "batch": int(idx[1]), "unit": int(idx[2])}
