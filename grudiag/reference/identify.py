"""Which GRU does a subject implement? A bounded search over parameter layouts and equations.

The subject's parameters (user names, user shapes) are classified by shape into weight blocks
(input side ``x``, recurrent side ``h``, concatenated ``[h, x]`` / ``[x, h]``) and bias blocks
(``H`` entries each). The search then finds the role of every block and the equations, by
comparing the subject with a float64 reference step *on copies of the subject with random
parameters* (``with_parameters``), so that zero biases, diagonal or symmetric recurrent weights
and identical gate blocks cannot hide a difference (gru_formulations.md §0.3, §5.3):

* stage A, ``h = 0`` and zero biases: only the input blocks matter; find their roles (r, z, n),
  the update form and the candidate activation (6 permutations × orientations × models);
* stage B, ``h ≠ 0`` and zero biases: the recurrent blocks, their orientation and the family
  (reset-after / reset-before);
* stage C, one bias block at a time: its role (r, z, n input side, n recurrent side), or unused;
* confirmation: all random parameters together, then the subject's own parameters, both at
  ``h ≠ 0``; a candidate is accepted only when both match.

Correct models (the four variants of :mod:`.variants`, with a sigmoid or one of the two
hard-sigmoid gate activations) are searched first; only when none is confirmed is the library
of known mistakes searched (one mistake at a time). When nothing matches, the nearest correct
candidate is reported with the size and place of the disagreement. The whole search costs about
a dozen calls of the subject and a few thousand small NumPy steps.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .numpy_gru import PARAM_NAMES

#: a candidate is kept when the subject agrees with it to this max |Δh| (float32 subjects agree
#: to ~1e-7 with weights of this size; different equations differ by ~1e-1)
SEARCH_ATOL = 2e-5

ROLES = ("r", "z", "n")
BIAS_ROLES = ("r", "z", "n", "hn")
_BIAS_KEY = {"r": "b_ir", "z": "b_iz", "n": "b_in", "hn": "b_hn"}


class NotMappable(Exception):
    """The parameters cannot be laid out as a GRU's; the reason is shown to the user."""


# ----------------------------------------------------------------------------- models


def _sigmoid(a):
    return np.exp(-np.logaddexp(0.0, -a))


def _hard_sigmoid(a):  # Keras 1/2 backend
    return np.clip(0.2 * a + 0.5, 0.0, 1.0)


def _hard_sigmoid6(a):  # Keras 3, torch.nn.Hardsigmoid
    return np.clip(a / 6.0 + 0.5, 0.0, 1.0)


GATE_ACTS = {"sigmoid": _sigmoid, "hard-sigmoid": _hard_sigmoid, "hard-sigmoid-1/6": _hard_sigmoid6}
CAND_ACTS = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0), "identity": lambda a: a,
             "sigmoid": _sigmoid}

#: mistake id -> (short title, what it means); ids are stable, checks key on them
MISTAKES = {
    "candidate-relu": "the candidate uses relu instead of tanh",
    "candidate-identity": "the candidate has no activation (identity instead of tanh)",
    "candidate-sigmoid": "the candidate uses sigmoid instead of tanh",
    "state-tanh": "tanh is applied again to the new state",
    "reset-unused": "the reset gate is computed but never used (r ≡ 1)",
    "reset-is-update": "one gate is used as both the reset and the update gate; the other "
                       "gate's weights have no effect",
    "reset-on-input": "the reset gate multiplies the input term (W_in x + b_in) instead of the "
                      "recurrent term",
    "update-not-convex": "the update is not a convex blend (z·h + z·n instead of "
                         "(1-z)·n + z·h)",
    "recurrence-ignored": "the previous state has no effect (h_prev is never used)",
    "bias-unused": "a bias parameter is never added",
}


