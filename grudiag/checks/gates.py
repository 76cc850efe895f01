"""GD24x: gate saturation. Gates pinned at 0 or 1 (and candidates pinned at ±1) at init."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..model import Finding, Location, Severity
from .base import Check, CheckContext, SkipCheck, register_check


def _saturated(kind: str, values: np.ndarray, ctx: CheckContext) -> np.ndarray:
    if kind == "sigmoid":
        eps = ctx.threshold("sigmoid_eps")
        return (values < eps) | (values > 1 - eps)
    return np.abs(values) > ctx.threshold("tanh_level")


def _gate_stats(gate: dict[str, Any], sat: np.ndarray, ctx: CheckContext) -> dict[str, Any]:
    values = np.asarray(gate["values"])
    unit_frac = sat.mean(axis=0)  # per unit: fraction of its values that are saturated
    if gate["unit_axis"]:
        units_sat = int((unit_frac >= ctx.threshold("unit_fraction")).sum())
        units = int(values.shape[1])
    else:  # no axis of hidden units: judge the values themselves
        units_sat = int(sat.mean() >= ctx.threshold("unit_fraction"))
        units = 1
    lo, hi = (0.0, 1.0) if gate["kind"] == "sigmoid" else (-1.0, 1.0)
    hist, edges = np.histogram(np.clip(values, lo, hi), bins=20, range=(lo, hi))
    return {
        "units": units,
        "units_saturated": units_sat,
        "fraction_values_saturated": float(sat.mean()),
        "values": int(values.size),
        "unit_means": [float(v) for v in values.mean(axis=0)][:64],
        "histogram": {"counts": hist.tolist(), "edges": [float(e) for e in edges]},
        "mean": gate["mean"], "min": gate["min"], "max": gate["max"],
    }


def _loc(gate: dict[str, Any], ctx: CheckContext) -> Location | None:
    loc = gate.get("location")
    if loc and loc.get("file"):
        return Location(loc["file"], loc.get("line"), loc.get("qualname"))
    return ctx.subject.location


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _when(ctx: CheckContext) -> str:
    """Classes are built fresh by grudiag (their init); instances carry the user's values."""
    return "with the given parameters" if ctx.subject.sizes_fixed else "at init"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 or x == 0 else f"{100 * x:.2g}%"


