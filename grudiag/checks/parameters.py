"""GD6xx: parameters and initialisation. Zero/constant weights and hidden units that are copies."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..model import Finding, Location, Severity
from .base import Check, CheckContext, SkipCheck, register_check

_NOT_JUDGED = "every parameter is bias-like (1-D or a vector); biases are allowed to be zero"


def _weights(m: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in m["parameters"] if not p["bias"]]


def copy_groups(ctx: CheckContext, rtol: float) -> dict[str, Any] | None:
    """Units that are copies in their parameters AND in their states (unit-constant h0).

    Returns the groups (lists of unit indices with more than one member), the number of
    distinct units among those compared, and what the dynamic probe saw after training.
    """
    pb = ctx.measurements.get("parameter_blocks")
    if pb is None or not pb["unit_axes_in"]:
        return None
    dist = np.asarray(pb["unit_distance"])
    same = dist <= rtol
    uc = ctx.measurements.get("unit_copies")
    if uc is not None:
        same &= np.asarray(uc["state_distance_init"]) <= rtol
    return _groups(same, uc, rtol)


def _groups(same: np.ndarray, uc: dict[str, Any] | None, rtol: float) -> dict[str, Any]:
    n = same.shape[0]
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if same[i, j]:
                parent[find(i)] = find(j)
    comps: dict[int, list[int]] = {}
    for i in range(n):
        comps.setdefault(find(i), []).append(i)
    groups = sorted((c for c in comps.values() if len(c) > 1), key=lambda c: c[0])
    stays = None
    if uc is not None and uc.get("trained") and groups:
        sd = np.asarray(uc["state_distance_trained"])
        gd = np.asarray(uc["gradient_distance"])
        stays = all(sd[i, j] <= rtol and gd[i, j] <= rtol for g in groups for i in g for j in g)
    return {"groups": groups, "distinct": len(comps), "units": n, "stays_after_sgd": stays,
            "sgd_steps": uc.get("steps") if uc else None,
            "train_skip_reason": uc.get("train_skip_reason") if uc else None}


def describe_copies(c: dict[str, Any], hidden: int) -> str:
    units, distinct, groups = c["units"], c["distinct"], c["groups"]
    if distinct == 1:
        text = f"all {units} hidden units are identical copies: 1 distinct unit"
    else:
        shown = "; ".join(_units(g) for g in groups[:3]) + ("; ..." if len(groups) > 3 else "")
        text = f"hidden {shown} are identical copies: " \
               f"{distinct} distinct units of {units}"
    if units < hidden:
        text += f" (units 0–{units - 1} compared)"
    if c["stays_after_sgd"] is True:
        text += f", and they stay identical after {c['sgd_steps']} SGD steps"
    elif c["stays_after_sgd"] is False:
        text += f", but they drift apart during {c['sgd_steps']} SGD steps"
    return text


def _units(g: list[int]) -> str:
    if len(g) == 2:
        return f"units {g[0]} and {g[1]}"
    return "units " + ", ".join(map(str, g[:6])) + (", ..." if len(g) > 6 else "")


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _location(ctx: CheckContext, names: list[str]) -> Location | None:
    locs = ctx.m("parameter_blocks").get("locations", {})
    for name in names:
        loc = locs.get(name)
        if loc and loc.get("file"):
            return Location(loc.get("file"), loc.get("line"), loc.get("qualname"))
    return ctx.subject.location


def _find_blocks(weights: list[dict[str, Any]],
                 pred) -> tuple[list[str], list[str], int]:  # noqa: ANN001
    """(whole parameters matching, blocks matching inside other parameters, weight count)."""
    whole, blocks = [], []
    for p in weights:
        if p["size"] >= 1 and pred(p):
            whole.append(p["name"])
        else:
            blocks += [b["label"] for b in p["blocks"] if b["size"] >= 2 and pred(b)]
    return whole, blocks, len(weights)


class _InitCheck(Check):
    requires = ("parameter_blocks",)
    what = ""

    def matches(self, ctx: CheckContext, p: dict[str, Any]) -> bool:
        raise NotImplementedError

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        m = ctx.m("parameter_blocks")
        weights = _weights(m)
        if not weights:
            raise SkipCheck(_NOT_JUDGED)
        whole, blocks, total = _find_blocks(weights, lambda p: self.matches(ctx, p))
        if not whole and not blocks:
            return
        copies = copy_groups(ctx, ctx.threshold("copy_rtol")) if "copy_rtol" in self.thresholds \
            else None
        symmetric = copies is not None and copies["distinct"] < copies["units"]
        everything = len(whole) == total
        severity = Severity.ERROR if (everything or symmetric) else Severity.WARNING
        values = {p["name"]: p["mean"] for p in weights if p["name"] in whole}
        if everything:
            lead = (f"every weight parameter is {self.what} "
                    f"({_list(whole)}{self._values(values)})")
        elif whole:
            lead = f"{_count(len(whole), 'weight parameter')} of {total} " \
                   f"{'is' if len(whole) == 1 else 'are'} {self.what} ({_list(whole)}" \
                   f"{self._values(values)})"
        else:
            lead = f"{_count(len(blocks), 'gate block')} {'is' if len(blocks) == 1 else 'are'} " \
                   f"{self.what} ({_list(blocks)})"
        if whole and blocks:
            lead += f", and so {'is' if len(blocks) == 1 else 'are'} {_list(blocks)}"
        if symmetric:
            tail = describe_copies(copies, ctx.subject.hidden_size)
        elif copies is not None and everything:
            tail = f"only the biases tell the {copies['units']} hidden units apart"
        else:
            tail = ""
        message = lead + (f": {tail}" if tail else "")
        yield ctx.finding(
            message[0].upper() + message[1:],
            self.hint,
            location=_location(ctx, whole or [b.split("[")[0] for b in blocks]),
            severity=severity,
            evidence={"parameters": whole, "blocks": blocks, "weight_parameters": total,
                      "distinct_units": copies["distinct"] if copies else None,
                      "units_compared": copies["units"] if copies else None,
                      "copy_groups": copies["groups"] if copies else None,
                      "stays_after_sgd": copies["stays_after_sgd"] if copies else None,
                      "values": values},
        )

    hint = ""

    def _values(self, values: dict[str, float]) -> str:
        return ""


def _list(names: list[str], limit: int = 6) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


@register_check
class ZeroInitialisedWeights(_InitCheck):
    """A weight matrix (or one gate's block of a fused weight) is all zeros.

    ## What it checks
    Every weight parameter of the subject, and every block of H rows or columns of a fused
    parameter (`(3H, D)`, `(D, 3H)`, `(H+D, 3H)`, ...), one block per gate. Biases (1-D arrays,
    `(H, 1)` columns, Keras' `(2, 3H)`) are not judged: zero biases are the norm.

    ## Why is this bad?
    With zero weights every hidden unit computes the same pre-activation, so every unit has the
    same state and receives the same gradient: the units stay copies of one another and the cell
    has the capacity of a single unit ("I initialised with zeros to be safe"). Even where biases
    or a readout break the tie, zero recurrent weights give zero gradients at h = 0 for the
    gates, so learning starts slowly or not at all.

    ## How it is detected
    Probe `parameter_blocks` reads the parameters (copies) and measures max |w| per parameter
    and per gate block. A block is zero when max |w| ≤ `zero_atol` (1e-12). The severity is
    error when every weight parameter is zero or when the hidden units are measured to be exact
    copies (see GD603: the unit-swap distance ≤ `copy_rtol` = 1e-9 and identical states from a
    unit-constant h0); a zero block in an otherwise random cell is a warning. Measured
    (5 seeds): a correct cell at PyTorch's init U(±1/√H), H = 7, has max |w| of 0.23–0.38 in
    every parameter and relative unit-swap distances ≥ 1.28; the zero-initialised cells have
    max |w| = 0 and distance 0 (1 distinct unit).

    ## Example
    ```python
    self.Wz = np.zeros((hidden_size, input_size))
    self.Uz = np.zeros((hidden_size, hidden_size))
    ```

    ## Use instead
    ```python
    k = 1 / np.sqrt(hidden_size)
    self.Wz = rng.uniform(-k, k, (hidden_size, input_size))
    self.Uz = rng.uniform(-k, k, (hidden_size, hidden_size))
    ```
    """

    code = "GD601"
    name = "zero-initialised-weights"
    category = "zero-init-symmetry"
    severity = Severity.ERROR
    requires = ("parameter_blocks",)
    thresholds = {"zero_atol": 1e-12, "copy_rtol": 1e-9}
    what = "all zero"
    hint = ("Initialise weights randomly, e.g. U(-1/sqrt(H), 1/sqrt(H)) like nn.GRUCell, Xavier "
            "for input weights and orthogonal for recurrent ones; only biases may start at zero")

    def matches(self, ctx: CheckContext, p: dict[str, Any]) -> bool:
        return p["max_abs"] <= ctx.threshold("zero_atol")


@register_check
class ConstantInitialisedWeights(_InitCheck):
    """A weight matrix (or one gate's block of a fused weight) holds one repeated non-zero value.

    ## What it checks
    Every weight parameter, and every block of H rows or columns of a fused parameter, for a
    spread (max − min) that is zero relative to its magnitude. Biases are not judged (a constant
    bias such as an update-gate bias of 1 is a legitimate choice).

    ## Why is this bad?
    A constant matrix has identical rows: every hidden unit receives the same input, computes
    the same state and the same gradient, so the units never become different
    (`nn.init.constant_(w, 0.5)`, `np.ones(...) * 0.01`). The cell behaves as one unit copied
    H times.

    ## How it is detected
    Probe `parameter_blocks`: a block is constant when spread ≤ `constant_rtol` (1e-9) × max |w|
    and max |w| > 1e-12 (all-zero blocks are GD601). Error when every weight parameter is
    constant or the hidden units are measured to be exact copies (GD603's measurement with
    `copy_rtol` = 1e-9); warning for a constant block inside an otherwise random cell.
    Measured (5 seeds): PyTorch's init U(±1/√H), H = 7, gives a relative spread of 1.1–2.0 per
    parameter; `constant_(w, 0.5)` gives spread 0.

    ## Example
    ```python
    for w in (self.weight_ih, self.weight_hh):
        nn.init.constant_(w, 0.5)
    ```

    ## Use instead
    ```python
    nn.init.xavier_uniform_(self.weight_ih)
    nn.init.orthogonal_(self.weight_hh)
    ```
    """

    code = "GD602"
    name = "constant-initialised-weights"
    category = "zero-init-symmetry"
    severity = Severity.ERROR
    requires = ("parameter_blocks",)
    thresholds = {"constant_rtol": 1e-9, "copy_rtol": 1e-9}
    what = "constant"
    hint = ("Initialise weights randomly (U(-1/sqrt(H), 1/sqrt(H)), Xavier or orthogonal) so that "
            "every hidden unit starts different; a constant is only fine for biases")

    def matches(self, ctx: CheckContext, p: dict[str, Any]) -> bool:
        return p["max_abs"] > 1e-12 and p["spread"] <= ctx.threshold("constant_rtol") * p["max_abs"]

    def _values(self, values: dict[str, float]) -> str:
        distinct = sorted({round(v, 6) for v in values.values()})
        if len(distinct) == 1:
            return f"; every entry is {distinct[0]:g}"
        return ""


@register_check
class DuplicateHiddenUnits(Check):
    """Some hidden units are exact copies of others: swapping them changes no parameter.

    ## What it checks
    Whether hidden units i and j are interchangeable: every parameter is unchanged when units
    i and j are swapped on every axis that indexes hidden units (rows of input weights, rows
    and columns of recurrent weights, entries of biases, in every gate block), and the two units
    produce identical states. Copies caused by all-zero or all-constant weights are reported by
    GD601/GD602 instead.

    ## Why is this bad?
    Two units with identical incoming weights, biases and recurrent connections compute the
    same state at every step and receive the same gradient from any loss that treats them
    alike, so they stay copies for ever: the cell wastes capacity. This happens when a weight
    is built by tiling or broadcasting one row (`np.tile(w, (H, 1))`, `w.expand(H, D)`,
    `torch.randn(1, D).repeat(H, 1)`).

    ## How it is detected
    Probe `parameter_blocks` measures, for every pair of units, the largest change of any
    parameter under the swap, relative to the parameter's largest magnitude (for an (H+D)-long
    axis both the `[h, x]` and `[x, h]` orders are tried). Probe `unit_copies` runs the subject
    from an h0 that is the same for every unit and measures max |h_i − h_j| relative to max |h|,
    then trains a copy for 2 SGD steps (lr 1) on a random regression target read out through
    the mean of the units and compares states and gradients again. A pair is a copy when both
    distances are ≤ `copy_rtol` (1e-9). Measured (5 seeds): PyTorch's init, H = 7, gives
    pairwise distances ≥ 1.28 for parameters, ≥ 0.57 for states, ≥ 0.44 for states after
    training and ≥ 0.35 for gradients (`nn.GRUCell(5, 7)`); tiled rows and symmetrised units
    give 0 (≤ 1e-16).

    ## Example
    ```python
    row = torch.randn(1, input_size)
    self.W_z = nn.Parameter(row.repeat(hidden_size, 1))   # every unit gets the same row
    ```

    ## Use instead
    ```python
    self.W_z = nn.Parameter(torch.empty(hidden_size, input_size))
    nn.init.xavier_uniform_(self.W_z)
    ```
    """

    code = "GD603"
    name = "duplicate-hidden-units"
    category = "zero-init-symmetry"
    severity = Severity.ERROR
    requires = ("parameter_blocks",)
    thresholds = {"copy_rtol": 1e-9, "zero_atol": 1e-12, "constant_rtol": 1e-9}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        copies = copy_groups(ctx, ctx.threshold("copy_rtol"))
        if copies is None:
            raise SkipCheck("no parameter has an axis of hidden units (a multiple of H)")
        if copies["distinct"] == copies["units"]:
            return
        weights = _weights(ctx.m("parameter_blocks"))
        explained = [p["name"] for p in weights
                     if p["max_abs"] <= ctx.threshold("zero_atol")
                     or p["spread"] <= ctx.threshold("constant_rtol") * p["max_abs"]]
        if weights and len(explained) == len(weights):
            return  # all-zero / all-constant weights: GD601/GD602 report these copies
        yield ctx.finding(
            f"{describe_copies(copies, ctx.subject.hidden_size)[0].upper()}"
            f"{describe_copies(copies, ctx.subject.hidden_size)[1:]}; swapping them leaves every "
            f"parameter unchanged",
            "Give every hidden unit its own random weights: look for a weight built by tiling, "
            "repeating or broadcasting a single row or column",
            evidence={"distinct_units": copies["distinct"], "units_compared": copies["units"],
                      "copy_groups": copies["groups"],
                      "stays_after_sgd": copies["stays_after_sgd"],
                      "unit_distance": ctx.m("parameter_blocks")["unit_distance"]},
        )


@register_check
class IdenticalUnitBehaviour(Check):
    """Hidden units produce identical states (and gradients) although no parameter shows why.

    ## What it checks
    Behaviour only: whether hidden units are copies in what they compute, from an initial state
    that is the same for every unit, before and after a few SGD steps; reported when the
    parameters grudiag can see do not already show the copies (GD601–GD603), e.g. weights made
    inside `forward`, stored outside the parameters grudiag reads, or broadcast from a vector.

    ## Why is this bad?
    Units whose states and gradients are identical stay identical under any loss that treats
    them alike: the cell has the capacity of its distinct units only.

    ## How it is detected
    Probe `unit_copies`: x ~ N(0, 1) (T = 6, batch 3), h0 equal across units; max |h_i − h_j|
    relative to max |h| at init; then, when the subject offers gradients (autograd or its own
    backward), 2 SGD steps (lr 1) on a random regression target read out through the mean of
    the units, then the states on fresh inputs and the gradients of every parameter and of h0,
    compared unit by unit on every axis that indexes hidden units. A pair is a copy when every
    distance is ≤ `copy_rtol` (1e-9). Error when the copies survive training; warning when the
    subject has no gradients and only the states could be compared. Measured (5 seeds,
    `nn.GRUCell(5, 7)`): state distances ≥ 0.57 (≥ 0.44 after training) and gradient
    distances ≥ 0.35; a cell that builds its weights with `torch.ones` inside `forward` gives 0.
    Copies stay copies under any number of steps of a loss that treats units alike; 2 steps
    show that training does not separate them (5 steps cost 2.5× as much and told nothing more).

    ## Example
    ```python
    def forward(self, x, h):
        W = torch.ones(self.hidden_size, x.shape[1]) * self.scale   # same row for every unit
    ```

    ## Use instead
    ```python
    self.W = nn.Parameter(torch.empty(hidden_size, input_size))
    nn.init.xavier_uniform_(self.W)
    ```
    """

    code = "GD604"
    name = "identical-unit-behaviour"
    category = "zero-init-symmetry"
    severity = Severity.ERROR
    requires = ("unit_copies",)
    thresholds = {"copy_rtol": 1e-9}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        rtol = ctx.threshold("copy_rtol")
        uc = ctx.m("unit_copies")
        same = np.asarray(uc["state_distance_init"]) <= rtol
        if uc["trained"]:
            same &= np.asarray(uc["state_distance_trained"]) <= rtol
            same &= np.asarray(uc["gradient_distance"]) <= rtol
        copies = _groups(same, None, rtol)
        if copies["distinct"] == copies["units"]:
            return
        static = copy_groups(ctx, rtol)
        if static is not None and static["distinct"] < static["units"]:
            return  # the parameters already show these copies (GD601-GD603)
        units, distinct = copies["units"], copies["distinct"]
        if distinct == 1:
            who = f"All {units} hidden units behave as identical copies (1 distinct unit)"
        else:
            shown = "; ".join(_units(g) for g in copies["groups"][:3])
            who = f"Hidden {shown} behave as identical copies ({distinct} distinct units of " \
                  f"{units})"
        if uc["trained"]:
            message = f"{who}: their states and gradients are the same before and after " \
                      f"{uc['steps']} SGD steps, although the parameters grudiag can read do " \
                      f"not show why"
            severity = Severity.ERROR
        else:
            message = f"{who}: their states are the same from an h0 that is equal across " \
                      f"units (training skipped: {uc['train_skip_reason']})"
            severity = Severity.WARNING
        yield ctx.finding(
            message,
            "Make sure every hidden unit has its own random weights: look for weights created "
            "inside forward, from torch.ones/np.ones/np.full, or broadcast from one row",
            severity=severity,
            evidence={"distinct_units": copies["distinct"], "units_compared": copies["units"],
                      "copy_groups": copies["groups"], "trained": uc["trained"],
                      "losses": uc.get("losses")},
        )
