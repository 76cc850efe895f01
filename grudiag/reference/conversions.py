"""Exact weight mappings between the canonical GRU parameters and framework layouts.

Canonical parameters: the 12 arrays of :data:`grudiag.reference.numpy_gru.PARAM_NAMES`, column
maths (``W @ x``), gate names r, z, n. Which *equations* they feed is chosen separately by a
:class:`~grudiag.reference.variants.Variant`; each function below says which variant its framework
layout computes. Mappings follow gru_formulations.md §3.1, §3.5 and §3.6: they are permutations of
gate blocks, transposes, concatenations, bias folding and the update flip, all exact in floating
point (a folded bias ``b_i + b_h`` is rounded once, and folding into ``b_i`` with ``b_h = 0`` makes
the round trip from the framework side bit-exact).

Every ``to_X`` has a ``from_X``; the dict-returning ones invert with ``from_X(**to_X(c))``.
Inputs may be NumPy arrays or torch tensors; outputs are fresh float64 NumPy arrays. A canonical
dict may omit its biases (treated as zero).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from .numpy_gru import BIAS_NAMES, PARAM_NAMES, sizes
from .torch_gru import ReferenceGRU, ReferenceGRUCell


def _arr(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().to("cpu", torch.float64).numpy().copy()
    return np.array(a, dtype=np.float64)


def _full(canonical: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """All 12 canonical arrays as float64 copies, missing biases filled with zeros."""
    c = {k: _arr(v) for k, v in canonical.items() if k in PARAM_NAMES}
    _, H = sizes(c)
    for name in BIAS_NAMES:
        c.setdefault(name, np.zeros(H))
    return c


def _expect(name: str, a: np.ndarray, shape: tuple[int, ...]) -> None:
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {shape}")


def _from_blocks(W_i: np.ndarray, W_h: np.ndarray, b_i: np.ndarray, b_h: np.ndarray,
                 order: str) -> dict[str, np.ndarray]:
    """Canonical dict from (3H, D), (3H, H), (3H,), (3H,) arrays whose row blocks are in ``order``."""
    H = W_h.shape[1]
    _expect("input weight", W_i, (3 * H, W_i.shape[1]))
    _expect("recurrent weight", W_h, (3 * H, H))
    _expect("input bias", b_i, (3 * H,))
    _expect("recurrent bias", b_h, (3 * H,))
    out = {}
    for k, gate in enumerate(order):
        rows = slice(k * H, (k + 1) * H)
        out[f"W_i{gate}"], out[f"W_h{gate}"] = W_i[rows].copy(), W_h[rows].copy()
        out[f"b_i{gate}"], out[f"b_h{gate}"] = b_i[rows].copy(), b_h[rows].copy()
    return {name: out[name] for name in PARAM_NAMES}


def _to_blocks(c: Mapping[str, np.ndarray], order: str) -> tuple[np.ndarray, ...]:
    """(W_i, W_h, b_i, b_h) with row blocks stacked in ``order`` (e.g. "rzn" or "zrn")."""
    return tuple(np.concatenate([c[f"{p}{g}"] for g in order]) for p in ("W_i", "W_h", "b_i", "b_h"))


# --------------------------------------------------------------------------------- PyTorch


def from_torch_cell(weight_ih, weight_hh, bias_ih=None, bias_hh=None) -> dict[str, np.ndarray]:
    """Canonical parameters from ``nn.GRUCell`` tensors (variant: PYTORCH).

    Layout: PyTorch ``weight_ih`` (3H, D), ``weight_hh`` (3H, H), ``bias_ih``/``bias_hh`` (3H,),
    row blocks r|z|n, column maths. Missing biases (``bias=False``) become zeros.
    """
    W_i, W_h = _arr(weight_ih), _arr(weight_hh)
    H = W_h.shape[1]
    b_i = np.zeros(3 * H) if bias_ih is None else _arr(bias_ih)
    b_h = np.zeros(3 * H) if bias_hh is None else _arr(bias_hh)
    return _from_blocks(W_i, W_h, b_i, b_h, "rzn")


def to_torch_cell(canonical: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Inverse of :func:`from_torch_cell`.

    Layout: PyTorch ``nn.GRUCell``; returns ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``
    with row blocks r|z|n.
    """
    W_i, W_h, b_i, b_h = _to_blocks(_full(canonical), "rzn")
    return {"weight_ih": W_i, "weight_hh": W_h, "bias_ih": b_i, "bias_hh": b_h}


