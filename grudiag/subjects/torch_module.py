"""Adapters for PyTorch cells (``forward(x, h)``) and sequence models (``forward(x[, h0])``).

Every subject works on its own deep copy of the user's module, converted to float64 so gradient
checks are precise; the user's module, its parameters, flags and grad mode are never touched.
Before a module becomes a subject, a few small *trial calls* on throwaway copies decide what it
is: which element of a returned tuple is the state, whether a sequence model is batch-first
(read from ``batch_first`` or inferred by perturbing one batch sample), which initial-state shape
it accepts, and whether a 1-D (unbatched) input works. Sizes chosen for trials (batch, time)
differ from each other and from the input and hidden sizes, so axes cannot be confused.
"""
from __future__ import annotations

import ast
import copy
import functools
import inspect
import os
import re
import sys
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..model import Location
from .base import (
    Gradients,
    Subject,
    SubjectError,
    SubjectOutputError,
    SubjectRaised,
    call_user,
)
from .loading import guarded_global_state

__all__ = [
    "NotASubject", "TorchCellSubject", "TorchSequenceSubject", "adapt_module", "forward_arguments",
    "is_builtin_recurrent", "looks_recurrent", "read_sizes", "takes_state",
]

BUILTIN_CELLS = (nn.GRUCell, nn.RNNCell)
BUILTIN_SEQUENCES = (nn.GRU, nn.RNN)
LSTM_TYPES = (nn.LSTM, nn.LSTMCell)

#: attribute / constructor-argument names people use for the two sizes
INPUT_NAMES = ("input_size", "input_dim", "in_features", "n_input", "n_inputs", "input_features",
               "in_size", "in_dim", "d_in", "n_in", "nin", "n_x", "num_inputs", "input_dims",
               "embed_dim", "embedding_dim", "input_units", "x_dim", "dim_in", "inp_size",
               "in_channels", "n_features", "num_features", "feature_dim", "feature_size")
HIDDEN_NAMES = ("hidden_size", "hidden_dim", "hidden_features", "n_hidden", "units", "num_units",
                "hid_dim", "hidden", "hidden_units", "d_hidden", "d_h", "n_h", "n_a", "nhid",
                "state_size", "hidden_dims", "h_dim", "dim_hidden", "hid_size", "num_hidden",
                "rnn_size", "hidden_dimension")

# A second forward argument with one of these names is a recurrent state.
_STATE_ARG = re.compile(r"^(h|hx|hid|hidden|state|prev|carry|s_|a_prev|a_t|c_prev|mem)", re.I)
_RECURRENT_NAME = re.compile(r"gru|rnn|recurr|cell|elman", re.I)


