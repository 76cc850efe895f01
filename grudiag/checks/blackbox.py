"""GD220/GD221: the black-box fallback when the parameters cannot be mapped onto a GRU."""
from __future__ import annotations

from collections.abc import Iterable

from ..model import Finding, Severity
from .base import Check, CheckContext, SkipCheck, register_check


@register_check
class StateNotAConvexBlend(Check):
    """The new state leaves the interval between h_prev and [-1, 1]: no GRU can do that.

    ## What it checks
    Only for subjects whose parameters grudiag could not map onto a GRU (so GD202–GD216 cannot
    run): whether each unit of the new state lies between its previous value and some value in
    [-1, 1], i.e. ``min(h, -1) ≤ h' ≤ max(h, 1)``. Every GRU convention satisfies this, since
    ``h' = (1-z)·n + z·h`` (or z and 1-z exchanged) with z in [0, 1] and n = tanh(...).

    ## Why is this bad?
    A state that can leave that interval is not a convex blend of the old state and a bounded
    candidate: typically a relu or missing candidate activation, gates that are not sigmoids,
    or an update such as ``z·h + z·n`` or ``h + n``. States can then grow without bound.

    ## How it is detected
    The subject is stepped on inputs x ~ N(0, s²) for s in 1, 3, 10 with states h uniform in
    ±0.5 and ±2 (batch 8), with no knowledge of its parameters. The largest excess of h' over
    the bound is compared with ``tolerance`` (default 1e-5, room for float32 rounding). This is a weaker test than the
    equation checks (a cell can be wrong and still stay inside the bound), so the finding is a
    warning and it is skipped when the parameters could be mapped.

    ## Example
    ```python
    n = torch.relu(self.x2n(x) + r * self.h2n(h))   # unbounded candidate
    h_new = (1 - z) * n + z * h
    ```

    ## Use instead
    ```python
    n = torch.tanh(self.x2n(x) + r * self.h2n(h))
    h_new = (1 - z) * n + z * h
    ```
    """

    code = "GD220"
    name = "state-not-a-convex-blend"
    category = "equation-mismatch"
    severity = Severity.WARNING
    requires = ("blackbox",)
    thresholds = {"tolerance": 1e-5}

    def judge(self, ctx: CheckContext) -> Iterable[Finding]:
        m = _unmapped_blackbox(ctx)
        worst = m.get("worst")
        if not worst or worst["max_excess"] <= ctx.threshold("tolerance"):
            return
        w = worst["worst"]
        yield ctx.finding(
            f"grudiag could not map the parameters onto a GRU, so it tested a property every GRU "
            f"has: each unit of h' lies between h_prev and a value in [-1, 1]. Unit {w['unit']} "
            f"of sample {w['sample']} went from {w['h_prev']:.4g} to {w['h_new']:.4g} (outside "
            f"by {worst['max_excess']:.3g}) at inputs x ~ N(0, {worst['x_scale']:g}²); "
            f"{worst['fraction_outside']:.0%} of the units left the bound. This is a black-box "
            "test with lower confidence than the equation checks",
            "Check that the candidate uses tanh, the gates sigmoid, and that the new state is "
            "(1-z)·n + z·h (or (1-z)·h + z·n)",
            evidence={"worst": worst, "runs": m.get("runs", [])})


@register_check
class StateNotCarriedWhenGateSaturates(Check):
    """With every gate saturated, a unit neither keeps h_prev nor takes a ±1 candidate.

    ## What it checks
    Only for cells whose parameters grudiag could not map onto a GRU (so GD202–GD216 cannot
    run; sequence models may stack layers, which the input cannot saturate): at inputs so
    large that every sigmoid is 0 or 1 and every tanh ±1, each unit of a GRU's new state is
    either h_prev exactly (the update gate passes the state through) or the saturated
    candidate ±1, whatever h_prev was. That is how a GRU carries memory unchanged.

    ## Why is this bad?
    A cell that cannot pass its state through unchanged loses what it remembers at every step
    (a state scaled by a constant, tanh applied again to the new state, a blend whose weights do
    not add up to 1, such as ``z·h + z·n``): long-range gradients vanish or explode and the
    model cannot learn memory.

    ## How it is detected
    Probe `blackbox`: x ~ N(0, 1) scaled by 1e6 and by −1e6 (the sign flips which gates
    saturate open or shut), each from two states h_prev ~ U(−0.9, 0.9), batch 8. A unit is
    "carried" when h' equals h_prev for both states, "replaced" when h' is the same ±1 for
    both, within 1e-5; a correct GRU carries every unit at one of the two signs. Units whose
    state does not respond to the input at all are not judged.
    Flags when more than `max_fraction_neither` = 5 % of the judged units are neither
    at one of the two signs (a correct GRU measures 0 %: a unit escapes saturation only when
    its gate's input is within ~4e-5 of 0); a state damped to 0.1·h, tanh on the new state and
    ``z·h + z·n`` all measure 100 %.

    ## Example
    ```python
    h_new = (1 - z) * n + z * (0.1 * h)    # the state can never be carried
    ```

    ## Use instead
    ```python
    h_new = (1 - z) * n + z * h
    ```
    """

    code = "GD221"
    name = "state-not-carried-when-gate-saturates"
    category = "equation-mismatch"
    severity = Severity.WARNING
    requires = ("blackbox",)
    thresholds = {"max_fraction_neither": 0.05}

    def judge(self, ctx: CheckContext) -> Iterable[Finding]:
        if ctx.subject.is_sequence:
            raise SkipCheck("a sequence model may stack layers, and the input cannot saturate "
                            "the gates of a layer that reads another layer's states")
        carry = _unmapped_blackbox(ctx).get("carry") or {}
        if not carry.get("measured"):
            raise SkipCheck(carry.get("reason", "the carry property was not measured"))
        if not carry["units_judged"]:
            raise SkipCheck("no unit of the new state responds to the input, so the gates "
                            "cannot be saturated from outside")
        if carry["fraction_neither"] <= ctx.threshold("max_fraction_neither"):
            return
        ex = carry["example"]
        yield ctx.finding(
            f"grudiag could not map the parameters onto a GRU, so it tested a property every GRU "
            f"has: with every gate saturated (inputs ×{carry['scale']:.0e}), each unit either "
            f"keeps h_prev exactly or becomes ±1. {carry['fraction_neither']:.0%} of "
            f"{carry['units_judged']} units did neither; unit {ex['unit']} of sample "
            f"{ex['sample']} went from {ex['h_prev'][0]:.4g} to {ex['h_new'][0]:.4g} and from "
            f"{ex['h_prev'][1]:.4g} to {ex['h_new'][1]:.4g}; {carry['fraction_carried']:.0%} of "
            f"the units kept h_prev at either input sign (a GRU: 100%). The cell cannot pass "
            "its state through unchanged. This is a black-box test with lower confidence than the "
            "equation checks",
            "Make the new state the blend (1 - z) * n + z * h, with nothing applied to h or to "
            "the result, so that z = 1 keeps h exactly",
            evidence={"carry": carry})


def _unmapped_blackbox(ctx: CheckContext) -> dict:
    """The black-box measurements, or a skip when the equation checks can judge instead."""
    m = ctx.m("blackbox")
    if "conventions" in ctx.measurements or m.get("conventions_mapped"):
        raise SkipCheck("the parameters were mapped onto a GRU: GD202-GD216 judge the "
                        "equations directly")
    return m
