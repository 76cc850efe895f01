"""Float64 NumPy GRU reference with exact analytic backpropagation through time.

Canonical parameters are a dict of the 12 arrays in :data:`PARAM_NAMES`, in column maths
(``W @ x``, ``W`` of shape (out, in)); gate blocks follow PyTorch's naming (r, z, n; ``i`` = input
side, ``h`` = hidden side). Arrays here carry the batch as the leading axis, so ``W @ x`` is
written ``x @ W.T``. The equations for each :class:`~grudiag.reference.variants.Variant` are in
``variants.py``.

This module is the ground truth that torch_gru.py and grudiag's checks are compared against,
so it favours clarity over speed and keeps every intermediate needed by :func:`backward`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .variants import PYTORCH, Variant

WEIGHT_NAMES = ("W_ir", "W_iz", "W_in", "W_hr", "W_hz", "W_hn")
BIAS_NAMES = ("b_ir", "b_iz", "b_in", "b_hr", "b_hz", "b_hn")
PARAM_NAMES = WEIGHT_NAMES + BIAS_NAMES

Params = Mapping[str, np.ndarray]


def param_shapes(input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
    """Shape of every canonical parameter for input size D and hidden size H."""
    D, H = input_size, hidden_size
    shapes: dict[str, tuple[int, ...]] = {n: (H, D) for n in ("W_ir", "W_iz", "W_in")}
    shapes.update({n: (H, H) for n in ("W_hr", "W_hz", "W_hn")})
    shapes.update({n: (H,) for n in BIAS_NAMES})
    return shapes


def sizes(params: Params) -> tuple[int, int]:
    """(input_size, hidden_size) of a canonical dict, after checking every shape.

    Bias keys may be absent (a bias-free cell); present ones must have shape (H,).
    """
    missing = [n for n in WEIGHT_NAMES if n not in params]
    if missing:
        raise KeyError(f"canonical GRU parameters lack {missing}")
    H, D = np.shape(params["W_ir"])
    expected = param_shapes(D, H)
    for name, shape in expected.items():
        if name in params and tuple(np.shape(params[name])) != shape:
            raise ValueError(f"{name} has shape {tuple(np.shape(params[name]))}, expected {shape}")
    return D, H


def init_params(input_size: int, hidden_size: int, rng: np.random.Generator,
                scale: float | None = None, bias: bool = True) -> dict[str, np.ndarray]:
    """Random canonical parameters, every entry U(−scale, scale); scale defaults to 1/√H like PyTorch.

    Biases are drawn too (non-zero), because zero biases hide the reset-after/reset-before
    difference at h = 0. With ``bias=False`` the six biases are present but exactly zero.
    """
    if scale is None:
        scale = 1.0 / np.sqrt(hidden_size)
    params = {}
    for name, shape in param_shapes(input_size, hidden_size).items():
        if name in BIAS_NAMES and not bias:
            params[name] = np.zeros(shape)
        else:
            params[name] = rng.uniform(-scale, scale, size=shape)
    return params


def sigmoid(a: np.ndarray) -> np.ndarray:
    # exp(-log(1 + e^-a)) never overflows, unlike 1 / (1 + e^-a) for a < -709.
    return np.exp(-np.logaddexp(0.0, -a))


def _bias(params: Params, name: str, hidden_size: int, variant: Variant) -> np.ndarray:
    if not variant.bias:
        return np.zeros(hidden_size)
    return np.asarray(params[name], dtype=np.float64)


def _weights(params: Params) -> dict[str, np.ndarray]:
    return {n: np.asarray(params[n], dtype=np.float64) for n in WEIGHT_NAMES}


@dataclass
class StepCache:
    """Everything one step computed; ``r``, ``z``, ``n`` are the gate activations, ``a_*`` their
    pre-activations. ``hn_lin`` is what the reset gate multiplies: ``W_hn h + b_hn`` in
    reset-after, ``h`` itself in reset-before (where ``r ⊙ h`` then goes through ``W_hn``)."""

    x: np.ndarray
    h: np.ndarray
    a_r: np.ndarray
    a_z: np.ndarray
    a_n: np.ndarray
    r: np.ndarray
    z: np.ndarray
    n: np.ndarray
    hn_lin: np.ndarray
    h_new: np.ndarray


def step(params: Params, x: np.ndarray, h: np.ndarray,
         variant: Variant = PYTORCH) -> tuple[np.ndarray, StepCache]:
    """One GRU step. x (B, D) or (D,), h (B, H) or (H,) -> (h_new, cache).

    Unbatched inputs are promoted to a batch of one and the result squeezed back; the cache
    always holds batched arrays.
    """
    x = np.asarray(x, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    unbatched = x.ndim == 1
    if unbatched != (h.ndim == 1):
        raise ValueError(f"x and h must both be batched or both unbatched, got {x.shape} and {h.shape}")
    if unbatched:
        x, h = x[None], h[None]
    D, H = sizes(params)
    if x.ndim != 2 or x.shape[1] != D or h.shape != (x.shape[0], H):
        raise ValueError(f"expected x (B, {D}) and h (B, {H}), got {x.shape} and {h.shape}")
    W = _weights(params)
    b = {n: _bias(params, n, H, variant) for n in BIAS_NAMES}

    a_r = x @ W["W_ir"].T + b["b_ir"] + h @ W["W_hr"].T + b["b_hr"]
    a_z = x @ W["W_iz"].T + b["b_iz"] + h @ W["W_hz"].T + b["b_hz"]
    r, z = sigmoid(a_r), sigmoid(a_z)
    if variant.reset_after:
        hn_lin = h @ W["W_hn"].T + b["b_hn"]
        a_n = x @ W["W_in"].T + b["b_in"] + r * hn_lin
    else:
        hn_lin = h
        a_n = x @ W["W_in"].T + b["b_in"] + b["b_hn"] + (r * h) @ W["W_hn"].T
    n = np.tanh(a_n)
    h_new = (1.0 - z) * n + z * h if variant.update == "torch" else (1.0 - z) * h + z * n

    cache = StepCache(x=x, h=h, a_r=a_r, a_z=a_z, a_n=a_n, r=r, z=z, n=n, hn_lin=hn_lin, h_new=h_new)
    return (h_new[0] if unbatched else h_new), cache


def forward(params: Params, xs: np.ndarray, h0: np.ndarray,
            variant: Variant = PYTORCH) -> tuple[np.ndarray, list[StepCache]]:
    """Run a sequence. xs (T, B, D), h0 (B, H) -> (hs (T, B, H) holding h_1..h_T, caches)."""
    xs = np.asarray(xs, dtype=np.float64)
    if xs.ndim != 3 or np.ndim(h0) != 2:
        raise ValueError(f"forward expects xs (T, B, D) and h0 (B, H), got {xs.shape} and {np.shape(h0)}")
    h = np.asarray(h0, dtype=np.float64)
    hs, caches = [], []
    for x in xs:
        h, cache = step(params, x, h, variant)
        hs.append(h)
        caches.append(cache)
    H = sizes(params)[1]
    out = np.stack(hs) if hs else np.zeros((0, xs.shape[1], H))
    return out, caches


def backward(params: Params, caches: Sequence[StepCache], dhs: np.ndarray,
             variant: Variant = PYTORCH) -> dict[str, np.ndarray]:
    """Exact BPTT for ``forward``. dhs (T, B, H) is dL/dh_t for t = 1..T (zeros on steps that
    carry no loss, so any subset of steps is covered).

    Returns the gradient of every name in :data:`PARAM_NAMES` (biases are zero when
    ``variant.bias`` is False), plus ``"xs"`` (T, B, D) and ``"h0"`` (B, H).
    ``variant`` must be the one the caches were computed with.
    """
    D, H = sizes(params)
    W = _weights(params)
    dhs = np.asarray(dhs, dtype=np.float64)
    if not caches:
        raise ValueError("backward needs at least one step")
    if dhs.shape != (len(caches),) + caches[0].h.shape:
        raise ValueError(f"dhs must have shape {(len(caches),) + caches[0].h.shape}, got {dhs.shape}")
    grads = {n: np.zeros(s) for n, s in param_shapes(D, H).items()}
    dxs = np.zeros((len(caches),) + caches[0].x.shape)
    dh_next = np.zeros_like(caches[0].h)

    for t in reversed(range(len(caches))):
        c = caches[t]
        dh = dhs[t] + dh_next
        if variant.update == "torch":
            dn, dz, dh_prev = dh * (1.0 - c.z), dh * (c.h - c.n), dh * c.z
        else:
            dn, dz, dh_prev = dh * c.z, dh * (c.n - c.h), dh * (1.0 - c.z)
        da_n = dn * (1.0 - c.n ** 2)
        da_z = dz * c.z * (1.0 - c.z)

        grads["W_in"] += da_n.T @ c.x
        grads["b_in"] += da_n.sum(0)
        dx = da_n @ W["W_in"]
        if variant.reset_after:
            dr = da_n * c.hn_lin
            dhn = da_n * c.r
            grads["W_hn"] += dhn.T @ c.h
            grads["b_hn"] += dhn.sum(0)
            dh_prev = dh_prev + dhn @ W["W_hn"]
        else:
            # b_hn sits outside the reset here, so it receives exactly b_in's gradient.
            grads["b_hn"] += da_n.sum(0)
            grads["W_hn"] += da_n.T @ (c.r * c.h)
            drh = da_n @ W["W_hn"]
            dr = drh * c.h
            dh_prev = dh_prev + drh * c.r
        da_r = dr * c.r * (1.0 - c.r)

        for gate, da in (("r", da_r), ("z", da_z)):
            grads[f"W_i{gate}"] += da.T @ c.x
            grads[f"W_h{gate}"] += da.T @ c.h
            # Both biases enter only through a_gate, so their gradients are one and the same sum.
            db = da.sum(0)
            grads[f"b_i{gate}"] += db
            grads[f"b_h{gate}"] += db
            dx = dx + da @ W[f"W_i{gate}"]
            dh_prev = dh_prev + da @ W[f"W_h{gate}"]
        dxs[t] = dx
        dh_next = dh_prev

    if not variant.bias:
        for name in BIAS_NAMES:
            grads[name] = np.zeros(H)
    grads["xs"] = dxs
    grads["h0"] = dh_next
    return grads


def gates(caches: Sequence[StepCache]) -> dict[str, np.ndarray]:
    """Gate activations over time: {"r", "z", "n"} each (T, B, H)."""
    return {g: np.stack([getattr(c, g) for c in caches]) for g in ("r", "z", "n")}
