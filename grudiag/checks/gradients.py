"""GD4xx: gradients. Wrong backward passes, cut graphs, exploding and vanishing gradient flow."""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from ..model import Finding, Severity
from .base import Check, CheckContext, SkipCheck, register_check


def _fmt(x: float) -> str:
    if x is None:
        return "n/a"
    if x == 0:
        return "0"
    ax = abs(x)
    return f"{x:.2g}" if (ax < 1e-2 or ax >= 1e4) else f"{x:.3g}"


def _failing(scenario: dict[str, Any], rtol: float, atol: float,
             judged: set[str] | None) -> list[dict[str, Any]]:
    out = []
    for b in scenario["blocks"]:
        if judged is not None and b["group"] not in judged:
            continue
        if b["rel_error"] > rtol and b["abs_error"] > atol:
            out.append(b)
    return sorted(out, key=lambda b: -b["rel_error"])


def _flow_cut(flow: dict[str, Any]) -> bool:
    """Whether the subject's gradient through time is ~0 somewhere finite differences are not
    (GD402's default thresholds)."""
    pairs = list(zip(flow["autograd"], flow["numeric"]))
    if flow.get("h0_numeric") is not None:
        pairs.append((flow["h0_autograd"], flow["h0_numeric"]))
    floor = max(1e-6 * max(abs(n) for _, n in pairs), 1e-7)
    return any(abs(n) > floor and abs(a) <= 1e-3 * abs(n) for a, n in pairs)


def _factor_note(b: dict[str, Any]) -> str:
    """'off by a factor -1' when the bad entries share one analytic/numeric ratio."""
    ratio, spread = b.get("ratio_median"), b.get("ratio_spread")
    if ratio is None or spread is None or spread > 1e-3 * max(1.0, abs(ratio)):
        return ""
    if abs(ratio) < 1e-9:
        return "; the backward gives 0 where it should not"
    if abs(ratio + 1) < 1e-3:
        return "; its sign is flipped"
    return f"; it is {_fmt(ratio)}× the true value"