class NotASubject(Exception):
    """This module cannot be driven as a cell or a sequence model; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ----------------------------------------------------------------------------- small helpers

def _tensor_np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy().copy()


def describe(value: Any) -> str:
    """A short description of what user code returned, for error messages."""
    if value is None:
        return "None"
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a NumPy array of shape {value.shape}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_short(v) for v in value[:4]) + (", ..." if len(value) > 4 else "")
        return f"a {type(value).__name__} of {len(value)} items ({inner})"
    return f"a {type(value).__name__}"


def _short(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__} of {len(value)}"
    return "None" if value is None else type(value).__name__


def _copy_module(module: nn.Module) -> nn.Module:
    """A deep copy that tolerates non-leaf tensors kept as attributes (``self.h = h`` in forward).

    ``copy.deepcopy`` refuses tensors that are part of a graph; such cached values are copied
    detached, which is what a fresh copy of the module should hold anyway.
    """
    memo: dict[int, Any] = {}
    for sub in module.modules():
        for value in vars(sub).values():
            if isinstance(value, torch.Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    return call_user(copy.deepcopy, module, memo, during="copy")


def _convert(module: nn.Module, dtype: torch.dtype, device: str) -> nn.Module:
    """Floating parameters, buffers and plain tensor attributes to ``dtype``; all params trainable."""
    module.to(device=device, dtype=dtype)
    for sub in module.modules():
        for key, value in list(vars(sub).items()):
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                vars(sub)[key] = value.detach().to(device=device, dtype=dtype)
            elif isinstance(value, (list, tuple)) and value and all(
                    isinstance(v, torch.Tensor) and v.is_floating_point() for v in value):
                vars(sub)[key] = type(value)(v.detach().to(device=device, dtype=dtype) for v in value)
    for p in module.parameters():
        if p.is_floating_point():
            # Frozen parameters still get gradients on our copy: the check is about the function.
            p.requires_grad_(True)
    return module


def _plain_tensor_attrs(module: nn.Module) -> list[str]:
    names = []
    for prefix, sub in module.named_modules():
        for key, value in vars(sub).items():
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter) \
                    and value.is_floating_point() and value.dim() >= 1:
                names.append(f"{prefix}.{key}" if prefix else key)
    return names


@contextmanager
def _user_calls(dtype: torch.dtype, seed: int) -> Iterator[None]:
    """Around calls into user code: seeded global RNGs, restored afterwards; the working dtype
    as default, so ``torch.zeros(B, H)`` inside the user's forward matches the float64 copy.

    One intra-op thread: probe tensors are tiny, and on a busy machine waking several threads
    made each small op ~100x slower (measured: 30 ms vs 0.1 ms per GRU step on 2 loaded cores).
    """
    with guarded_global_state(seed):
        torch.set_default_dtype(dtype)
        torch.set_num_threads(1)
        yield


def _forward_signature(module: nn.Module) -> tuple[int, int, bool, list[str]]:
    """(positional params, required positional params, has *args, names) of ``module.forward``."""
    try:
        sig = inspect.signature(module.forward)
    except (TypeError, ValueError):
        return 0, 0, True, []
    pos = [p for p in sig.parameters.values()
           if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in pos if p.default is p.empty]
    varargs = any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values())
    return len(pos), len(required), varargs, [p.name for p in pos]


def _defines_forward(module: nn.Module) -> bool:
    if isinstance(module, torch.jit.ScriptModule):  # compiled: forward is not a class attribute
        return hasattr(module, "forward")
    forward = getattr(type(module), "forward", None)
    return forward is not None and forward is not getattr(nn.Module, "forward", None)


def _is_torch_class(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "torch"


def is_builtin_recurrent(module: nn.Module) -> bool:
    """nn.GRU / nn.RNN / nn.GRUCell / nn.RNNCell (or a subclass that keeps their forward)."""
    for base in BUILTIN_CELLS + BUILTIN_SEQUENCES:
        if isinstance(module, base) and type(module).forward is base.forward:
            return True
    return False


def _has_builtin_recurrent_part(module: nn.Module) -> bool:
    return any(isinstance(m, BUILTIN_CELLS + BUILTIN_SEQUENCES + LSTM_TYPES)
               for m in module.modules())


def _first_rnn(module: nn.Module) -> nn.RNNBase | None:
    for sub in module.modules():
        if isinstance(sub, nn.RNNBase):
            return sub
    return None


def read_sizes(module: nn.Module) -> tuple[int | None, int | None]:
    """(input_size, hidden_size) from attributes people commonly set, where present."""
    def first(names: tuple[str, ...]) -> int | None:
        for name in names:
            value = getattr(module, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    if isinstance(module, BUILTIN_CELLS + BUILTIN_SEQUENCES + LSTM_TYPES):
        return module.input_size, module.hidden_size
    return first(INPUT_NAMES), first(HIDDEN_NAMES)


def _size_options(module: nn.Module, input_size: int | None,
                  hidden_size: int | None) -> list[tuple[int, int | None]]:
    """Candidate (input_size, hidden_size) pairs, most likely first.

    Given sizes come first, then attributes, then the dimensions of the module's 2-D parameters
    (the hidden size first among dimensions d of a square or (k·d, d) recurrent weight).
    """
    options: list[tuple[int, int | None]] = []

    def add(i: int | None, h: int | None) -> None:
        if i and (i, h) not in options:
            options.append((i, h))

    attr_i, attr_h = read_sizes(module)
    rnn = _first_rnn(module)
    rnn_h = rnn.hidden_size if rnn is not None else None
    add(input_size, hidden_size or attr_h or rnn_h)
    add(attr_i, attr_h or hidden_size or rnn_h)
    if rnn is not None:
        add(input_size or attr_i or rnn.input_size, rnn_h)
    if input_size and hidden_size:
        return options
    shapes = [tuple(p.shape) for p in module.parameters() if p.dim() == 2]
    dims = sorted({d for s in shapes for d in s})
    recurrent = sorted({s[1] for s in shapes if s[0] % s[1] == 0 and s[0] // s[1] <= 4}
                       | {s[0] for s in shapes if s[1] % s[0] == 0 and s[1] // s[0] <= 4})
    h_opts = [hidden_size] if hidden_size else ([attr_h] if attr_h else []) + recurrent + dims
    i_opts = [input_size] if input_size else ([attr_i] if attr_i else []) + dims
    for h in dict.fromkeys(h_opts):
        for i in dict.fromkeys(i_opts):
            add(i, h)
    for h in dict.fromkeys(h_opts):  # weights acting on a concatenation [x, h] or [h, x]
        for d in dims:
            if d > h:
                add(d - h, h)
    return options[:24]


def _trial_sizes(*taken: int | None) -> tuple[int, int]:
    """(batch, time) for trial calls: different from each other and from the given sizes."""
    used = {t for t in taken if t}
    batch = next(b for b in (3, 2, 4, 5, 6, 7, 9, 11) if b not in used)
    time = next(t for t in (6, 5, 8, 7, 9, 10, 12, 13) if t not in used | {batch})
    return batch, time


def _forward_location(module: nn.Module) -> Location | None:
    cls = type(module)
    if _is_torch_class(cls):
        return None
    try:
        fn = inspect.unwrap(cls.forward)
        file = inspect.getsourcefile(fn)
        line = inspect.getsourcelines(fn)[1]
    except (TypeError, OSError, AttributeError):
        return None
    return Location(os.path.abspath(file) if file else None, line, f"{cls.__name__}.forward")


def _user_module_of(module: nn.Module) -> Any:
    cls = type(module)
    return None if _is_torch_class(cls) else sys.modules.get(cls.__module__)


@functools.lru_cache(maxsize=64)  # finding a class's source parses its whole file
def _parameter_lines(cls: type) -> tuple[str | None, dict[str, int]]:
    """Where ``self.NAME = ...`` / ``register_parameter("NAME", ...)`` appear in the class body."""
    try:
        file = inspect.getsourcefile(cls)
        lines, start = inspect.getsourcelines(cls)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (TypeError, OSError, SyntaxError):
        return None, {}
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) \
                        and t.value.id == "self":
                    found.setdefault(t.attr, node.lineno + start - 1)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("register_parameter", "register_module", "add_module") \
                and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            found.setdefault(node.args[0].value, node.lineno + start - 1)
    return (os.path.abspath(file) if file else None), found


# ----------------------------------------------------------------------------------- subjects

@dataclass(eq=False)
class _TorchSubject(Subject):
    """What both torch adapters share: the working copy, dtype, parameters and autograd."""

    #: the working copy the subject runs (float64 unless the user's code forced float32);
    #: None until first needed (see `module`)
    _working: Any = field(default=None, repr=False)
    dtype: Any = torch.float64
    device: str = "cpu"
    #: seed of torch/NumPy/random global RNGs during each call into user code
    seed: int = 0
    #: False for sequence models whose forward takes no initial state; `run` then ignores h0
    accepts_h0: bool = True
    #: a copy that is never run: the source of `fresh` and `with_parameters`
    _pristine: Any = field(default=None, repr=False)
    #: parameter values (by name) that replace the pristine copy's in every copy made from it
    _overrides: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def module(self) -> nn.Module:
        """The working copy, made from the pristine module on first use: many subjects made by
        `fresh` are themselves only ever copied (the runner's copy per probe), never run."""
        if self._working is None:
            self._working = self._copy_of_pristine()
        return self._working

    # -- running --------------------------------------------------------------------------
    def run(self, xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return _tensor_np(self.torch_forward(self._tensor(xs), self._tensor(h0)))

    def torch_forward(self, xs_t: torch.Tensor, h0_t: torch.Tensor) -> torch.Tensor:
        """(T, B, I), (B, H) -> (T, B, H) as differentiable torch tensors in canonical layout."""
        raise NotImplementedError

    def _tensor(self, a: Any) -> torch.Tensor:
        return torch.tensor(np.asarray(a, dtype=np.float64), dtype=self.dtype, device=self.device)

    def _cast(self, t: torch.Tensor) -> torch.Tensor:
        return t if (t.dtype == self.dtype and t.device.type == torch.device(self.device).type) \
            else t.to(device=self.device, dtype=self.dtype)

    @property
    def _name(self) -> str:
        return f"{type(self._pristine).__name__}.forward"

    def _calls(self):
        return _user_calls(self.dtype, self.seed)

    # -- parameters -----------------------------------------------------------------------
    def parameters(self) -> dict[str, np.ndarray]:
        if self._working is not None:  # what the runs use, changed in place by them or not
            return {n: _tensor_np(p) for n, p in self._working.named_parameters()}
        return {n: _tensor_np(self._overrides.get(n, p))
                for n, p in self._pristine.named_parameters()}

    def with_parameters(self, params: Mapping[str, np.ndarray]) -> _TorchSubject:
        named = dict(self._pristine.named_parameters())
        unknown = sorted(set(params) - set(named))
        if unknown:
            raise KeyError(f"{self.id} has no parameters {unknown}; it has {sorted(named)}")
        for name, value in params.items():
            if np.shape(value) != tuple(named[name].shape):
                raise ValueError(f"parameter {name}: shape {np.shape(value)}, "
                                 f"expected {tuple(named[name].shape)}")
        new = copy.copy(self)
        # The pristine module is shared, not copied: the new values apply to each copy made
        # from it, so a new subject costs one copy of the module, not two.
        new._overrides = {**self._overrides, **{
            name: torch.tensor(np.asarray(value, dtype=np.float64), dtype=named[name].dtype,
                               device=named[name].device)
            for name, value in params.items()}}
        new._working = None
        new.notes = list(self.notes)
        return new

    def _copy_of_pristine(self) -> nn.Module:
        module = _copy_module(self._pristine)
        named = dict(module.named_parameters())
        with torch.no_grad():  # in place: a view of a parameter kept on the module follows it
            for name, value in self._overrides.items():
                named[name].copy_(value)
        return module

    def parameter_locations(self) -> dict[str, Location]:
        cls = type(self._pristine)
        if _is_torch_class(cls):
            return {}
        file, lines = _parameter_lines(cls)
        out = {}
        for name, _ in self._pristine.named_parameters():
            line = lines.get(name) or lines.get(name.split(".")[0])
            if line:
                out[name] = Location(file, line, f"{cls.__name__}.__init__")
        return out

    # -- gradients ------------------------------------------------------------------------
    def vjp(self, xs: np.ndarray, h0: np.ndarray, dhs: np.ndarray) -> Gradients:
        named = [(n, p) for n, p in self.module.named_parameters() if p.is_floating_point()]
        xs_t = self._tensor(xs).requires_grad_(True)
        h0_t = self._tensor(h0).requires_grad_(True)
        with torch.enable_grad():
            hs = self.torch_forward(xs_t, h0_t)
            dhs_t = self._tensor(dhs)
            if tuple(dhs_t.shape) != tuple(hs.shape):
                raise ValueError(f"dhs has shape {tuple(dhs_t.shape)}, expected {tuple(hs.shape)}")
            inputs = [xs_t, h0_t] + [p for _, p in named]
            if hs.requires_grad:
                with self._calls():
                    # The user's custom autograd.Function backward runs here: that is the point.
                    grads = call_user(torch.autograd.grad, hs, inputs, grad_outputs=dhs_t,
                                      allow_unused=True, during="backward")
            else:  # the graph is cut everywhere (detach / NumPy round trip): no gradient at all
                grads = [None] * len(inputs)

        def arr(g: torch.Tensor | None, like: np.ndarray) -> np.ndarray:
            return np.zeros_like(np.asarray(like, dtype=np.float64)) if g is None else _tensor_np(g)

        return Gradients(
            xs=arr(grads[0], xs), h0=arr(grads[1], h0),
            params={n: (None if g is None else _tensor_np(g)) for (n, _), g in zip(named, grads[2:])},
            source="autograd",
        )


@dataclass(eq=False)
class TorchCellSubject(_TorchSubject):
    """``forward(x, h)`` returning the new state ``h`` or a tuple ``(out, h)``."""

    #: None: forward returns the state itself; else the index of the state in the returned tuple
    state_index: int | None = None

    def torch_forward(self, xs_t: torch.Tensor, h0_t: torch.Tensor) -> torch.Tensor:
        xs_t, h = self._cast(xs_t), self._cast(h0_t)
        hs = []
        with self._calls():
            for t in range(xs_t.shape[0]):
                h = self._call_step(xs_t[t], h)
                # A clone, so a user's in-place update of h at the next step cannot rewrite it.
                hs.append(h.clone())
        if not hs:
            return h.new_zeros((0,) + tuple(h.shape))
        return torch.stack(hs)

    def step(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        with torch.no_grad(), self._calls():
            return _tensor_np(self._call_step(self._tensor(x), self._tensor(h)))

    def run_unbatched(self, xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
        if not self.supports_unbatched:
            raise NotImplementedError(f"{self.id} has no unbatched (1-D) path")
        with torch.no_grad():
            return _tensor_np(self.torch_forward(self._tensor(xs), self._tensor(h0)))

    def _call_step(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        out = call_user(self.module, x, h, during="forward")
        return self._state_of(out, tuple(h.shape))

    def _state_of(self, out: Any, expected: tuple[int, ...]) -> torch.Tensor:
        return _pick_tensor(self, out, self.state_index, expected, _STATE_WORDS)


@dataclass(eq=False)
class TorchSequenceSubject(_TorchSubject):
    """``forward(x)`` or ``forward(x, h0)`` returning per-step outputs or ``(outputs, h_n)``.

    ``run(xs, h0)`` returns the per-step outputs as the states: for a multi-layer model they are
    the last layer's states. When forward takes no initial state (``accepts_h0`` is False), h0
    cannot be set and `run` ignores it: probes read ``accepts_h0`` and use zeros.
    """

    batch_first: bool = False
    #: how h0 is passed: "none" (not at all), "state" ((B, H)) or "layers" ((slots, B, H))
    h0_mode: str = "state"
    #: for "layers": which slots receive h0 (the others get zeros, e.g. reverse directions)
    h0_slots: tuple[bool, ...] = (True,)
    #: None: forward returns the outputs tensor; else its index in the returned tuple
    output_index: int | None = None
    #: width of the model's outputs; twice hidden_size for a bidirectional model
    output_width: int = 0

    @property
    def h0_optional(self) -> bool:
        positional, required, _, _ = _forward_signature(self._pristine)
        return self.h0_mode != "none" and positional >= 2 and required < 2

    def run_default_state(self, xs: np.ndarray) -> np.ndarray:
        if not self.h0_optional:
            raise NotImplementedError(f"{self.id}'s forward requires an initial state")
        with torch.no_grad():
            return _tensor_np(self.torch_forward(self._tensor(xs), None))

    def torch_forward(self, xs_t: torch.Tensor, h0_t: torch.Tensor | None) -> torch.Tensor:
        """As for every subject; ``h0_t`` None calls forward without an initial state."""
        xs_t = self._cast(xs_t)
        T, B = xs_t.shape[0], xs_t.shape[1]
        x = xs_t.transpose(0, 1).contiguous() if self.batch_first else xs_t
        args = (x,) if self.h0_mode == "none" or h0_t is None else \
            (x, self._native_h0(self._cast(h0_t)))
        with self._calls():
            out = call_user(self.module, *args, during="forward")
        expected = (B, T, self.output_width) if self.batch_first else (T, B, self.output_width)
        y = self._outputs_of(out, expected)
        if self.batch_first:
            y = y.transpose(0, 1)
        return y[..., :self.hidden_size] if self.output_width != self.hidden_size else y

    def run_unbatched(self, xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
        if not self.supports_unbatched:
            raise NotImplementedError(f"{self.id} has no unbatched (2-D input) path")
        with torch.no_grad():
            x, h = self._tensor(xs), self._tensor(h0)
            args = (x,) if self.h0_mode == "none" else (x, self._native_h0(h))
            with self._calls():
                out = call_user(self.module, *args, during="forward")
            y = self._outputs_of(out, (x.shape[0], self.output_width))
            return _tensor_np(y[..., :self.hidden_size])

    def _native_h0(self, h0: torch.Tensor) -> torch.Tensor:
        if self.h0_mode == "state":
            return h0
        if self.h0_slots == (True,):
            return h0.unsqueeze(0)
        zeros = torch.zeros_like(h0)
        return torch.stack([h0 if s else zeros for s in self.h0_slots])

    def _outputs_of(self, out: Any, expected: tuple[int, ...]) -> torch.Tensor:
        return _pick_tensor(self, out, self.output_index, expected, _OUTPUT_WORDS)


# ---------------------------------------------------------------------------------- adapting

@dataclass
class _Trial:
    """The outcome of one way of calling a module."""

    ok: bool
    reason: str = ""
    clean: bool = False  # batch samples (and their h0) only affect their own outputs
    #: the output depends on h (a cell) or on earlier time steps (a sequence model)
    recurrent: bool = True
    spec: dict[str, Any] = field(default_factory=dict)
    error: SubjectError | None = None


def adapt_module(obj: nn.Module, *, id: str, input_size: int | None = None,
                 hidden_size: int | None = None, location: Location | None = None,
                 user_module: Any = None, sizes_fixed: bool = True, seed: int = 0,
                 device: str = "cpu", allow_broken: bool = False) -> _TorchSubject:
    """Adapt a module (never modified) into a cell or sequence subject.

    ``input_size``/``hidden_size``: the sizes the module was built with, where grudiag chose them.
    ``allow_broken``: a module that looks recurrent (its class name, or a forward taking a state
    argument) but fails every trial call still becomes a subject, so the failure is reported as
    a finding instead of the module silently disappearing.
    Raises `NotASubject` with the reason otherwise.
    """
    if isinstance(obj, LSTM_TYPES):
        raise NotASubject(f"{type(obj).__name__} is an LSTM: grudiag checks GRU and plain RNN "
                          "cells (LSTMs are not supported)")
    if not _defines_forward(obj):
        raise NotASubject("defines no forward()")
    if any(isinstance(p, nn.parameter.UninitializedParameter) for p in obj.parameters()):
        raise NotASubject("it has uninitialized lazy parameters (nn.Lazy*): call it once on a "
                          "batch, then pass that instance (e.g. in __grudiag_subjects__)")
    common = dict(id=id, backend="torch", location=location or _forward_location(obj),
                  user_module=user_module if user_module is not None else _user_module_of(obj),
                  sizes_fixed=sizes_fixed, seed=seed, device=device, gradient_source="autograd")
    base = _copy_module(obj)
    if is_builtin_recurrent(obj):
        return _adapt_builtin(base, seed, common)

    sig = _forward_signature(obj)
    if not _size_options(obj, input_size, hidden_size):
        raise NotASubject("its input size is unknown: no input_size-like attribute and no 2-D "
                          "parameters to read it from")
    try:
        return _adapt_by_trials(obj, base, sig, input_size, hidden_size, allow_broken, common)
    except _StopTrials as stop:
        why = f"forward raised {stop.error.message}{_at(stop.error)}"
        if allow_broken and looks_recurrent(type(obj)):
            return _make_broken(base, obj, sig, input_size, hidden_size, why, common)
        raise NotASubject(why) from None


def _adapt_by_trials(obj, base, sig, input_size, hidden_size, allow_broken, common) -> _TorchSubject:
    seed, device = common["seed"], common["device"]
    failures: list[str] = []
    errors: list[SubjectError] = []
    for dtype in (torch.float64, torch.float32):
        for i, h in _size_options(obj, input_size, hidden_size):
            for attempt in (_try_cell, _try_sequence):
                trial = attempt(base, dtype, i, h, sig, seed, device)
                if trial.ok and not trial.recurrent and not looks_recurrent(type(obj)) \
                        and not _has_builtin_recurrent_part(obj):
                    # An MLP applied per time step also maps (T, B, I) to (T, B, H).
                    raise NotASubject(
                        "not recurrent: its output does not depend on "
                        + ("h" if attempt is _try_cell else "earlier time steps"))
                if trial.ok:
                    subject = _make(base, trial.spec, dtype, common)
                    if dtype != torch.float64:
                        subject.notes.append(
                            "runs in float32: the float64 copy failed "
                            f"({failures[0] if failures else 'unknown reason'}), probably a "
                            "hard-coded float32 tensor; gradient checks are less precise")
                    plain = _plain_tensor_attrs(obj)
                    if plain:
                        subject.notes.append(
                            "tensor attributes that are not nn.Parameters (an optimizer built "
                            f"from .parameters() never updates them): {', '.join(plain[:6])}")
                    return subject
                if trial.reason and trial.reason not in failures:
                    failures.append(trial.reason)
                if trial.error is not None:
                    errors.append(trial.error)
        if errors and all(_is_not_implemented(e) for e in errors):
            break
    if errors and all(_is_not_implemented(e) for e in errors):
        raise NotASubject("forward raises NotImplementedError (an abstract base class?)")
    why = failures[0] if failures else "no way of calling forward worked"
    if allow_broken and looks_recurrent(type(obj)):
        return _make_broken(base, obj, sig, input_size, hidden_size, why, common)
    raise NotASubject(why)


def _is_not_implemented(err: SubjectError) -> bool:
    return isinstance(err, SubjectRaised) and isinstance(err.exc, NotImplementedError)


def forward_arguments(cls: type) -> list[str]:
    """Names of the positional arguments of ``cls.forward`` (without self)."""
    try:
        params = list(inspect.signature(cls.forward).parameters.values())[1:]
    except (TypeError, ValueError, AttributeError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


#: how a returned value is named in messages: (inside a tuple, as a value, with a shape)
_STATE_WORDS = ("is the new state", "as the new state", "a state")
_OUTPUT_WORDS = ("holds the outputs", "as its outputs", "outputs")


def _pick_tensor(subject: Any, out: Any, index: int | None, expected: tuple[int, ...],
                 words: tuple[str, str, str]) -> torch.Tensor:
    """The tensor a forward returned (item `index` of a tuple when set), checked for type and
    shape; `SubjectOutputError` otherwise."""
    in_tuple, as_value, with_shape = words
    value = out
    if index is not None:
        if not isinstance(out, (tuple, list)) or len(out) <= index:
            raise SubjectOutputError(
                f"{subject._name} returned {describe(out)}; expected a tuple whose item "
                f"{index} {in_tuple} of shape {expected}",
                subject.location, kind="type", expected=expected, got=describe(out))
        value = out[index]
    if not isinstance(value, torch.Tensor):
        raise SubjectOutputError(
            f"{subject._name} returned {describe(value)} {as_value}; expected a tensor of shape "
            f"{expected}", subject.location, kind="type", expected=expected, got=describe(value))
    if tuple(value.shape) != expected:
        raise SubjectOutputError(
            f"{subject._name} returned {with_shape} of shape {tuple(value.shape)}; expected "
            f"{expected}", subject.location, kind="shape", expected=expected,
            got=tuple(value.shape))
    return value


def takes_state(cls: type) -> bool:
    """A forward whose second argument is a state: a cell (or a sequence model taking h0),
    never a container, even when it holds recurrent parts and its forward fails."""
    names = forward_arguments(cls)
    return len(names) >= 2 and bool(_STATE_ARG.match(names[1]))


def looks_recurrent(cls: type) -> bool:
    """A class name like a recurrent cell's, or a forward whose second argument is a state."""
    return bool(_RECURRENT_NAME.search(cls.__name__)) or takes_state(cls)


def _working(base: nn.Module, dtype: torch.dtype, device: str) -> nn.Module:
    return _convert(_copy_module(base), dtype, device)


def _make(base: nn.Module, spec: dict[str, Any], dtype: torch.dtype,
          common: dict[str, Any]) -> _TorchSubject:
    pristine = _working(base, dtype, common["device"])
    spec = dict(spec)
    notes = spec.pop("notes", [])
    cls = TorchSequenceSubject if spec.pop("sequence") else TorchCellSubject
    kind = "torch-sequence" if cls is TorchSequenceSubject else "torch-cell"
    subject = cls(kind=kind, dtype=dtype, _pristine=pristine,
                  is_sequence=cls is TorchSequenceSubject, **common, **spec)
    subject.notes.extend(notes)
    return subject


class _StopTrials(Exception):
    """A trial call hung (and was interrupted) or ran out of memory: more trials would too."""

    def __init__(self, error: SubjectRaised):
        super().__init__(error.message)
        self.error = error


def _call(module: nn.Module, args: tuple, dtype: torch.dtype, seed: int) -> Any:
    try:
        with torch.no_grad(), _user_calls(dtype, seed):
            return call_user(module, *args, during="forward")
    except SubjectRaised as exc:
        if exc.is_memory_error or type(exc.exc).__name__ == "SubjectTimeout":
            raise _StopTrials(exc) from exc
        raise


def _gen(seed: int = 20240611) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _try_cell(base, dtype, I, H, sig, seed, device) -> _Trial:
    n_pos, n_req, varargs, _ = sig
    if H is None or not (n_pos >= 2 or varargs) or n_req > 2:
        return _Trial(False)
    B, _ = _trial_sizes(I, H)
    g = _gen()
    x = torch.randn(B, I, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    h = (torch.rand(B, H, generator=g, dtype=torch.float64) - 0.5).to(device=device, dtype=dtype)
    try:
        out = _call(_working(base, dtype, device), (x, h), dtype, seed)
    except SubjectRaised as exc:
        return _Trial(False, f"forward(x {tuple(x.shape)}, h {tuple(h.shape)}) raised "
                             f"{exc.message}{_at(exc)}", error=exc)
    index, why, notes = _find_state(out, B, H)
    if why:
        return _Trial(False, f"forward(x {tuple(x.shape)}, h {tuple(h.shape)}) returned {why}")
    spec: dict[str, Any] = {"sequence": False, "state_index": index, "input_size": I,
                            "hidden_size": H, "layout": "row", "notes": notes}
    spec["supports_unbatched"] = _cell_unbatched(base, dtype, device, seed, x[0], h[0], index)
    if not spec["supports_unbatched"]:
        notes.append("unbatched (1-D) input is not supported: forward(x (I,), h (H,)) does not "
                     "return a state of shape (H,)")
    return _Trial(True, spec=spec, recurrent=_cell_uses_h(base, dtype, device, seed, x, h, out, index))


def _cell_uses_h(base, dtype, device, seed, x, h, out, index) -> bool:
    moved = h.clone()
    moved[0] += 0.5
    try:
        out2 = _call(_working(base, dtype, device), (x, moved), dtype, seed)
    except (SubjectError, _StopTrials):
        return True  # cannot tell: do not reject on this
    a = out if index is None else out[index]
    b = out2 if index is None else (out2[index] if isinstance(out2, (tuple, list)) else out2)
    return not (isinstance(b, torch.Tensor) and b.shape == a.shape and torch.equal(a, b))


def _at(exc: SubjectError) -> str:
    loc = exc.location
    return f" at {os.path.basename(loc.file)}:{loc.line}" if loc and loc.file else ""


def _find_state(out: Any, B: int, H: int) -> tuple[int | None, str, list[str]]:
    """(index of the state in ``out``, why it is not a cell's output, notes)."""
    if isinstance(out, torch.Tensor):
        if tuple(out.shape) == (B, H):
            return None, "", []
        return None, f"a state of shape {tuple(out.shape)}, expected {(B, H)}", []
    if not isinstance(out, (tuple, list)):
        return None, describe(out), []
    tensors = [(k, v) for k, v in enumerate(out) if isinstance(v, torch.Tensor)]
    if any(isinstance(v, (tuple, list)) for v in out):
        return None, f"{describe(out)} with a nested state (LSTM-like (h, c)?)", []
    if not tensors or any(v.dim() != 2 or v.shape[0] != B for _, v in tensors):
        return None, f"{describe(out)}; a cell returns tensors of shape (batch, ·)", []
    states = [k for k, v in tensors if tuple(v.shape) == (B, H)]
    if not states:
        return None, f"{describe(out)} without a state of shape {(B, H)}", []
    notes = []
    if len(states) > 1 and not all(torch.equal(out[k], out[states[-1]]) for k in states):
        notes.append(f"forward returns {len(states)} tensors of the state's shape; grudiag uses "
                     f"the last one (item {states[-1]}) as the new state")
    return states[-1], "", notes


def _cell_unbatched(base, dtype, device, seed, x, h, index) -> bool:
    try:
        out = _call(_working(base, dtype, device), (x, h), dtype, seed)
    except (SubjectError, _StopTrials):
        return False
    value = out if index is None else (
        out[index] if isinstance(out, (tuple, list)) and len(out) > index else None)
    return isinstance(value, torch.Tensor) and tuple(value.shape) == tuple(h.shape)


def _try_sequence(base, dtype, I, H, sig, seed, device) -> _Trial:
    n_pos, n_req, varargs, names = sig
    if n_req > 2:
        return _Trial(False, f"forward takes {n_req} required arguments ({', '.join(names)})")
    rnn = _first_rnn(base)
    bidirectional = bool(getattr(base, "bidirectional", False) or (rnn and rnn.bidirectional))
    layers = rnn.num_layers if rnn is not None else getattr(base, "num_layers", 1)
    layers = layers if isinstance(layers, int) and layers > 0 else 1
    slots = tuple(k % 2 == 0 for k in range(2 * layers)) if bidirectional else (True,) * layers
    modes: list[str] = []
    takes_h0 = n_pos >= 2 or varargs
    if takes_h0 and H is not None:
        modes = ["layers", "state"] if rnn is not None else ["state", "layers"]
    if n_req <= 1:
        modes.append("none")
    if not modes:
        return _Trial(False, "forward needs an initial state whose size grudiag does not know")

    declared = getattr(base, "batch_first", None)
    hint = rnn.batch_first if rnn is not None else None
    layouts = [declared] if isinstance(declared, bool) else [False, True]
    best: dict[bool, _Trial] = {}
    failures: list[_Trial] = []
    for bf in layouts:
        for mode in modes:
            trial = _sequence_attempt(base, dtype, I, H, bf, mode, slots, bidirectional, seed, device)
            if trial.ok and (bf not in best or (trial.clean and not best[bf].clean)):
                best[bf] = trial
            if not trial.ok:
                failures.append(trial)
            if trial.ok and trial.clean:
                break
    if not best:
        first = failures[0] if failures else _Trial(False, "no call worked")
        return _Trial(False, first.reason, error=first.error)

    notes: list[str] = []
    if isinstance(declared, bool):
        chosen = best[declared]
    else:
        clean = [bf for bf, t in best.items() if t.clean]
        if len(clean) == 1:
            bf = clean[0]
            if hint is not None and hint != bf:
                notes.append(f"its nn.{type(rnn).__name__} says batch_first={hint}, but the model "
                             f"as a whole behaves {'batch-first' if bf else 'time-major'}")
            else:
                notes.append(f"layout inferred as {'batch-first' if bf else 'time-major'} "
                             "(no batch_first attribute): changing one batch sample changed only "
                             "that sample's outputs when read this way")
        else:
            bf = hint if hint is not None and hint in best else (False if False in best else True)
            notes.append(f"layout could not be inferred (no batch_first attribute); assuming "
                         f"{'batch-first' if bf else 'time-major'}")
        chosen = best[bf]
    spec = dict(chosen.spec)
    spec["notes"] = notes + spec.get("notes", [])
    return _Trial(True, spec=spec, recurrent=chosen.recurrent)


def _sequence_attempt(base, dtype, I, H, bf, mode, slots, bidirectional, seed, device) -> _Trial:
    B, T = _trial_sizes(I, H)
    g = _gen()
    xs = torch.randn(T, B, I, generator=g, dtype=torch.float64)
    h0 = (torch.rand(B, H or 1, generator=g, dtype=torch.float64) - 0.5)
    layout = "batch-first" if bf else "time-major"
    slots = slots if mode == "layers" else (True,)

    def native_h0(h: torch.Tensor) -> torch.Tensor:
        if mode == "state":
            return h
        return torch.stack([h if s else torch.zeros_like(h) for s in slots])

    def call(x: torch.Tensor, h: torch.Tensor) -> Any:
        x = (x.transpose(0, 1) if bf else x).contiguous().to(device=device, dtype=dtype)
        args = (x,) if mode == "none" else (x, native_h0(h).to(device=device, dtype=dtype))
        return _call(_working(base, dtype, device), args, dtype, seed)

    what = f"forward(x {(B, T, I) if bf else (T, B, I)}" + (
        ")" if mode == "none" else f", h0 {tuple(native_h0(h0).shape)})")
    try:
        out = call(xs, h0)
    except SubjectRaised as exc:
        return _Trial(False, f"{what} raised {exc.message}{_at(exc)}", error=exc)
    index, y, why = _find_outputs(out, B, T, bf, H, bidirectional)
    if why:
        return _Trial(False, f"{what} returned {why}")
    width = y.shape[-1]
    hidden = width // 2 if bidirectional and width % 2 == 0 and (H is None or width == 2 * H) \
        else width
    notes = []
    if hidden != width:
        notes.append("bidirectional: grudiag checks the forward direction (the first half of "
                     "the outputs); the reverse direction reads the future, so it is no cell")
    if mode == "none":
        notes.append("forward takes no initial state, so grudiag cannot set h0 "
                     "(probes that need one use zeros)")
    elif mode == "layers" and len(slots) > 1:
        notes.append(f"h0 is given to every layer's forward direction ({len(slots)} slots)")
    spec = {"sequence": True, "batch_first": bf, "layout": layout, "h0_mode": mode,
            "h0_slots": slots, "output_index": index, "output_width": width,
            "input_size": I, "hidden_size": hidden, "accepts_h0": mode != "none", "notes": notes}

    # Clean: perturbing canonical sample 0 (its inputs, then its h0) changes only its outputs.
    canon = (lambda t: t.transpose(0, 1)) if bf else (lambda t: t)
    base_y = canon(y).to(torch.float64)
    scale = float(base_y.abs().max()) + 1.0
    tol = (1e-10 if dtype == torch.float64 else 1e-5) * scale
    # Clean: perturbing canonical sample 0 (its first input, then its h0) changes only its own
    # outputs. Recurrent: the first input's change reaches later steps.
    clean, changed, recurrent = True, False, False
    x_moved = xs.clone()
    x_moved[0, 0] += 1.0
    perturbed = [(x_moved, h0)]
    if mode != "none":
        h_moved = h0.clone()
        h_moved[0] += 0.5
        perturbed.append((xs, h_moved))
    for k, (x2, h2) in enumerate(perturbed):
        try:
            _, y2, why2 = _find_outputs(call(x2, h2), B, T, bf, H, bidirectional)
        except SubjectRaised:
            y2, why2 = None, "raised"
        if why2:
            clean = False
            break
        diff = (canon(y2).to(torch.float64) - base_y).abs()
        if diff[:, 1:].numel() and float(diff[:, 1:].max()) > tol:
            clean = False
        if float(diff[:, 0].max()) > tol:
            changed = True
        if k == 0 and T > 1 and float(diff[1:, 0].max()) > tol:
            recurrent = True
    spec["supports_unbatched"] = _sequence_unbatched(base, dtype, device, seed, mode, slots,
                                                     xs, h0, index, width)
    return _Trial(True, clean=clean and changed, spec=spec, recurrent=recurrent)


def _find_outputs(out: Any, B: int, T: int, bf: bool, H: int | None,
                  bidirectional: bool) -> tuple[int | None, torch.Tensor | None, str]:
    """(index of the outputs in ``out``, the outputs, why there are none)."""
    lead = (B, T) if bf else (T, B)
    widths = None if H is None else ({H, 2 * H} if bidirectional else {H})
    expected = f"({lead[0]}, {lead[1]}, {H if H is not None else 'H'})"

    def fits(v: Any) -> bool:
        return isinstance(v, torch.Tensor) and v.dim() == 3 and tuple(v.shape[:2]) == lead \
            and (widths is None or v.shape[2] in widths)

    if isinstance(out, torch.Tensor):
        if fits(out):
            return None, out, ""
        return None, None, f"outputs of shape {tuple(out.shape)}, expected {expected}"
    if isinstance(out, (tuple, list)):
        for k, v in enumerate(out):
            if fits(v):
                return k, v, ""
        return None, None, f"{describe(out)}, none of them outputs of shape {expected}"
    return None, None, describe(out)


def _sequence_unbatched(base, dtype, device, seed, mode, slots, xs, h0, index, width) -> bool:
    x = xs[:, 0].to(device=device, dtype=dtype)
    h = h0[0].to(device=device, dtype=dtype)
    if mode == "state":
        args: tuple = (x, h)
    elif mode == "layers":
        args = (x, torch.stack([h if s else torch.zeros_like(h) for s in slots]))
    else:
        args = (x,)
    try:
        out = _call(_working(base, dtype, device), args, dtype, seed)
    except (SubjectError, _StopTrials):
        return False
    value = out if index is None else (
        out[index] if isinstance(out, (tuple, list)) and len(out) > index else None)
    return isinstance(value, torch.Tensor) and tuple(value.shape) == (x.shape[0], width)


def _adapt_builtin(base: nn.Module, seed: int, common: dict[str, Any]) -> _TorchSubject:
    """nn.GRUCell / nn.RNNCell / nn.GRU / nn.RNN: their conventions are known, no trials needed."""
    if isinstance(base, BUILTIN_CELLS):
        spec = {"sequence": False, "state_index": None, "input_size": base.input_size,
                "hidden_size": base.hidden_size, "layout": "row", "supports_unbatched": True}
        return _make(base, spec, torch.float64, common)
    notes = []
    rnn = base
    if base.num_layers > 1 or base.bidirectional:
        rnn = _layer0_forward(base, seed)
        notes.append(f"{type(base).__name__}(num_layers={base.num_layers}, bidirectional="
                     f"{base.bidirectional}): grudiag checks layer 0, forward direction (every "
                     "layer and direction runs the same built-in code)")
    spec = {"sequence": True, "batch_first": rnn.batch_first,
            "layout": "batch-first" if rnn.batch_first else "time-major", "h0_mode": "layers",
            "h0_slots": (True,), "output_index": 0, "output_width": rnn.hidden_size,
            "input_size": rnn.input_size, "hidden_size": rnn.hidden_size, "accepts_h0": True,
            "supports_unbatched": True, "notes": notes}
    return _make(rnn, spec, torch.float64, common)


def _layer0_forward(rnn: nn.RNNBase, seed: int) -> nn.RNNBase:
    """A one-layer, one-direction copy of ``rnn`` holding its layer-0 forward weights."""
    cls = nn.GRU if isinstance(rnn, nn.GRU) else nn.RNN
    kwargs: dict[str, Any] = {"num_layers": 1, "bias": rnn.bias, "batch_first": rnn.batch_first}
    if cls is nn.RNN:
        kwargs["nonlinearity"] = rnn.nonlinearity
    with guarded_global_state(seed):  # its own init draws from the global RNG
        single = cls(rnn.input_size, rnn.hidden_size, **kwargs)
    with torch.no_grad():
        for name, p in single.named_parameters():
            source = getattr(rnn, name)
            p.data = source.detach().clone()
    return single


def _make_broken(base: nn.Module, obj: nn.Module, sig: tuple[int, int, bool, list[str]],
                 input_size: int | None, hidden_size: int | None, why: str,
                 common: dict[str, Any]) -> _TorchSubject:
    """A subject for a recurrent-looking module no trial call could run: its checks then report
    the failure (a crash, a wrong shape) instead of the module vanishing from the report."""
    options = _size_options(obj, input_size, hidden_size)
    i, h = options[0] if options else (input_size or 1, hidden_size)
    h = h or i
    n_pos, _, varargs, _ = sig
    note = f"no trial call of forward worked, so its checks report the failure: {why}"
    if n_pos >= 2 or varargs:
        spec: dict[str, Any] = {"sequence": False, "state_index": None, "input_size": i,
                                "hidden_size": h, "layout": "row", "notes": [note]}
    else:
        bf = getattr(obj, "batch_first", None) is True
        spec = {"sequence": True, "batch_first": bf,
                "layout": "batch-first" if bf else "time-major", "h0_mode": "none",
                "output_index": None, "output_width": h, "input_size": i, "hidden_size": h,
                "accepts_h0": False, "notes": [note]}
    return _make(base, spec, torch.float64, common)
