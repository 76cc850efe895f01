"""Record the sigmoid/tanh outputs a subject computes inside its forward pass.

Nothing here judges. `ActivationRecorder` is a context manager that, while it is active,

* in torch, intercepts ``torch.sigmoid``, ``torch.tanh``, ``Tensor.sigmoid``/``tanh`` (and their
  in-place forms), ``torch.special.expit`` and ``F.sigmoid``/``F.tanh`` through a
  ``torch.overrides.TorchFunctionMode`` (``nn.Sigmoid``/``nn.Tanh`` call these underneath);
* in the user's module (``subject.user_module``), temporarily wraps the module-level callables
  whose names look like a sigmoid (``sigmoid``, ``sigm``, ``_sigmoid``, ``logistic``, ``expit``,
  ``stable_sigmoid``...) or a tanh, the same-named methods of the classes defined there, and
  the module's ``np``/``numpy`` reference (a proxy whose ``tanh`` records), then restores them;
* optionally watches every torch op for a non-finite result computed from finite inputs (an
  overflow: torch raises no floating-point warnings).

Each recorded call keeps a float64 copy of the output and the user's source line of the call
(the innermost stack frame in the user's files). Derivative helpers (``dsigmoid``,
``sigmoid_prime``, ``tanh_backward``...) are never wrapped.
"""
from __future__ import annotations

import functools
import inspect
import os
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model import Location
from ..subjects.base import Subject

#: names of user helpers that compute a sigmoid / a tanh (checked on the lower-cased name)
_SIGMOID_NAME = re.compile(
    r"^_*(\w*sigmoid\w*|sigm|sig|sigma|σ|logistic\w*|expit|hard_?sigmoid)_*$")
_TANH_NAME = re.compile(r"^_*(\w*tanh\w*)_*$")
#: ... minus derivatives and backward helpers
_DERIVATIVE = re.compile(
    r"(deriv|grad|prime|backward|back_|_back|_bwd|inverse|log_?sig|^_*d_?(sigm|tanh|sig))")

MAX_RECORDS = 5000

_PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIB_ROOTS = tuple(os.path.dirname(os.path.abspath(p))
                   for p in (os.__file__, np.__file__)) + (_PKG_ROOT,)


def activation_kind(name: str) -> str | None:
    """"sigmoid", "tanh" or None for a helper's name."""
    low = name.lower()
    if _DERIVATIVE.search(low):
        return None
    if _SIGMOID_NAME.match(low):
        return "sigmoid"
    if _TANH_NAME.match(low):
        return "tanh"
    return None


def _is_library(path: str) -> bool:
    return (path.startswith(_LIB_ROOTS) or "site-packages" in path or "dist-packages" in path
            or path.startswith("<"))


def user_files(subject: Subject) -> set[str]:
    files = set()
    if subject.location is not None and subject.location.file:
        files.add(os.path.abspath(subject.location.file))
    mod_file = getattr(subject.user_module, "__file__", None)
    if mod_file:
        files.add(os.path.abspath(mod_file))
    return files


def caller_chain(files: set[str] | None = None, skip: int = 1,
                 depth: int = 4) -> tuple[Location, ...]:
    """The user's stack frames of the current call, innermost first (at most `depth`).

    Frames in the user's files when those are known, else frames outside libraries. The chain
    tells two gates apart that are computed through one user helper (``gate()`` at line 8,
    called from lines 21 and 22).
    """
    frame = sys._getframe(skip + 1)
    mine: list[Location] = []
    other: list[Location] = []
    while frame is not None and len(mine) < depth:
        path = os.path.abspath(frame.f_code.co_filename)
        loc = Location(path, frame.f_lineno, getattr(frame.f_code, "co_qualname",
                                                     frame.f_code.co_name))
        if files and path in files:
            mine.append(loc)
        elif not _is_library(path) and len(other) < depth:
            other.append(loc)
        frame = frame.f_back
    return tuple(mine or other)


def caller_location(files: set[str] | None = None, skip: int = 1) -> Location | None:
    """The innermost stack frame in the user's files (else the innermost non-library frame)."""
    chain = caller_chain(files, skip + 1, depth=1)
    return chain[0] if chain else None


