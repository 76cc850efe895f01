"""Matrix pictures: batch independence, time causality, unit similarity (symmetry)."""
from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.colors import LinearSegmentedColormap

from . import register_plot
from ._figure import (DENSE_CELLS, SEVERITY_COLOURS, as_array, figure, first, fmt, note, number,
                      to_png_uri, to_svg)

_EFFECT = LinearSegmentedColormap.from_list("effect", ["#ffffff", "#fdd49e", "#fc8d59",
                                                       "#d7301f", "#7f0000"])


def _effect_heatmap(ax: Any, matrix: np.ndarray, scale: float, *, annotate: bool) -> Any:
    """log10 of |Δ| relative to the state scale: white = exactly no effect."""
    rel = np.abs(np.nan_to_num(matrix, nan=np.inf)) / max(scale, 1e-300)
    with np.errstate(divide="ignore"):
        shown = np.where(rel > 0, np.clip(np.log10(rel), -12, 1) + 13, 0.0)
    im = ax.imshow(shown, cmap=_EFFECT, vmin=0, vmax=14, aspect="auto")
    if annotate:
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, "0" if v == 0 else fmt(float(v), 2), ha="center", va="center",
                    fontsize=7, color="white" if shown[i, j] > 10 else "#222222")
    ax.grid(False)
    return im


def _colourbar(fig: Any, im: Any, ax: Any) -> None:
    cb = fig.colorbar(im, ax=ax, shrink=0.85)
    cb.set_ticks([0, 1, 5, 9, 13, 14], labels=["0", "1e-12", "1e-8", "1e-4", "1", "10"])
    cb.set_label("|Δh| relative to the state scale")


def _done(fig: Any, salt: str, cells: int) -> str:
    return to_png_uri(fig) if cells > DENSE_CELLS else to_svg(fig, salt)


@register_plot("batch-dependence",
               "Cell (i, j): how much sample i's states change when only sample j's inputs and "
               "h0 are replaced. Samples in a batch must be independent: only the diagonal may "
               "be coloured. Colour off the diagonal means the batch axis is mixed up.")
def plot_batch_dependence(data: dict[str, Any], salt: str = "batch") -> str | None:
    matrix = as_array(first(data, "matrix", "batch_matrix"), ndim=2)
    if matrix is None or matrix.shape[0] != matrix.shape[1]:
        return None
    B = matrix.shape[0]
    scale = number(data.get("scale")) or float(np.nanmax(np.abs(matrix))) or 1.0
    off = matrix[~np.eye(B, dtype=bool)]
    with figure(5.2, 4.0) as (fig, ax):
        im = _effect_heatmap(ax, matrix, scale, annotate=B <= 10)
        ticks = np.arange(B) if B <= 20 else None
        if ticks is not None:
            ax.set_xticks(ticks)
            ax.set_yticks(ticks)
        ax.set_xlabel("sample j that was changed")
        ax.set_ylabel("sample i whose states changed")
        ax.set_title("Batch independence: max |Δh| per sample pair")
        _colourbar(fig, im, ax)
        worst = float(np.nanmax(np.abs(off))) if off.size else 0.0
        if worst > 0:
            note(ax, f"samples leak: off-diagonal up to {fmt(worst)}",
                 colour=SEVERITY_COLOURS["error"], loc="lower left")
        return _done(fig, salt, B * B)


@register_plot("time-dependence",
               "Cell (t, s): how much the state at step t changes when only the input at step s "
               "is replaced. A recurrent cell is causal (nothing above the diagonal: the past "
               "cannot see the future) and carries state (the cells below the diagonal are "
               "coloured, not only the diagonal).")
def plot_time_dependence(data: dict[str, Any], salt: str = "time") -> str | None:
    matrix = as_array(first(data, "matrix", "time_matrix"), ndim=2)
    if matrix is None or matrix.shape[0] != matrix.shape[1]:
        return None
    T = matrix.shape[0]
    scale = number(data.get("scale")) or float(np.nanmax(np.abs(matrix))) or 1.0
    h0 = as_array(data.get("h0_dependence"), ndim=1)
    cols = 2 if h0 is not None and len(h0) == T else 1
    width_ratios = [T, 1.6] if cols == 2 else None
    with figure(5.8 if cols == 2 else 5.2, 4.0, ncols=cols,
                gridspec_kw={"width_ratios": width_ratios} if width_ratios else None) \
            as (fig, axes):
        ax = axes[0] if cols == 2 else axes
        im = _effect_heatmap(ax, matrix, scale, annotate=T <= 10)
        if T <= 20:
            ax.set_xticks(np.arange(T))
            ax.set_yticks(np.arange(T))
        ax.set_xlabel("input step s that was changed")
        ax.set_ylabel("state step t")
        ax.set_title("Time structure: max |Δh_t| when x_s changes")
        future = matrix[np.triu_indices(T, 1)]
        past = matrix[np.tril_indices(T, -1)]
        if future.size and np.nanmax(np.abs(future)) > 0:
            note(ax, "not causal: states depend on future inputs",
                 colour=SEVERITY_COLOURS["error"], loc="upper right")
        elif past.size and not np.nanmax(np.abs(past)) > 0:
            note(ax, "no memory: h_t depends only on x_t", colour=SEVERITY_COLOURS["error"],
                 loc="upper right")
        if cols == 2:
            axh = axes[1]
            _effect_heatmap(axh, h0[:, None], scale, annotate=False)
            axh.set_xticks([0], ["h0"])
            axh.set_yticks([])
            axh.set_title("h0", fontsize=8)
        _colourbar(fig, im, axes if cols == 2 else ax)
        return _done(fig, salt, T * T)


