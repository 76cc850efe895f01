"""GD2xx: gate maths and conventions. Which GRU the subject is, and known equation mistakes.

All checks here read probe `conventions` (grudiag/reference/identify.py does the search): the
subject's parameters are mapped onto the canonical 12 GRU parameters by shape, and the subject
is compared with the float64 reference on copies with random parameters and with its own.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from ..model import Finding, Severity
from .base import Check, CheckContext, SkipCheck, register_check

_SEARCH_DOC = """
    Probe `conventions`. The parameters are classified by shape into input, recurrent and
    concatenated weight blocks (either orientation, fused blocks split into gates of H rows)
    and bias blocks of H entries. A bounded search then runs on copies of the subject with
    random parameters (so zero biases or a diagonal W_hn cannot hide reset-after vs
    reset-before): at h = 0 with zero biases the input blocks' roles (6 permutations), at
    h ≠ 0 the recurrent blocks, their orientation and the family, then each bias block alone.
    A candidate is accepted when the subject agrees with it to max |Δh| ≤ 2e-5 (the search
    tolerance, loose enough for float32 cells) with all random parameters AND with the
    subject's own parameters, at non-zero h. About ten subject calls and a few hundred
    reference steps in all.
"""


def _variant_phrase(m: dict[str, Any]) -> str:
    order = "" if m["gate_order"] == "one parameter per gate" else f"gate order {m['gate_order']}, "
    return (f"{m['label']}, {m['update_form']}, {order}"
            f"{m['arrangement']}, {m['orientation']}, {m['biases']}")


@register_check
class GruConventionIdentified(Check):
    """Reports which correct GRU variant the subject implements and how its weights map.

    ## What it checks
    Identifies the GRU convention of the subject: the family (reset-after as in PyTorch, cuDNN
    and Keras reset_after=True, or reset-before as in Cho et al. 2014, Keras reset_after=False,
    TF1 and Andrew Ng), the update form ((1-z)·n + z·h or (1-z)·h + z·n), the gate order of
    fused weights, fused or split or concatenated [h, x] weights, `W x` or `x W`, and one or
    two biases. It is information, never a defect: every one of these conventions is correct.

    ## Why is this bad?
    It is not. Knowing the convention tells you which reference your cell must be compared
    with, and how to load weights from another framework (the two families cannot be converted
    into each other; gru_formulations.md §3.3).

    ## How it is detected
    {search}
    Threshold `exact_atol` (1e-9): below it the match is reported as exact; a correct float64
    cell measures 1e-16 to 4e-16 (nn.GRUCell: 2.2e-16), a float32 cell about 1e-7.

    ## Example
    ```python
    n = torch.tanh(i_n + r * h_n)          # reset-after, like nn.GRUCell
    return (1 - z) * n + z * h
    ```

    ## Use instead
    Nothing to change. To compare with `torch.nn.GRUCell`, map the weights with
    `grudiag.reference.conversions` (reset-before cells have no exact PyTorch equivalent).
    """

    code = "GD201"
    name = "gru-convention-identified"
    category = "convention"
    severity = Severity.INFO
    requires = ("conventions",)
    thresholds = {"exact_atol": 1e-9}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        m = ctx.m("conventions")
        if m["status"] != "identified":
            return
        err = m["max_abs_diff"]
        how = (f"matches the reference to {err:.1e}" if err <= ctx.threshold("exact_atol") else
               f"matches the reference to {err:.1e} (float32 rounding, not exact)")
        unusual = m.get("unusual") or []
        note = ""
        advice = "Nothing to change; compare this cell only with references of the same family"
        if unusual:
            note = (f"; but {'; '.join(unusual)}: still a GRU when trained from scratch (the "
                    "matrix is learned), yet weights copied from another implementation will "
                    "not give its results")
            advice = ("Nothing to change for training from scratch; to load weights from "
                      "nn.GRU or Keras, read them the standard way (W.T, not view or reshape)")
        yield ctx.finding(
            f"Implements the {_variant_phrase(m)}; {how}{note}",
            advice,
            evidence={k: m.get(k) for k in ("convention", "family", "update", "gate_activation",
                                            "gate_order", "arrangement", "orientation", "biases",
                                            "mapping", "unusual", "error_random", "error_own")},
        )


@register_check
class NotAGru(Check):
    """The subject computes none of the GRU variants and none of the known mistakes.

    ## What it checks
    With its parameters mapped onto the canonical GRU, the subject's new state matches no
    correct variant (either family, either update form, any gate order or orientation, sigmoid
    or hard-sigmoid gates) and no single known mistake from the GD21x library.

    ## Why is this bad?
    A cell that is meant to be a GRU but computes something else trains differently from every
    published result, cannot load weights from any framework, and usually hides a typo in one of
    its equations (a wrong sign, a wrong block, an extra term).

    ## How it is detected
    {search}
    When nothing matches, the nearest correct candidate (smallest disagreement at every stage) is
    run on a probe sequence with the subject's own parameters, and the largest |Δh| is reported
    with its step, sample and unit. Threshold `atol` (2e-5): disagreements at or below it are not
    reported. Correct cells measure ≤ 4e-16; `h' = (1-z)·sin(...)` in place of tanh measures
    0.95 at step 0.

    ## Example
    ```python
    h_new = (1 - z) * torch.sin(i_n + r * h_n) + z * h   # not a GRU
    ```

    ## Use instead
    ```python
    h_new = (1 - z) * torch.tanh(i_n + r * h_n) + z * h
    ```
    """

    code = "GD202"
    name = "not-a-gru"
    category = "equation-mismatch"
    severity = Severity.ERROR
    requires = ("conventions",)
    thresholds = {"atol": 2e-5}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        m = ctx.m("conventions")
        if m["status"] != "unmatched":
            return
        d = m["disagreement"]
        if d.get("batch_dependent"):
            raise SkipCheck("the cell mixes the samples of a batch (a bad-shapes defect), so its "
                            "per-sample equations cannot be compared")
        if d["max_abs_diff"] <= ctx.threshold("atol"):
            return
        yield ctx.finding(
            f"The new state matches no GRU variant; the nearest, the {m['label']} "
            f"({m['update_form']}), differs by up to {d['max_abs_diff']:.3g} at step {d['step']}, "
            f"sample {d['sample']}, unit {d['unit']} ({d['subject_value']:.4g} vs "
            f"{d['reference_value']:.4g})",
            "Compare each gate with the reference equations in gru_formulations.md §2.2 "
            "(reset-after) or §2.1 (reset-before): activations, signs, which gate multiplies "
            "which term",
            evidence={"nearest": m["convention"], "gate_order": m["gate_order"],
                      "mapping": m["mapping"], **d},
        )


class _MistakeCheck(Check):
    """Shared judge: one check per mistake id of the probe's library."""

    mistake_ids: ClassVar[tuple[str, ...]] = ()
    category = "equation-mismatch"
    severity = Severity.ERROR
    requires = ("conventions",)
    hint: ClassVar[str] = ""

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        m = ctx.m("conventions")
        if m["status"] != "mistake" or m.get("mistake") not in self.mistake_ids:
            return
        order = "" if m["gate_order"] == "one parameter per gate" else \
            f", gate order {m['gate_order']}"
        update = f", {m['update_form']}" if m["update"] in ("torch", "chung") else ""
        label = m["label"] if m.get("family_matters", True) else "GRU"
        where = f"otherwise a {label}{update}{order}, {m['arrangement']}, {m['orientation']}"
        text = m["mistake_text"]
        unused = m.get("mistake_detail", {}).get("unused_biases")
        if unused:
            text = f"bias {', '.join(unused)} is never added (it has no effect on the state)"
        yield ctx.finding(
            f"{text[0].upper()}{text[1:]}: the subject matches this "
            f"mistake to {m['max_abs_diff']:.1e} ({where})",
            self.hint,
            location=self.location(ctx, m),
            evidence={"mistake": m["mistake"], "nearest": m["convention"],
                      "gate_order": m["gate_order"], "mapping": m["mapping"],
                      "error_random": m["error_random"], "error_own": m["error_own"],
                      **m.get("mistake_detail", {})},
        )

    def location(self, ctx: CheckContext, m: dict[str, Any]):
        return None


