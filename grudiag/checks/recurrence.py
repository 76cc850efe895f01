"""GD3xx: recurrence and state. Is the state carried, kept where it must not be, and used?

GD301–GD303 (`stale-hidden-state`): the state is not carried between steps, persists across
calls, or the caller's initial state is ignored. GD311–GD313 (`ignored-recurrence`): h_prev, or
the weights that should act on it, have no effect.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..model import Finding, Severity
from .base import Check, CheckContext, SkipCheck, register_check


_BACKWARD_NAME = re.compile(r"reverse|backward|bwd|_b\b|back", re.I)


def _steps(ts: list[int]) -> str:
    return ", ".join(str(t) for t in ts)


def _carry(ctx: CheckContext, min_ratio: float) -> dict[str, Any]:
    """Per step t ≥ 1: dependence of h_t on x_{t-1} (carried) and on x_t (direct)."""
    m = ctx.m("time-dependence")
    mat = m["matrix"]
    T = len(mat)
    carried = [float(mat[t][t - 1]) for t in range(1, T)]
    direct = [float(mat[t][t]) for t in range(1, T)]
    tiny = 1e-12 * m["scale"]
    missing = [t for t, c, d in zip(range(1, T), carried, direct)
               if d > tiny and c <= min_ratio * d]
    ratios = [c / d if d > tiny else None for c, d in zip(carried, direct)]
    return {"carried": carried, "direct": direct, "ratios": ratios, "missing": missing,
            "judged": sum(1 for d in direct if d > tiny), "T": T}


def _time_scrambled(ctx: CheckContext) -> bool:
    from .shapes import TimeCausalityViolated

    m = ctx.m("time-dependence")
    mat = m["matrix"]
    T = len(mat)
    upper = max((float(mat[t][s]) for t in range(T) for s in range(t + 1, T)), default=0.0)
    return upper > TimeCausalityViolated.thresholds["rel_tol"] * m["scale"]


def _r(v: float | None) -> float | None:
    return None if v is None else float(f"{v:.4g}")


@register_check
class StateNotCarried(Check):
    """A sequence model does not pass each step's state on to the next step.

    ## What it checks
    Causality of the state through time in a sequence model: the inputs of step s are replaced
    and the states of every step are compared (probe `time-dependence`). In a recurrent model
    h_t depends on x_{t-1} through h_{t-1}; the check compares that carried dependence with the
    direct dependence of h_t on x_t at every step t ≥ 1.

    ## Why is this bad?
    A loop that calls the cell with the initial state (or zeros) at every step,
    `h = self.cell(x[t], h0)`, turns the RNN into a per-step feed-forward network: nothing is
    remembered, the loss plateaus at what the current input alone explains, and no error is
    raised because every shape is right.

    ## How it is detected
    Ratio max |Δh_t| (x_{t-1} replaced) / max |Δh_t| (x_t replaced), per step, by finite
    replacement (no gradients needed). A ratio at or below `min_ratio` is a step where the state
    is not carried. Correct GRUs measure 0.22 to 0.77 (reset-after/-before, both update forms,
    PyTorch/Keras/Andrew Ng/split layouts, inits U(±0.05) to U(±2), hidden 7); the bug measures
    exactly 0 (the examples: 0 at all 5 steps). When h0 is accepted, the per-step dependence
    on h0 tells the two common forms apart: h0 passed to every step (h_T depends on h0 as much
    as h_1 does) or a fresh zero state at every step (no step depends on h0). Cells are
    skipped: grudiag runs their time loop itself (see GD311 for a cell that ignores h_prev).

    ## Example
    ```python
    for t in range(x.size(0)):
        h = self.cell(x[t], h0)          # every step starts from h0
        outputs.append(h)
    ```

    ## Use instead
    ```python
    h = h0
    for t in range(x.size(0)):
        h = self.cell(x[t], h)
        outputs.append(h)
    ```
    """

    code = "GD301"
    name = "state-not-carried"
    category = "stale-hidden-state"
    severity = Severity.ERROR
    requires = ("time-dependence",)
    thresholds = {"min_ratio": 1e-6}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        if not ctx.subject.is_sequence:
            raise SkipCheck("a cell: grudiag carries the state between its steps itself")
        if _time_scrambled(ctx):
            raise SkipCheck("the time axis is scrambled (GD105), so carrying cannot be judged")
        min_ratio = ctx.threshold("min_ratio")
        c = _carry(ctx, min_ratio)
        if not c["missing"]:
            return
        m = ctx.m("time-dependence")
        h0dep = m["h0_dependence"]
        evidence = {"carried": [_r(v) for v in c["carried"]],
                    "direct": [_r(v) for v in c["direct"]],
                    "ratios": [_r(v) for v in c["ratios"]], "steps_not_carried": c["missing"],
                    "h0_dependence": None if h0dep is None else [_r(float(v)) for v in h0dep],
                    "matrix": m["matrix"], "min_ratio": min_ratio}
        everywhere = len(c["missing"]) == c["judged"]
        if not everywhere:
            yield ctx.finding(
                f"The state is not carried into steps {_steps(c['missing'])} of {c['T'] - 1}: "
                f"there h_t does not depend on x_(t-1) at all, while it does at the other steps",
                "Pass the state returned by each step to the next step, at every step (look "
                "for a reset or a re-initialisation inside the time loop)",
                evidence=evidence,
            )
            return
        T = c["T"]
        if h0dep is not None and all(float(v) > 0 for v in h0dep):
            first, last = float(h0dep[0]), float(h0dep[-1])
            yield ctx.finding(
                f"Every step restarts from h0: h_t depends on h0 at every step (max |Δh| "
                f"{first:.3g} at step 0, {last:.3g} at step {T - 1}) but never on x_(t-1); the "
                f"state of one step is not passed to the next",
                "Pass the previous step's state to the cell: h = cell(x[t], h), not "
                "cell(x[t], h0)",
                evidence=evidence,
            )
            return
        also = " nor on h0" if h0dep is not None else ""
        yield ctx.finding(
            f"Each state h_t depends only on x_t: neither on x_(t-1) (at all {T - 1} steps)"
            f"{also}; either each step gets a fresh (zero) state or the cell ignores its state",
            "Initialise the state once before the time loop and pass each step's output state "
            "to the next step; make sure the cell uses h_prev",
            evidence=evidence,
        )


@register_check
class StatePersistsAcrossCalls(Check):
    """The subject keeps a state between calls, so one call leaks into the next.

    ## What it checks
    Determinism across calls on one copy of the subject: the same inputs twice; batch A then
    batch B compared with batch B on a fresh copy; and a call with another batch size after
    earlier calls (a stored `(B, H)` state no longer fits); where forward's h0 has a default,
    the same inputs twice without h0 (a model may reuse its last state only then). Two fresh
    copies must agree on their first call first; otherwise the subject is random (dropout in
    training mode, say) and the check is skipped.

    ## Why is this bad?
    A cell or model that stores its state on `self` (`self.h = h_new`, then reads `self.h`
    instead of its argument) silently continues the previous sequence: evaluation depends on
    what ran before, sequences of one batch leak into the next, and a batch of another size
    crashes. During training the stored tensor also keeps the whole previous graph alive.

    ## How it is detected
    Probe `call-state`. The largest difference (max |Δh|, relative to max |h|) of the repeated
    call or of the A-then-B call above `rel_tol` is an error, as is a call that fails only after
    earlier calls. Correct cells measure exactly 0 (they are pure functions of their
    arguments); a cell storing `self.h` measures 0.75 (0.48 / 0.65), a model storing its last
    `h_n` 0.54.

    ## Example
    ```python
    def forward(self, x, h_prev):
        if self.h is None:
            self.h = torch.zeros(x.size(0), self.hidden_size)
        self.h = self.step(x, self.h)          # ignores h_prev, remembers the last call
        return self.h
    ```

    ## Use instead
    ```python
    def forward(self, x, h_prev):
        return self.step(x, h_prev)            # the caller owns the state
    ```
    """

    code = "GD302"
    name = "state-persists-across-calls"
    category = "stale-hidden-state"
    severity = Severity.ERROR
    requires = ("call-state",)
    thresholds = {"rel_tol": 1e-9}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        m = ctx.m("call-state")
        tol = ctx.threshold("rel_tol")
        scale = m["scale"]
        if m["fresh_copies_diff"] > tol * scale:
            raise SkipCheck(
                f"the subject is random: two fresh copies give states that differ by "
                f"{m['fresh_copies_diff']:.3g} on the same first call (dropout in training mode?)")
        facts = []
        if m["repeat_diff"] > tol * scale:
            facts.append(f"calling the subject twice with the same inputs gives states that "
                         f"differ by {m['repeat_diff']:.3g} (max |h| {scale:.3g})")
        if m["leak_diff"] > tol * scale and not facts:
            facts.append(f"a batch run after another batch differs from the same batch on a "
                         f"fresh copy by {m['leak_diff']:.3g} (max |h| {scale:.3g})")
        ds = m.get("default_state") or {}
        if ds.get("ok") and ds["repeat_diff"] > tol * ds["scale"] and not facts:
            facts.append(f"calling the subject twice with the same inputs and no h0 (its "
                         f"default) gives states that differ by {ds['repeat_diff']:.3g} (max "
                         f"|h| {ds['scale']:.3g}), while calls with h0 agree")
        rs = m["resize"]
        location = None
        if rs.get("fresh_ok") and rs.get("ok") is False:
            facts.append(f"a call with batch {rs['batch']} after calls with batch "
                         f"{rs['after_batch']} fails ({rs.get('error', 'error')}) although it "
                         f"works on a fresh copy")
            loc = rs.get("location")
            if loc:
                from ..model import Location

                location = Location(loc["file"], loc.get("line"))
        elif rs.get("ok") and rs.get("diff", 0.0) > tol * scale and not facts:
            facts.append(f"a call with batch {rs['batch']} after earlier calls differs from a "
                         f"fresh copy by {rs['diff']:.3g}")
        if not facts:
            return
        rec = ctx.measurements.get("recurrence") or {}
        ignores = (not ctx.subject.is_sequence and rec.get("h_effect_max") == 0.0)
        why = ("; the cell ignores its h_prev argument and continues from a state it stored "
               "itself" if ignores else "; it keeps a state between calls")
        text = facts[0][0].upper() + facts[0][1:]
        if len(facts) > 1:
            text += "; " + "; ".join(facts[1:])
        yield ctx.finding(
            text + why,
            "Compute the new state only from the arguments and return it; do not store it on "
            "self (or reset it at the start of every sequence)",
            location=location,
            evidence={"repeat_diff": m["repeat_diff"], "repeat_diff_per_step":
                      m["repeat_diff_per_step"], "leak_diff": m["leak_diff"], "resize": rs,
                      "default_state": m.get("default_state"),
                      "fresh_copies_diff": m["fresh_copies_diff"], "scale": scale,
                      "rel_tol": tol, "h_prev_ignored": ignores},
        )


@register_check
class InitialStateIgnored(Check):
    """A sequence model accepts an initial state h0 but its states do not depend on it.

    ## What it checks
    For sequence models whose forward takes `h0`: the states are compared after replacing h0
    (probe `time-dependence`), while the model does carry its state from step to step.

    ## Why is this bad?
    A model that builds its own zero state (`h = torch.zeros(...)`) and ignores the h0 its
    caller passes breaks every use of an initial state: an encoder–decoder whose decoder never
    sees the encoder, truncated BPTT that restarts every chunk from zero, stateful inference.

    ## How it is detected
    Ratio max |Δh_0| (h0 replaced) / max |Δh_0| (x_0 replaced), the first step, at or below
    `min_ratio` is an error when h_t does depend on x_(t-1) (otherwise GD301 reports the state
    not being carried at all). Correct GRUs measure 0.26 to 5.5 (the conventions, layouts and
    inits listed for GD301); the bug measures exactly 0.

    ## Example
    ```python
    def forward(self, x, h0=None):
        h = torch.zeros(x.size(1), self.hidden_size)     # h0 is never used
    ```

    ## Use instead
    ```python
    def forward(self, x, h0=None):
        h = h0 if h0 is not None else x.new_zeros(x.size(1), self.hidden_size)
    ```
    """

    code = "GD303"
    name = "initial-state-ignored"
    category = "stale-hidden-state"
    severity = Severity.ERROR
    requires = ("time-dependence",)
    thresholds = {"min_ratio": 1e-6}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        if not ctx.subject.is_sequence:
            raise SkipCheck("a cell: its use of h_prev is checked by GD311")
        m = ctx.m("time-dependence")
        if m["h0_dependence"] is None:
            raise SkipCheck("the model takes no initial state")
        if _time_scrambled(ctx):
            raise SkipCheck("the time axis is scrambled (GD105)")
        min_ratio = ctx.threshold("min_ratio")
        c = _carry(ctx, min_ratio)
        if c["judged"] and len(c["missing"]) == c["judged"]:
            return  # GD301: no state is carried at all
        first_x = float(m["matrix"][0][0])
        first_h0 = float(m["h0_dependence"][0])
        if first_x <= 1e-12 * m["scale"] or first_h0 > min_ratio * first_x:
            return
        later = max(float(v) for v in m["h0_dependence"])
        yield ctx.finding(
            f"The initial state is ignored: replacing h0 changes no state (max |Δh| "
            f"{later:.3g} over {len(m['h0_dependence'])} steps) while replacing x_0 changes "
            f"the first state by {first_x:.3g}",
            "Start the time loop from the h0 argument; create a zero state only when h0 is None",
            evidence={"h0_dependence": [_r(float(v)) for v in m["h0_dependence"]],
                      "x0_dependence": _r(first_x), "min_ratio": min_ratio},
        )


def _unused_recurrent(rec: dict[str, Any], tol: float) -> list[dict[str, Any]]:
    """Recurrent-shaped parameters (or blocks of them) whose perturbation changes no state."""
    limit = tol * rec["params_scale"]
    found = []
    for name, p in rec["parameters"].items():
        if not p["recurrent_shaped"]:
            continue
        if p["effect"] <= limit:
            found.append({"name": name, "shape": p["shape"], "part": None})
            continue
        zero = [b for b in p.get("blocks", []) if b["effect"] <= limit]
        if not zero:
            continue
        # Merge contiguous zero column segments within each row segment.
        by_rows: dict[tuple, list[list[int]]] = {}
        for b in zero:
            cols = by_rows.setdefault(tuple(b["rows"]), [])
            if cols and cols[-1][1] == b["cols"][0]:
                cols[-1][1] = b["cols"][1]
            else:
                cols.append(list(b["cols"]))
        a, bdim = p["shape"]
        for (r0, r1), cols in by_rows.items():
            for c0, c1 in cols:
                rs = ":" if (r0, r1) == (0, a) else f"{r0}:{r1}"
                cs = ":" if (c0, c1) == (0, bdim) else f"{c0}:{c1}"
                found.append({"name": name, "shape": p["shape"], "part": f"[{rs}, {cs}]"})
    return found


def _h_ignored(ctx: CheckContext, rec: dict[str, Any], min_ratio: float) -> bool:
    """True when one step's output does not depend on h_prev at all."""
    if rec.get("h_effect_max") is None:
        return False
    ref = max(rec["x_effect_max"], rec["step_scale"])
    return rec["h_effect_max"] <= min_ratio * ref


