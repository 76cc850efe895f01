"""The template GRU cell that every mutant is built from, in torch and NumPy.

One backend-agnostic forward (and hand-written backward) over canonical per-gate blocks
(``Wi[g]`` (H, I), ``Wh[g]`` (H, H), ``bi[g]``, ``bh[g]`` for g in r, z, n) whose pieces a
:class:`Spec` replaces. The wrappers store the parameters the way hand-written code does:

* torch: fused ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), ``bias_ih``, ``bias_hh`` (3H,),
  gate order r|z|n, like ``nn.GRUCell`` (autograd, or a custom ``autograd.Function``);
* NumPy: row maths ``x @ Wx`` with ``Wx`` (I, 3H), ``Wh`` (H, 3H), ``bx``, ``bh`` (3H,), with an
  optional ``backward(dh)`` returning gradients keyed by parameter name plus ``x``/``h_prev``.

The sequence wrappers (``forward(x, h0=None) -> (outputs, h_n)``, time-major) own the same
parameters and run the template cell in a loop whose pieces a Spec can also replace.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

GATES = ("r", "z", "n")


@dataclass(frozen=True)
class Spec:
    family: str = "after"            # "after" (PyTorch) | "before" (Cho)
    update: str = "torch"            # "torch": (1-z)n + zh | "chung": (1-z)h + zn
    bias: bool = True
    gate_act: str = "sigmoid"        # | "tanh" | "relu" | "naive_sigmoid"
    cand_act: str = "tanh"           # | "relu" | "sigmoid" | "identity"
    out_act: str | None = None       # "tanh": h' squashed again
    reset: str = "family"            # | "none" | "input" | "outside"
    same_gate: bool = False          # the update gate also used as the reset gate
    blend: str = "convex"            # | "zz" | "sum" | "no_keep" | "no_1mz"
    drop_rec: tuple = ()             # gates whose recurrent term W_h* h is dropped
    drop_in: tuple = ()              # gates whose input term W_i* x is dropped
    drop_bias: tuple = ()            # ("hn",) or ("all",): declared, never added
    swap_rz: bool = False            # r and z roles exchanged (equivalent: gate order)
    rec_transposed: bool = False     # W_h* used as (in, out) (equivalent: square matrix)
    in_view: bool = False            # W_ih reshaped with view (equivalent: bijection of entries)
    in_transposed: bool = False      # x @ W_i* instead of x @ W_i*.T (fails when I != H)
    detach_h: bool = False           # h.detach() inside the cell
    state_reshape: bool = False      # h.reshape(H, B).T: batch and hidden axes mixed
    stateful: bool = False           # the cell keeps its own h and ignores later arguments
    init: str = "default"            # see init_params
    loop: str = "carry"              # sequence loop, see seq_forward
    bwd: str | None = None           # backward mutation, see cell_backward
    flip_params: bool = False        # negate the update gate's parameters (with update flip)

    def with_(self, **kw) -> Spec:
        return replace(self, **kw)


class NumpyOps:
    tanh = staticmethod(np.tanh)

    @staticmethod
    def sigmoid(a):
        return np.exp(-np.logaddexp(0.0, -a))

    @staticmethod
    def naive_sigmoid(a):
        return 1.0 / (1.0 + np.exp(-a))

    @staticmethod
    def relu(a):
        return np.maximum(a, 0.0)

    @staticmethod
    def detach(a):
        return a


class TorchOps:
    tanh = staticmethod(torch.tanh)
    sigmoid = staticmethod(torch.sigmoid)
    relu = staticmethod(torch.relu)

    @staticmethod
    def naive_sigmoid(a):
        return 1.0 / (1.0 + torch.exp(-a))

    @staticmethod
    def detach(a):
        return a.detach()


def _act(ops, name):
    if name == "identity":
        return lambda a: a
    return getattr(ops, name)


def cell_forward(ops, S: Spec, P: dict, x, h):
    """One step on canonical blocks. x (B, I), h (B, H) -> (h_new, cache)."""
    if S.detach_h:
        h = ops.detach(h)
    if S.state_reshape and h.ndim == 2:
        h = h.reshape(h.shape[1], h.shape[0]).T
    Wi, Wh, bi, bh = P["Wi"], P["Wh"], P["bi"], P["bh"]
    use_b = S.bias and "all" not in S.drop_bias

    def pre(g):
        a = 0.0
        if g not in S.drop_in:
            a = x @ (Wi[g] if S.in_transposed else Wi[g].T)
            if use_b:
                a = a + bi[g]
        return a

    def rec(g):
        if g in S.drop_rec:
            return 0.0
        W = Wh[g] if S.rec_transposed else Wh[g].T
        return h @ W

    def rec_b(g):
        return bh[g] if use_b and not (g == "n" and "hn" in S.drop_bias) else 0.0

    gact = _act(ops, S.gate_act)
    gr, gz = ("z", "r") if S.swap_rz else ("r", "z")
    r = gact(pre(gr) + rec(gr) + rec_b(gr))
    z = gact(pre(gz) + rec(gz) + rec_b(gz))
    if S.same_gate:
        r = z
    reset = S.reset if S.reset != "family" else S.family
    hn = rec("n") + rec_b("n")            # W_hn h + b_hn
    if reset == "after":
        a_n = pre("n") + r * hn
    elif reset == "before":
        Wt = Wh["n"] if S.rec_transposed else Wh["n"].T
        a_n = pre("n") + rec_b("n") + (0.0 if "n" in S.drop_rec else (r * h) @ Wt)
    elif reset == "none":
        a_n = pre("n") + hn
    elif reset == "input":
        a_n = r * pre("n") + hn
    elif reset == "outside":
        a_n = pre("n") + hn
    n = _act(ops, S.cand_act)(a_n)
    if reset == "outside":
        n = r * n
    zn, zh = (1 - z, z) if S.update == "torch" else (z, 1 - z)
    if S.blend == "convex":
        h_new = zn * n + zh * h
    elif S.blend == "zz":
        h_new = zh * n + zh * h
    elif S.blend == "sum":
        h_new = zn * (h + n)
    elif S.blend == "no_keep":
        h_new = zn * n
    elif S.blend == "no_1mz":
        h_new = n + zh * h
    if S.out_act:
        h_new = _act(ops, S.out_act)(h_new)
    return h_new, (x, h, r, z, n, hn)


def cell_backward(S: Spec, P: dict, cache, dh):
    """Hand-written backward of the *correct* template forward for S.family/S.update/S.bias,
    with the mutation S.bwd applied. Returns canonical gradients plus x and h_prev."""
    x, h, r, z, n, hn = cache
    Wi, Wh = P["Wi"], P["Wh"]
    m = S.bwd
    if S.update == "torch":
        dn, dz, dh_prev = dh * (1 - z), dh * (h - n), dh * z
    else:
        dn, dz, dh_prev = dh * z, dh * (n - h), dh * (1 - z)
    if m == "sign_dz":
        dz = -dz
    if m == "no_direct":
        dh_prev = 0 * dh_prev
    da_n = dn if m == "no_tanh_deriv" else dn * (1 - n * n)
    g = {}
    if S.family == "after":
        dr = da_n * hn
        dhn = da_n if m == "no_reset_factor" else da_n * r
        g["Wh_n"] = h.T @ dhn if m == "dW_transposed" else dhn.T @ h
        g["bh_n"] = dhn.sum(0)
        dh_prev = dh_prev + dhn @ Wh["n"]
    else:
        d_rh = da_n @ Wh["n"]
        rh = h if m == "no_reset_factor" else r * h
        g["Wh_n"] = rh.T @ da_n if m == "dW_transposed" else da_n.T @ rh
        g["bh_n"] = da_n.sum(0)
        dr = d_rh * h
        dh_prev = dh_prev + d_rh * r
    g["Wi_n"] = da_n.T @ x
    g["bi_n"] = da_n.sum(0)
    dx = da_n @ Wi["n"]
    da_z = dz if m == "no_sigmoid_deriv" else dz * z * (1 - z)
    da_r = dr * r * (1 - r)
    for gate, da in (("z", da_z), ("r", da_r)):
        g["Wi_" + gate] = da.T @ x
        g["Wh_" + gate] = da.T @ h
        g["bi_" + gate] = da.sum(0)
        g["bh_" + gate] = da.sum(0)
        dx = dx + da @ Wi[gate]
        dh_prev = dh_prev + da @ Wh[gate]
    if m == "sign_dx":
        dx = -dx
    return g, dx, dh_prev


# ------------------------------------------------------------------------------------------
# Initialisation (on canonical float64 NumPy blocks, then stored)
# ------------------------------------------------------------------------------------------

def init_params(I: int, H: int, S: Spec, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    s = 1.0 / math.sqrt(H)
    P = {"Wi": {g: rng.uniform(-s, s, (H, I)) for g in GATES},
         "Wh": {g: rng.uniform(-s, s, (H, H)) for g in GATES},
         "bi": {g: rng.uniform(-s, s, H) for g in GATES},
         "bh": {g: rng.uniform(-s, s, H) for g in GATES}}
    k = S.init
    if k == "zero_bias":                       # correct (Keras): biases start at zero
        for g in GATES:
            P["bi"][g][:] = 0.0
            P["bh"][g][:] = 0.0
    elif k == "keras":                          # correct: glorot input, orthogonal recurrent
        lim = math.sqrt(6.0 / (I + 3 * H))
        for g in GATES:
            P["Wi"][g] = rng.uniform(-lim, lim, (H, I))
            q, rr = np.linalg.qr(rng.normal(size=(H, H)))
            P["Wh"][g] = q * np.sign(np.diag(rr))
            P["bi"][g][:] = 0.0
            P["bh"][g][:] = 0.0
    elif k == "small_normal":                   # correct: N(0, 0.1)
        for part in ("Wi", "Wh"):
            for g in GATES:
                P[part][g] = rng.normal(0.0, 0.1, P[part][g].shape)
    elif k == "zero":
        for part in ("Wi", "Wh"):
            for g in GATES:
                P[part][g][:] = 0.0
    elif k == "zero_hh":
        for g in GATES:
            P["Wh"][g][:] = 0.0
    elif k == "const":
        for part in ("Wi", "Wh"):
            for g in GATES:
                P[part][g][:] = 0.1
    elif k == "dup_units":                      # unit 1 a copy of unit 0 everywhere
        for g in GATES:
            for part in ("Wi", "Wh", "bi", "bh"):
                P[part][g][1] = P[part][g][0]
            P["Wh"][g][:, 1] = P["Wh"][g][:, 0]
    elif k == "large":                          # 10x too large: saturated gates and candidate
        for part in ("Wi", "Wh", "bi", "bh"):
            for g in GATES:
                P[part][g] = P[part][g] * 10.0
    elif k == "update_pinned":                  # update-gate bias +10 (e.g. forget-bias habit)
        P["bi"]["z"][:] = 10.0 if S.update == "torch" else -10.0
    elif k != "default":
        raise ValueError(k)
    if S.flip_params:                           # the Chung form with negated z parameters
        for part in ("Wi", "Wh", "bi", "bh"):
            P[part]["z"] = -P[part]["z"]
    if not S.bias:
        for part in ("bi", "bh"):
            for g in GATES:
                P[part][g][:] = 0.0
    return P


# ------------------------------------------------------------------------------------------
# torch wrappers
# ------------------------------------------------------------------------------------------

def _torch_blocks(mod):
    H = mod.hidden_size
    if mod.spec.in_view:
        Wih = mod.weight_ih.reshape(-1).view(3 * H, mod.input_size)
    else:
        Wih = mod.weight_ih
    Wi = dict(zip(GATES, Wih.chunk(3, 0)))
    Wh = dict(zip(GATES, mod.weight_hh.chunk(3, 0)))
    if mod.spec.bias:
        bi = dict(zip(GATES, mod.bias_ih.chunk(3, 0)))
        bh = dict(zip(GATES, mod.bias_hh.chunk(3, 0)))
    else:
        bi = bh = {g: 0.0 for g in GATES}
    return {"Wi": Wi, "Wh": Wh, "bi": bi, "bh": bh}


class _TorchParams(nn.Module):
    def __init__(self, input_size, hidden_size, spec: Spec, seed: int = 0):
        super().__init__()
        self.input_size, self.hidden_size, self.spec = input_size, hidden_size, spec
        P = init_params(input_size, hidden_size, spec, seed)
        cat = lambda part: torch.tensor(np.concatenate([P[part][g] for g in GATES]),
                                        dtype=torch.float32)
        if spec.in_view:   # stored (I, 3H) in x @ W orientation, then view()ed as (3H, I)
            self.weight_ih = nn.Parameter(cat("Wi").reshape(-1).view(input_size, 3 * hidden_size))
        else:
            self.weight_ih = nn.Parameter(cat("Wi"))
        self.weight_hh = nn.Parameter(cat("Wh"))
        if spec.bias:
            self.bias_ih = nn.Parameter(cat("bi"))
            self.bias_hh = nn.Parameter(cat("bh"))


class TorchCell(_TorchParams):
    """forward(x, h=None) -> h_new, autograd."""

    def __init__(self, input_size, hidden_size, spec: Spec = Spec(), seed: int = 0):
        super().__init__(input_size, hidden_size, spec, seed)
        self.h = None

    def forward(self, x, h=None):
        if h is None:
            h = x.new_zeros(x.shape[:-1] + (self.hidden_size,))
        if self.spec.stateful:
            if self.h is not None and self.h.shape == h.shape:
                h = self.h
        unbatched = x.dim() == 1
        if unbatched:
            x, h = x[None], h[None]
        h_new, _ = cell_forward(TorchOps, self.spec, _torch_blocks(self), x, h)
        if self.spec.stateful:
            self.h = h_new.detach()[0] if unbatched else h_new.detach()
        return h_new[0] if unbatched else h_new


class _GRUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h, w_ih, w_hh, b_ih, b_hh, spec):
        P = _blocks_from(w_ih, w_hh, b_ih, b_hh, spec)
        h_new, cache = cell_forward(TorchOps, spec, P, x, h)
        ctx.spec, ctx.cache = spec, cache
        ctx.save_for_backward(w_ih, w_hh, b_ih, b_hh)
        return h_new

    @staticmethod
    def backward(ctx, dh):
        w_ih, w_hh, b_ih, b_hh = ctx.saved_tensors
        spec = ctx.spec
        P = _blocks_from(w_ih, w_hh, b_ih, b_hh, spec)
        g, dx, dh_prev = cell_backward(spec, P, ctx.cache, dh)
        dwi = torch.cat([g["Wi_" + k] for k in GATES])
        dwh = torch.cat([g["Wh_" + k] for k in GATES])
        dbi = torch.cat([g["bi_" + k] for k in GATES]) if spec.bias else None
        dbh = torch.cat([g["bh_" + k] for k in GATES]) if spec.bias else None
        return dx, dh_prev, dwi, dwh, dbi, dbh, None


def _blocks_from(w_ih, w_hh, b_ih, b_hh, spec):
    return {"Wi": dict(zip(GATES, w_ih.chunk(3, 0))), "Wh": dict(zip(GATES, w_hh.chunk(3, 0))),
            "bi": dict(zip(GATES, b_ih.chunk(3, 0))) if spec.bias else {g: 0.0 for g in GATES},
            "bh": dict(zip(GATES, b_hh.chunk(3, 0))) if spec.bias else {g: 0.0 for g in GATES}}


class TorchFunctionCell(_TorchParams):
    """forward(x, h=None) -> h_new through a custom autograd.Function (hand-written backward)."""

    def forward(self, x, h=None):
        if h is None:
            h = x.new_zeros(x.shape[:-1] + (self.hidden_size,))
        unbatched = x.dim() == 1
        if unbatched:
            x, h = x[None], h[None]
        out = _GRUFunction.apply(x, h, self.weight_ih, self.weight_hh,
                                 getattr(self, "bias_ih", None), getattr(self, "bias_hh", None),
                                 self.spec)
        return out[0] if unbatched else out


class TorchSeq(_TorchParams):
    """forward(x, h0=None) -> (outputs (T, B, H), h_n (B, H)), time-major."""

    def __init__(self, input_size, hidden_size, spec: Spec = Spec(), seed: int = 0):
        super().__init__(input_size, hidden_size, spec, seed)
        self.h = None

    def forward(self, x, h0=None):
        L = self.spec.loop
        if L == "view_bt":                     # treats (T, B, I) as batch-first with view()
            x = x.reshape(x.shape[1], x.shape[0], x.shape[2]).transpose(0, 1)
        if h0 is None:
            h0 = x.new_zeros(x.shape[1], self.hidden_size)
            if L == "stateful" and self.h is not None and self.h.shape == h0.shape:
                h0 = self.h
        if L == "ignore_h0":
            h0 = x.new_zeros(x.shape[1], self.hidden_size)
        P = _torch_blocks(self)
        h, outs = h0, []
        steps = range(x.shape[0] - 1, -1, -1) if L == "reverse" else range(x.shape[0])
        for t in steps:
            prev = h0 if L == "h0" else h
            if L == "off_by_one":
                outs.append(h)
            h, _ = cell_forward(TorchOps, self.spec, P, x[t], prev)
            if L == "detach":
                h = h.detach()
            elif L == "data":
                h = h.data
            elif L == "numpy_roundtrip":
                h = torch.from_numpy(h.detach().cpu().numpy())
            if L != "off_by_one":
                outs.append(h)
        if L == "reverse":
            outs = outs[::-1]
        if L == "stateful":
            self.h = h.detach()
        return torch.stack(outs), h


# ------------------------------------------------------------------------------------------
# NumPy wrappers
# ------------------------------------------------------------------------------------------

class _NumpyParams:
    def __init__(self, input_size, hidden_size, spec: Spec = Spec(), seed: int = 0):
        self.input_size, self.hidden_size, self.spec = input_size, hidden_size, spec
        P = init_params(input_size, hidden_size, spec, seed)
        # row maths: x @ Wx with Wx (I, 3H)
        self.Wx = np.concatenate([P["Wi"][g] for g in GATES]).T.copy()
        self.Wh = np.concatenate([P["Wh"][g] for g in GATES]).T.copy()
        if spec.bias:
            self.bx = np.concatenate([P["bi"][g] for g in GATES])
            self.bh = np.concatenate([P["bh"][g] for g in GATES])
        self.cache = None
        self.state = None

    def _blocks(self):
        H = self.hidden_size
        sl = {g: slice(k * H, (k + 1) * H) for k, g in enumerate(GATES)}
        zero = {g: 0.0 for g in GATES}
        return {"Wi": {g: self.Wx[:, sl[g]].T for g in GATES},
                "Wh": {g: self.Wh[:, sl[g]].T for g in GATES},
                "bi": {g: self.bx[sl[g]] for g in GATES} if self.spec.bias else zero,
                "bh": {g: self.bh[sl[g]] for g in GATES} if self.spec.bias else zero}


class NumpyCell(_NumpyParams):
    """forward(x, h_prev) -> h, row layout; no backward (grudiag uses finite differences)."""

    def forward(self, x, h_prev):
        if self.spec.stateful and self.state is not None and self.state.shape == np.shape(h_prev):
            h_prev = self.state
        unbatched = np.ndim(x) == 1
        x2, h2 = (x[None], h_prev[None]) if unbatched else (x, h_prev)
        h, cache = cell_forward(NumpyOps, self.spec, self._blocks(), x2, h2)
        self.cache = cache
        if self.spec.stateful:
            self.state = h[0] if unbatched else h
        return h[0] if unbatched else h


class NumpyBackwardCell(NumpyCell):
    """NumpyCell plus backward(dh) -> {"Wx", "Wh", "bx", "bh", "x", "h_prev"}."""

    def backward(self, dh):
        unbatched = np.ndim(dh) == 1
        dh2 = dh[None] if unbatched else dh
        g, dx, dh_prev = cell_backward(self.spec, self._blocks(), self.cache, dh2)
        out = {"Wx": np.concatenate([g["Wi_" + k] for k in GATES]).T,
               "Wh": np.concatenate([g["Wh_" + k] for k in GATES]).T,
               "x": dx[0] if unbatched else dx, "h_prev": dh_prev[0] if unbatched else dh_prev}
        if self.spec.bias:
            out["bx"] = np.concatenate([g["bi_" + k] for k in GATES])
            out["bh"] = np.concatenate([g["bh_" + k] for k in GATES])
        return out


class NumpySeq(_NumpyParams):
    """forward(X, h0) -> (hs (T, B, H), h_T), time-major."""

    def forward(self, X, h0):
        L = self.spec.loop
        if L == "stateful" and self.state is not None and self.state.shape == np.shape(h0):
            h0 = self.state
        if L == "ignore_h0":
            h0 = np.zeros_like(h0)
        P = self._blocks()
        h, outs = h0, []
        steps = range(X.shape[0] - 1, -1, -1) if L == "reverse" else range(X.shape[0])
        for t in steps:
            prev = h0 if L == "h0" else h
            if L == "off_by_one":
                outs.append(h)
            h, _ = cell_forward(NumpyOps, self.spec, P, X[t], prev)
            if L != "off_by_one":
                outs.append(h)
        if L == "reverse":
            outs = outs[::-1]
        if L == "stateful":
            self.state = h
        return np.stack(outs), h


# ------------------------------------------------------------------------------------------
# Unmappable storage: every parameter in one flat vector (grudiag's conventions probe cannot
# map it onto a GRU, so only black-box checks can judge the equations)
# ------------------------------------------------------------------------------------------

_PARTS = ("Wi", "Wh", "bi", "bh")


def _flat(P) -> np.ndarray:
    return np.concatenate([np.ravel(P[part][g]) for part in _PARTS for g in GATES])


def _unflat(theta, I, H, bias):
    out, k = {part: {} for part in _PARTS}, 0
    for part in _PARTS:
        shape = {"Wi": (H, I), "Wh": (H, H)}.get(part, (H,))
        for g in GATES:
            m = int(np.prod(shape))
            out[part][g] = theta[k:k + m].reshape(shape)
            k += m
    if not bias:
        out["bi"] = out["bh"] = {g: 0.0 for g in GATES}
    return out


class TorchFlatCell(nn.Module):
    """forward(x, h=None) -> h_new with all parameters in one flat ``theta``."""

    def __init__(self, input_size, hidden_size, spec: Spec = Spec(), seed: int = 0):
        super().__init__()
        self.input_size, self.hidden_size, self.spec = input_size, hidden_size, spec
        P = init_params(input_size, hidden_size, spec, seed)
        self.theta = nn.Parameter(torch.tensor(_flat(P), dtype=torch.float32))

    def forward(self, x, h=None):
        if h is None:
            h = x.new_zeros(x.shape[:-1] + (self.hidden_size,))
        unbatched = x.dim() == 1
        if unbatched:
            x, h = x[None], h[None]
        P = _unflat(self.theta, self.input_size, self.hidden_size, self.spec.bias)
        h_new, _ = cell_forward(TorchOps, self.spec, P, x, h)
        return h_new[0] if unbatched else h_new


class NumpyFlatCell:
    """forward(x, h_prev) -> h with all parameters in one flat ``theta``."""

    def __init__(self, input_size, hidden_size, spec: Spec = Spec(), seed: int = 0):
        self.input_size, self.hidden_size, self.spec = input_size, hidden_size, spec
        self.theta = _flat(init_params(input_size, hidden_size, spec, seed))

    def forward(self, x, h_prev):
        unbatched = np.ndim(x) == 1
        x2, h2 = (x[None], h_prev[None]) if unbatched else (x, h_prev)
        P = _unflat(self.theta, self.input_size, self.hidden_size, self.spec.bias)
        h, _ = cell_forward(NumpyOps, self.spec, P, x2, h2)
        return h[0] if unbatched else h