def to_float64(value: Any) -> np.ndarray | None:
    """A float64 NumPy copy of a tensor/array output, or None when it is not one."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            return None
        return value.detach().to("cpu", torch.float64).numpy().copy()
    if isinstance(value, np.ndarray | np.floating | float):
        arr = np.array(value, dtype=np.float64, copy=True)
        return arr
    return None


@dataclass
class ActivationRecord:
    kind: str  # "sigmoid" | "tanh"
    via: str  # "torch.sigmoid", "np.tanh", "sigmoid() in my_gru.py", ...
    chain: tuple[Location, ...]
    output: np.ndarray

    @property
    def location(self) -> Location | None:
        return self.chain[0] if self.chain else None

    @property
    def site(self) -> tuple:
        if not self.chain:
            return (self.kind, self.via)
        return (self.kind, *((c.file, c.line) for c in self.chain))


@dataclass
class OverflowEvent:
    """A torch op returned Inf/NaN from finite inputs (torch emits no FP warnings)."""

    op: str
    location: Location | None
    count: int = 1


@dataclass
class ActivationRecorder:
    subject: Subject
    record_activations: bool = True
    watch_overflow: bool = False
    records: list[ActivationRecord] = field(default_factory=list)
    overflows: dict[tuple, OverflowEvent] = field(default_factory=dict)
    patched: list[str] = field(default_factory=list)
    depth: int = 0
    _undo: list = field(default_factory=list)
    _mode: Any = None

    # --- context manager -------------------------------------------------------------------
    def __enter__(self) -> ActivationRecorder:
        self._files = user_files(self.subject)
        if self.record_activations:
            self._patch_user_module()
        if self.subject.backend == "torch" or self.watch_overflow:
            self._mode = _make_mode(self)
            if self._mode is not None:
                self._mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._mode is not None:
            self._mode.__exit__(*exc)
            self._mode = None
        while self._undo:
            self._undo.pop()()

    # --- recording ---------------------------------------------------------------------------
    def record(self, kind: str, value: Any, via: str) -> None:
        if len(self.records) >= MAX_RECORDS:
            return
        arr = to_float64(value)
        if arr is None:
            return
        self.records.append(ActivationRecord(kind, via, caller_chain(self._files, 1), arr))

    def note_overflow(self, op: str) -> None:
        loc = caller_location(self._files, 1)
        key = (op, loc.file if loc else None, loc.line if loc else None)
        if key in self.overflows:
            self.overflows[key].count += 1
        else:
            self.overflows[key] = OverflowEvent(op, loc)

    def sites(self) -> dict[tuple, list[ActivationRecord]]:
        """Records grouped by call site (kind, file, line), in call order."""
        out: dict[tuple, list[ActivationRecord]] = {}
        for r in self.records:
            out.setdefault(r.site, []).append(r)
        return out

    # --- patching the user's module ----------------------------------------------------------
    def _wrap(self, fn: Any, kind: str, via: str) -> Any:
        recorder = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if recorder.depth:
                return fn(*args, **kwargs)
            recorder.depth += 1
            try:
                out = fn(*args, **kwargs)
            finally:
                recorder.depth -= 1
            recorder.record(kind, out, via)
            return out

        try:
            functools.update_wrapper(wrapper, fn)
        except (AttributeError, TypeError):
            pass
        wrapper.__grudiag_wrapped__ = fn  # type: ignore[attr-defined]
        return wrapper

    def _patch_user_module(self) -> None:
        module = self.subject.user_module
        if not isinstance(module, types.ModuleType):
            return
        namespace = vars(module)
        for name, value in list(namespace.items()):
            if value is np:
                self._set(namespace, name, _NumpyProxy(self), f"{name}.tanh")
                continue
            if isinstance(value, type) and getattr(value, "__module__", None) == module.__name__:
                self._patch_class(value)
                continue
            kind = activation_kind(name)
            if kind is None or isinstance(value, type | types.ModuleType) or not callable(value):
                continue
            self._set(namespace, name, self._wrap(value, kind, f"{name}()"), name)

    def _patch_class(self, cls: type) -> None:
        for name, raw in list(vars(cls).items()):
            kind = activation_kind(name)
            if kind is None:
                continue
            if isinstance(raw, staticmethod):
                new = staticmethod(self._wrap(raw.__func__, kind, f"{cls.__name__}.{name}()"))
            elif inspect.isfunction(raw):
                new = self._wrap(raw, kind, f"{cls.__name__}.{name}()")
            else:
                continue
            try:
                setattr(cls, name, new)
            except (AttributeError, TypeError):
                continue
            self._undo.append(lambda c=cls, n=name, r=raw: setattr(c, n, r))
            self.patched.append(f"{cls.__name__}.{name}")

    def _set(self, namespace: dict, name: str, new: Any, label: str) -> None:
        old = namespace[name]
        namespace[name] = new
        self._undo.append(lambda: namespace.__setitem__(name, old))
        self.patched.append(label)


class _NumpyProxy:
    """Stands in for the user's ``np`` while recording: ``np.tanh`` records, the rest is NumPy."""

    def __init__(self, recorder: ActivationRecorder):
        object.__setattr__(self, "_tanh", recorder._wrap(np.tanh, "tanh", "np.tanh"))

    def __getattr__(self, name: str) -> Any:
        if name == "tanh":
            return object.__getattribute__(self, "_tanh")
        return getattr(np, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(np, name, value)

    def __dir__(self) -> list[str]:
        return dir(np)

    def __repr__(self) -> str:
        return repr(np)


def _make_mode(recorder: ActivationRecorder) -> Any:
    try:
        import torch
        import torch.nn.functional as F
        from torch.overrides import TorchFunctionMode
    except ImportError:  # pragma: no cover
        return None

    targets: dict[Any, tuple[str, str]] = {}
    for fn, kind, label in (
        (torch.sigmoid, "sigmoid", "torch.sigmoid"), (torch.tanh, "tanh", "torch.tanh"),
        (torch.Tensor.sigmoid, "sigmoid", "Tensor.sigmoid"),
        (torch.Tensor.tanh, "tanh", "Tensor.tanh"),
        (torch.Tensor.sigmoid_, "sigmoid", "Tensor.sigmoid_"),
        (torch.Tensor.tanh_, "tanh", "Tensor.tanh_"),
        (torch.sigmoid_, "sigmoid", "torch.sigmoid_"), (torch.tanh_, "tanh", "torch.tanh_"),
        (torch.special.expit, "sigmoid", "torch.special.expit"),
        (F.sigmoid, "sigmoid", "F.sigmoid"), (F.tanh, "tanh", "F.tanh"),
        (F.hardsigmoid, "sigmoid", "F.hardsigmoid"),
    ):
        try:
            targets[fn] = (kind, label)
        except TypeError:  # unhashable on some versions
            continue

    class _Mode(TorchFunctionMode):
        def __torch_function__(self, func, types_, args=(), kwargs=None):  # noqa: ANN001
            out = func(*args, **(kwargs or {}))
            if recorder.record_activations and recorder.depth == 0:
                hit = targets.get(func)
                if hit is not None:
                    recorder.record(hit[0], out, hit[1])
            # A view (weight.T, chunk, reshape) only re-reads its input's values: scanning it
            # cannot find a new Inf, and scanning a (3H, H) weight's view per step cost more
            # than the cell's own step.
            if recorder.watch_overflow and isinstance(out, torch.Tensor) \
                    and out.is_floating_point() and out.numel() and not out._is_view() \
                    and not bool(torch.isfinite(out).all()) and _inputs_finite(args, kwargs):
                recorder.note_overflow(_op_name(func))
            return out

    return _Mode()


def _inputs_finite(args: tuple, kwargs: dict | None) -> bool:
    """At least one floating tensor input, and every one of them finite."""
    import torch

    seen = False
    stack = [*args, *(kwargs or {}).values()]
    while stack:
        a = stack.pop()
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            if not bool(torch.isfinite(a).all()):
                return False
            seen = True
        elif isinstance(a, list | tuple):
            stack.extend(a)
    return seen


def _op_name(func: Any) -> str:
    name = getattr(func, "__name__", None) or str(func)
    qual = getattr(func, "__qualname__", "") or ""
    if qual.startswith("TensorBase.") or qual.startswith("Tensor."):
        return f"Tensor.{name}"
    if name.startswith("__") and name.endswith("__"):
        ops = {"__truediv__": "/", "__rtruediv__": "/", "__mul__": "*", "__rmul__": "*",
               "__add__": "+", "__radd__": "+", "__sub__": "-", "__rsub__": "-", "__pow__": "**",
               "__rpow__": "**", "__matmul__": "@", "__rmatmul__": "@", "__neg__": "-"}
        return f"operator {ops.get(name, name)}"
    return f"torch.{name}"


# --- canonicalising recorded outputs -------------------------------------------------------------
def unit_axis(shape: tuple[int, ...], hidden: int, batch: int) -> int | None:
    """The axis of a recorded output that indexes hidden units (size a multiple of H)."""
    if not shape:
        return None
    cands = [ax for ax, n in enumerate(shape) if n % hidden == 0 and n > 0]
    if not cands:
        return None
    if len(cands) == 1:
        return cands[0]
    for ax in reversed(cands):  # the one whose complement is the batch
        rest = int(np.prod([n for i, n in enumerate(shape) if i != ax]))
        if rest == batch:
            return ax
    return cands[-1]


def blocks_of(output: np.ndarray, hidden: int, batch: int) -> list[np.ndarray] | None:
    """Split one output into (N, H) blocks of hidden units, or None when no axis indexes units."""
    ax = unit_axis(output.shape, hidden, batch)
    if ax is None:
        return None
    arr = np.moveaxis(output, ax, -1).reshape(-1, output.shape[ax])
    return [arr[:, k * hidden:(k + 1) * hidden] for k in range(output.shape[ax] // hidden)]


def short(loc: Location | None) -> str:
    if loc is None or not loc.file:
        return "<unknown>"
    return f"{os.path.basename(loc.file)}:{loc.line}" if loc.line else os.path.basename(loc.file)


def describe_chain(chain: tuple[Location, ...]) -> str:
    """``my_gru.py:21`` or ``my_gru.py:8 (called from my_gru.py:21)``."""
    if not chain:
        return "<unknown>"
    text = short(chain[0])
    if len(chain) > 1 and chain[1] != chain[0]:
        text += f" (called from {short(chain[1])})"
    return text


def iter_sites(recorder: ActivationRecorder) -> Iterator[tuple[tuple, list[ActivationRecord]]]:
    yield from recorder.sites().items()