@register_check
class HiddenStateIgnored(Check):
    """The cell's new state does not depend on h_prev at all.

    ## What it checks
    One step of the cell on fresh copies with the same x and two different h_prev: the
    largest change of the output, compared with the change when x is replaced instead.

    ## Why is this bad?
    A cell whose output ignores h_prev is not recurrent: each step sees only its own input. It
    happens when the state argument is shadowed (`h = torch.zeros_like(h)` inside forward), when
    a renamed variable leaves the old one in the equations, or when the recurrent matrices are
    applied to x. Shapes are all fine, so nothing crashes.

    ## How it is detected
    Probe `recurrence` (finite replacement, no gradients needed). max |Δh'| (h_prev replaced)
    at or below `min_ratio` × max(max |Δh'| (x replaced), max |h'|) is an error. Correct GRUs
    measure 0.37 to 1.8 (h_prev ~ U(±0.5) replaced; conventions, layouts and inits as for
    GD301); the bug measures exactly 0. A cell that
    ignores its argument but carries a state stored on `self` is reported by GD302 instead.
    Sequence models are judged by GD301/GD303.

    ## Example
    ```python
    def forward(self, x, h_prev):
        h_prev = torch.zeros(x.size(0), self.hidden_size)   # "initialise" the state here
    ```

    ## Use instead
    ```python
    def forward(self, x, h_prev):                            # initialise it once, in the caller
    ```
    """

    code = "GD311"
    name = "hidden-state-ignored"
    category = "ignored-recurrence"
    severity = Severity.ERROR
    requires = ("recurrence", "time-dependence")
    thresholds = {"min_ratio": 1e-6, "unused_rel_tol": 1e-8}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        if ctx.subject.is_sequence:
            raise SkipCheck("a sequence model: a missing recurrence is reported by GD301/GD303")
        rec = ctx.m("recurrence")
        if rec.get("h_effect_max") is None:
            raise SkipCheck("the subject takes no previous state")
        min_ratio = ctx.threshold("min_ratio")
        if not _h_ignored(ctx, rec, min_ratio):
            return
        c = _carry(ctx, min_ratio)
        if c["judged"] and len(c["missing"]) < c["judged"]:
            return  # the state is carried some other way (stored on self): GD302
        unused = [u["name"] for u in _unused_recurrent(rec, ctx.threshold("unused_rel_tol"))
                  if u["part"] is None]
        names = f"; the recurrent weights {', '.join(unused)} have no effect" if unused else ""
        yield ctx.finding(
            f"The new state does not depend on h_prev: replacing h_prev changes the output by "
            f"{rec['h_effect_max']:.3g}, replacing x changes it by {rec['x_effect_max']:.3g}"
            f"{names}",
            "Use the h_prev argument in the gates and the candidate (U·h_prev terms) and do not "
            "overwrite it inside the cell",
            evidence={"h_effect": rec["h_effect"], "x_effect": rec["x_effect"],
                      "unused_recurrent_weights": unused, "min_ratio": min_ratio},
        )