@register_check
class CandidateActivationNotTanh(_MistakeCheck):
    """The candidate state uses relu, sigmoid or no activation instead of tanh.

    ## What it checks
    Whether the subject equals a GRU whose candidate `n` goes through relu, the identity or a
    sigmoid instead of tanh (the rest of the cell correct). The message names which one.

    ## Why is this bad?
    tanh keeps the candidate in (-1, 1), so the state (a convex blend of old state and
    candidate) stays bounded. relu or no activation lets the state grow without bound and
    explode over long sequences; sigmoid makes the candidate always positive, so the state can
    never go negative and half of the state space is lost.

    ## How it is detected
    {search}
    Only searched when no correct variant matched. The mutated reference replaces tanh by the
    other function; correct cells never match it (they differ by about 0.1 to 1).

    ## Example
    ```python
    n = torch.relu(i_n + r * h_n)
    ```

    ## Use instead
    ```python
    n = torch.tanh(i_n + r * h_n)
    ```
    """

    code = "GD210"
    name = "candidate-activation-not-tanh"
    mistake_ids = ("candidate-relu", "candidate-identity", "candidate-sigmoid")
    hint = "Apply tanh to the candidate pre-activation: n = tanh(W_in x + b_in + r * (W_hn h + b_hn))"


@register_check
class StateSquashedByExtraTanh(_MistakeCheck):
    """tanh is applied a second time, to the new state itself.

    ## What it checks
    Whether the subject equals a correct GRU whose output `h'` is passed through tanh again.

    ## Why is this bad?
    The blend `(1-z)·n + z·h` is already in (-1, 1). A second tanh shrinks the state at every
    step, so when z ≈ 1 ("keep the memory") the state still decays towards 0: the cell cannot
    hold information over time, which is the whole point of a GRU.

    ## How it is detected
    {search}
    Only searched when no correct variant matched.

    ## Example
    ```python
    return torch.tanh((1 - z) * n + z * h)
    ```

    ## Use instead
    ```python
    return (1 - z) * n + z * h
    ```
    """

    code = "GD211"
    name = "state-squashed-by-extra-tanh"
    mistake_ids = ("state-tanh",)
    hint = "Return the blend (1 - z) * n + z * h itself, without a tanh around it"


