"""GD220: the black-box fallback when the parameters cannot be mapped onto a GRU."""
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
        m = ctx.m("blackbox")
        if "conventions" in ctx.measurements or m.get("conventions_mapped"):
            raise SkipCheck("the parameters were mapped onto a GRU: GD202-GD216 judge the "
                            "equations directly")
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
