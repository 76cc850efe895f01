"""Plots: pure functions from one probe's measurement summary (a JSON-able dict) to a figure.

``PLOTS[name](data)`` returns inline SVG text (or a PNG ``data:`` URI for dense heatmaps), or
None when `data` lacks the keys the plot needs. A plot never raises: the probes' keys are not
frozen, and a missing figure must never cost the user the report. `name` is a probe name
(``report.results[i].measurements[name]``) or a plot kind that a finding's evidence names
(``evidence["plot"] = {"kind": name, ...arrays}``).

Reporters call `probe_plots` (the gallery of one subject) and `finding_plot` (the figure of one
finding: its own evidence arrays first, then the measurement of the probe behind it).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

PlotFn = Callable[..., "str | None"]

#: plot name (a probe name or an evidence plot kind) -> plot function
PLOTS: dict[str, PlotFn] = {}
#: plot name -> a one-line caption for newcomers (what the figure shows, what to look for)
CAPTIONS: dict[str, str] = {}

log = logging.getLogger(__name__)


def register_plot(name: str, caption: str = "") -> Callable[[PlotFn], PlotFn]:
    def decorate(fn: PlotFn) -> PlotFn:
        PLOTS[name] = fn
        CAPTIONS[name] = caption
        return fn
    return decorate


@dataclass(frozen=True)
class Plot:
    name: str
    caption: str
    #: inline SVG text, or a ``data:image/png;base64,…`` URI
    content: str

    @property
    def is_svg(self) -> bool:
        return self.content.lstrip().startswith("<svg")


def render(name: str, data: Any, salt: str | None = None,
           cache: dict | None = None) -> Plot | None:
    """Run one plot; None when it does not apply (or fails: logged, never raised).

    `cache` (any dict, owned by the caller) reuses the figure of identical data, so a finding
    card and the gallery do not draw the same figure twice.
    """
    fn = PLOTS.get(name)
    if fn is None or not isinstance(data, Mapping):
        return None
    key = None
    if cache is not None:
        try:
            key = (name, json.dumps(data, sort_keys=True, default=str))
        except (TypeError, ValueError):
            key = None
        if key is not None and key in cache:
            return cache[key]
    try:
        content = fn(dict(data), salt=salt or name)
    except Exception:  # noqa: BLE001 - a plot must never cost the user the report
        log.debug("plot %r failed", name, exc_info=True)
        content = None
    plot = Plot(name, CAPTIONS.get(name, ""), content) if content else None
    if key is not None:
        cache[key] = plot
    return plot


def probe_plots(measurements: Mapping[str, Any], salt: str = "",
                cache: dict | None = None) -> list[Plot]:
    """Every plot that applies to one subject's measurements, in the probes' order."""
    out = []
    for name, data in measurements.items():
        plot = render(name, data, f"{salt}-{name}", cache)
        if plot is not None:
            out.append(plot)
    return out


#: the probes whose measurement best shows a finding of each category
CATEGORY_PROBES: dict[str, tuple[str, ...]] = {
    "exploding-gradients": ("jacobian_spectrum",),
    "vanishing-gradients": ("jacobian_spectrum",),
    "ignored-recurrence": ("jacobian_spectrum", "time-dependence", "recurrence"),
    "wrong-gradient": ("gradient_check",),
    "truncated-bptt": ("gradient_flow", "time-dependence"),
    "stale-hidden-state": ("time-dependence", "call-state"),
    "bad-shapes": ("batch-dependence", "time-dependence", "size-grid"),
    "gate-saturation": ("gate_activations",),
    "zero-init-symmetry": ("unit_copies", "parameter_blocks", "symmetry", "unit-similarity",
                           "parameters", "forward"),
    "equation-mismatch": ("conventions", "reference", "forward"),
    "numerical-instability": ("forward",),
}


def finding_plot(finding: Any, measurements: Mapping[str, Any], salt: str = "",
                 cache: dict | None = None) -> Plot | None:
    """The figure for one finding (a `Finding` or its dict), or None.

    Tried in order: ``evidence["plot"]`` (``{"kind": name, ...}``); the evidence itself under the
    plot its ``evidence["probe"]`` names, then the probes usually behind the finding's category,
    each drawn from the probe's measurement with the evidence's arrays laid over it (or from the
    evidence alone when the probe did not run).
    """
    evidence = _get(finding, "evidence") or {}
    category = _get(finding, "category") or ""
    salt = salt or str(_get(finding, "code") or "finding")
    spec = evidence.get("plot") if isinstance(evidence, Mapping) else None
    if isinstance(spec, Mapping) and spec.get("kind") in PLOTS:
        plot = render(str(spec["kind"]), spec, salt, cache)
        if plot is not None:
            return plot
    names: list[str] = []
    probe = evidence.get("probe") if isinstance(evidence, Mapping) else None
    if isinstance(probe, str):
        names.append(probe)
    names += [n for n in CATEGORY_PROBES.get(category, ()) if n not in names]
    for name in names:
        if name not in PLOTS:
            continue
        measured = measurements.get(name)
        if not isinstance(measured, Mapping):
            data = dict(evidence)
        elif any(_is_array(v) for v in evidence.values()):
            data = {**measured, **evidence}  # the finding brought its own arrays
        else:
            data = dict(measured)  # the same figure as the gallery's (drawn once)
        plot = render(name, data, salt, cache)
        if plot is not None:
            return plot
    return None


def _is_array(value: Any) -> bool:
    """Plot data rather than a detail such as ``worst_index: [2, 1]``."""
    return isinstance(value, (list, tuple)) and (
        len(value) > 8 or any(isinstance(v, (list, tuple)) for v in value))


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    value = getattr(obj, key, None)
    return getattr(value, "value", value) if key == "severity" else value


# importing the plot modules fills the registry
from . import forward, gates, gradients, matrices, training, trajectories  # noqa: E402,F401

__all__ = ["CAPTIONS", "PLOTS", "Plot", "finding_plot", "probe_plots", "register_plot", "render"]
