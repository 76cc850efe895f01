"""Hidden-state trajectories of one forward run (probe ``forward``)."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import register_plot
from ._figure import PALETTE, SEVERITY_COLOURS, as_array, figure, first, fmt, note, to_svg

MAX_UNITS = 12


@register_plot("forward", "Every hidden unit of the first sample over time, from h0 (t = 0). "
                          "Lines that lie on top of each other are units that never differ; "
                          "lines that leave [-1, 1] or vanish are states that blow up (NaN/Inf).")
def plot_forward(data: dict[str, Any], salt: str = "forward") -> str | None:
    hs = as_array(first(data, "hs", "states"), ndim=(2, 3))
    if hs is None:
        return None
    if hs.ndim == 2:  # (T, H): one sample
        hs = hs[:, None, :]
    T, B, H = hs.shape
    h0 = as_array(data.get("h0"), ndim=2)
    traj = hs[:, 0, :]
    start = 1
    if h0 is not None and h0.shape == (B, H):
        traj = np.concatenate([h0[:1], traj], axis=0)
        start = 0
    steps = np.arange(start, start + traj.shape[0])
    shown = min(H, MAX_UNITS)
    with figure(6.4, 3.4) as (fig, ax):
        for u in range(shown):
            ax.plot(steps, traj[:, u], marker="o", markersize=2.5, linewidth=1.2,
                    color=PALETTE[u % len(PALETTE)], label=f"unit {u}")
        bad = ~np.isfinite(traj)
        if bad.any():
            t_bad = steps[np.argmax(bad.any(axis=1))]
            ax.axvline(t_bad, color=SEVERITY_COLOURS["error"], linestyle="--", linewidth=1)
            note(ax, f"first NaN/Inf at t = {t_bad}", colour=SEVERITY_COLOURS["error"])
        ax.set_xlabel("time step t (0 = initial state h0)" if start == 0 else "time step t")
        ax.set_ylabel("hidden state value h_t[unit]")
        more = f", first {shown} of {H} units" if H > shown else f", {H} units"
        ax.set_title(f"Hidden state over time (sample 0 of {B}{more})")
        finite = traj[np.isfinite(traj)]
        if finite.size and np.max(np.abs(finite)) <= 1.05:
            ax.set_ylim(-1.05, 1.05)
        if finite.size:
            spread = float(np.max(np.std(traj[-1:], axis=1))) if H > 1 else None
            if spread is not None and spread < 1e-9 and H > 1:
                note(ax, "all units identical", colour=SEVERITY_COLOURS["warning"],
                     loc="lower right")
            else:
                note(ax, f"max |h| = {fmt(float(np.max(np.abs(finite))))}", loc="lower right")
        if shown <= 8:
            ax.legend(loc="upper left", ncols=min(shown, 4))
        ax.set_xticks(steps if len(steps) <= 16 else ax.get_xticks())
        return to_svg(fig, salt)