@register_check
class ResetGateUnused(_MistakeCheck):
    """The reset gate is computed but never used in the candidate.

    ## What it checks
    Whether the subject equals a GRU with r ≡ 1: its reset-gate weights have no effect.

    ## Why is this bad?
    Without the reset gate the cell cannot drop the previous state when computing the candidate;
    it is a different, weaker recurrent unit, and the reset-gate parameters are dead weight that
    receives no gradient.

    ## How it is detected
    {search}
    Only searched when no correct variant matched. With r ≡ 1 the two families coincide, so the
    message does not name one.

    ## Example
    ```python
    n = torch.tanh(i_n + h_n)          # r computed above, never used
    ```

    ## Use instead
    ```python
    n = torch.tanh(i_n + r * h_n)
    ```
    """

    code = "GD212"
    name = "reset-gate-unused"
    mistake_ids = ("reset-unused",)
    hint = "Multiply the recurrent term of the candidate by the reset gate: n = tanh(i_n + r * h_n)"


@register_check
class OneGateForResetAndUpdate(_MistakeCheck):
    """The same gate is used as both the reset and the update gate.

    ## What it checks
    Whether the subject equals a GRU where the update gate z is used in place of the reset
    gate (or the reset gate in place of z): one gate's weights do everything, the other's have
    no effect.

    ## Why is this bad?
    The two gates have different jobs (what to forget in the candidate, how much to keep of the
    old state). Tying them is a different unit (close to the minimal gated unit), and the
    unused gate's parameters receive no gradient.

    ## How it is detected
    {search}
    Only searched when no correct variant matched. Note that swapping r and z *consistently*
    (both the weights and their use) is only another gate order, a correct GRU: GD201 reports
    it.

    ## Example
    ```python
    n = torch.tanh(i_n + z * h_n)      # z where r belongs
    ```

    ## Use instead
    ```python
    n = torch.tanh(i_n + r * h_n)
    ```
    """

    code = "GD213"
    name = "one-gate-for-reset-and-update"
    mistake_ids = ("reset-is-update",)
    hint = "Use the reset gate r inside the candidate and the update gate z only in the blend"


