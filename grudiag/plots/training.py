"""Plots of a `grudiag run` training record (measurement "training", evidence kind
"training_flow")."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import register_plot
from ._figure import PALETTE, SEVERITY_COLOURS, as_array, figure, log_axis, number, to_svg


def _scale(ax: Any, values: list[np.ndarray]) -> None:
    """Log scale when the values span more than a decade (else the log ticks stay unlabelled)."""
    arr = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in values]) if values else np.array([])
    if arr.size and arr.max() > 10 * arr.min():
        log_axis(ax)


def _positive(arr: np.ndarray) -> np.ndarray:
    out = arr.copy()
    out[~np.isfinite(out) | (out <= 0)] = np.nan
    return out


@register_plot("training",
               "The training run step by step: gradient norm after backward (raw) and as the "
               "optimizer applied it, with the clipping threshold (log scale); crosses mark "
               "non-finite steps. Below: the loss, and the gradient norm of each module on "
               "sampled steps.")
def plot_training(data: dict[str, Any], salt: str = "training") -> str | None:
    steps = as_array(data.get("step"), ndim=1)
    norm = as_array(data.get("norm"), ndim=1)
    if steps is None or norm is None or len(steps) != len(norm):
        return None
    raw = as_array(data.get("raw_norm"), ndim=1)
    loss = as_array(data.get("loss"), ndim=1)
    modules = data.get("module_norms") if isinstance(data.get("module_norms"), dict) else {}
    module_steps = as_array(data.get("module_steps"), ndim=1)
    has_loss = loss is not None and len(loss) == len(steps)
    has_modules = bool(modules) and module_steps is not None
    nrows = 1 + int(has_loss) + int(has_modules)
    with figure(6.4, 2.6 * nrows, nrows=nrows) as (fig, axes):
        axes = np.atleast_1d(axes)
        ax = axes[0]
        if raw is not None and len(raw) == len(steps) and np.isfinite(raw).any():
            ax.plot(steps, _positive(raw), color="#555555", linestyle="--", linewidth=1,
                    label="raw (after backward)")
        ax.plot(steps, _positive(norm), color=PALETTE[0], linewidth=1.3,
                label="applied (at optimizer.step)")
        bad = ~np.isfinite(norm)
        if bad.any():
            finite = norm[np.isfinite(norm) & (norm > 0)]
            y = float(finite.max()) if finite.size else 1.0
            ax.scatter(steps[bad], np.full(bad.sum(), y), marker="x", s=30,
                       color=SEVERITY_COLOURS["error"], zorder=5, label="non-finite")
        limit = number(data.get("clip_max_norm"))
        if limit is not None and limit > 0:
            ax.axhline(limit, color=SEVERITY_COLOURS["warning"], linestyle=":",
                       label=f"clip max_norm = {limit:g}")
        log_axis(ax)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("‖gradient‖")
        ax.set_title("Gradient norm per step")
        ax.legend(loc="best")
        row = 1
        if has_loss:
            axl = axes[row]
            row += 1
            axl.plot(steps, loss, color=PALETTE[1], linewidth=1.2)
            finite = loss[np.isfinite(loss)]
            if finite.size and finite.min() > 0:
                _scale(axl, [loss])
            axl.set_xlabel("optimizer step")
            axl.set_ylabel("loss")
            axl.set_title("Loss")
        if has_modules:
            axm = axes[row]
            drawn = []
            for i, (name, values) in enumerate(sorted(modules.items())):
                arr = as_array(values, ndim=1)
                if arr is None or len(arr) != len(module_steps):
                    continue
                drawn.append(arr)
                axm.plot(module_steps, _positive(arr), marker="o", markersize=3,
                         color=PALETTE[i % len(PALETTE)], label=name)
            _scale(axm, drawn)
            axm.set_xlabel("optimizer step (sampled)")
            axm.set_ylabel("‖gradient‖ (applied)")
            axm.set_title("Gradient norm per module (sampled steps)")
            axm.legend(loc="best")
        return to_svg(fig, salt)


@register_plot("training_flow",
               "Gradient norm reaching each time step of the recurrent module, on one sampled "
               "training step (log scale).")
def plot_training_flow(data: dict[str, Any], salt: str = "training-flow") -> str | None:
    norms = as_array(data.get("norms"), ndim=1)
    if norms is None or len(norms) < 2:
        return None
    with figure(6.4, 3.2) as (fig, ax):
        ax.plot(np.arange(len(norms)), _positive(norms), marker="o", markersize=3,
                color=PALETTE[0])
        log_axis(ax)
        ax.set_xlabel("time step t")
        ax.set_ylabel(str(data.get("quantity", "‖∂loss/∂h_t‖")))
        ax.set_title(f"{data.get('module', 'recurrent module')}: gradient through time "
                     f"(step {data.get('step', '?')})")
        return to_svg(fig, salt)