@register_plot("unit-similarity",
               "Correlation between every pair of hidden units over time and samples. Units "
               "that start identical (all-zero or constant weights) stay identical: the matrix "
               "is all ±1 instead of a bright diagonal on a pale background.")
def plot_unit_similarity(data: dict[str, Any], salt: str = "units") -> str | None:
    matrix = as_array(first(data, "unit_similarity", "similarity", "unit_correlation",
                            "state_correlation", "correlation", "grad_correlation"), ndim=2)
    if matrix is None or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        return None
    H = matrix.shape[0]
    off = np.abs(matrix[~np.eye(H, dtype=bool)])
    with figure(5.0, 4.0) as (fig, ax):
        im = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1, aspect="equal")
        ax.grid(False)
        if H <= 12:
            for (i, j), v in np.ndenumerate(matrix):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if abs(v) > 0.6 else "#222222")
        if H <= 24:
            ax.set_xticks(np.arange(H))
            ax.set_yticks(np.arange(H))
        ax.set_xlabel("hidden unit")
        ax.set_ylabel("hidden unit")
        ax.set_title("Unit similarity (correlation of states)")
        cb = fig.colorbar(im, ax=ax, shrink=0.85)
        cb.set_label("correlation")
        if off.size and np.nanmin(off) > 0.999:
            note(ax, "every unit is a copy of the others", colour=SEVERITY_COLOURS["error"],
                 loc="lower left")
        return _done(fig, salt, H * H)


@register_plot("unit_copies",
               "How far apart every pair of hidden units is: the largest difference between "
               "their states (from an h0 equal across units). A correct cell's units differ; "
               "zeros off the diagonal are units that are copies of each other, which all-zero "
               "or constant initialisation produces and training cannot undo.")
def plot_unit_distance(data: dict[str, Any], salt: str = "unit-distance") -> str | None:
    matrix = as_array(first(data, "state_distance_init", "unit_distance"), ndim=2)
    if matrix is None or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        return None
    H = matrix.shape[0]
    off = matrix[~np.eye(H, dtype=bool)]
    with figure(5.0, 4.0) as (fig, ax):
        im = ax.imshow(matrix, cmap="viridis", vmin=0, aspect="equal")
        ax.grid(False)
        if H <= 12:
            top = float(np.nanmax(matrix)) or 1.0
            for (i, j), v in np.ndenumerate(matrix):
                ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=6,
                        color="white" if v < 0.5 * top else "#222222")
        if H <= 24:
            ax.set_xticks(np.arange(H))
            ax.set_yticks(np.arange(H))
        ax.set_xlabel("hidden unit")
        ax.set_ylabel("hidden unit")
        ax.set_title("Distance between hidden units")
        cb = fig.colorbar(im, ax=ax, shrink=0.85)
        cb.set_label("max |difference|")
        if off.size and np.nanmax(off) == 0:
            note(ax, "every unit is a copy of the others", colour=SEVERITY_COLOURS["error"],
                 loc="lower left")
        return _done(fig, salt, H * H)


register_plot("parameter_blocks",
              "How far apart every pair of hidden units is in parameter space: the largest "
              "change in any parameter when the two units are swapped. Zero off the diagonal "
              "means the two units are copies.")(plot_unit_distance)


for _name in ("symmetry", "parameters", "unit_symmetry"):
    register_plot(_name, "Correlation between every pair of hidden units. Identical units "
                         "(symmetric initialisation) show as all ±1.")(plot_unit_similarity)


@register_plot("recurrence",
               "|∂h_t/∂h_{t−1}| for the first sample: row i, column j is how much unit i of "
               "the new state moves per unit change of unit j of the previous state. An "
               "all-white matrix means the previous state is ignored.")
def plot_recurrence(data: dict[str, Any], salt: str = "recurrence") -> str | None:
    jac = as_array(first(data, "jacobian_abs_sample0", "jacobian"), ndim=2)
    if jac is None:
        return None
    H = jac.shape[0]
    with figure(5.0, 4.0) as (fig, ax):
        im = ax.imshow(np.abs(jac), cmap=_EFFECT, aspect="auto", vmin=0)
        ax.grid(False)
        if H <= 16:
            ax.set_xticks(np.arange(jac.shape[1]))
            ax.set_yticks(np.arange(H))
        ax.set_xlabel("unit j of h_{t−1}")
        ax.set_ylabel("unit i of h_t")
        ax.set_title("One-step Jacobian |∂h_t/∂h_{t−1}| (sample 0)")
        cb = fig.colorbar(im, ax=ax, shrink=0.85)
        cb.set_label("|∂h_t[i] / ∂h_{t−1}[j]|")
        if not np.any(jac):
            note(ax, "all zero: h_{t−1} is ignored", colour=SEVERITY_COLOURS["error"])
        return _done(fig, salt, jac.size)