def _gru_suffix(layer: int, reverse: bool) -> str:
    return f"_l{layer}" + ("_reverse" if reverse else "")


def from_torch_gru(state_dict_or_module, layer: int = 0, reverse: bool = False) -> dict[str, np.ndarray]:
    """Canonical parameters of one layer and direction of an ``nn.GRU`` (variant: PYTORCH).

    Layout: PyTorch ``nn.GRU`` state dict, ``weight_ih_l{layer}[_reverse]`` etc., row blocks r|z|n.
    For layer > 0 the input size is num_directions·H (the [forward, backward] outputs below).
    ``batch_first`` does not affect weights. A ``bias=False`` GRU gives zero biases.
    """
    sd = state_dict_or_module
    if isinstance(sd, nn.Module):
        sd = sd.state_dict()
    sfx = _gru_suffix(layer, reverse)
    if f"weight_ih{sfx}" not in sd:
        hint = " (for nn.GRUCell use from_torch_cell)" if "weight_ih" in sd else ""
        raise KeyError(f"no weight_ih{sfx} in the state dict{hint}")
    return from_torch_cell(sd[f"weight_ih{sfx}"], sd[f"weight_hh{sfx}"],
                           sd.get(f"bias_ih{sfx}"), sd.get(f"bias_hh{sfx}"))


def to_torch_gru_layer(canonical: Mapping[str, Any], layer: int = 0,
                       reverse: bool = False) -> dict[str, np.ndarray]:
    """Inverse of :func:`from_torch_gru`: the four ``nn.GRU`` entries of one layer and direction.

    Layout: PyTorch ``nn.GRU``; keys ``weight_ih_l{layer}[_reverse]``, ``weight_hh_…``,
    ``bias_ih_…``, ``bias_hh_…``, row blocks r|z|n.
    """
    sfx = _gru_suffix(layer, reverse)
    return {f"{k}{sfx}": v for k, v in to_torch_cell(canonical).items()}


def load_into(module: nn.Module, canonical: Mapping[str, Any], layer: int = 0,
              reverse: bool = False) -> nn.Module:
    """Copy canonical parameters into ``module`` in place and return it.

    Layout: ``nn.GRUCell`` (layer/reverse ignored), ``nn.GRU`` (the given layer and direction),
    or grudiag's ReferenceGRUCell / ReferenceGRU. Dtype and device follow the module. A module
    without biases refuses non-zero biases, because it could not compute the same function.
    """
    if isinstance(module, ReferenceGRUCell):
        return module.load_canonical(_full(canonical))
    if isinstance(module, ReferenceGRU):
        module.cell(layer, reverse).load_canonical(_full(canonical))
        return module
    is_cell = hasattr(module, "weight_ih")
    values = to_torch_cell(canonical) if is_cell else to_torch_gru_layer(canonical, layer, reverse)
    own = dict(module.named_parameters())
    for key, value in values.items():
        if key not in own:
            if key.startswith("bias") and not value.any():
                continue
            raise ValueError(f"{type(module).__name__} has no parameter {key!r} "
                             "(bias=False modules cannot hold non-zero biases)")
        _expect(key, value, tuple(own[key].shape))
    with torch.no_grad():
        for key, value in values.items():
            if key in own:
                own[key].copy_(torch.from_numpy(value))
    return module


# ----------------------------------------------------------------------------------- Keras