@dataclass(frozen=True)
class Model:
    """The equations of one candidate: a correct variant, or a variant with one known mistake."""

    family: str = "reset-after"
    update: str = "torch"  # torch | chung | sum-z | sum-1mz (the last two are mistakes)
    gate: str = "sigmoid"
    candidate: str = "tanh"
    output: str = "identity"  # identity | tanh
    reset: str = "normal"  # normal | unused | update-gate | on-input
    ignores_h: bool = False

    @property
    def mistake(self) -> str | None:
        if self.candidate != "tanh":
            return f"candidate-{self.candidate}"
        if self.output == "tanh":
            return "state-tanh"
        if self.reset == "unused":
            return "reset-unused"
        if self.reset == "update-gate":
            return "reset-is-update"
        if self.reset == "on-input":
            return "reset-on-input"
        if self.update in ("sum-z", "sum-1mz"):
            return "update-not-convex"
        if self.ignores_h:
            return "recurrence-ignored"
        return None

    @property
    def family_matters(self) -> bool:
        return self.reset not in ("unused", "on-input") and not self.ignores_h

    @property
    def update_form(self) -> str:
        return {"torch": "h' = (1-z)·n + z·h", "chung": "h' = (1-z)·h + z·n",
                "sum-z": "h' = z·h + z·n", "sum-1mz": "h' = (1-z)·h + (1-z)·n"}[self.update]

    def step(self, P: Mapping[str, np.ndarray], x: np.ndarray, h: np.ndarray,
             products: dict | None = None) -> np.ndarray:
        """One step. ``products`` caches ``x @ W.T`` and ``h @ W.T`` across calls that share
        the weights, x and h: the models tried on one layout, the biases tried on one model.
        They are most of the search's arithmetic at large hidden sizes."""
        g = GATE_ACTS[self.gate]
        hh = np.zeros_like(h) if self.ignores_h else h

        def times(v: np.ndarray, key: str) -> np.ndarray:
            if products is None:
                return v @ P[key].T
            slot = (key, v is hh and self.ignores_h)
            if slot not in products:
                products[slot] = v @ P[key].T
            return products[slot]

        r = g(times(x, "W_ir") + times(hh, "W_hr") + P["b_ir"])
        z = g(times(x, "W_iz") + times(hh, "W_hz") + P["b_iz"])
        if self.reset == "unused":
            r = 1.0
        elif self.reset == "update-gate":
            r = z
        xin = times(x, "W_in") + P["b_in"]
        if self.reset == "on-input":
            a_n = r * xin + times(hh, "W_hn") + P["b_hn"]
        elif self.family == "reset-after":
            a_n = xin + r * (times(hh, "W_hn") + P["b_hn"])
        else:
            a_n = xin + P["b_hn"] + (r * hh) @ P["W_hn"].T
        n = CAND_ACTS[self.candidate](a_n)
        if self.update == "torch":
            out = (1.0 - z) * n + z * hh
        elif self.update == "chung":
            out = (1.0 - z) * hh + z * n
        elif self.update == "sum-z":
            out = z * (hh + n)
        else:
            out = (1.0 - z) * (hh + n)
        return np.tanh(out) if self.output == "tanh" else out

    def run(self, P: Mapping[str, np.ndarray], xs: np.ndarray, h0: np.ndarray,
            products: dict | None = None) -> np.ndarray:
        """``products`` (see `step`) is only usable for one step: later states differ."""
        if len(xs) == 1:
            return self.step(P, xs[0], h0, products)[None]
        h, out = h0, []
        for x in xs:
            h = self.step(P, x, h)
            out.append(h)
        return np.stack(out)


def correct_models() -> list[Model]:
    """Families are expanded in stage B, so stage A models carry the default family."""
    return [Model(update=u, gate=g) for g in GATE_ACTS for u in ("torch", "chung")]


def mistake_models() -> list[Model]:
    out: list[Model] = []
    for u in ("torch", "chung"):
        base = Model(update=u)
        out += [replace(base, candidate=c) for c in ("relu", "identity", "sigmoid")]
        out += [replace(base, output="tanh")]
        out += [replace(base, reset=r) for r in ("unused", "update-gate", "on-input")]
        out += [replace(base, ignores_h=True)]
    out += [Model(update="sum-z"), Model(update="sum-1mz")]
    return out


