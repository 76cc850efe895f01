"""GD5xx: numerics. Non-finite values and floating-point overflow."""
from __future__ import annotations

import os
from collections.abc import Iterator

from ..model import Finding, Location, Severity
from .base import Check, CheckContext, SkipCheck, register_check


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


# --- GD502+: large inputs, gradients, floating-point overflow ------------------------------------
def _where(events: list[dict], subject_file: str | None = None) -> tuple[str, Location | None]:
    """'overflow encountered in exp at my_gru.py:14' for the first event in the user's files."""
    if not events:
        return "", None
    user = [e for e in events if e.get("file") and "site-packages" not in e["file"]
            and "/grudiag/" not in e["file"].replace("\\", "/")]
    e = (user or events)[0]
    loc = Location(e["file"], e.get("line")) if e.get("file") else None
    at = f" at {os.path.basename(e['file'])}:{e.get('line')}" if e.get("file") else ""
    return f"{e['what']}{at}", loc


def _scale(s: float) -> str:
    return f"×{s:g}"


_FP_HINT = ("Compute the sigmoid without overflow, e.g. np.exp(-np.logaddexp(0, -a)) or "
            "scipy.special.expit (torch.sigmoid in torch), use np.tanh/torch.tanh rather than "
            "exp formulas, and normalise the inputs")


@register_check
class NonFiniteOutputAtLargeInputs(Check):
    """The subject returns NaN or Inf (or raises) on large but finite inputs.

    ## What it checks
    The standard probe inputs (x ~ N(0, 1), h0 ~ U(−0.5, 0.5)) with x scaled ×30, ×300 and
    ×3000, for a subject whose states are finite at scale 1.

    ## Why is this bad?
    A GRU state is a convex blend of the previous state and a tanh, so it is bounded for every
    finite input: correct cells return |h| ≤ max(|h0|, 1) at any scale. NaN or Inf at large
    inputs comes from an activation written with exponentials that overflow: `exp(a) / (1 +
    exp(a))` gives inf/inf = NaN for a > 709.78 in float64 (a > 88.72 in float32), and so does
    tanh written as `(exp(a) − exp(−a)) / (exp(a) + exp(−a))`. Unnormalised features (prices,
    counts, pixel values 0–255) reach such pre-activations in float32.

    ## How it is detected
    Probe `large_inputs`. Large scales are needed because float64 overflows only beyond
    |a| ≈ 709.78 and PyTorch's init gives pre-activations of standard deviation ≈ 0.5·|x|
    (H = 7, D = 5): ×3000 reaches it, ×300 rarely. Any non-finite state, or an exception, at a
    scale where scale 1 is finite is an error. No threshold. Measured: the reference GRU and
    cells using `np.tanh`, `torch.sigmoid` or `np.exp(-np.logaddexp(0, -a))` stay finite up to
    ×3000; `exp(a) / (1 + exp(a))` gives NaN at ×3000.

    ## Example
    ```python
    def sigmoid(a):
        return np.exp(a) / (1 + np.exp(a))
    ```

    ## Use instead
    ```python
    def sigmoid(a):
        return np.exp(-np.logaddexp(0, -a))
    ```
    """

    code = "GD502"
    name = "non-finite-output-at-large-inputs"
    category = "numerical-instability"
    severity = Severity.ERROR
    requires = ("large_inputs",)

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        runs = ctx.m("large_inputs")["runs"]
        if runs[0]["non_finite"]:
            return  # GD501 reports NaN/Inf on ordinary inputs
        for run in runs[1:]:
            if run.get("raised"):
                yield ctx.finding(
                    f"At inputs scaled {_scale(run['scale'])} (|x| up to {run['max_abs_x']:.3g}) "
                    f"the forward raised {run['raised']}, while ordinary inputs run fine",
                    _FP_HINT, evidence={"scale": run["scale"], "raised": run["raised"]},
                )
                return
            if run["non_finite"]:
                what, loc = _where(run["events"])
                at = run["first_non_finite"]
                yield ctx.finding(
                    f"At inputs scaled {_scale(run['scale'])} (|x| up to {run['max_abs_x']:.3g}) "
                    f"{run['non_finite']} of {run['size']} state values are NaN/Inf (first at "
                    f"step {at['t']}, unit {at['unit']}), while ordinary inputs give finite "
                    f"states" + (f"; {what}" if what else ""),
                    _FP_HINT, location=loc,
                    evidence={"scale": run["scale"], "non_finite": run["non_finite"],
                              "size": run["size"], "events": run["events"][:5],
                              "non_finite_by_scale": [r.get("non_finite", 0) for r in runs],
                              "scales": [r["scale"] for r in runs]},
                )
                return