@register_check
class BackwardDisagreesWithFiniteDifferences(Check):
    """A hand-written backward (or a custom autograd.Function) returns wrong gradients.

    ## What it checks
    Compares the gradients the subject offers — its own backward (NumPy class `backward`, a
    forward/backward function pair) or autograd through a custom `torch.autograd.Function` —
    with central finite differences of the forward pass, in float64, for ONE step (T=1) and a
    SHORT UNROLL (T=3), for every input group: the inputs (`dx`), the previous state
    (`dh_prev`) and each parameter (`dW_hz`, ...). For torch modules made of standard ops only,
    autograd is correct by construction; there only the parameter gradients of one step are
    judged (a `.detach()`/`.data` on a weight), and a cut through time is GD402's business.

    ## Why is this bad?
    Gradient descent follows whatever the backward returns. A forgotten `(1 - z)` factor, a
    missing sigmoid derivative `s * (1 - s)` or a flipped sign makes training slow, unstable or
    go the wrong way, while the loss still goes down a little, so the bug survives for weeks.

    ## How it is detected
    Probe `gradient_check`. Objective f = Σ dhs·h_t with private random dhs. For each group a
    private random unit direction u gives the analytic ⟨∇f, u⟩ and the numeric
    (f(θ+εu) − f(θ−εu)) / 2ε with ε = 1e-6 (gradcheck's fast mode: the cost does not grow with
    the parameter count). A group fails when its relative error |a − n| / max(|a|, |n|) exceeds
    `rtol` = 1e-5 and |a − n| exceeds `atol` = 1e-7. The worst failing parameter block and the
    worst of dx / dh_prev (up to 400 entries each) are then compared entry by entry to name
    the worst entry and the rows involved.
    Measured: a correct float64 GRU (reference NumPy backward, autograd, all conventions)
    agrees to 1e-11–1e-7 (absolute errors ≤ 1e-9); the gallery's bugs give 0.01–2: a dropped
    ∂h/∂z = h̃ − h factor 0.59–1.6 on `dWz`/`dUz`/`dbz`, a missing sigmoid derivative in a
    custom Function 0.01–1.3 (`dweight_hh` … `dx`), a flipped sign exactly 2 on `dU_n`.
    Skipped for subjects without gradients, non-deterministic forwards and float32-only
    subjects (finite differences there are accurate to ~1e-3 only).

    ## Example
    ```python
    da_z = dz                       # forgot the sigmoid derivative
    dn = dh * z                     # forgot that h' = (1 - z) * n + z * h
    ```

    ## Use instead
    ```python
    da_z = dz * z * (1 - z)
    dn = dh * (1 - z)
    ```
    """

    code = "GD401"
    name = "backward-disagrees-with-finite-differences"
    category = "wrong-gradient"
    severity = Severity.ERROR
    requires = ("gradient_check",)
    thresholds = {"rtol": 1e-5, "atol": 1e-7}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        m = ctx.m("gradient_check")
        rtol, atol = ctx.threshold("rtol"), ctx.threshold("atol")
        customs = m.get("custom_functions")
        plain_autograd = m["source"] == "autograd" and not customs
        one = _failing(m["one_step"], rtol, atol, {"param"} if plain_autograd else None)
        unroll = _failing(m["unroll"], rtol, atol, set() if plain_autograd else None)
        if not one and not unroll:
            return
        flow = ctx.measurements.get("gradient_flow")
        if not one and flow is not None and _flow_cut(flow):
            return  # one step is right and the flow through time is cut: GD402 reports it
        T = m["unroll"]["T"]
        worst = one[0] if one else unroll[0]
        names = list(dict.fromkeys(b["label"] for b in one + unroll))
        if one:
            where = f"at one step{' and in a ' + str(T) + '-step unroll' if unroll else ''}"
        else:
            where = (f"only in a {T}-step unroll (one step agrees, so the gradient carried "
                     "from step to step is wrong)")
        source = {"user-backward": "the backward", "autograd": "autograd"}.get(m["source"],
                                                                             "the gradient")
        if customs:
            source = f"the custom autograd.Function {', '.join(customs)}"
        detail = ""
        if "worst_index" in worst:
            idx = ", ".join(str(i) for i in worst["worst_index"])
            detail = (f"; worst entry [{idx}]: {_fmt(worst['worst_analytic'])} vs "
                      f"{_fmt(worst['worst_numeric'])} numerically, {worst['bad_entries']} of "
                      f"{worst['entries']} entries wrong")
            if worst.get("bad_rows"):
                rows = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in worst["bad_rows"])
                detail += f" (rows {rows})"
        others = f"; also wrong: {', '.join(names[1:6])}" if len(names) > 1 else ""
        message = (f"{source[0].upper() + source[1:]} disagrees with finite differences "
                   f"{where}: {worst['label']} has relative error {_fmt(worst['rel_error'])} "
                   f"(tolerance {_fmt(rtol)}){_factor_note(worst)}{detail}{others}")
        hint = ("Re-derive the backward of " + worst["label"] + ": check every (1 - z) / z "
                "factor of the update, the sigmoid derivative s*(1-s), tanh's 1-n**2 and the "
                "signs; compare against grudiag.reference.numpy_gru.backward")
        if not one:
            hint = ("Check how the gradient is carried between steps: dh_prev of step t must "
                    "be added to the incoming dh of step t-1, and parameter gradients summed "
                    "over steps")
        if plain_autograd:  # autograd of standard ops is exact: only a cut graph disagrees
            hint = (f"Autograd of standard ops is exact, so the graph is cut between "
                    f"{worst['label'][1:]} and the state: look for .detach(), .data, .item() "
                    "or a NumPy round trip on that weight or on the new state")

        def block_ev(b: dict[str, Any]) -> dict[str, Any]:
            keys = ("label", "rel_error", "analytic", "numeric", "worst_index", "worst_analytic",
                    "worst_numeric", "bad_entries", "entries", "bad_rows", "ratio_median")
            return {k: b[k] for k in keys if k in b}

        yield ctx.finding(message, hint, evidence={
            "source": m["source"], "custom_functions": customs, "rtol": rtol, "atol": atol,
            "eps": m["eps"], "failing_block": worst["label"],
            "relative_error": worst["rel_error"],
            "one_step_failing": [b["label"] for b in one],
            "unroll_failing": [b["label"] for b in unroll],
            "unroll_steps": T,
            "blocks": [block_ev(b) for b in (one + unroll)][:12],
            "max_rel_error_passing": max([b["rel_error"] for s in ("one_step", "unroll")
                                          for b in m[s]["blocks"]
                                          if b not in one and b not in unroll] or [0.0]),
        })


