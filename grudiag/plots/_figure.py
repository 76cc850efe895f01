"""Shared figure plumbing: a headless, deterministic matplotlib, and figure -> inline SVG / PNG.

Every plot is rendered with the Agg backend and fixed rcParams, so the same measurement gives
byte-identical output (golden tests rely on it): ``svg.hashsalt`` fixes the ids matplotlib
derives for clip paths, ``metadata={"Date": None}`` drops the timestamp, and text stays text
(``svg.fonttype = "none"``) so the figures are small, crisp and selectable.
"""
from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

#: the same severity colours as the terminal and the HTML report
SEVERITY_COLOURS = {"error": "#c62828", "warning": "#b26a00", "info": "#1565c0"}
OK_COLOUR = "#2e7d32"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"]

_RC = {
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 8.0,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "image.interpolation": "nearest",
    "path.simplify": True,
}

#: above this many heatmap cells a figure is written as PNG (an SVG would be large and slow)
DENSE_CELLS = 4096


@contextmanager
def figure(width: float = 6.4, height: float = 3.6, ncols: int = 1,
           nrows: int = 1, mosaic: Any = None, **kwargs: Any) -> Iterator[tuple[Figure, Any]]:
    """A fresh figure (never pyplot's global state) under grudiag's fixed style."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        if mosaic is not None:
            axes = fig.subplot_mosaic(mosaic, **kwargs)
        else:
            axes = fig.subplots(nrows, ncols, squeeze=True, **kwargs)
        yield fig, axes


_counter = {"n": 0}


def to_svg(fig: Figure, salt: str) -> str:
    """Inline SVG text (no XML prologue, no fixed size, ids unique to `salt`)."""
    buf = io.StringIO()
    with matplotlib.rc_context({**_RC, "svg.hashsalt": f"grudiag-{salt}"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    # ids must be unique in the HTML document that holds many figures: prefix them with a
    # slug of the salt (deterministic), and let CSS decide the displayed size.
    prefix = re.sub(r"[^A-Za-z0-9]+", "-", salt).strip("-") + "-"
    svg = re.sub(r'\bid="', f'id="{prefix}', svg)
    svg = re.sub(r'url\(#', f'url(#{prefix}', svg)
    svg = re.sub(r'xlink:href="#', f'xlink:href="#{prefix}', svg)
    svg = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1', svg, count=1)
    return svg.replace("<svg", '<svg role="img" class="plot"', 1)


def to_png_uri(fig: Figure) -> str:
    """A PNG ``data:`` URI, for dense heatmaps."""
    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# --- tolerant access to measurement dicts (probe keys are not final) --------------------------

def first(d: Any, *names: str) -> Any:
    """The value of the first of `names` present (and not None) in `d`, else None."""
    if not isinstance(d, dict):
        return None
    for name in names:
        value = d.get(name)
        if value is not None:
            return value
    return None


def as_array(value: Any, ndim: int | tuple[int, ...] | None = None) -> np.ndarray | None:
    """A float array from nested lists (JSON's "nan"/"inf" strings included), else None."""
    if value is None or isinstance(value, (str, bytes, dict, bool)):
        return None
    try:
        arr = np.asarray(_numbers(value), dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.size == 0 or arr.dtype == object:
        return None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            return None
    return arr


def _numbers(value: Any) -> Any:
    if isinstance(value, str):
        return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}.get(value.lower(), value)
    if isinstance(value, (list, tuple)):
        return [_numbers(v) for v in value]
    if value is None:
        return math.nan
    return value


def number(value: Any) -> float | None:
    """A float (JSON's "nan"/"inf" strings included), or None for anything else."""
    if value is None:
        return None
    value = _numbers(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        return None
    return float(value)


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "–"
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}g}"
    return f"{x:.{max(digits - 1, 1)}e}"


def note(ax: Any, text: str, *, colour: str = "#333333", loc: str = "upper right") -> None:
    """A small boxed annotation inside the axes."""
    x, ha = (0.98, "right") if "right" in loc else (0.02, "left")
    y, va = (0.96, "top") if "upper" in loc else (0.04, "bottom")
    ax.text(x, y, text, transform=ax.transAxes, ha=ha, va=va, fontsize=8, color=colour,
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#cccccc", "alpha": 0.9})


def _pow10(value: float, _pos: Any = None) -> str:
    if value <= 0 or not math.isfinite(value):
        return ""
    e = math.log10(value)
    if abs(e - round(e)) > 1e-6:
        return ""
    e = int(round(e))
    return {0: "1", 1: "10", 2: "100", -1: "0.1", -2: "0.01"}.get(e, f"1e{e}")


def log_axis(ax: Any, which: str = "y") -> None:
    """A log scale with plain tick labels (matplotlib's default mathtext labels are slow)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis = ax.yaxis if which == "y" else ax.xaxis
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    axis.set_major_locator(LogLocator(base=10, numticks=8))
    axis.set_major_formatter(FuncFormatter(_pow10))
    axis.set_minor_formatter(NullFormatter())