@register_check
class NoRecurrentMixing(Check):
    """h_prev reaches the new state only elementwise: no recurrent weight mixes hidden units.

    ## What it checks
    The Jacobian ∂h'/∂h_prev of one step, by central finite differences (step 1e-3) on fresh
    copies, for a batch of 3 at standard inputs: whether any off-diagonal entry is non-zero.

    ## Why is this bad?
    In a GRU, U_z h, U_r h and U_n (r ⊙ h) let each unit read every other unit. A diagonal
    Jacobian means only the `z ⊙ h` carry path survives: the gates and the candidate are
    computed from x alone (the recurrent matrices are unused, applied to x, or multiplied
    elementwise), so the state can store but never combine information.

    ## How it is detected
    Probe `recurrence`. Largest off-diagonal |∂h'_i/∂h_j| / largest diagonal entry at or below
    `max_offdiag_ratio` is reported. Like GD313 it is measured at a generic point (the
    parameters plus N(0, (0.5/√H)²) noise), so zero-initialised U (a zero-init-symmetry bug, not
    a structural one) is not reported here. Correct GRUs measure 0.03 to 1.6 (conventions,
    layouts and inits as for GD301); gates and candidate without U measure exactly 0.
    Elementwise recurrences by design (minGRU, IndRNN, SRU) measure 0 too, hence a warning.

    ## Example
    ```python
    z = torch.sigmoid(self.W_z(x))
    n = torch.tanh(self.W_n(x))
    h_new = (1 - z) * n + z * h_prev
    ```

    ## Use instead
    ```python
    z = torch.sigmoid(self.W_z(x) + self.U_z(h_prev))
    n = torch.tanh(self.W_n(x) + self.U_n(r * h_prev))
    ```
    """

    code = "GD312"
    name = "no-recurrent-mixing"
    category = "ignored-recurrence"
    severity = Severity.WARNING
    requires = ("recurrence",)
    thresholds = {"max_offdiag_ratio": 1e-6}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        rec = ctx.m("recurrence")
        if rec.get("jacobian_diag_max") is None:
            raise SkipCheck("the model takes no initial state, so ∂h'/∂h_prev cannot be "
                            "measured")
        if ctx.subject.hidden_size < 2:
            raise SkipCheck("a single hidden unit has nothing to mix")
        diag, off = rec["jacobian_diag_max"], rec["jacobian_offdiag_max"]
        if diag <= 1e-12 or _h_ignored(ctx, rec, 1e-6):
            return  # h_prev has no effect at all: GD311/GD301
        limit = ctx.threshold("max_offdiag_ratio")
        if off > limit * diag:
            return
        yield ctx.finding(
            f"The previous state passes only elementwise: ∂h'/∂h_prev is diagonal (largest "
            f"off-diagonal entry {off:.3g}, largest diagonal entry {diag:.3g}), so no recurrent "
            f"weight mixes hidden units",
            "Add the recurrent terms U·h_prev to the update gate, the reset gate and the "
            "candidate; ignore this if an elementwise recurrence (minGRU, IndRNN) is intended",
            evidence={"offdiag_max": off, "diag_max": diag, "max_offdiag_ratio": limit,
                      "jacobian_abs": rec.get("jacobian_abs_sample0")},
        )