# ----------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class WeightBlock:
    """Rows ``k*H:(k+1)*H`` of one user weight, taken in column maths (``W x``)."""

    name: str
    orient: str  # "col": user array is (out, in) as in W x; "row": (in, out) as in x W;
    #              "view": (in, out) reshaped (not transposed) to (out, in)
    kind: str  # "x" | "h" | "cat"
    k: int
    nblocks: int
    transposed: bool = False  # this square block used as h W instead of W h


@dataclass(frozen=True)
class BiasBlock:
    name: str
    k: int
    nblocks: int


@dataclass
class Layout:
    """A complete mapping of the user's parameters onto the canonical 12."""

    weights: list[tuple[WeightBlock, str]]  # (block, role in r|z|n)
    biases: list[tuple[BiasBlock, str | None]]  # (block, role in r|z|n|hn, or None: unused)
    cat_order: str | None  # "hx" ([h, x]) or "xh" ([x, h]) for concatenated weights
    D: int
    H: int

    def canonical(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        D, H = self.D, self.H
        P: dict[str, np.ndarray] = {}
        for blk, role in self.weights:
            M = _oriented(arrays[blk.name], blk.orient)[blk.k * H:(blk.k + 1) * H]
            if blk.transposed:
                M = M.T
            if blk.kind == "x":
                P[f"W_i{role}"] = M
            elif blk.kind == "h":
                P[f"W_h{role}"] = M
            elif self.cat_order == "hx":
                P[f"W_h{role}"], P[f"W_i{role}"] = M[:, :H], M[:, H:]
            else:
                P[f"W_i{role}"], P[f"W_h{role}"] = M[:, :D], M[:, D:]
        # zeros only where no block lands: at large H most of the search's allocations
        for names, shape in ((("W_ir", "W_iz", "W_in"), (H, D)), (("W_hr", "W_hz", "W_hn"), (H, H)),
                             (("b_ir", "b_iz", "b_in", "b_hr", "b_hz", "b_hn"), (H,))):
            for n in names:
                if n not in P:
                    P[n] = np.zeros(shape)
        for blk, role in self.biases:
            if role is not None:
                key = _BIAS_KEY[role]
                P[key] = P[key] + np.reshape(arrays[blk.name], -1)[blk.k * H:(blk.k + 1) * H]
        return P

    def mapping(self) -> dict[str, str]:
        """Canonical name -> where it comes from in the user's parameters (for evidence)."""
        H = self.H
        out: dict[str, str] = {}
        for blk, role in self.weights:
            rows = f"[{blk.k * H}:{(blk.k + 1) * H}]" if blk.nblocks > 1 else ""
            width = {"x": self.D, "h": H, "cat": self.D + H}[blk.kind]
            src = blk.name + {"col": "", "row": ".T", "view": f".view({blk.nblocks * H}, {width})"
                              }[blk.orient] + rows + (".T" if blk.transposed else "")
            if blk.kind == "cat":
                cols_h = f"[:, :{H}]" if self.cat_order == "hx" else f"[:, {self.D}:]"
                cols_x = f"[:, {H}:]" if self.cat_order == "hx" else f"[:, :{self.D}]"
                out[f"W_h{role}"], out[f"W_i{role}"] = src + cols_h, src + cols_x
            else:
                out[f"W_{'i' if blk.kind == 'x' else 'h'}{role}"] = src
        for blk, role in self.biases:
            rows = f"[{blk.k * H}:{(blk.k + 1) * H}]" if blk.nblocks > 1 else ""
            key = _BIAS_KEY[role] if role else "unused"
            out.setdefault(key, "")
            out[key] = (out[key] + " + " if out[key] else "") + blk.name + rows
        return out

    def unusual(self) -> list[str]:
        """Readings of the weights that only the widened search tries, in words."""
        H = self.H
        out = []
        for blk, role in self.weights:
            span = f"{blk.k * H}:{(blk.k + 1) * H}"
            rows = ("" if blk.nblocks == 1 else
                    f"[:, {span}]" if blk.orient == "row" else f"[{span}]")
            if blk.orient == "view":
                out.append(f"{blk.name} is reshaped (view) where a transpose was likely meant")
            if blk.transposed:
                out.append(f"{blk.name}{rows} (the {role} block) is used transposed, h·W "
                           "instead of W·h")
        return list(dict.fromkeys(out))

    def gate_orders(self) -> dict[str, str]:
        """For each fused user weight/bias: its gate order, e.g. ``{"weight_ih": "r|z|n"}``."""
        orders: dict[str, list[str]] = {}
        for blk, role in self.weights:
            if blk.nblocks > 1:
                orders.setdefault(blk.name, [""] * blk.nblocks)[blk.k] = role
        for blk, role in self.biases:
            if blk.nblocks > 1:
                orders.setdefault(blk.name, [""] * blk.nblocks)[blk.k] = (
                    {"hn": "n"}.get(role, role) if role else "-")
        return {k: "|".join(v) for k, v in orders.items()}


def _oriented(a: np.ndarray, orient: str) -> np.ndarray:
    if orient == "view":
        return np.reshape(a, a.shape[::-1])
    return a if orient == "col" else a.T


@dataclass
class _Param:
    name: str
    shape: tuple[int, ...]
    options: list[tuple[str, str, int]] = field(default_factory=list)  # (orient, kind, nblocks)
    bias_blocks: int = 0


def classify(params: Mapping[str, np.ndarray], D: int, H: int) -> list[_Param]:
    """Every parameter as a weight (with its possible orientations) or a bias; else NotMappable."""
    kinds = {D: "x", H: "h", D + H: "cat"}
    out = []
    for name, value in params.items():
        shape = tuple(np.shape(value))
        p = _Param(name, shape)
        if len(shape) == 2 and min(shape) > 1:
            for orient, (o, i) in (("col", shape), ("row", shape[::-1])):
                if o % H == 0 and 1 <= o // H <= 3 and i in kinds:
                    kind = "x|h" if (i == D == H) else kinds[i]
                    p.options.append((orient, kind, o // H))
        if not p.options:
            size = int(np.prod(shape)) if shape else 1
            if len(shape) <= 2 and size % H == 0 and 1 <= size // H <= 6:
                p.bias_blocks = size // H
            else:
                raise NotMappable(
                    f"parameter {name!r} of shape {shape} is neither a GRU weight nor a bias "
                    f"for input size {D} and hidden size {H}")
        out.append(p)
    return out


# ----------------------------------------------------------------------------- search


@dataclass
class Match:
    model: Model
    layout: Layout
    error_random: float = float("nan")  # max |Δh| with random parameters
    error_own: float = float("nan")  # max |Δh| with the subject's own parameters


@dataclass
class Result:
    status: str  # "identified" | "mistake" | "unmatched"
    match: Match | None  # the identified variant / the mistake / the nearest correct candidate
    mistake: str | None = None
    mistake_detail: dict[str, Any] = field(default_factory=dict)
    subject_calls: int = 0
    candidates: int = 0


class _Observer:
    """Runs copies of the subject with given parameter values; counts the calls."""

    def __init__(self, subject, rng: np.random.Generator):
        self.subject = subject
        self.rng = rng
        self.calls = 0
        self.accepts_h0 = bool(getattr(subject, "accepts_h0", True))

    def __call__(self, arrays: Mapping[str, np.ndarray], xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
        self.calls += 1
        sub = self.subject.with_parameters(dict(arrays))
        hs = np.asarray(sub.run(xs, h0), dtype=np.float64)
        if not np.all(np.isfinite(hs)):
            raise NotMappable("the subject returns NaN/Inf with random parameters, so its "
                              "equations cannot be compared")
        return hs


def _maxdiff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b))) if a.shape == b.shape else float("inf")


class Identifier:
    def __init__(self, subject, rng: np.random.Generator, batch: int = 4):
        self.subject = subject
        self.D, self.H = int(subject.input_size), int(subject.hidden_size)
        self.own = {k: _to_numpy(v) for k, v in subject.parameters().items()}
        if not self.own:
            raise NotMappable("the subject exposes no parameters")
        self.params = classify(self.own, self.D, self.H)
        self.rng = rng
        self.obs = _Observer(subject, rng)
        self.B = batch
        self.candidates = 0
        #: also try readings that are reparameterisations rather than conventions (`widen`)
        self.widened = False
        D, H, B = self.D, self.H, batch
        # random parameter values in the user's shapes (generic: non-diagonal, non-symmetric)
        self.rand_w = {p.name: rng.uniform(-0.6, 0.6, p.shape) for p in self.params if p.options}
        self.rand_b = {p.name: rng.uniform(-0.6, 0.6, p.shape) for p in self.params if not p.options}
        self.zero_b = {p.name: np.zeros(p.shape) for p in self.params if not p.options}
        self.xA = rng.normal(0.0, 1.0, (1, B, D))
        self.hA = np.zeros((B, H))
        self.T = 1 if self.obs.accepts_h0 else 2
        self.xB = rng.normal(0.0, 1.0, (self.T, B, D))
        self.hB = rng.uniform(-0.8, 0.8, (B, H)) if self.obs.accepts_h0 else np.zeros((B, H))
        self.xC = rng.normal(0.0, 1.0, (self.T, B, D))
        self.hC = rng.uniform(-0.8, 0.8, (B, H)) if self.obs.accepts_h0 else np.zeros((B, H))
        self._resolve_kinds()
        x_sets = list(self._blocks("x"))
        n_cat = max((sum(blk.kind == "cat" for blk in bs) for bs in x_sets), default=0)
        for label, counts in (("input", {len(bs) for bs in x_sets} or {0}),
                              ("recurrent", {len(bs) + n_cat for bs in self._blocks("h")} or {n_cat})):
            if 3 not in counts:
                raise NotMappable(
                    f"the weights give {min(counts)} {label} gate blocks of {H} rows where a GRU "
                    "has 3 (multi-layer, bidirectional or non-GRU cells are not mapped)")
        self.yA = self.obs({**self.rand_w, **self.zero_b}, self.xA, self.hA)
        self.yB = self.obs({**self.rand_w, **self.zero_b}, self.xB, self.hB)
        self._yC: dict[tuple[str, int], np.ndarray] = {}

    # -- D == H: tell input weights from recurrent ones by whether they act at h = 0
    def _resolve_kinds(self) -> None:
        ambiguous = [p for p in self.params if any(k == "x|h" for _, k, _ in p.options)]
        if not ambiguous:
            return
        base = self.obs({**self.rand_w, **self.zero_b}, self.xA, self.hA)
        for p in ambiguous:
            other = dict(self.rand_w)
            other[p.name] = self.rng.uniform(-0.6, 0.6, p.shape)
            moved = _maxdiff(self.obs({**other, **self.zero_b}, self.xA, self.hA), base) > SEARCH_ATOL
            kind = "x" if moved else "h"
            p.options = [(o, kind if k == "x|h" else k, n) for o, k, n in p.options]

    def _options(self, p: _Param) -> list[tuple[str, str, int]]:
        """A parameter's readings; the widened search adds `view` for every transposed one."""
        if not self.widened:
            return p.options
        return p.options + [("view", k, n) for o, k, n in p.options
                            if o == "row" and p.shape[0] != p.shape[1]]

    def _blocks(self, side: str):
        """Every orientation choice of the weights on one side: lists of WeightBlock. The
        widened search also tries every subset of the square recurrent blocks transposed."""
        params = [p for p in self.params if p.options and
                  any((k in ("x", "cat")) == (side == "x") for _, k, _ in p.options)]
        per_param = [[[WeightBlock(p.name, o, k, j, n) for j in range(n)]
                      for (o, k, n) in self._options(p)] for p in params]
        for combo in itertools.product(*per_param):
            blocks = [b for blocks in combo for b in blocks]
            square = [i for i, b in enumerate(blocks) if b.kind == "h"]
            if not (self.widened and square):
                yield blocks
                continue
            for flips in itertools.product((False, True), repeat=len(square)):
                out = list(blocks)
                for i, flip in zip(square, flips):
                    out[i] = replace(out[i], transposed=flip)
                yield out

    # -- stage A: input blocks, at h = 0 with zero biases
    def stage_a(self, models: list[Model], nearest: bool):
        scored = []
        has_cat = any(k == "cat" for p in self.params for _, k, _ in p.options)
        for blocks in self._blocks("x"):
            if len(blocks) != 3:
                continue
            for cat in (("hx", "xh") if has_cat else (None,)):
                for perm in itertools.permutations(ROLES):
                    layout = Layout(list(zip(blocks, perm)), [], cat, self.D, self.H)
                    P = layout.canonical(self.rand_w)
                    products: dict = {}
                    for m in models:
                        self.candidates += 1
                        err = _maxdiff(m.run(P, self.xA, self.hA, products), self.yA)
                        scored.append((err, layout, m))
        return _keep(scored, nearest)

    # -- stage B: recurrent blocks and family, at h != 0 with zero biases
    def stage_b(self, survivors, nearest: bool):
        scored = []
        h_sets = [b for b in self._blocks("h")]
        for _, layout_a, m in survivors:
            cat_roles = [r for b, r in layout_a.weights if b.kind == "cat"]
            free = [r for r in ROLES if r not in cat_roles]
            families = ("reset-after", "reset-before") if m.family_matters else (m.family,)
            for hblocks in h_sets:
                if len(hblocks) != len(free):
                    continue
                for perm in itertools.permutations(free):
                    layout = Layout(layout_a.weights + list(zip(hblocks, perm)), [],
                                    layout_a.cat_order, self.D, self.H)
                    P = layout.canonical(self.rand_w)
                    products: dict | None = {} if len(self.xB) == 1 else None
                    for fam in families:
                        mm = replace(m, family=fam)
                        self.candidates += 1
                        err = _maxdiff(mm.run(P, self.xB, self.hB, products), self.yB)
                        scored.append((err, layout, mm))
        return _keep(scored, nearest)

    # -- stage C: each bias block alone
    def stage_c(self, survivors, nearest: bool, allow_unused: bool):
        out = []
        bias_blocks = [BiasBlock(p.name, j, p.bias_blocks) for p in self.params if not p.options
                       for j in range(p.bias_blocks)]
        for _, layout_b, m in survivors:
            P0 = layout_b.canonical(self.rand_w)
            products: dict | None = {} if len(self.xB) == 1 else None
            roles: list[tuple[BiasBlock, str | None]] = []
            worst = 0.0
            unused = []
            for blk in bias_blocks:
                arrays = {**self.rand_w, **self._one_bias(blk)}
                y = self._obs_bias(blk, arrays)
                best = (float("inf"), None)
                for role in BIAS_ROLES:
                    P = dict(P0)
                    key = _BIAS_KEY[role]
                    P[key] = np.reshape(arrays[blk.name], -1)[blk.k * self.H:(blk.k + 1) * self.H]
                    self.candidates += 1
                    err = _maxdiff(m.run(P, self.xB, self.hB, products), y)
                    if err < best[0]:
                        best = (err, role)
                    if err <= SEARCH_ATOL:
                        break
                if best[0] > SEARCH_ATOL and _maxdiff(y, self.yB) <= SEARCH_ATOL:
                    best = (_maxdiff(y, self.yB), None)
                    unused.append(blk)
                worst = max(worst, best[0])
                roles.append((blk, best[1]))
            if unused and not allow_unused:
                continue
            layout = Layout(layout_b.weights, roles, layout_b.cat_order, self.D, self.H)
            out.append((worst, layout, m))
        return _keep(out, nearest)

    def _one_bias(self, blk: BiasBlock) -> dict[str, np.ndarray]:
        arrays = {k: v.copy() for k, v in self.zero_b.items()}
        flat = arrays[blk.name].reshape(-1)
        flat[blk.k * self.H:(blk.k + 1) * self.H] = np.reshape(self.rand_b[blk.name], -1)[
            blk.k * self.H:(blk.k + 1) * self.H]
        arrays[blk.name] = flat.reshape(self.zero_b[blk.name].shape)
        return arrays

    def _obs_bias(self, blk: BiasBlock, arrays) -> np.ndarray:
        key = (blk.name, blk.k)
        if key not in self._yC:
            self._yC[key] = self.obs(arrays, self.xB, self.hB)
        return self._yC[key]

    # -- confirmation on all random parameters, then on the subject's own
    def confirm(self, layout: Layout, m: Model) -> Match:
        rand = {**self.rand_w, **self.rand_b}
        er = _maxdiff(m.run(layout.canonical(rand), self.xC, self.hC), self.obs(rand, self.xC, self.hC))
        eo = _maxdiff(m.run(layout.canonical(self.own), self.xC, self.hC),
                      self.obs(self.own, self.xC, self.hC))
        return Match(m, layout, er, eo)

    def search(self, models: list[Model], nearest: bool = False, allow_unused: bool = False,
               limit: int = 8) -> Match | None:
        a = self.stage_a(models, nearest)
        if not a:
            return None
        b = self.stage_b(a[:limit * 4], nearest)
        if not b:
            return None
        c = self.stage_c(b[:limit], nearest, allow_unused)
        for _, layout, m in c[:limit]:
            match = self.confirm(layout, m)
            if nearest or max(match.error_random, match.error_own) <= SEARCH_ATOL:
                return match
        return None


def _keep(scored, nearest: bool):
    scored.sort(key=lambda t: t[0])
    if nearest:
        return scored[:1]
    return [s for s in scored if s[0] <= SEARCH_ATOL]


def _to_numpy(v: Any) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu().double().numpy()
    return np.array(v, dtype=np.float64)


def identify(subject, rng: np.random.Generator) -> Result:
    """Identify the subject's variant; raises NotMappable when its parameters cannot be mapped."""
    ident = Identifier(subject, rng)
    match = ident.search(correct_models())
    if match is None:
        # a square recurrent block used transposed, or a weight reshaped where a transpose was
        # meant: still a GRU (the matrix is learned), only under an unusual reading
        ident.widened = True
        match = ident.search(correct_models())
        ident.widened = False
    if match is not None:
        return Result("identified", match, subject_calls=ident.obs.calls, candidates=ident.candidates)
    # one known mistake: an unused bias on a correct model, or a mutated equation
    match = ident.search(correct_models()[:2], allow_unused=True)
    if match is not None:
        unused = [b.name + (f"[{b.k * ident.H}:{(b.k + 1) * ident.H}]" if b.nblocks > 1 else "")
                  for b, r in match.layout.biases if r is None]
        if unused:
            return Result("mistake", match, "bias-unused", {"unused_biases": unused},
                          ident.obs.calls, ident.candidates)
    match = ident.search(mistake_models())
    if match is not None:
        return Result("mistake", match, match.model.mistake, {}, ident.obs.calls, ident.candidates)
    match = ident.search(correct_models()[:2], nearest=True, allow_unused=True)
    return Result("unmatched", match, subject_calls=ident.obs.calls, candidates=ident.candidates)


__all__ = ["CAND_ACTS", "GATE_ACTS", "Identifier", "Layout", "MISTAKES", "Match", "Model",
           "NotMappable", "PARAM_NAMES", "Result", "SEARCH_ATOL", "classify", "identify"]
