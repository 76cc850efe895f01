"""Gradient flow through time, one-step Jacobian spectra, and analytic vs finite differences."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import register_plot
from ._figure import (OK_COLOUR, SEVERITY_COLOURS, as_array, figure, first, fmt, log_axis, note,
                      number, to_svg)

FLOOR = 1e-300


def _grad_norm_axes(ax: Any, norms: np.ndarray, data: dict[str, Any]) -> None:
    T = len(norms)
    steps = np.arange(T)
    shown = np.where(norms > 0, norms, np.nan)
    ax.plot(steps, shown, marker="o", markersize=3, color="#1f77b4", linewidth=1.4)
    log_axis(ax)
    rate = number(first(data, "rate", "growth_rate", "decay_rate"))
    if rate is None and norms[0] > 0 and norms[-1] > 0 and T > 1:
        rate = float((norms[0] / norms[-1]) ** (1.0 / (T - 1)))
    if rate is not None and rate > 0:
        colour = (SEVERITY_COLOURS["error"] if rate > 1.05 or rate < 0.5
                  else SEVERITY_COLOURS["warning"] if rate < 0.8 else OK_COLOUR)
        word = "grows" if rate > 1 else "shrinks"
        per = rate if rate >= 1 else 1 / rate
        note(ax, f"{word} ×{fmt(per)} per step going back\n(rate = {fmt(rate)} per step)",
             colour=colour)
    ax.axhline(norms[-1] if norms[-1] > 0 else 1.0, color="#999999", linestyle=":", linewidth=1)
    if not np.any(norms > 0):
        note(ax, "the gradient is exactly zero", colour=SEVERITY_COLOURS["error"],
             loc="lower left")
    ax.set_xlabel("time step t (the loss is on the last step)")
    ax.set_ylabel("‖∂L/∂h_t‖ (log scale)")
    ax.set_title("Gradient norm back through time")


@register_plot("jacobian_spectrum",
               "Left: how big the gradient of a loss on the last state is at each earlier step "
               "(log scale): a straight line going up to the left is exploding, down is "
               "vanishing. Right: singular values of the one-step Jacobian ∂h_t/∂h_{t−1}; "
               "above 1 amplifies, below 1 shrinks what flows back.")
def plot_jacobian_spectrum(data: dict[str, Any], salt: str = "jacobian") -> str | None:
    norms = as_array(first(data, "grad_norms", "gradient_norms", "norms"), ndim=1)
    sigma_max = as_array(data.get("sigma_max"), ndim=1)
    spectrum = as_array(first(data, "mean_spectrum", "singular_values"), ndim=(1, 2))
    if norms is None and sigma_max is None and spectrum is None:
        return None
    panels = int(norms is not None) + int(sigma_max is not None or spectrum is not None)
    with figure(4.6 * panels, 3.4, ncols=panels) as (fig, axes):
        axes = list(np.atleast_1d(axes))
        if norms is not None:
            _grad_norm_axes(axes.pop(0), np.nan_to_num(norms, nan=0.0), data)
        if axes:
            ax = axes.pop(0)
            if sigma_max is not None:
                steps = np.arange(1, len(sigma_max) + 1)
                ax.plot(steps, np.maximum(sigma_max, FLOOR), color=SEVERITY_COLOURS["error"],
                            marker="o", markersize=2.5, label="largest σ (median over batch)")
                sigma_min = as_array(data.get("sigma_min"), ndim=1)
                if sigma_min is not None and len(sigma_min) == len(sigma_max):
                    ax.plot(steps, np.maximum(sigma_min, FLOOR), color="#1565c0",
                                marker="o", markersize=2.5, label="smallest σ")
                ax.set_xlabel("time step t")
                ax.set_title("Singular values of ∂h_t/∂h_{t−1} along the run")
            else:
                spec = spectrum if spectrum.ndim == 1 else spectrum.mean(axis=0)
                ax.bar(np.arange(1, len(spec) + 1), np.maximum(spec, FLOOR), color="#1f77b4")
                ax.set_xlabel("singular value index (largest first)")
                ax.set_title("Mean singular values of ∂h_t/∂h_{t−1}")
            log_axis(ax)
            ax.axhline(1.0, color="#555555", linestyle="--", linewidth=1, label="σ = 1")
            ax.set_ylabel("singular value σ (log scale)")
            ax.legend(loc="best")
            if data.get("jacobian_zero"):
                note(ax, "∂h_t/∂h_{t−1} = 0: the state is ignored",
                     colour=SEVERITY_COLOURS["error"], loc="upper left")
        return to_svg(fig, salt)


register_plot("gradient_norms", "Gradient norm back through time (log scale).")(
    plot_jacobian_spectrum)


def _blocks(data: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = data.get("blocks")
    out: list[dict[str, Any]] = []
    if isinstance(blocks, list):
        out += [dict(b, scenario="") for b in blocks if isinstance(b, dict)]
    for scenario in ("one_step", "unroll"):
        sc = data.get(scenario)
        if isinstance(sc, dict) and isinstance(sc.get("blocks"), list):
            T = sc.get("T")
            tag = f"{T} step{'s' if T != 1 else ''}" if T else scenario
            out += [dict(b, scenario=tag) for b in sc["blocks"] if isinstance(b, dict)]
    return [b for b in out if number(b.get("analytic")) is not None
            and number(b.get("numeric")) is not None]


@register_plot("gradient_check",
               "Each point is one directional derivative: the subject's gradient (analytic) "
               "against float64 central finite differences (numeric). Correct gradients lie on "
               "the diagonal; the bars give the relative error per parameter block.")
def plot_gradient_check(data: dict[str, Any], salt: str = "gradcheck") -> str | None:
    blocks = _blocks(data)
    if not blocks:
        return None
    tol = number(first(data, "rtol", "tolerance", "rel_tolerance")) or 1e-5
    analytic = np.array([number(b["analytic"]) for b in blocks])
    numeric = np.array([number(b["numeric"]) for b in blocks])
    rel = np.array([number(b.get("rel_error")) if number(b.get("rel_error")) is not None
                    else abs(a - n) / max(abs(n), 1e-12) for b, a, n in
                    zip(blocks, analytic, numeric)])
    bad = ~(rel <= tol)
    labels = [f"{b.get('label') or b.get('parameter') or '?'}"
              + (f" ({b['scenario']})" if b.get("scenario") else "") for b in blocks]
    height = max(3.4, 0.18 * len(blocks) + 1.2)
    with figure(9.2, height, ncols=2) as (fig, (ax, axr)):
        lim = float(np.nanmax(np.abs(np.concatenate([analytic, numeric])))) * 1.1 or 1.0
        ax.plot([-lim, lim], [-lim, lim], color="#999999", linestyle="--", linewidth=1,
                label="analytic = numeric")
        ax.scatter(numeric[~bad], analytic[~bad], s=16, color=OK_COLOUR, label="agree")
        ax.scatter(numeric[bad], analytic[bad], s=22, color=SEVERITY_COLOURS["error"],
                   marker="x", label="disagree")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_xlabel("numeric (finite differences, float64)")
        ax.set_ylabel("analytic (the subject's gradient)")
        ax.set_title("Directional derivatives: analytic vs numeric")
        ax.legend(loc="upper left")
        y = np.arange(len(blocks))
        colours = [SEVERITY_COLOURS["error"] if b else OK_COLOUR for b in bad]
        axr.barh(y, np.maximum(np.nan_to_num(rel, nan=1.0), 1e-17), color=colours)
        log_axis(axr, "x")
        axr.axvline(tol, color="#555555", linestyle="--", linewidth=1)
        axr.text(tol, -0.9, f" tolerance {fmt(tol)}", fontsize=7, color="#555555")
        axr.set_yticks(y, labels, fontsize=7)
        axr.invert_yaxis()
        axr.set_xlabel("relative error |analytic − numeric| / |numeric| (log)")
        axr.set_title("Relative error per block")
        axr.grid(axis="y", visible=False)
        return to_svg(fig, salt)


@register_plot("gradient_flow",
               "How much the last state depends on the input of each step, measured two ways: "
               "by the subject's autograd graph and by finite differences. Where autograd "
               "drops to zero but finite differences do not, the graph is cut (truncated BPTT).")
def plot_gradient_flow(data: dict[str, Any], salt: str = "gradflow") -> str | None:
    auto = as_array(first(data, "autograd", "analytic"), ndim=1)
    num = as_array(first(data, "numeric", "finite_differences"), ndim=1)
    if auto is None or num is None or auto.shape != num.shape:
        return None
    T = len(auto)
    steps = np.arange(T)
    floor = max(float(np.nanmax(np.abs(num))) * 1e-12, 1e-300)
    with figure(6.4, 3.4) as (fig, ax):
        ax.plot(steps, np.maximum(np.abs(num), floor), color="#555555", linestyle="--",
                    marker="s", markersize=4, label="finite differences (truth)")
        cut = np.abs(auto) <= floor
        ax.plot(steps, np.maximum(np.abs(auto), floor), color="#1f77b4", marker="o",
                    markersize=3, label="autograd (the subject's graph)")
        if cut.any():
            ax.scatter(steps[cut], np.full(cut.sum(), floor), marker="x", s=40,
                       color=SEVERITY_COLOURS["error"], zorder=5, label="autograd = 0")
        log_axis(ax)
        ax.set_xlabel("input step t")
        ax.set_ylabel("|∂(v·h_T)/∂x_t| along a random direction")
        ax.set_title("Gradient reaching each input step: autograd vs numeric")
        ax.legend(loc="lower right")
        return to_svg(fig, salt)