def _grad_runs(ctx: CheckContext) -> list[dict]:
    runs = ctx.m("large_inputs")["runs"]
    g = runs[0].get("gradients")
    if g is None:
        raise SkipCheck("the forward did not produce finite states on ordinary inputs")
    if not g["available"]:
        raise SkipCheck(g["reason"])
    return runs


@register_check
class NonFiniteGradient(Check):
    """Gradients are NaN or Inf on ordinary inputs although the forward is finite.

    ## What it checks
    The gradients of sum(dh · h) (random dh) with respect to the inputs, h0 and every parameter,
    from autograd or the user's own backward, on the standard probe inputs (x ~ N(0, 1)).

    ## Why is this bad?
    One NaN gradient turns every parameter into NaN at the next optimizer step. With a finite
    forward this comes from the backward: a derivative written as a division (by a state that
    can be 0, or `exp(a)**2` that overflows), `sqrt`/`log` at 0, or `torch.where` whose unused
    branch is NaN (autograd multiplies its NaN gradient by 0 and still gets NaN).

    ## How it is detected
    Probe `large_inputs`, scale 1: any non-finite gradient entry is an error; the parameters
    that hold them are named. No threshold. Skipped when the subject offers no gradients.

    ## Example
    ```python
    h_new = torch.where(z > 0.5, torch.sqrt(h - 1), h)   # the unused branch's grad is NaN
    ```

    ## Use instead
    ```python
    h_new = torch.where(z > 0.5, torch.sqrt((h - 1).clamp_min(1e-12)), h)
    ```
    """

    code = "GD503"
    name = "non-finite-gradient"
    category = "numerical-instability"
    severity = Severity.ERROR
    requires = ("large_inputs",)

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        runs = _grad_runs(ctx)
        g = runs[0]["gradients"]
        if g["non_finite"]:
            names = ", ".join(f"{k} ({v})" for k, v in list(g["non_finite"].items())[:6])
            what, loc = _where(g.get("events", []))
            yield ctx.finding(
                f"Gradients from {g['source']} are NaN/Inf on ordinary inputs although the "
                f"states are finite: {sum(g['non_finite'].values())} of {g['size']} entries, in "
                f"{names}" + (f"; {what}" if what else ""),
                "Look for divisions, sqrt/log near 0 and torch.where with a NaN branch in the "
                "forward, or for an overflowing derivative in the backward",
                location=loc,
                evidence={"non_finite": g["non_finite"], "size": g["size"],
                          "source": g["source"]},
            )


@register_check
class NonFiniteGradientAtLargeInputs(Check):
    """Gradients become NaN or Inf on large inputs although the forward stays finite.

    ## What it checks
    The gradients of sum(dh · h) at inputs scaled ×30, ×300 and ×3000, for a subject whose
    gradients are finite at scale 1 and whose states stay finite at that scale.

    ## Why is this bad?
    The classic case is a sigmoid written as `1 / (1 + torch.exp(-a))`: for a < −88.72 in
    float32 (−709.78 in float64) `exp(-a)` is Inf, the forward still returns 0, but autograd's
    derivative is Inf/Inf = NaN, so one large input turns the whole model into NaN at the next
    step. `torch.sigmoid` and `np.exp(-np.logaddexp(0, -a))` have finite derivatives
    everywhere.

    ## How it is detected
    Probe `large_inputs`: any non-finite gradient entry at a scale whose states are finite
    (when scale 1 is clean) is an error; for torch the op that first returned Inf from finite
    inputs is named with its line. No threshold. Measured: `nn.GRUCell`, the reference GRU and
    `torch.sigmoid` cells have finite gradients at ×3000; `1 / (1 + torch.exp(-a))` gives NaN
    gradients at ×3000 in float64.

    ## Example
    ```python
    z = 1 / (1 + torch.exp(-(self.W_z(x) + self.U_z(h))))
    ```

    ## Use instead
    ```python
    z = torch.sigmoid(self.W_z(x) + self.U_z(h))
    ```
    """

    code = "GD504"
    name = "non-finite-gradient-at-large-inputs"
    category = "numerical-instability"
    severity = Severity.ERROR
    requires = ("large_inputs",)

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        runs = _grad_runs(ctx)
        if runs[0]["gradients"]["non_finite"]:
            return  # GD503
        for run in runs[1:]:
            g = run.get("gradients")
            if run.get("raised") or run["non_finite"] or not g or not g["available"]:
                continue
            if g["non_finite"]:
                names = ", ".join(f"{k} ({v})" for k, v in list(g["non_finite"].items())[:6])
                what, loc = _where(run["events"] + g.get("events", []))
                yield ctx.finding(
                    f"At inputs scaled {_scale(run['scale'])} (|x| up to {run['max_abs_x']:.3g}) "
                    f"the states are finite but {sum(g['non_finite'].values())} of {g['size']} "
                    f"gradient entries are NaN/Inf, in {names}" + (f"; {what}" if what else ""),
                    _FP_HINT, location=loc,
                    evidence={"scale": run["scale"], "non_finite": g["non_finite"],
                              "events": (run["events"] + g.get("events", []))[:5],
                              "scales": [r["scale"] for r in runs]},
                )
                return