@register_check
class GradientCutInTimeLoop(Check):
    """Backpropagation through time is cut inside the time loop: gradients stop after a few steps.

    ## What it checks
    For subjects differentiated by autograd, and sequence models with their own backward
    (BPTT written by hand): does the gradient of the last state h_T reach every earlier input
    x_t (and h0)? The subject's ∂(v·h_T)/∂x_t is compared with finite
    differences of the forward pass for every t, scanning back from t = T−1; the first step
    where autograd gives (nearly) zero while finite differences do not is where the flow stops.

    ## Why is this bad?
    `h = h.detach()`, `h.data`, `torch.tensor(h.numpy())` or `.item()` inside the loop make the
    forward pass correct but cut backpropagation through time: the cell learns only from the
    last step and can never learn a dependency longer than the cut, silently.

    ## How it is detected
    Probe `gradient_flow`: T = the `time` option (default 6, at least 4, at most 16),
    L = v·h_T with v a private random unit vector, one autograd backward pass for ∂L/∂x_t
    (all t) and ∂L/∂h0, each projected on a private random unit direction, against float64
    central differences (ε = 1e-6). A step is cut when |autograd| ≤ `cut_ratio` (1e-3) ×
    |finite differences| while the finite
    difference is not negligible (above 1e-6 of the largest one and above `atol` = 1e-7). For
    modules made of standard ops only, a disagreement |a − n| > `rtol`·max(|a|, |n|) + `atol`
    (rtol = 1e-5) is also a cut (one path detached, e.g. `z * h.detach()`); with a custom
    autograd.Function or a hand-written sequence backward, disagreements are GD401's.
    NumPy sequence subjects with their own backward are checked the same way (a BPTT loop that
    drops the gradient carried from later steps, `dh = dhs[t]` instead of `dhs[t] + dh_next`,
    is a truncation); single cells whose backward grudiag chains over time are skipped.
    Measured: correct autograd GRUs agree to ~1e-9 at every step (|FD| of ∂L/∂x_0 ~1e-2);
    `h = h.detach()` at the top of the step gives exactly 0 from x_{T−2} back; an h0-only cut
    is reported as a warning (detaching h0 is legitimate between truncated-BPTT chunks, a bug
    when h0 comes from an encoder).

    ## Example
    ```python
    def forward(self, x, h):
        h = h.detach()              # "to save memory"
        ...
    ```

    ## Use instead
    ```python
    def forward(self, x, h):
        ...                         # keep the graph; detach between batches in the training loop
    ```
    """

    code = "GD402"
    name = "gradient-cut-in-time-loop"
    category = "truncated-bptt"
    severity = Severity.ERROR
    requires = ("gradient_flow",)
    thresholds = {"cut_ratio": 1e-3, "rtol": 1e-5, "atol": 1e-7}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        m = ctx.m("gradient_flow")
        cut_ratio, rtol = ctx.threshold("cut_ratio"), ctx.threshold("rtol")
        atol = ctx.threshold("atol")
        plain = m.get("source") == "autograd" and not m.get("custom_functions")
        T = m["T"]
        values = [abs(n) for n in m["numeric"]]
        if m["h0_numeric"] is not None:
            values.append(abs(m["h0_numeric"]))
        floor = max(1e-6 * max(values + [0.0]), atol)

        def bad(a: float, n: float) -> str | None:
            if abs(n) <= floor:
                return None
            if abs(a) <= cut_ratio * abs(n):
                return "cut"
            if plain and abs(a - n) > rtol * max(abs(a), abs(n)) + atol:
                return "partial"
            return None

        status = [bad(a, n) for a, n in zip(m["autograd"], m["numeric"])]
        h0_status = (bad(m["h0_autograd"], m["h0_numeric"])
                     if m["h0_numeric"] is not None else None)
        first = next((t for t in reversed(range(T)) if status[t]), None)
        evidence = {"T": T, "autograd": m["autograd"], "numeric": m["numeric"],
                    "rel_error": m["rel_error"], "h0_autograd": m["h0_autograd"],
                    "h0_numeric": m["h0_numeric"], "cut_ratio": cut_ratio, "rtol": rtol,
                    "stop_step": first, "h0_status": h0_status,
                    "steps_back": None if first is None else T - 1 - first}
        if first is None and h0_status is None:
            return
        if first is None:
            source = "Autograd" if m.get("source") == "autograd" else "The backward"
            yield ctx.finding(
                f"{source} gives no gradient to the initial state h0 "
                f"(∂L/∂h0 ≈ {_fmt(m['h0_autograd'])} vs {_fmt(m['h0_numeric'])} by finite "
                f"differences) although every input x_t receives it correctly",
                "If h0 comes from another network (an encoder), do not detach it inside the "
                "model; detach the carried state in the training loop instead",
                severity=Severity.WARNING, evidence=evidence)
            return
        kind = status[first]
        back = T - 1 - first
        who = "autograd's" if m.get("source") == "autograd" else "the backward's"
        yield ctx.finding(
            f"Backpropagation through time stops after {back} step{'s' if back != 1 else ''}: "
            f"{who} ∂h_{T}/∂x_{first + 1} is {_fmt(m['autograd'][first])} where finite "
            f"differences give {_fmt(m['numeric'][first])}, so the last state h_{T} sends no "
            f"correct gradient to inputs x_1..x_{first + 1}"
            + ("; only part of the path is detached" if kind == "partial" else ""),
            "Remove .detach(), .data, .item() and NumPy round trips on the state inside the "
            "time loop; detach the carried state between batches in the training loop instead",
            evidence=evidence)


