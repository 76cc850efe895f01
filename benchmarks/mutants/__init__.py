"""Mutants of the template GRU cell for benchmarks/mutation.py (see template.py)."""
from __future__ import annotations

from dataclasses import dataclass

from .template import (NumpyBackwardCell, NumpyCell, NumpyFlatCell, NumpySeq, Spec, TorchCell,
                       TorchFlatCell, TorchFunctionCell, TorchSeq)

I, H = 5, 7  # I != H so that transposes and shape confusions are not hidden
BASES = {"torch": [Spec(family="after", update="torch"), Spec(family="before", update="chung")],
         "numpy": [Spec(family="before", update="torch"), Spec(family="after", update="chung")]}
KINDS = {("torch", "cell"): TorchCell, ("torch", "seq"): TorchSeq,
         ("torch", "bwd"): TorchFunctionCell, ("numpy", "cell"): NumpyCell,
         ("numpy", "seq"): NumpySeq, ("numpy", "bwd"): NumpyBackwardCell,
         ("torch", "flat"): TorchFlatCell, ("numpy", "flat"): NumpyFlatCell}


@dataclass(frozen=True)
class Operator:
    name: str
    bug: str                      # what real bug it models
    kind: str                     # "cell" | "seq" | "bwd"
    changes: dict
    backends: tuple = ("torch", "numpy")
    equivalent: str | None = None  # reason, when the mutant is a reparameterised correct GRU