@register_check
class RecurrentWeightUnused(Check):
    """A recurrent weight (or one gate block of it) has no effect, so it gets no gradient.

    ## What it checks
    Every parameter shaped like a recurrent weight (one axis a multiple of hidden_size, the
    other a multiple of hidden_size or hidden_size + input_size: `U_z`, `weight_hh`, Keras
    `recurrent_kernel`, a concatenated `[h, x]` weight) is perturbed on a copy, whole and then
    block by block (each gate block of a fused weight, each column of a concatenated one), and
    the states of a 3-step run from a non-zero h0 are compared. Autograd's gradients are
    recorded alongside when the subject has them.

    ## Why is this bad?
    A weight that changes nothing receives exactly zero gradient and never trains. The usual
    cause is a typo in the gate equations (`W_z @ x + W_z @ h`, `U_z` defined but the gate
    written from x only), or a slice of a fused weight that is never read.

    ## How it is detected
    Probe `recurrence` (parameter perturbation, N(0, max(std, 0.2)); works without gradients).
    It is measured at a generic point (every parameter plus N(0, (0.5/√H)²) noise): a weight
    whose effect only vanishes because another weight is zero (U_r when U_n is zero-initialised)
    is a zero-init-symmetry bug, not an unused weight. A change of the states at or below
    `rel_tol` × max |h| marks the weight (or block) unused. Used weights and blocks of correct
    GRUs measure 3e-3 to 1.2 relative (conventions, layouts and inits as for GD301); unused ones
    measure exactly 0. Every weight of every standard GRU convention is used.

    ## Example
    ```python
    z = sigmoid(x @ self.W_z + self.b_z)          # U_z exists but is never used
    ```

    ## Use instead
    ```python
    z = sigmoid(x @ self.W_z + h_prev @ self.U_z + self.b_z)
    ```
    """

    code = "GD313"
    name = "recurrent-weight-unused"
    category = "ignored-recurrence"
    severity = Severity.ERROR
    requires = ("recurrence", "time-dependence")
    thresholds = {"rel_tol": 1e-8}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        rec = ctx.m("recurrence")
        if not any(p["recurrent_shaped"] for p in rec["parameters"].values()):
            raise SkipCheck("no parameter is shaped like a recurrent weight")
        if _h_ignored(ctx, rec, 1e-6) and not ctx.subject.is_sequence:
            return  # GD311 names the weights
        if ctx.subject.is_sequence and not _time_scrambled(ctx):
            c = _carry(ctx, 1e-6)
            if c["judged"] and len(c["missing"]) == c["judged"]:
                return  # GD301: no state reaches any step
        unused = _unused_recurrent(rec, ctx.threshold("rel_tol"))
        width = getattr(ctx.subject, "output_width", 0) or ctx.subject.hidden_size
        if width > ctx.subject.hidden_size:
            # Only the forward direction's states are compared: the backward direction's
            # weights cannot change them.
            unused = [u for u in unused if not _BACKWARD_NAME.search(u["name"])]
        if not unused:
            return
        auto = rec.get("autograd") or {}
        no_grad = set(auto.get("none", [])) | set(auto.get("zero", []))
        parts = [u["name"] + (u["part"] or "") for u in unused]
        grad_note = ""
        if any(u["name"] in no_grad for u in unused):
            grad_note = "; autograd gives " + ", ".join(
                sorted({u["name"] for u in unused if u["name"] in no_grad})) + " no gradient"
        elif auto.get("none") is not None:
            grad_note = "; they receive exactly zero gradient"
        locs = ctx.subject.parameter_locations()
        yield ctx.finding(
            f"Recurrent weights have no effect on the states: {', '.join(parts)} (perturbing "
            f"them changes no state){grad_note}; they never train",
            "Use every recurrent weight on h_prev in its gate: z and r need U·h_prev terms as "
            "well as W·x",
            location=locs.get(unused[0]["name"]),
            evidence={"unused": unused, "rel_tol": ctx.threshold("rel_tol"),
                      "autograd": auto or None,
                      "effects": {n: _r(p["effect"] / rec["params_scale"])
                                  for n, p in rec["parameters"].items()}},
        )