def _norm_series(m: dict[str, Any]) -> list[float]:
    return [float(x) for x in m["grad_norms"]]


@register_check
class GradientExplodesThroughTime(Check):
    """The gradient norm grows geometrically as it flows back through time.

    ## What it checks
    Along a 30-step trajectory, the norm ‖∂L/∂h_t‖ (L = v·h_T, v a random unit vector) from one
    exact backward pass through the measured one-step Jacobians ∂h_t/∂h_{t−1}, and the
    singular values of those Jacobians.

    ## Why is this bad?
    A GRU's state update is a convex blend `(1 − z)·n + z·h`, which keeps the Jacobian's
    singular values near or below 1. A cell whose gradient grows at every step backwards
    (a state that accumulates `h + n`, a blend weight above 1, huge recurrent weights) gives
    gradients that blow up with the sequence length: training diverges or needs clipping.

    ## How it is detected
    Probe `jacobian_spectrum` (x ~ N(0, 1), h0 ~ U(−0.5, 0.5), batch 3, T = 30, Jacobians by
    float64 central differences, so a wrong backward cannot distort it). Flags when the
    geometric-mean per-step growth (‖∂L/∂h_0‖)^(1/T) exceeds `max_growth_per_step` = 1.02
    (×1.8 over 30 steps) and, where the spectrum is measured, the top singular value exceeds 1
    on at least `min_fraction_sigma_above_1` = 0.9 of the steps.
    Measured on correct GRUs (PyTorch, Cho, Chung update forms; inits U(±0.1)…U(±1)):
    per-step rate 0.50–0.81 and median σ_max 0.55–1.15; even U(±5) stays ≤ 1.06. An
    accumulating cell `h + (1 − z)·n` measures 1.03–1.12 with σ_max > 1 on every step; the
    gallery's blend with `(1 + z)·h` measures ~1.8 (×1e7 over 30 steps).

    ## Example
    ```python
    h_new = (1 - z) * n + h          # the state accumulates: no convex blend
    ```

    ## Use instead
    ```python
    h_new = (1 - z) * n + z * h
    ```
    """

    code = "GD403"
    name = "gradient-explodes-through-time"
    category = "exploding-gradients"
    severity = Severity.WARNING
    requires = ("jacobian_spectrum",)
    thresholds = {"max_growth_per_step": 1.02, "min_fraction_sigma_above_1": 0.9}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        m = ctx.m("jacobian_spectrum")
        rate = m["rate"]
        frac = m.get("fraction_sigma_above_1")
        if rate <= ctx.threshold("max_growth_per_step"):
            return
        if frac is not None and frac < ctx.threshold("min_fraction_sigma_above_1"):
            return
        steps = len(m["grad_norms"]) - 1
        spectrum = ""
        if m.get("sigma_max_median") is not None:
            spectrum = (f"; the one-step Jacobian's top singular value is "
                        f"{_fmt(m['sigma_max_median'])} (median), above 1 on "
                        f"{frac:.0%} of steps")
        yield ctx.finding(
            f"The gradient norm grows by ×{_fmt(rate)} per step backwards through time: "
            f"‖∂L/∂h_0‖ is {_fmt(m['total_change'])}× ‖∂L/∂h_{steps}‖ over {steps} steps"
            f"{spectrum}",
            "Make the state update a convex blend (1 - z) * n + z * h with z from a sigmoid, "
            "initialise recurrent weights at scale 1/sqrt(hidden_size) or orthogonal, and clip "
            "gradients in training",
            evidence=_evidence(m, ctx, ("max_growth_per_step", "min_fraction_sigma_above_1")))