@register_check
class SaturatedGate(Check):
    """A gate (sigmoid) or the candidate (tanh) is saturated at init on ordinary inputs.

    ## What it checks
    Every sigmoid and tanh output the subject computes in its forward pass, recorded per call
    site (and per block of H units when one call computes several gates), on x ~ N(0, 1),
    h0 ~ U(−0.5, 0.5), 8 steps, with the subject's own (initial) parameters. The update gate,
    when identified, is judged by GD241 instead.

    ## Why is this bad?
    A saturated sigmoid or tanh has a derivative close to zero (σ' = σ(1 − σ) < 0.0099 beyond
    0.01/0.99, tanh' < 0.02 beyond ±0.99), so no gradient flows through it and the weights
    feeding it do not learn. A gate pinned at 0 or 1 also switches its part of the GRU off or
    on for good. At init this comes from weights or biases that are far too large
    (`torch.randn(...) * 10`, a bias of 10), or from unnormalised inputs.

    ## How it is detected
    Probe `gate_activations` records the outputs (torch: a `TorchFunctionMode` sees
    `torch.sigmoid`/`torch.tanh`/`Tensor.sigmoid`/`F.sigmoid`/`nn.Sigmoid`; NumPy: `np.tanh` and
    the module's functions or methods named like sigmoid/tanh are wrapped while it runs).
    A value is saturated when a sigmoid is below `sigmoid_eps` (0.01) or above 1 − `sigmoid_eps`,
    or a tanh is beyond ±`tanh_level` (0.99). A unit is saturated when at least `unit_fraction`
    (0.5) of its values are; the gate is reported when at least `gate_fraction` (0.5) of its
    units are. Measured (3 seeds, 64 values per unit; saturated values / saturated units):
    PyTorch's init U(±1/√H) and Xavier: 0–1% / 0 units in every gate, at H = 7, D = 5 and at
    H = 32, D = 16; N(0, 1) weights: 6–22% / 0 of 7 at H = 7 (not flagged) but 41–57% /
    2–26 of 32 at H = 32 (pre-activation std ≈ 5: the tanh is flagged); N(0, 1) × 3: 57–86% /
    4–32 units; N(0, 1) × 10: 87–96% / all units; a gate bias of +10: 100% / all units.

    ## Example
    ```python
    self.W_r = nn.Parameter(torch.randn(hidden_size, input_size) * 10)
    ```

    ## Use instead
    ```python
    k = 1 / math.sqrt(hidden_size)
    self.W_r = nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-k, k))
    ```
    """

    code = "GD240"
    name = "saturated-gate"
    category = "gate-saturation"
    severity = Severity.WARNING
    requires = ("gate_activations",)
    thresholds = {"sigmoid_eps": 0.01, "tanh_level": 0.99, "unit_fraction": 0.5,
                  "gate_fraction": 0.5}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        m = ctx.m("gate_activations")
        update = m["update_gate"]
        for i, gate in enumerate(m["gates"]):
            if update is not None and i == update["gate"]:
                continue
            values = np.asarray(gate["values"])
            sat = _saturated(gate["kind"], values, ctx)
            st = _gate_stats(gate, sat, ctx)
            if st["units_saturated"] < ctx.threshold("gate_fraction") * st["units"] \
                    or st["units_saturated"] == 0:
                continue
            if gate["kind"] == "sigmoid":
                eps = ctx.threshold("sigmoid_eps")
                low, high = bool((values < eps).any()), bool((values > 1 - eps).any())
                how = " or ".join(([f"below {eps:g}"] if low else [])
                                  + ([f"above {1 - eps:g}"] if high else []))
            else:
                how = f"beyond ±{ctx.threshold('tanh_level'):g}"
            units_text = (f"{st['units_saturated']} of {st['units']} units are {how} in at least "
                          f"{_pct(ctx.threshold('unit_fraction'))} of their values"
                          if gate["unit_axis"] else f"its values are {how}")
            yield ctx.finding(
                f"{_cap(gate['title'])} is saturated "
                f"{_when(ctx)}: {units_text} on x ~ N(0, 1) "
                f"({_pct(st['fraction_values_saturated'])} of {st['values']} values saturated; "
                f"mean {st['mean']:.4g})",
                "Scale the weights feeding this gate down (PyTorch uses U(-1/sqrt(H), 1/sqrt(H))), "
                "keep gate biases small, and normalise the inputs",
                location=_loc(gate, ctx),
                evidence={"gate": gate["name"], "kind": gate["kind"], **st},
            )


