"""PyTorch GRU reference written with explicit tensor ops (not ``nn.GRU``), for any device and dtype.

It evaluates every :class:`~grudiag.reference.variants.Variant` on canonical parameters
(the same 12 names as numpy_gru.py) and is differentiable by autograd, so it serves both as a
forward reference on the user's device and as a gradient reference. The modules mirror
``nn.GRUCell``/``nn.GRU`` closely enough (shapes, ``hx=None``, initialisation and its use of the
global RNG) that they can stand in for them in a user's code.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .numpy_gru import BIAS_NAMES, PARAM_NAMES, WEIGHT_NAMES
from .variants import PYTORCH, Variant


def step(params: Mapping[str, Tensor], x: Tensor, h: Tensor, variant: Variant = PYTORCH,
         record: dict | None = None) -> Tensor:
    """One GRU step. x (B, D) or (D,), h (B, H) or (H,) -> h_new of h's shape.

    If ``record`` is a dict, the detached gate activations are appended to its lists
    ``record["r"]``, ``record["z"]`` and ``record["n"]`` (created when missing).
    """
    p = params

    def b(name: str) -> Tensor | None:
        # F.linear with bias=None skips the addition, so no zero tensors of the wrong dtype/device.
        return p[name] if variant.bias else None

    r = torch.sigmoid(F.linear(x, p["W_ir"], b("b_ir")) + F.linear(h, p["W_hr"], b("b_hr")))
    z = torch.sigmoid(F.linear(x, p["W_iz"], b("b_iz")) + F.linear(h, p["W_hz"], b("b_hz")))
    if variant.reset_after:
        a_n = F.linear(x, p["W_in"], b("b_in")) + r * F.linear(h, p["W_hn"], b("b_hn"))
    else:
        a_n = F.linear(x, p["W_in"], b("b_in")) + F.linear(r * h, p["W_hn"], b("b_hn"))
    n = torch.tanh(a_n)
    h_new = (1 - z) * n + z * h if variant.update == "torch" else (1 - z) * h + z * n
    if record is not None:
        for name, value in (("r", r), ("z", z), ("n", n)):
            record.setdefault(name, []).append(value.detach())
    return h_new


def forward(params: Mapping[str, Tensor], xs: Tensor, h0: Tensor, variant: Variant = PYTORCH,
            record: dict | None = None) -> Tensor:
    """Run a sequence. xs (T, B, D), h0 (B, H) -> (T, B, H) holding h_1..h_T (unbatched ok)."""
    h = h0
    hs = []
    for x in xs:
        h = step(params, x, h, variant, record)
        hs.append(h)
    if not hs:
        return h0.new_zeros((0,) + tuple(h0.shape))
    return torch.stack(hs)


def to_torch(params_np: Mapping[str, np.ndarray], device=None,
             dtype: torch.dtype = torch.float64) -> dict[str, Tensor]:
    """Canonical NumPy parameters -> tensors (every key present is converted)."""
    return {k: torch.as_tensor(np.asarray(v), dtype=dtype, device=device) for k, v in params_np.items()}


def to_numpy(params: Mapping[str, Tensor]) -> dict[str, np.ndarray]:
    """Canonical tensors -> float64 NumPy arrays (detached, on the CPU)."""
    return {k: v.detach().to("cpu", torch.float64).numpy() for k, v in params.items()}


class ReferenceGRUCell(nn.Module):
    """Drop-in for ``nn.GRUCell`` computing any variant with explicit ops.

    Parameters are registered under the canonical names. ``reset_parameters`` draws from torch's
    global RNG in the same order and shapes as ``nn.GRUCell``, so after the same
    ``torch.manual_seed`` both cells hold the same numbers (for the PyTorch variant, the same cell).
    ``bias=False`` (or ``variant.bias=False``) registers no bias at all.
    """

    def __init__(self, input_size: int, hidden_size: int, variant: Variant = PYTORCH,
                 bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.variant = replace(variant, bias=variant.bias and bias)
        factory = {"device": device, "dtype": dtype}
        names = PARAM_NAMES if self.variant.bias else WEIGHT_NAMES
        shapes = {"i": (hidden_size, input_size), "h": (hidden_size, hidden_size), "b": (hidden_size,)}
        for name in names:
            kind = "b" if name.startswith("b_") else name[2]
            self.register_parameter(name, nn.Parameter(torch.empty(shapes[kind], **factory)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        # nn.GRUCell draws weight_ih, weight_hh, bias_ih, bias_hh as (3H, ·) blocks in r|z|n
        # order; drawing the same blocks and splitting them reproduces its numbers exactly.
        groups = [("W_ir", "W_iz", "W_in"), ("W_hr", "W_hz", "W_hn")]
        if self.variant.bias:
            groups += [("b_ir", "b_iz", "b_in"), ("b_hr", "b_hz", "b_hn")]
        with torch.no_grad():
            for group in groups:
                first = getattr(self, group[0])
                block = torch.empty((3 * first.shape[0],) + tuple(first.shape[1:]),
                                    device=first.device, dtype=first.dtype)
                block.uniform_(-stdv, stdv)
                for name, chunk in zip(group, block.chunk(3, 0)):
                    getattr(self, name).copy_(chunk)

    def canonical_params(self) -> dict[str, Tensor]:
        """The live parameters by canonical name (gradients flow through them)."""
        names = PARAM_NAMES if self.variant.bias else WEIGHT_NAMES
        return {name: getattr(self, name) for name in names}

    def load_canonical(self, params: Mapping) -> ReferenceGRUCell:
        """Copy canonical parameters (NumPy arrays or tensors) into this cell in place.

        A bias-free cell refuses non-zero biases rather than silently computing something else.
        """
        own = self.canonical_params()
        dropped = [n for n in BIAS_NAMES
                   if n not in own and n in params and bool(torch.as_tensor(params[n]).any())]
        if dropped:
            raise ValueError(f"this cell has no biases but {dropped} are non-zero")
        with torch.no_grad():
            for name, param in own.items():
                value = torch.as_tensor(params[name])
                if tuple(value.shape) != tuple(param.shape):
                    raise ValueError(f"{name}: shape {tuple(value.shape)}, expected {tuple(param.shape)}")
                param.copy_(value)
        return self

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        if x.shape[-1] != self.input_size or x.dim() not in (1, 2):
            raise ValueError(f"expected input (B, {self.input_size}) or ({self.input_size},), "
                             f"got {tuple(x.shape)}")
        if h is None:
            h = x.new_zeros(tuple(x.shape[:-1]) + (self.hidden_size,))
        return step(self.canonical_params(), x, h, self.variant)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, variant={self.variant.name!r}"


class ReferenceGRU(nn.Module):
    """Drop-in for ``nn.GRU`` (no dropout) over :class:`ReferenceGRUCell`.

    ``forward(x, h0=None) -> (output, h_n)`` with nn.GRU's shapes: x (L, N, D), or (N, L, D) when
    ``batch_first``, or unbatched (L, D); h0 and h_n (num_layers·num_directions, N, H) regardless of
    ``batch_first``; output (L, N, num_directions·H) with the forward half first.
    Cell ``layer * num_directions + direction`` lives in ``self.cells`` and is created in nn.GRU's
    parameter order, so a shared seed gives nn.GRU's initial weights.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 variant: Variant = PYTORCH, bias: bool = True, batch_first: bool = False,
                 bidirectional: bool = False, device=None, dtype=None) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError("num_layers must be at least 1")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.batch_first = batch_first
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.variant = replace(variant, bias=variant.bias and bias)
        self.cells = nn.ModuleList(
            ReferenceGRUCell(input_size if layer == 0 else self.num_directions * hidden_size,
                             hidden_size, self.variant, device=device, dtype=dtype)
            for layer in range(num_layers) for _ in range(self.num_directions)
        )

    def cell(self, layer: int = 0, reverse: bool = False) -> ReferenceGRUCell:
        if reverse and not self.bidirectional:
            raise ValueError("reverse cell requested from a unidirectional GRU")
        return self.cells[layer * self.num_directions + int(reverse)]

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        batched = x.dim() == 3
        if not batched and x.dim() != 2:
            raise ValueError(f"expected 2-D (unbatched) or 3-D input, got {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input size {x.shape[-1]}, expected {self.input_size}")
        if not batched:
            x = x.unsqueeze(1)
            h0 = None if h0 is None else h0.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        n_states = self.num_layers * self.num_directions
        if h0 is None:
            h0 = x.new_zeros(n_states, x.shape[1], self.hidden_size)
        if tuple(h0.shape) != (n_states, x.shape[1], self.hidden_size):
            raise ValueError(f"h0 has shape {tuple(h0.shape)}, expected "
                             f"{(n_states, x.shape[1], self.hidden_size)}")

        layer_input, finals = x, []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                cell = self.cells[k]
                seq = layer_input if direction == 0 else layer_input.flip(0)
                hs = forward(cell.canonical_params(), seq, h0[k], cell.variant)
                finals.append(hs[-1])
                outputs.append(hs if direction == 0 else hs.flip(0))
            layer_input = torch.cat(outputs, dim=-1)

        output, h_n = layer_input, torch.stack(finals)
        if not batched:
            return output.squeeze(1), h_n.squeeze(1)
        if self.batch_first:
            output = output.transpose(0, 1)
        return output, h_n

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"batch_first={self.batch_first}, bidirectional={self.bidirectional}, "
                f"variant={self.variant.name!r}")