def to_keras(canonical: Mapping[str, Any], reset_after: bool = True
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras ``GRUCell`` weights ``(kernel, recurrent_kernel, bias)``.

    Layout: Keras/TF2 row maths ``x @ kernel``, columns z|r|h; kernel (D, 3H), recurrent_kernel
    (H, 3H). ``reset_after=True`` (variant PYTORCH): bias (2, 3H), row 0 input and row 1 recurrent.
    ``reset_after=False`` (variant CHO): bias (3H,), the input and recurrent biases folded (Keras
    has no recurrent bias there; in reset-before b_hn is outside the reset so folding is exact).
    """
    c = _full(canonical)
    kernel = np.concatenate([c["W_iz"].T, c["W_ir"].T, c["W_in"].T], axis=1)
    recurrent = np.concatenate([c["W_hz"].T, c["W_hr"].T, c["W_hn"].T], axis=1)
    b_i = np.concatenate([c["b_iz"], c["b_ir"], c["b_in"]])
    b_h = np.concatenate([c["b_hz"], c["b_hr"], c["b_hn"]])
    bias = np.stack([b_i, b_h]) if reset_after else b_i + b_h
    return kernel, recurrent, bias


def from_keras(kernel, recurrent_kernel, bias=None) -> dict[str, np.ndarray]:
    """Inverse of :func:`to_keras`; the bias shape tells the family.

    Layout: Keras ``GRUCell``. bias (2, 3H) means ``reset_after=True`` (evaluate with PYTORCH);
    bias (3H,) means ``reset_after=False`` (evaluate with CHO) and goes to the input-side
    biases with the recurrent ones zero; ``None`` (``use_bias=False``) gives zero biases.
    """
    K, U = _arr(kernel), _arr(recurrent_kernel)
    H = U.shape[0]
    _expect("recurrent_kernel", U, (H, 3 * H))
    b = np.zeros((2, 3 * H)) if bias is None else _arr(bias)
    if b.shape == (3 * H,):
        b = np.stack([b, np.zeros(3 * H)])
    _expect("bias", b, (2, 3 * H))
    return _from_blocks(K.T, U.T, b[0], b[1], "zrn")


# ------------------------------------------------------------------------------------ ONNX


def to_onnx(canonical: Mapping[str, Any], linear_before_reset: int = 1
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX ``GRU`` inputs ``(W (1, 3H, D), R (1, 3H, H), B (1, 6H))`` for one direction.

    Layout: ONNX, column maths (rows = outputs), gate order z|r|h, ``B = [Wb_zrh, Rb_zrh]``.
    ``linear_before_reset=1`` is reset-after (PYTORCH), ``0`` reset-before (CHO). The arrays are
    the same for both: ONNX's reset-before adds ``Rbh + Wbh`` outside the reset exactly as the
    canonical reset-before adds ``b_in + b_hn``. The argument only documents which attribute value
    the caller must set on the node.
    """
    if linear_before_reset not in (0, 1):
        raise ValueError("linear_before_reset must be 0 (reset-before) or 1 (reset-after)")
    W_i, W_h, b_i, b_h = _to_blocks(_full(canonical), "zrn")
    return W_i[None], W_h[None], np.concatenate([b_i, b_h])[None]


def from_onnx(W, R, B=None, direction: int = 0) -> dict[str, np.ndarray]:
    """Inverse of :func:`to_onnx`; ``direction`` picks 0 (forward) or 1 (reverse) of a
    bidirectional node.

    Layout: ONNX ``GRU`` ``W [dirs, 3H, D]``, ``R [dirs, 3H, H]``, ``B [dirs, 6H]`` (optional,
    zeros when absent), gate order z|r|h. The family comes from the node's
    ``linear_before_reset`` attribute, not from the weights.
    """
    W_, R_ = _arr(W)[direction], _arr(R)[direction]
    H = R_.shape[1]
    B_ = np.zeros(6 * H) if B is None else _arr(B)[direction]
    _expect("B", B_, (6 * H,))
    return _from_blocks(W_, R_, B_[:3 * H], B_[3 * H:], "zrn")


# ------------------------------------------------------------------- split (Cho et al.) form


def to_split(canonical: Mapping[str, Any], reset_after: bool = True) -> dict[str, np.ndarray]:
    """Cho-style per-gate matrices: ``Wz, Uz, bz, Wr, Ur, br, Wh, Uh, bh`` (+ ``bhn`` when
    ``reset_after``).

    Layout: column maths, ``r = σ(Wr x + Ur h + br)``, ``z = σ(Wz x + Uz h + bz)``,
    ``h' = z⊙h + (1−z)⊙h̃``, with one bias per gate (input and recurrent biases folded).
    ``reset_after=True`` (PYTORCH): ``h̃ = tanh(Wh x + bh + r⊙(Uh h + bhn))``; b_hn must stay
    separate because it sits inside the reset, hence the extra key.
    ``reset_after=False`` (CHO): ``h̃ = tanh(Wh x + Uh (r⊙h) + bh)`` with ``bh = b_in + b_hn``.
    """
    c = _full(canonical)
    out = {"Wz": c["W_iz"], "Uz": c["W_hz"], "bz": c["b_iz"] + c["b_hz"],
           "Wr": c["W_ir"], "Ur": c["W_hr"], "br": c["b_ir"] + c["b_hr"],
           "Wh": c["W_in"], "Uh": c["W_hn"]}
    if reset_after:
        out.update(bh=c["b_in"], bhn=c["b_hn"])
    else:
        out["bh"] = c["b_in"] + c["b_hn"]
    return out


def from_split(Wz, Uz, bz, Wr, Ur, br, Wh, Uh, bh, bhn=None) -> dict[str, np.ndarray]:
    """Inverse of :func:`to_split`. Folded biases go to the input side (``b_h* = 0``); a given
    ``bhn`` becomes ``b_hn`` (reset-after), otherwise ``b_hn = 0``.

    Layout: Cho-style split matrices, column maths.
    """
    Uh_ = _arr(Uh)
    H = Uh_.shape[0]
    zero = np.zeros(H)
    c = {"W_ir": _arr(Wr), "W_iz": _arr(Wz), "W_in": _arr(Wh),
         "W_hr": _arr(Ur), "W_hz": _arr(Uz), "W_hn": Uh_,
         "b_ir": _arr(br), "b_iz": _arr(bz), "b_in": _arr(bh),
         "b_hr": zero.copy(), "b_hz": zero.copy(), "b_hn": zero.copy() if bhn is None else _arr(bhn)}
    sizes(c)
    return {name: c[name] for name in PARAM_NAMES}


# ------------------------------------------------------------- concatenated-input layouts


def to_concat_hx(canonical: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Andrew Ng's (deeplearning.ai) full GRU: ``Wu, bu, Wr, br, Wc, bc`` acting on ``[c; x]``.

    Layout: column maths on the hidden-first concatenation ``[h; x]``, each W (H, H + D);
    ``Γu = σ(Wu[h;x] + bu)``, ``Γr = σ(Wr[h;x] + br)``, ``c̃ = tanh(Wc[Γr⊙h; x] + bc)``,
    ``h' = Γu⊙c̃ + (1−Γu)⊙h``. Reset-before, and Γu = 1 − z, so the update-gate parameters are
    negated: ``Wu = [−W_hz | −W_iz]``, ``bu = −(b_iz + b_hz)``. The canonical parameters are then
    evaluated with CHO.
    """
    c = _full(canonical)
    return {"Wu": -np.hstack([c["W_hz"], c["W_iz"]]), "bu": -(c["b_iz"] + c["b_hz"]),
            "Wr": np.hstack([c["W_hr"], c["W_ir"]]), "br": c["b_ir"] + c["b_hr"],
            "Wc": np.hstack([c["W_hn"], c["W_in"]]), "bc": c["b_in"] + c["b_hn"]}


def from_concat_hx(Wu, bu, Wr, br, Wc, bc) -> dict[str, np.ndarray]:
    """Inverse of :func:`to_concat_hx` (biases on the input side, recurrent ones zero).

    Layout: Andrew Ng's hidden-first ``[c; x]`` weights with the flipped update gate.
    """
    Wu_, Wr_, Wc_ = _arr(Wu), _arr(Wr), _arr(Wc)
    H = Wu_.shape[0]
    zero = np.zeros(H)
    c = {"W_hz": -Wu_[:, :H], "W_iz": -Wu_[:, H:], "b_iz": -_arr(bu), "b_hz": zero.copy(),
         "W_hr": Wr_[:, :H], "W_ir": Wr_[:, H:], "b_ir": _arr(br), "b_hr": zero.copy(),
         "W_hn": Wc_[:, :H], "W_in": Wc_[:, H:], "b_in": _arr(bc), "b_hn": zero.copy()}
    sizes(c)
    return {name: c[name].copy() for name in PARAM_NAMES}


def to_tf1(canonical: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """TF1 ``tf.nn.rnn_cell.GRUCell`` / ``GRUBlockCell`` weights.

    Layout: row maths on the input-first concatenation ``[x, h]``:
    ``[r, u] = σ([x, h] @ gate_kernel + gate_bias)`` with gate_kernel (D+H, 2H), columns r|u;
    ``c = tanh([x, r⊙h] @ candidate_kernel + candidate_bias)`` with candidate_kernel (D+H, H);
    ``h' = u⊙h + (1−u)⊙c``. Reset-before with u = z (evaluate with CHO); biases folded.
    """
    c = _full(canonical)
    return {"gate_kernel": np.block([[c["W_ir"].T, c["W_iz"].T], [c["W_hr"].T, c["W_hz"].T]]),
            "gate_bias": np.concatenate([c["b_ir"] + c["b_hr"], c["b_iz"] + c["b_hz"]]),
            "candidate_kernel": np.vstack([c["W_in"].T, c["W_hn"].T]),
            "candidate_bias": c["b_in"] + c["b_hn"]}


def from_tf1(gate_kernel, gate_bias, candidate_kernel, candidate_bias) -> dict[str, np.ndarray]:
    """Inverse of :func:`to_tf1` (biases on the input side, recurrent ones zero).

    Layout: TF1 input-first ``[x, h]`` kernels, gate columns r|u.
    """
    G, C = _arr(gate_kernel), _arr(candidate_kernel)
    gb, cb = _arr(gate_bias), _arr(candidate_bias)
    H = C.shape[1]
    D = C.shape[0] - H
    _expect("gate_kernel", G, (D + H, 2 * H))
    _expect("gate_bias", gb, (2 * H,))
    zero = np.zeros(H)
    c = {"W_ir": G[:D, :H].T, "W_iz": G[:D, H:].T, "W_hr": G[D:, :H].T, "W_hz": G[D:, H:].T,
         "W_in": C[:D].T, "W_hn": C[D:].T,
         "b_ir": gb[:H], "b_iz": gb[H:], "b_in": cb, "b_hr": zero, "b_hz": zero, "b_hn": zero}
    sizes(c)
    return {name: c[name].copy() for name in PARAM_NAMES}


# ----------------------------------------------------------------------------- update flip


def flip_update(canonical: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Negate every update-gate parameter (W_iz, W_hz, b_iz, b_hz); its own inverse.

    Layout: canonical → canonical. Because σ(−a) = 1 − σ(a), the result under the "chung" update
    (``h' = (1−z)h + z n``) computes exactly what the input computes under the "torch" update
    (``h' = (1−z)n + z h``), and vice versa, in either family. Gradients map by negation too.
    Biases absent from the input stay absent.
    """
    out = {k: _arr(v) for k, v in canonical.items()}
    for name in ("W_iz", "W_hz", "b_iz", "b_hz"):
        if name in out:
            out[name] = -out[name]
    return out