@register_check
class GradientVanishesWithinFewSteps(Check):
    """The gradient through time dies within a few steps: the cell cannot learn memory.

    ## What it checks
    Along a 30-step trajectory, how many steps back ‖∂L/∂h_t‖ (L = v·h_T) stays above 1e-3 of
    its value at T (the effective memory horizon), from one exact backward pass through the
    measured one-step Jacobians ∂h_t/∂h_{t−1}.

    ## Why is this bad?
    A GRU exists to carry gradients over many steps: its update gate can pass the state through
    almost unchanged. A cell that multiplies the state by a small constant, or whose update
    gate is saturated so the state is always replaced while the recurrent weights are tiny,
    forgets everything within a couple of steps, and no amount of training fixes it.

    ## How it is detected
    Probe `jacobian_spectrum` (T = 30, batch 3, Jacobians by float64 central differences).
    Flags when the horizon is below `min_horizon_steps` = 5 steps: the measured `horizon_1e3`,
    or the one the geometric per-step rate implies when shorter (a decay faster than ×0.25
    per step). Measured on correct GRUs (PyTorch, Cho, Chung update forms; inits
    U(±0.1)…U(±1)): per-step rate 0.50–0.81, horizon 10–30+ steps (the update gate near
    0.5 alone passes half the gradient per step). A cell with `0.1 * h` measures rate ~0.06
    (horizon 3); an update gate saturated at "replace" with tiny recurrent weights ~0.01
    (horizon 2). When the state has no effect at all (Jacobian ≡ 0) the check is skipped:
    that is ignored recurrence, not a decay.

    ## Example
    ```python
    h_new = (1 - z) * n + z * (0.1 * h)    # "damping" the state
    ```

    ## Use instead
    ```python
    h_new = (1 - z) * n + z * h
    ```
    """

    code = "GD404"
    name = "gradient-vanishes-within-few-steps"
    category = "vanishing-gradients"
    severity = Severity.WARNING
    requires = ("jacobian_spectrum",)
    thresholds = {"min_horizon_steps": 5}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        m = ctx.m("jacobian_spectrum")
        if m.get("jacobian_zero"):
            raise SkipCheck("the previous state has no effect on the next state, so there is "
                            "no gradient flow through time to measure (see ignored-recurrence)")
        limit = ctx.threshold("min_horizon_steps")
        horizon = _steps_to_1e3(m["horizon_1e3"], m["rate"])
        if horizon is None or horizon >= limit:
            return
        steps = len(m["grad_norms"]) - 1
        spectrum = ""
        if m.get("sigma_max_median") is not None:
            spectrum = (f"; the one-step Jacobian's top singular value is only "
                        f"{_fmt(m['sigma_max_median'])} (median)")
        yield ctx.finding(
            f"The gradient through time vanishes: ‖∂L/∂h_t‖ shrinks by ×{_fmt(m['rate'])} per "
            f"step and falls below 1e-3 within {horizon} step{'s' if horizon != 1 else ''} "
            f"(a correct GRU keeps 10 or more; measured over {steps} steps){spectrum}",
            "Keep the state update a plain convex blend (1 - z) * n + z * h without scaling h; "
            "check the update-gate bias and recurrent-weight initialisation (scale "
            "1/sqrt(hidden_size))",
            evidence=_evidence(m, ctx, ("min_horizon_steps",)))


def _steps_to_1e3(measured: int | None, rate: float) -> int | None:
    """Steps until the gradient falls below 1e-3: the measured horizon, or the one the
    geometric per-step rate implies when that is shorter (the measured one depends on where a
    random loss direction happens to start, so it is noisy by a step near the threshold)."""
    implied = math.ceil(math.log(1e-3) / math.log(rate) - 1e-9) if 0 < rate < 1 else None
    known = [h for h in (measured, implied) if h is not None]
    return min(known) if known else None


def _evidence(m: dict[str, Any], ctx: CheckContext, names: tuple[str, ...]) -> dict[str, Any]:
    keys = ("method", "loss", "T", "tracked_directions", "rate", "total_change", "horizon_1e3",
            "horizon_e", "grad_norms", "sigma_max", "sigma_min", "sigma_max_median",
            "sigma_max_max", "fraction_sigma_above_1", "mean_spectrum", "max_abs_state")
    ev = {k: m.get(k) for k in keys}
    ev["thresholds"] = {n: ctx.threshold(n) for n in names}
    return ev