OPERATORS: list[Operator] = [
    # activations
    Operator("gate-act-tanh", "tanh instead of sigmoid on the gates", "cell", {"gate_act": "tanh"}),
    Operator("gate-act-relu", "relu instead of sigmoid on the gates", "cell", {"gate_act": "relu"}),
    Operator("cand-act-relu", "relu candidate", "cell", {"cand_act": "relu"}),
    Operator("cand-act-sigmoid", "sigmoid candidate", "cell", {"cand_act": "sigmoid"}),
    Operator("cand-act-none", "candidate without activation", "cell", {"cand_act": "identity"}),
    Operator("extra-tanh-on-state", "tanh applied to the new state", "cell", {"out_act": "tanh"}),
    Operator("naive-sigmoid", "1/(1+exp(-a)) gates (overflow, NaN gradient)", "cell",
             {"gate_act": "naive_sigmoid"}),
    # reset placement / gate use
    Operator("reset-unused", "reset gate computed, never used", "cell", {"reset": "none"}),
    Operator("reset-on-input", "reset gate multiplies the input term", "cell", {"reset": "input"}),
    Operator("reset-outside-tanh", "r * tanh(...) instead of tanh(... r * ...)", "cell",
             {"reset": "outside"}),
    Operator("one-gate-for-both", "z used as the reset gate too", "cell", {"same_gate": True}),
    # update blend
    Operator("blend-z-z", "h' = z*n + z*h", "cell", {"blend": "zz"}),
    Operator("blend-sum", "h' = (1-z)*(h + n)", "cell", {"blend": "sum"}),
    Operator("blend-drop-keep", "h' = (1-z)*n: the z*h term dropped", "cell", {"blend": "no_keep"}),
    Operator("blend-drop-1mz", "h' = n + z*h: the (1-z) factor dropped", "cell", {"blend": "no_1mz"}),
    # dropped terms
    Operator("drop-rec-r", "W_hr h missing", "cell", {"drop_rec": ("r",)}),
    Operator("drop-rec-z", "W_hz h missing", "cell", {"drop_rec": ("z",)}),
    Operator("drop-rec-n", "W_hn h missing", "cell", {"drop_rec": ("n",)}),
    Operator("drop-rec-all", "no recurrent weight used", "cell", {"drop_rec": ("r", "z", "n")}),
    Operator("drop-input-n", "W_in x missing from the candidate", "cell", {"drop_in": ("n",)}),
    Operator("drop-bias-hn", "b_hn declared, never added", "cell", {"drop_bias": ("hn",)}),
    Operator("drop-bias-all", "biases declared, never added", "cell", {"drop_bias": ("all",)}),
    # shapes / state inside the cell
    Operator("state-reshape", "h.reshape(H, B).T: batch and hidden axes mixed", "cell",
             {"state_reshape": True}),
    Operator("input-weight-transposed", "x @ W_i instead of x @ W_i.T (I != H: a shape error)",
             "cell", {"in_transposed": True}),
    Operator("detach-in-cell", "h.detach() inside the cell", "cell", {"detach_h": True},
             backends=("torch",)),
    Operator("cell-keeps-state", "the cell keeps its own h between calls", "cell",
             {"stateful": True}),
    # initialisation
    Operator("init-zero", "all weights zero", "cell", {"init": "zero"}),
    Operator("init-zero-recurrent", "recurrent weights zero", "cell", {"init": "zero_hh"}),
    Operator("init-constant", "all weights 0.1", "cell", {"init": "const"}),
    Operator("init-duplicate-unit", "unit 1 a copy of unit 0", "cell", {"init": "dup_units"}),
    Operator("init-10x-scale", "weights 10x too large", "cell", {"init": "large"}),
    Operator("init-update-pinned", "update-gate bias +10", "cell", {"init": "update_pinned"}),
    # sequence loop
    Operator("loop-passes-h0", "cell(x[t], h0) instead of cell(x[t], h)", "seq", {"loop": "h0"}),
    Operator("loop-detach", "h = h.detach() in the time loop", "seq", {"loop": "detach"},
             backends=("torch",)),
    Operator("loop-data", "h = h.data in the time loop", "seq", {"loop": "data"}, backends=("torch",)),
    Operator("loop-numpy-roundtrip", "h through .numpy() in the time loop", "seq",
             {"loop": "numpy_roundtrip"}, backends=("torch",)),
    Operator("loop-ignores-h0", "h0 argument replaced by zeros", "seq", {"loop": "ignore_h0"}),
    Operator("loop-keeps-state", "last state reused as h0 of the next call", "seq",
             {"loop": "stateful"}),
    Operator("loop-reversed", "loop runs backwards in time, outputs in forward order", "seq",
             {"loop": "reverse"}),
    Operator("loop-off-by-one", "outputs collected before the update (h_{t-1} returned as h_t)",
             "seq", {"loop": "off_by_one"}),
    Operator("loop-view-not-transpose", "batch-first input view()ed instead of transposed", "seq",
             {"loop": "view_bt"}, backends=("torch",)),
    # hand-written backward (NumPy backward(dh), torch autograd.Function)
    Operator("bwd-sign-dz", "wrong sign of dL/dz", "bwd", {"bwd": "sign_dz"}),
    Operator("bwd-sign-dx", "wrong sign of dL/dx", "bwd", {"bwd": "sign_dx"}),
    Operator("bwd-no-sigmoid-deriv", "z(1-z) factor missing", "bwd", {"bwd": "no_sigmoid_deriv"}),
    Operator("bwd-no-tanh-deriv", "(1-n^2) factor missing", "bwd", {"bwd": "no_tanh_deriv"}),
    Operator("bwd-no-direct-path", "dh*z path to h_prev missing", "bwd", {"bwd": "no_direct"}),
    Operator("bwd-no-reset-factor", "reset factor r missing in the candidate's gradient", "bwd",
             {"bwd": "no_reset_factor"}),
    Operator("bwd-dW-transposed", "dW_hn transposed", "bwd", {"bwd": "dW_transposed"}),
    # unmappable storage (one flat parameter vector): only black-box checks see the equations
    Operator("flat-cand-act-relu", "relu candidate, parameters in one flat vector", "flat",
             {"cand_act": "relu"}),
    Operator("flat-cand-act-none", "no candidate activation, flat parameters", "flat",
             {"cand_act": "identity"}),
    Operator("flat-blend-z-z", "h' = z*n + z*h, flat parameters", "flat", {"blend": "zz"}),
    Operator("flat-blend-sum", "h' = (1-z)*(h + n), flat parameters", "flat", {"blend": "sum"}),
    Operator("flat-reset-unused", "reset gate unused, flat parameters", "flat", {"reset": "none"}),
    # equivalent mutants: correct GRUs under another parameterisation
    Operator("eq-update-flip", "z <-> 1-z with the update gate's parameters negated", "cell",
             {"update": "__flip__", "flip_params": True},
             equivalent="sigmoid(-a) = 1 - sigmoid(a): negating W_z, U_z, b_z turns one update "
                        "form into the other exactly (same function, same parameter count)"),
    Operator("eq-swap-r-z", "r and z roles exchanged (gate order z|r|n)", "cell", {"swap_rz": True},
             equivalent="r and z have the same form sigmoid(W x + U h + b) with their own "
                        "parameters: swapping them is a permutation of the weight blocks"),
    Operator("eq-recurrent-transposed", "h @ W_h instead of h @ W_h.T (square)", "cell",
             {"rec_transposed": True},
             equivalent="W_h is square and freely learned: W_h^T is just another H x H matrix "
                        "with the same initial distribution"),
    Operator("eq-input-view", "W_ih stored (I, 3H) and view()ed as (3H, I)", "cell",
             {"in_view": True}, backends=("torch",),
             equivalent="view() is a bijection of the entries: the cell computes W' x for "
                        "another matrix W' with the same i.i.d. initial distribution"),
]

#: correct cells that must get no warning or error
CORRECT_INITS = ("default", "zero_bias", "keras", "small_normal")


def build(op: Operator, backend: str, base: Spec):
    changes = dict(op.changes)
    if changes.get("update") == "__flip__":
        changes["update"] = "chung" if base.update == "torch" else "torch"
    spec = base.with_(**changes)
    return KINDS[(backend, op.kind)](I, H, spec)


def mutants(op: Operator):
    """(backend, base label, object) for every mutant of an operator."""
    for backend in op.backends:
        for base in BASES[backend]:
            yield backend, f"{base.family}/{base.update}", build(op, backend, base)


def correct_subjects():
    """(backend, label, object): all 8 variants in torch and NumPy (cell, sequence, backward),
    plus correct initialisations."""
    from grudiag.reference.variants import ALL_VARIANTS
    for v in ALL_VARIANTS:
        fam = "after" if v.reset_after else "before"
        spec = Spec(family=fam, update=v.update, bias=v.bias)
        for (backend, kind), cls in KINDS.items():
            yield backend, f"{kind} {v.name}", cls(I, H, spec)
    for init in CORRECT_INITS[1:]:
        for backend in ("torch", "numpy"):
            for base in BASES[backend]:
                yield backend, f"cell {base.family}/{base.update} init={init}", \
                    KINDS[(backend, "cell")](I, H, base.with_(init=init))
