"""Gate activations: histograms with the saturated zones marked, and time × unit heatmaps."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import register_plot
from ._figure import (PALETTE, SEVERITY_COLOURS, as_array, figure, first, fmt, note, number,
                      to_png_uri, to_svg)

MAX_GATES = 6
MAX_HEATMAPS = 3
#: a sigmoid output below eps or above 1 - eps (tanh: |v| > 1 - eps) counts as saturated
DEFAULT_EPS = 0.01


def _gates(data: dict[str, Any]) -> list[dict[str, Any]]:
    gates = data.get("gates")
    if isinstance(gates, dict):  # {"z": values, ...} or {"z": {...}, ...}
        gates = [dict(v, name=k) if isinstance(v, dict) else {"name": k, "values": v}
                 for k, v in gates.items()]
    if not isinstance(gates, list):
        return []
    return [g for g in gates if isinstance(g, dict)][:MAX_GATES]


def _label(g: dict[str, Any], i: int) -> str:
    name = str(g.get("label") or g.get("gate") or g.get("name") or f"gate {i}")
    return name if len(name) <= 48 else name[:45] + "…"


def _bounds(g: dict[str, Any]) -> tuple[float, float]:
    kind = str(g.get("kind") or "sigmoid")
    return (-1.0, 1.0) if kind == "tanh" else (0.0, 1.0)


def _saturated(values: np.ndarray, kind: str, eps: float) -> float:
    if kind == "tanh":
        return float(np.mean(np.abs(values) > 1 - eps))
    return float(np.mean((values < eps) | (values > 1 - eps)))


def _heat(g: dict[str, Any]) -> np.ndarray | None:
    arr = as_array(first(g, "time_unit", "steps", "heatmap", "mean_over_batch"), ndim=(2, 3))
    if arr is None:
        return None
    return arr.mean(axis=1) if arr.ndim == 3 else arr  # (T, B, H) -> (T, H)


@register_plot("gate_activations",
               "Top: the distribution of every recorded gate activation (sigmoid/tanh output); "
               "the shaded bands are the saturated zones, where the gate is pinned at its limit "
               "and its gradient is almost zero. Below: the mean activation per time step and "
               "hidden unit, with saturated cells marked ×.")
def plot_gate_activations(data: dict[str, Any], salt: str = "gates") -> str | None:
    gates = _gates(data)
    if not gates:
        return None
    eps = number(first(data, "saturation_eps", "saturation_threshold", "eps")) or DEFAULT_EPS
    heats = [(i, g, h) for i, g in enumerate(gates) if (h := _heat(g)) is not None]
    heats = heats[:MAX_HEATMAPS]
    mosaic = [["hist"] * max(len(heats), 1)]
    if heats:
        mosaic.append([f"heat{k}" for k in range(len(heats))])
    height = 3.2 + (2.8 if heats else 0)
    with figure(9.0, height, mosaic=mosaic) as (fig, axes):
        ax = axes["hist"]
        for lo, hi in ((-1.0, -1 + eps), (-eps, eps), (1 - eps, 1.0)):
            ax.axvspan(lo, hi, color=SEVERITY_COLOURS["warning"], alpha=0.15, linewidth=0)
        any_values = False
        for i, g in enumerate(gates):
            colour = PALETTE[i % len(PALETTE)]
            values = as_array(g.get("values"))
            hist = g.get("histogram") if isinstance(g.get("histogram"), dict) else None
            kind = str(g.get("kind") or "sigmoid")
            if values is not None:
                values = values[np.isfinite(values)].ravel()
                frac = number(g.get("saturated_fraction"))
                frac = _saturated(values, kind, eps) if frac is None else frac
                lo, hi = _bounds(g)
                ax.hist(values, bins=40, range=(lo, hi), density=True, histtype="step",
                        linewidth=1.5, color=colour,
                        label=f"{_label(g, i)} ({kind}): {frac:.0%} saturated")
                any_values = True
            elif hist is not None:
                edges = as_array(first(hist, "edges", "bins"), ndim=1)
                counts = as_array(hist.get("counts"), ndim=1)
                if edges is None or counts is None or len(edges) != len(counts) + 1:
                    continue
                frac = number(g.get("saturated_fraction"))
                tail = f": {frac:.0%} saturated" if frac is not None else ""
                ax.stairs(counts / max(counts.sum(), 1), edges, linewidth=1.5, color=colour,
                          label=f"{_label(g, i)} ({kind}){tail}")
                any_values = True
            else:  # only summary statistics: draw the range and mark the mean
                lo_v, hi_v, mean = (number(g.get("min")), number(g.get("max")),
                                    number(g.get("mean")))
                if lo_v is None or hi_v is None:
                    continue
                y = -0.2 - 0.25 * i
                ax.plot([lo_v, hi_v], [y, y], color=colour, linewidth=4, solid_capstyle="butt",
                        label=f"{_label(g, i)} ({kind}): range {fmt(lo_v)} … {fmt(hi_v)}")
                if mean is not None:
                    ax.plot([mean], [y], marker="|", markersize=12, color="#222222")
        if not ax.get_legend_handles_labels()[0]:
            return None
        if not any_values:
            ax.set_yticks([])
            ax.set_ylabel("gate (bar: min … max, tick: mean)")
            ax.set_ylim(-0.3 - 0.25 * len(gates), 0.1)
        else:
            ax.set_ylabel("fraction of activations (density)")
        ax.set_xlabel("activation value (sigmoid in [0, 1], tanh in [-1, 1]); shaded: saturated")
        ax.set_title("Gate activation distributions")
        ax.legend(loc="upper center", fontsize=7, ncols=1)
        cells = 0
        for k, (i, g, heat) in enumerate(heats):
            axh = axes[f"heat{k}"]
            lo, hi = _bounds(g)
            im = axh.imshow(heat.T, aspect="auto", cmap="viridis", vmin=lo, vmax=hi,
                            origin="lower")
            axh.grid(False)
            sat = (np.abs(heat) > 1 - eps) if str(g.get("kind")) == "tanh" else \
                ((heat < eps) | (heat > 1 - eps))
            ts, us = np.nonzero(sat)
            if ts.size and heat.size <= 2000:
                axh.scatter(ts, us, marker="x", s=10, color=SEVERITY_COLOURS["error"],
                            linewidths=0.8)
            axh.set_xlabel("time step t")
            axh.set_ylabel("hidden unit")
            axh.set_title(_label(g, i), fontsize=8)
            fig.colorbar(im, ax=axh, shrink=0.8)
            cells += heat.size
            if ts.size:
                note(axh, f"{ts.size / heat.size:.0%} saturated", loc="upper right",
                     colour=SEVERITY_COLOURS["warning"])
        return to_png_uri(fig) if cells > 4096 else to_svg(fig, salt)


register_plot("gate_saturation", "Gate activation distributions with saturated zones shaded.")(
    plot_gate_activations)