@register_check
class UpdateNotConvexBlend(_MistakeCheck):
    """The new state is z·h + z·n (or (1-z)·(h + n)), not a convex blend of h and n.

    ## What it checks
    Whether the subject equals a GRU whose update uses the same weight for the old state and
    the candidate instead of z and 1 - z.

    ## Why is this bad?
    `z·h + z·n` is not bounded by the old state and the candidate: it can reach 2 in magnitude,
    the cell can neither keep its memory (z = 1 adds the candidate anyway) nor replace it, and
    the state drifts or explodes over long sequences.

    ## How it is detected
    {search}
    Only searched when no correct variant matched.

    ## Example
    ```python
    h_new = z * h_prev + z * h_tilde
    ```

    ## Use instead
    ```python
    h_new = z * h_prev + (1 - z) * h_tilde
    ```
    """

    code = "GD214"
    name = "update-not-convex-blend"
    mistake_ids = ("update-not-convex",)
    hint = "Weight the old state and the candidate by z and (1 - z): h' = z * h + (1 - z) * n"


@register_check
class ResetGateOnInputTerm(_MistakeCheck):
    """The reset gate multiplies the input term of the candidate instead of the recurrent one.

    ## What it checks
    Whether the subject equals a GRU with `n = tanh(r ⊙ (W_in x + b_in) + W_hn h + b_hn)`.

    ## Why is this bad?
    The reset gate exists to let the cell ignore its previous state when computing the
    candidate. Applied to the input term it silences the input instead, and the previous state
    always flows in full: the cell cannot reset.

    ## How it is detected
    {search}
    Only searched when no correct variant matched.

    ## Example
    ```python
    n = torch.tanh(r * i_n + h_n)
    ```

    ## Use instead
    ```python
    n = torch.tanh(i_n + r * h_n)
    ```
    """

    code = "GD215"
    name = "reset-gate-on-input-term"
    mistake_ids = ("reset-on-input",)
    hint = "Move r onto the recurrent term: n = tanh(i_n + r * h_n) (or W (r * h) in reset-before)"


@register_check
class BiasNotApplied(_MistakeCheck):
    """A bias parameter is declared but never added anywhere.

    ## What it checks
    Whether the subject is a correct GRU except that one of its bias parameters (or one gate's
    block of a fused bias) has no effect on the new state.

    ## Why is this bad?
    The gate without its bias cannot shift its operating point (e.g. start with the update gate
    open), the parameter never trains, and weights loaded from a framework that uses it give
    different results.

    ## How it is detected
    {search}
    Each bias block is set alone (random, others zero) on a copy of the subject: a block that
    changes nothing (max |Δh| ≤ 2e-5; used blocks change h by about 0.1) is unused.

    ## Example
    ```python
    z = torch.sigmoid(self.W_z(x) + self.U_z(h))      # self.b_z never added
    ```

    ## Use instead
    ```python
    z = torch.sigmoid(self.W_z(x) + self.U_z(h) + self.b_z)
    ```
    """

    code = "GD216"
    name = "bias-not-applied"
    mistake_ids = ("bias-unused",)
    hint = "Add the bias to its gate's pre-activation, or remove the parameter"

    def location(self, ctx: CheckContext, m: dict[str, Any]):
        names = m.get("mistake_detail", {}).get("unused_biases", [])
        locs = ctx.subject.parameter_locations() if names else {}
        return locs.get(names[0].split("[")[0]) if names else None


# The search description is shared by every docstring above.
for _check in (GruConventionIdentified, NotAGru, CandidateActivationNotTanh,
               StateSquashedByExtraTanh, ResetGateUnused, OneGateForResetAndUpdate,
               UpdateNotConvexBlend, ResetGateOnInputTerm, BiasNotApplied):
    _check.__doc__ = (_check.__doc__ or "").replace("    {search}\n", _SEARCH_DOC.strip("\n") + "\n")
