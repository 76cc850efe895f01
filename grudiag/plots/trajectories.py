"""Subject vs reference trajectories, for an equation mismatch."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import register_plot
from ._figure import PALETTE, SEVERITY_COLOURS, as_array, figure, first, fmt, log_axis, note, to_svg

MAX_UNITS = 4


def _as_tbh(value: Any) -> np.ndarray | None:
    arr = as_array(value, ndim=(1, 2, 3))
    if arr is None:
        return None
    if arr.ndim == 1:
        return arr[:, None, None]
    if arr.ndim == 2:  # (T, H)
        return arr[:, None, :]
    return arr


def _pair(data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, str] | None:
    subject = _as_tbh(first(data, "subject_hs", "subject", "hs_subject", "actual", "got"))
    ref = first(data, "reference_hs", "reference", "hs_reference", "expected", "nearest_hs")
    label = str(first(data, "reference_name", "variant", "nearest", "convention")
                or "reference GRU")
    ref = _as_tbh(ref)
    if subject is None or ref is None or subject.shape != ref.shape:
        return None
    return subject, ref, label


@register_plot("trajectory_mismatch",
               "The subject's hidden states (solid) against a reference GRU given the same "
               "weights and inputs (dashed). Where they part, the equations differ.")
def plot_trajectory_mismatch(data: dict[str, Any], salt: str = "trajectory") -> str | None:
    pair = _pair(data)
    if pair is None:
        return None
    subject, ref, label = pair
    T, B, H = subject.shape
    diff = np.abs(subject - ref)
    _t, b, _u = np.unravel_index(int(np.nanargmax(np.nan_to_num(diff, nan=np.inf))), diff.shape)
    worst_units = np.argsort(-np.nan_to_num(diff[:, b, :], nan=np.inf).max(axis=0))[:MAX_UNITS]
    steps = np.arange(1, T + 1)
    with figure(9.0, 3.4, ncols=2) as (fig, (ax, axd)):
        for k, u in enumerate(sorted(worst_units)):
            c = PALETTE[k % len(PALETTE)]
            ax.plot(steps, subject[:, b, u], color=c, linewidth=1.4, marker="o", markersize=2.5,
                    label=f"unit {u}: subject")
            ax.plot(steps, ref[:, b, u], color=c, linewidth=1.2, linestyle="--",
                    label=f"unit {u}: {label}")
        ax.set_xlabel("time step t")
        ax.set_ylabel("hidden state h_t[unit]")
        ax.set_title(f"Subject (solid) vs {label} (dashed), sample {b}")
        if len(worst_units) <= 2:
            ax.legend(loc="best")
        per_step = np.nanmax(diff.reshape(T, -1), axis=1)
        axd.plot(steps, np.maximum(per_step, 1e-17), color=SEVERITY_COLOURS["error"], marker="o",
                 markersize=3)
        log_axis(axd)
        atol = first(data, "atol", "tolerance")
        if isinstance(atol, (int, float)) and atol > 0:
            axd.axhline(atol, color="#555555", linestyle=":", linewidth=1)
            axd.text(steps[0], atol, " tolerance", va="bottom", fontsize=7, color="#555555")
        axd.set_xlabel("time step t")
        axd.set_ylabel("max |h_subject − h_reference|")
        axd.set_title("How far apart, per step (log scale)")
        note(axd, f"worst = {fmt(float(np.nanmax(diff)))}", loc="lower right")
        return to_svg(fig, salt)


# a conventions/reference probe may carry both trajectories under these names
for _name in ("conventions", "reference", "equation"):
    register_plot(_name, "The subject's hidden states (solid) against the nearest reference "
                         "GRU with the same weights and inputs (dashed).")(plot_trajectory_mismatch)