@register_check
class UpdateGatePinned(Check):
    """The update gate is pinned at init: the state either never takes input or never keeps memory.

    ## What it checks
    The update gate z, identified by measurement: of the recorded sigmoid outputs, the one that
    with a recorded tanh output n and the previous state explains every new state as
    h' = z⊙h + (1−z)⊙n or h' = (1−z)⊙h + z⊙n. From it, the fraction of h_prev each unit keeps
    (z or 1 − z) on x ~ N(0, 1), 8 steps, with the subject's initial parameters.

    ## Why is this bad?
    Kept fraction ≈ 1 in every unit: h' ≈ h, nothing from the input ever gets into the state,
    and the gate's own gradient σ' is ~0, so it cannot learn its way out (an update-gate bias of
    +10 keeps 0.99995). Kept fraction ≈ 0: h' ≈ n, the cell forgets everything at each step and
    is a plain tanh RNN without memory. Chrono-style inits that bias the gate towards keeping
    (bias ≈ log(T), kept ≈ 0.9–0.98) are not flagged at the default threshold.

    ## How it is detected
    Probe `gate_activations` (see GD240). A unit is closed to input when at least
    `unit_fraction` (0.5) of its kept fractions are above 1 − `keep_eps` (`keep_eps` = 0.01),
    without memory when they are below `keep_eps`, saturated when either holds; the gate is
    reported when at least `gate_fraction` (0.5) of its units are. Measured (H = 7, D = 5,
    3 seeds, reset-after and reset-before): PyTorch's init keeps 0.09–0.88 (0 saturated units,
    tanh within ±0.95); an update-gate bias of +10 keeps > 0.9999 in 7 of 7 units; a bias of
    −10 keeps < 0.0002 in 7 of 7; N(0, 1) × 10 weights saturate 7 of 7 units on both sides.

    ## Example
    ```python
    self.b_z = nn.Parameter(torch.full((hidden_size,), 10.0))   # "remember by default"
    ```

    ## Use instead
    ```python
    self.b_z = nn.Parameter(torch.zeros(hidden_size))   # or a chrono init, bias ≈ log(T)
    ```
    """

    code = "GD241"
    name = "update-gate-pinned"
    category = "gate-saturation"
    severity = Severity.WARNING
    requires = ("gate_activations",)
    thresholds = {"keep_eps": 0.01, "unit_fraction": 0.5, "gate_fraction": 0.5}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        m = ctx.m("gate_activations")
        update = m["update_gate"]
        if update is None:
            raise SkipCheck("the update gate could not be identified: no recorded sigmoid output "
                            "z explains every new state as z*h + (1-z)*n or (1-z)*h + z*n")
        gate = m["gates"][update["gate"]]
        z = np.asarray(gate["values"])
        keep = z if update["keep_is_z"] else 1 - z
        eps = ctx.threshold("keep_eps")
        need = ctx.threshold("unit_fraction")
        closed_f = (keep > 1 - eps).mean(axis=0)
        amnesic_f = (keep < eps).mean(axis=0)
        closed = int((closed_f >= need).sum())
        amnesic = int((amnesic_f >= need).sum())
        saturated = int((closed_f + amnesic_f >= need).sum())
        units = keep.shape[1]
        bar = ctx.threshold("gate_fraction") * units
        evidence = {"gate": gate["name"], "form": update["form"], "units": units,
                    "units_closed_to_input": closed, "units_without_memory": amnesic,
                    "units_saturated": saturated,
                    "mean_kept_fraction": float(keep.mean()),
                    "min_kept_fraction": float(keep.min()),
                    "max_kept_fraction": float(keep.max()),
                    "unit_mean_kept": [float(v) for v in keep.mean(axis=0)][:64]}
        head = f"{_cap(gate['update_title'])}, h' = {update['form'].replace('*', '·')})"
        when = _when(ctx)
        if closed >= bar and closed:
            yield ctx.finding(
                f"{head} keeps more than {100 * (1 - eps):g}% of h_prev in {closed} of {units} "
                f"units {when} (mean kept fraction {keep.mean():.5g}): no input gets into the "
                f"state",
                "Initialise the update-gate bias near 0 (or a chrono init, log of the time "
                "scale) and keep its weights small so the gate starts near 0.5",
                location=_loc(gate, ctx), evidence=evidence,
            )
        elif amnesic >= bar and amnesic:
            yield ctx.finding(
                f"{head} keeps less than {100 * eps:g}% of h_prev in {amnesic} of {units} units "
                f"{when} (mean kept fraction {keep.mean():.3g}): the cell has no memory and "
                f"acts as a plain tanh RNN",
                "Initialise the update-gate bias near 0 and keep its weights small so the gate "
                "starts near 0.5",
                location=_loc(gate, ctx), evidence=evidence,
            )
        elif saturated >= bar and saturated:
            yield ctx.finding(
                f"{head} is saturated {when}: in {saturated} of {units} units it either keeps "
                f"h_prev entirely or discards it in at least {_pct(need)} of the values "
                f"({_pct(float(((keep > 1 - eps) | (keep < eps)).mean()))} of {keep.size} values)",
                "Scale the update-gate weights and bias down so the gate starts near 0.5 "
                "(PyTorch uses U(-1/sqrt(H), 1/sqrt(H)))",
                location=_loc(gate, ctx), evidence=evidence,
            )
