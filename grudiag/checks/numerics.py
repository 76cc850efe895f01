"""GD5xx: numerics. Non-finite values and floating-point overflow."""
from __future__ import annotations

from collections.abc import Iterator

from ..model import Finding, Severity
from .base import Check, CheckContext, register_check


@register_check
class NonFiniteOutput(Check):
    """The subject returns NaN or Inf on ordinary inputs.

    ## What it checks
    Runs the subject once on standard probe inputs (x ~ N(0, 1), h0 ~ U(-0.5, 0.5), the
    subject's own parameters) and counts non-finite entries in the returned states.

    ## Why is this bad?
    A GRU state is a convex blend of the previous state and a tanh candidate, so it is bounded
    by max(|h0|, 1). NaN or Inf on ordinary inputs means a division by zero, a log of a
    non-positive number, an overflowing exponential or uninitialised memory (`torch.empty`,
    `np.empty`): training will produce NaN losses from the first step.

    ## How it is detected
    Probe `forward`: one run of T=6 steps, batch 3. Any non-finite entry is an error; the first
    one (step, sample, unit) is reported. No threshold.

    ## Example
    ```python
    self.W_z = np.empty((hidden_size, input_size))   # uninitialised memory
    ```

    ## Use instead
    ```python
    self.W_z = rng.uniform(-k, k, (hidden_size, input_size))
    ```
    """

    code = "GD501"
    name = "non-finite-output"
    category = "numerical-instability"
    severity = Severity.ERROR
    requires = ("forward",)

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        m = ctx.m("forward")
        if m["non_finite_count"]:
            at = m["first_non_finite"]
            yield ctx.finding(
                f"{m['non_finite_count']} of {m['size']} state values are NaN/Inf on ordinary "
                f"inputs; the first at step {at['t']}, sample {at['batch']}, unit {at['unit']}",
                "Look for uninitialised arrays (np.empty/torch.empty), divisions and exp/log of "
                "unbounded values in the forward pass",
                evidence={"non_finite_count": m["non_finite_count"], "first": at,
                          "fp_warnings": m["fp_warnings"]},
            )