@register_check
class FloatingPointOverflow(Check):
    """An activation overflows (floating-point warnings) although the results stay finite.

    ## What it checks
    NumPy RuntimeWarnings ("overflow encountered in exp", "invalid value encountered in
    divide", ...) and, for torch, ops that return Inf/NaN from finite inputs, while running the
    subject on ordinary inputs and on inputs scaled ×30, ×300 and ×3000, where neither the states
    nor the gradients become non-finite (those are GD501–GD504).

    ## Why is this bad?
    `1 / (1 + np.exp(-a))` overflows for a < −709.78 in float64 (−88.72 in float32). NumPy then
    returns the right value (0) with a RuntimeWarning, so training goes on, but logs fill with
    warnings, `np.seterr(all="raise")` turns them into crashes, and the same formula in torch
    has NaN gradients there (GD504). `np.where(a >= 0, 1/(1+np.exp(-a)), np.exp(a)/(1+np.exp(a)))`
    evaluates both branches and warns too.

    ## How it is detected
    Probe `large_inputs` records the warnings with the user's line. Warning when they already
    occur on ordinary inputs (pre-activations beyond ±709 from N(0, 1) inputs mean far too large
    weights); info when they occur only at large inputs. No threshold. Measured: the reference
    GRU (`np.exp(-np.logaddexp(0, -a))`), `np.tanh`, `scipy.special.expit` and torch's built-in
    activations emit nothing up to ×3000; the naive sigmoid warns at ×300 or ×3000 (info).

    ## Example
    ```python
    def sigmoid(a):
        return 1 / (1 + np.exp(-a))
    ```

    ## Use instead
    ```python
    def sigmoid(a):
        return np.exp(-np.logaddexp(0, -a))
    ```
    """

    code = "GD505"
    name = "floating-point-overflow"
    category = "numerical-instability"
    severity = Severity.WARNING
    requires = ("large_inputs",)

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        for run in ctx.m("large_inputs")["runs"]:
            if run.get("raised") or run["non_finite"]:
                return  # GD501 / GD502 report this scale (with the warnings)
            g = run.get("gradients") or {}
            if g.get("non_finite"):
                return  # GD503 / GD504
            events = run["events"] + g.get("events", [])
            if not events:
                continue
            what, loc = _where(events)
            count = sum(e.get("count", 1) for e in events)
            ordinary = run["scale"] == 1.0
            scale_text = "on ordinary inputs (x ~ N(0, 1))" if ordinary else (
                f"at inputs scaled {_scale(run['scale'])} (|x| up to {run['max_abs_x']:.3g})")
            yield ctx.finding(
                f"Floating-point overflow {scale_text}: {what} ({count} warning"
                f"{'' if count == 1 else 's'}); the states stay finite",
                _FP_HINT, location=loc,
                severity=Severity.WARNING if ordinary else Severity.INFO,
                evidence={"scale": run["scale"], "events": events[:5],
                          "scales": [r["scale"] for r in ctx.m("large_inputs")["runs"]]},
            )
            return
