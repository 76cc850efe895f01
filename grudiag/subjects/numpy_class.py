"""NumPy classes as subjects: cells ``forward(x, h_prev)`` and sequence models ``forward(xs, h0)``.

This module also holds the machinery that `function.py` shares: how grudiag works out the
layout of NumPy code by running it, reads its outputs and reads a hand-written backward.

How a class is called (DESIGN §5.4)
-----------------------------------
* The forward-like method is the first of ``forward``, ``forward_step``, ``step``, ``__call__``
  that takes two positional arguments.
* The class is built as ``Cls(input_size, hidden_size)``, positionally or by a recognised keyword
  name (``input_dim``/``hidden_dim``, ``n_x``/``n_a``, ``D``/``H``, ``units``...; an output size
  such as ``n_y`` gets a size of its own), even when those arguments have defaults. A constructor
  with no recognisable size argument whose arguments all have defaults is called with none; the
  sizes are then read from the instance (size attributes, else parameter shapes, confirmed by
  running): ``sizes_fixed=True``. Building runs with the process-global RNGs seeded from
  ``--seed`` and restored afterwards, so weights drawn from ``np.random`` are reproducible.
* Layout and cell-vs-sequence are *inferred by running* the forward with input, hidden, batch and
  time sizes that are all different, so that only the right reading runs and returns the right
  shape: ``layout`` "row" ``(batch, features)`` or "column" ``(features, batch)``; for sequences,
  time on axis 0 or on the batch-first / last axis (``(B, T, I)``, Andrew Ng's ``(n_x, m, T_x)``;
  ``native_layout`` says which). Code that only handles one example at a time (``(1, I)``,
  ``(I, 1)``, or 1-D vectors: ``layout`` "vector") is run one example per call
  (``batched=False``; ``batch_failure`` keeps the error that the batched call gave). When both a
  cell and a sequence reading run (a cell broadcasts over a stacked sequence; a sequence model
  loops over the rows of a batch), the reading that keeps batch examples independent and, for a
  sequence, carries state from step to step wins; then argument names (``X, h0`` vs
  ``x, h_prev``); then the cell.
* Outputs: a cell returns ``h`` or a tuple/list/dict holding it (``(h, cache)``, ``(h, [h])``,
  ``{"h": h}``): the first array with the state's shape is the state (a note lists other arrays
  of that shape with different values, e.g. ``(y, h)`` with a square output layer). A sequence
  returns every state (an array, a list of per-step arrays, a dict keyed by step, with or without
  ``h0`` in front), or a tuple holding that, or only the last state (then ``run`` calls it once
  per prefix).

Parameter names
---------------
A parameter is named by its path from the object, with dots, the way the user's code reaches it:
``Wz`` for ``self.Wz``, ``params.Wz`` for ``self.params["Wz"]``, ``cell.Wz`` for an array on a
nested object and ``weights.0`` for the first array of a list. (For functions the root is the
params dict, so names are its keys.) Gradient arrays kept on the object (``dWz``, ``self.grads``),
optimiser memories (``mWz``) and cached states (``self.h``) are not parameters. grudiag holds
parameters in float64 on its own copy of the object; the user's object is never touched.

Gradients
---------
A ``backward(dh)`` / ``backward(dh, cache)`` method that returns a dict of gradients (keys named
like the parameters with or without a ``d`` prefix, plus ``dx``/``dh_prev``-like keys) makes the
subject's `vjp` run the user's backward over a short unroll: one copy of the object per step,
because an object caches only its last forward. A backward that returns ``None`` is read from the
gradients it left on the object (``self.grads`` or ``self.dWz``...).
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
import types
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..model import Location
from ..options import Options
from .base import (
    DEFAULT_BATCH,
    DEFAULT_HIDDEN_SIZE,
    DEFAULT_INPUT_SIZE,
    DEFAULT_TIME,
    Candidate,
    Gradients,
    GradientsUnavailable,
    Subject,
    SubjectError,
    SubjectOutputError,
    call_user,
)
from .loading import guarded_global_state

# ------------------------------------------------------------------------------------------------
# Names people use
# ------------------------------------------------------------------------------------------------


def norm(name: str) -> str:
    return name.lower().replace("_", "")


def tokens(name: str) -> list[str]:
    """``gruCellForward`` / ``gru_cell_forward`` -> ["gru", "cell", "forward"]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [t for t in re.split(r"[_\W]+", spaced.lower()) if t]


_INPUT_NAMES = {
    "inputsize", "inputdim", "inputdims", "indim", "insize", "nx", "nin", "ninput", "ninputs",
    "numinputs", "infeatures", "inputfeatures", "d", "xdim", "dimx", "din", "dimin", "inputunits",
    "nfeatures", "numfeatures", "nfeat", "featuredim", "featdim", "vocabsize", "embeddim",
    "embeddingdim", "embdim", "i", "input", "xsize", "ni", "inputlen",
}
_HIDDEN_NAMES = {
    "hiddensize", "hiddendim", "hiddendims", "hiddim", "hidden", "na", "nh", "nhidden", "numhidden",
    "hiddenunits", "units", "numunits", "nunits", "statesize", "statedim", "hdim", "dimh", "dh",
    "dhidden", "hiddenstatesize", "nstate", "h", "hsize", "ns", "hiddennodes", "nneurons", "nhid",
    "nunit", "hiddenlen",
}
_OUTPUT_NAMES = {
    "outputsize", "outputdim", "outdim", "ny", "nout", "noutput", "numoutputs", "outfeatures",
    "numclasses", "nclasses", "o", "outsize", "ydim", "dout", "dimout",
}
_SEED_NAMES = {"seed", "randomstate", "randomseed", "rngseed"}
_RNG_NAMES = {"rng", "generator", "randomgenerator"}

_H_NAMES = {
    "h", "hprev", "prevh", "ht", "htm1", "ht1", "h0", "hidden", "hiddenstate", "state", "states",
    "s", "sprev", "a", "aprev", "a0", "c", "cprev", "hinit", "initstate", "initialstate", "hx",
    "carry", "prevstate", "hlast", "lasth", "prevhidden", "hiddenprev", "stateprev", "hn",
    "hstate", "s0", "hstart", "hiddeninit", "state0", "hiddens", "hc", "memory", "prev",
}
_H_PREFIXES = ("hprev", "hidden", "prevh", "prevstate", "state", "htm", "hinit", "aprev", "initstate",
               "initialstate", "lasth", "hlast")
_X_NAMES = {
    "x", "xt", "xs", "x0", "inp", "input", "inputs", "xin", "xseq", "seq", "sequence",
    "sequences", "xsequence", "data", "xbatch", "xi", "features", "emb", "token", "tokens",
    "xcur", "xall", "xlist", "inputseq", "batch", "xx",
}
#: a first argument named like this carries a whole sequence; the second, an initial state
_SEQ_X_NAMES = {"xs", "xseq", "seq", "sequence", "sequences", "xsequence", "xall", "xlist",
                "inputseq", "inputsseq"}
_SEQ_H_NAMES = {"h0", "a0", "hinit", "initialstate", "initstate", "hstart", "s0", "hiddeninit",
                "state0"}
_CELL_X_NAMES = {"x", "xt", "xin", "xcur"}
_CELL_H_NAMES = {"hprev", "prevh", "aprev", "htm1", "ht1", "prevstate", "sprev", "cprev", "hlast",
                 "lasth", "prevhidden", "hiddenprev"}


def is_h_name(name: str) -> bool:
    n = norm(name)
    return n in _H_NAMES or n.startswith(_H_PREFIXES)


def is_x_name(name: str) -> bool:
    return norm(name) in _X_NAMES


def size_role(name: str) -> str | None:
    n = norm(name)
    if name in ("D", "I", "N_x"):
        return "input"
    if name in ("H",):
        return "hidden"
    for role, names in (("input", _INPUT_NAMES), ("hidden", _HIDDEN_NAMES),
                        ("output", _OUTPUT_NAMES), ("seed", _SEED_NAMES), ("rng", _RNG_NAMES)):
        if n in names:
            return role
    return None


def sequence_hint(x_name: str, h_name: str, method: str = "") -> str | None:
    """'sequence' / 'cell' from argument names (``forward(X, h0)`` vs ``step(x_t, h_prev)``)."""
    x, h = norm(x_name), norm(h_name)
    seq = x_name in ("X", "Xs", "X_seq") or x in _SEQ_X_NAMES or h in _SEQ_H_NAMES
    cell = (x_name not in ("X",) and x in _CELL_X_NAMES) or h in _CELL_H_NAMES \
        or method in ("step", "forward_step")
    if seq and not cell:
        return "sequence"
    if cell and not seq:
        return "cell"
    return None


# ------------------------------------------------------------------------------------------------
# Calling user code safely
# ------------------------------------------------------------------------------------------------


def clone(obj: Any, memo: dict[int, Any] | None = None) -> Any:
    """A deep copy; objects holding something uncopyable (a module) get their containers copied.

    ``memo`` (`copy.deepcopy`'s) maps ids of objects to what the copy holds instead of them.
    """
    try:
        return copy.deepcopy(obj, dict(memo or {}))
    except Exception:  # noqa: BLE001 - a user __deepcopy__ or an uncopyable attribute
        new = copy.copy(obj)
        if hasattr(new, "__dict__"):
            for key, value in list(vars(new).items()):
                try:
                    setattr(new, key, copy.deepcopy(value, dict(memo or {})))
                except Exception:  # noqa: BLE001 - shared by reference: it is not a parameter
                    pass
        return new


def source_location(fn: Any, qualname: str | None = None) -> Location | None:
    fn = inspect.unwrap(fn)
    try:
        file = inspect.getsourcefile(fn)
        _, line = inspect.getsourcelines(fn)
    except (TypeError, OSError):
        return None
    code = getattr(fn, "__code__", None)
    if code is not None:
        line = code.co_firstlineno
    return Location(os.path.abspath(file) if file else None, line,
                    qualname or getattr(fn, "__qualname__", None))


def required_positional(fn: Callable) -> tuple[list[str], list[str]]:
    """(names of all positional parameters, names of the required ones), ``self`` excluded."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return [], []
    pos = [p for p in sig.parameters.values()
           if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [p.name for p in pos], [p.name for p in pos if p.default is p.empty]


def size_call(fn: Callable, input_size: int, hidden_size: int, seed: int
              ) -> tuple[list, dict, bool] | None:
    """How to call a constructor or params factory with grudiag's sizes.

    Returns (args, kwargs, sized): ``sized`` is True when both sizes were passed. None when a
    required argument cannot be supplied.
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    params = [p for p in sig.parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    output_size = next(n for n in range(4, 64) if n not in (input_size, hidden_size))
    values = {"input": input_size, "hidden": hidden_size, "output": output_size, "seed": seed}
    args: list = []
    kwargs: dict = {}
    roles = {p.name: size_role(p.name) for p in params}
    required = [p for p in params if p.default is p.empty]
    unnamed = [p for p in required if roles[p.name] is None]
    if unnamed:
        # Two anonymous sizes, `Cls(a, b)`: the conventional order is (input, hidden).
        if len(required) == 2 and len(unnamed) == 2 and all(
                p.kind != p.KEYWORD_ONLY for p in required):
            roles[required[0].name], roles[required[1].name] = "input", "hidden"
        else:
            return None
    passed = set()
    for p in params:
        role = roles[p.name]
        if role is None or (p.default is not p.empty and role not in ("input", "hidden")):
            continue
        if role in passed and role in ("input", "hidden"):
            continue  # (input_size, input_dim=None): one is enough
        value = np.random.default_rng(seed) if role == "rng" else values[role]
        passed.add(role)
        if p.kind == p.POSITIONAL_ONLY:
            args.append(value)
        else:
            kwargs[p.name] = value
    return args, kwargs, {"input", "hidden"} <= passed


def distinct(start: int, taken: set[int]) -> int:
    """The first size >= start (and >= 2) that differs from every size in ``taken``."""
    n = max(start, 2)
    while n in taken:
        n += 1
    return n


# ------------------------------------------------------------------------------------------------
# Parameters: paths into an object or a dict
# ------------------------------------------------------------------------------------------------

#: attributes of the object that hold a state or the last call's values, never parameters
_STATE_ATTRS = {
    "h", "h0", "hprev", "prevh", "hidden", "hiddenstate", "state", "states", "ht", "a", "aprev",
    "s", "c", "lasth", "hlast", "lasthidden", "hs", "hstates", "x", "lastx", "xprev", "inputs",
    "outputs", "y", "z", "r", "n", "htilde", "hhat", "lastinput", "lastoutput", "xs", "ys",
    "gates", "mask", "masks", "losses", "loss",
}
#: containers of gradients, caches or optimiser memories, at any depth
_NOT_PARAMS = {
    "cache", "caches", "grads", "grad", "gradients", "dparams", "paramgrads", "m", "v", "mem",
    "memory", "adam", "opt", "optimizer", "velocity", "momentum", "moments", "history", "hist",
    "saved", "ctx", "buffer", "buffers",
}
_GRAD_PREFIXES = ("d_", "grad_", "m_", "v_", "mem_", "cache_", "delta_", "d", "m", "v", "g", "mem")
_GRAD_SUFFIXES = ("_grad", "_g", "_m", "_v", "_mem", "_cache", "_velocity", "grad")

Path = tuple


def _is_user_object(value: Any) -> bool:
    if isinstance(value, (type, types.ModuleType, types.FunctionType, types.MethodType,
                          types.BuiltinFunctionType, np.ufunc)) or not hasattr(value, "__dict__"):
        return False
    module = type(value).__module__ or ""
    return not module.startswith(("numpy", "builtins", "torch", "random", "collections", "functools"))


def collect_params(root: Any, max_depth: int = 3, skip: frozenset[str] = frozenset()
                   ) -> dict[str, Path]:
    """Every float array reachable from ``root`` -> its path, named as the module docstring says.

    ``skip``: top-level names that are not parameters (caches the forward wrote).
    """
    found: dict[str, Path] = {}
    seen: set[int] = set()

    def visit(value: Any, path: Path, depth: int) -> None:
        if isinstance(value, np.ndarray):
            if value.ndim >= 1 and value.size and np.issubdtype(value.dtype, np.floating) \
                    and id(value) not in seen:
                seen.add(id(value))
                found[".".join(str(p) for p in path)] = path
            return
        if depth > max_depth or id(value) in seen:
            return
        if isinstance(value, dict):
            seen.add(id(value))
            items = [(k, v) for k, v in value.items() if isinstance(k, (str, int))]
        elif isinstance(value, (list, tuple)):
            seen.add(id(value))
            items = list(enumerate(value))
        elif _is_user_object(value) or (depth == 0 and hasattr(value, "__dict__")):
            seen.add(id(value))
            items = [(k, v) for k, v in vars(value).items() if not k.startswith("__")]
        else:
            return
        for key, item in items:
            if isinstance(key, str) and (norm(key) in _NOT_PARAMS or (
                    depth == 0 and (key in skip or norm(key) in _STATE_ATTRS))):
                continue
            visit(item, path + (key,), depth + 1)

    visit(root, (), 0)
    leaves = {str(p[-1]) for p in found.values()}
    # dWz / mWz / Wz_grad next to Wz: gradients and optimiser memories, not parameters
    return {name: path for name, path in found.items()
            if not _derived_name(str(path[-1]), leaves)}


def _derived_name(leaf: str, leaves: set[str]) -> bool:
    for prefix in _GRAD_PREFIXES:
        if leaf.startswith(prefix) and leaf[len(prefix):] in leaves:
            return True
    return any(leaf.endswith(s) and leaf[: -len(s)] in leaves for s in _GRAD_SUFFIXES)


def get_path(root: Any, path: Path) -> Any:
    value = root
    for key in path:
        value = value[key] if isinstance(value, (dict, list, tuple)) else getattr(value, key)
    return value


def set_path(root: Any, path: Path, new: np.ndarray) -> None:
    parent = get_path(root, path[:-1])
    key = path[-1]
    if isinstance(parent, (dict, list)):
        parent[key] = new
    elif isinstance(parent, tuple):
        parent[key][...] = new  # tuples cannot be re-bound: write in place (grudiag's own copy)
    else:
        setattr(parent, key, new)


def own_float64(root: Any, paths: Mapping[str, Path]) -> list[str]:
    """Make grudiag's copy hold float64 parameters (gradient checks need float64, DESIGN §6)."""
    converted = []
    for name, path in paths.items():
        value = get_path(root, path)
        if value.dtype != np.float64:
            converted.append(f"{name} ({value.dtype})")
            set_path(root, path, np.array(value, dtype=np.float64))
    return converted


@functools.lru_cache(maxsize=64)  # finding a class's source parses its whole file
def assignment_lines(obj: Any) -> dict[str, int]:
    """Source line where each attribute/variable/dict key is first assigned in ``obj``'s source.

    Plain assignments (``self.Wz = ...``, ``Wz = ...``) win over dict entries, since that is where
    the values are made.
    """
    try:
        lines, start = inspect.getsourcelines(obj)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return {}
    direct: dict[str, int] = {}
    entries: dict[str, int] = {}

    def note(table: dict[str, int], name: str, line: int) -> None:
        table.setdefault(name, line + start - 1)

    def targets(node: ast.AST, line: int) -> None:
        if isinstance(node, ast.Attribute):
            note(direct, node.attr, line)
        elif isinstance(node, ast.Name):
            note(direct, node.id, line)
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and isinstance(node.slice.value, str):
            note(entries, node.slice.value, line)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                targets(elt, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                targets(t, node.lineno)
        elif isinstance(node, ast.AnnAssign):
            targets(node.target, node.lineno)
        elif isinstance(node, ast.Dict):
            for key in node.keys:
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    note(entries, key.value, key.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "dict":
            for kw in node.keywords:
                if kw.arg:
                    note(entries, kw.arg, kw.value.lineno)
    return {**entries, **direct}


def param_locations(paths: Mapping[str, Path], owner: Any) -> dict[str, Location]:
    try:
        file = os.path.abspath(inspect.getsourcefile(owner) or "")
    except TypeError:
        return {}
    lines = assignment_lines(owner)
    out = {}
    for name, path in paths.items():
        for part in reversed(path):
            if str(part) in lines:
                out[name] = Location(file, lines[str(part)], name)
                break
    return out


# ------------------------------------------------------------------------------------------------
# Layouts: canonical (B, F) <-> the user's native arrays
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """How the user's code holds one step's batch, and where a sequence keeps its time axis."""

    math: str  # "row" (batch, features) | "column" (features, batch) | "vector" (features,)
    batched: bool = True  # False: one example per call, grudiag loops over the batch
    time_axis: int = 0

    def step(self, a: np.ndarray) -> np.ndarray:
        """Canonical (B, F) -> native (a fresh array: user code may write into it)."""
        if self.math == "row":
            return np.array(a)
        if self.math == "column":
            return np.array(a.T)
        return np.array(a[0])

    def step_shape(self, B: int, F: int) -> tuple[int, ...]:
        return {"row": (B, F), "column": (F, B), "vector": (F,)}[self.math]

    def step_back(self, a: np.ndarray) -> np.ndarray:
        if self.math == "row":
            return a
        if self.math == "column":
            return a.T
        return a[None]

    def seq(self, xs: np.ndarray) -> np.ndarray:
        return np.stack([self.step(x) for x in xs], axis=self.time_axis)

    def seq_shape(self, T: int, B: int, F: int) -> tuple[int, ...]:
        shape = list(self.step_shape(B, F))
        shape.insert(self.time_axis, T)
        return tuple(shape)

    def seq_back(self, a: np.ndarray) -> np.ndarray:
        return np.stack([self.step_back(s) for s in np.moveaxis(a, self.time_axis, 0)])

    def describe(self, sequence: bool, feature: str = "I") -> str:
        B = "B" if self.batched else "1"
        axes = {"row": [B, feature], "column": [feature, B], "vector": [feature]}[self.math]
        if sequence:
            axes.insert(self.time_axis, "T")
        return "(" + ", ".join(axes) + ("," if len(axes) == 1 else "") + ")"


CELL_LAYOUTS = (
    Layout("row"), Layout("column"),
    Layout("row", False), Layout("column", False), Layout("vector", False),
)
SEQUENCE_LAYOUTS = (
    Layout("row", True, 0), Layout("row", True, 1), Layout("column", True, 0),
    Layout("column", True, 2),
    Layout("row", False, 0), Layout("row", False, 1), Layout("column", False, 0),
    Layout("column", False, 2), Layout("vector", False, 0),
)
UNBATCHED = Layout("vector", False, 0)


@dataclass(frozen=True)
class Spec:
    """What inference learned about calling the user's code."""

    sequence: bool
    layout: Layout
    #: element of a tuple/list/dict return that holds the state(s); None: the return itself
    out_index: Any = None
    #: sequences: the states come as a list of per-step arrays (or a dict keyed by step)
    steps: bool = False
    includes_h0: bool = False  #: sequences: T + 1 states, h0 first
    final_only: bool = False  #: sequences: only the last state is returned
    unbatched: bool = False  #: the user's code also takes 1-D x and h
    backward_mode: str | None = None  #: "step" (cells), "all" / "last" (sequences)
    #: cells: other returned elements with the state's shape but different values
    others: tuple = ()

    def describe(self) -> str:
        return self.layout.describe(self.sequence)


# ------------------------------------------------------------------------------------------------
# Reading outputs
# ------------------------------------------------------------------------------------------------

_STATE_KEYS = ("h", "h_next", "h_t", "ht", "h_new", "a_next", "a", "state", "hidden", "hs", "h_all",
               "states", "outputs", "H")


def is_array(value: Any) -> bool:
    return isinstance(value, (np.ndarray, np.generic))


def as_float(value: Any, label: str, location: Location | None) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                   or arr.dtype == np.bool_) or np.iscomplexobj(arr):
        raise SubjectOutputError(f"{label} returned an array of dtype {arr.dtype}, not real numbers",
                                 location, kind="type", got=str(arr.dtype))
    return arr.astype(np.float64)


def describe_value(value: Any) -> str:
    if value is None:
        return "None"
    if is_array(value):
        return f"an array of shape {tuple(np.shape(value))}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_short(v) for v in value[:5])
        more = ", ..." if len(value) > 5 else ""
        return f"a {type(value).__name__} ({inner}{more})"
    if isinstance(value, dict):
        return f"a dict with keys {list(value)[:8]}"
    return f"a {type(value).__name__}"


def _short(value: Any) -> str:
    if is_array(value):
        return f"array {tuple(np.shape(value))}"
    return type(value).__name__


def _elements(ret: Any) -> list[tuple[Any, Any]]:
    if isinstance(ret, (tuple, list)):
        return list(enumerate(ret))
    if isinstance(ret, dict):
        return [(k, ret[k]) for k in _STATE_KEYS if k in ret] + \
            [(k, v) for k, v in ret.items() if k not in _STATE_KEYS]
    return []


def _element(ret: Any, index: Any) -> Any:
    try:
        return ret[index]
    except (KeyError, IndexError, TypeError):
        return _MISSING


_MISSING = object()


def cell_state(ret: Any, shape: tuple, index: Any, label: str, location: Location | None,
               search: bool = False) -> tuple[np.ndarray, Any]:
    """The state (native shape ``shape``) in what a cell's forward returned, and where it was."""
    if index is not None and not search:
        value = _element(ret, index)
        if value is _MISSING:
            raise SubjectOutputError(
                f"{label} returned {describe_value(ret)}; earlier calls returned the state as "
                f"element {index!r}", location, kind="type", got=describe_value(ret))
        return _check_shape(value, shape, label, location), index
    if is_array(ret):
        return _check_shape(ret, shape, label, location), None
    arrays = [(k, v) for k, v in _elements(ret) if is_array(v)]
    for key, value in arrays:
        if np.shape(value) == shape:
            return as_float(value, label, location), key
    if arrays:
        got = [tuple(np.shape(v)) for _, v in arrays]
        raise SubjectOutputError(
            f"{label} returned {describe_value(ret)}; none of its arrays has the state's shape "
            f"{shape}", location, kind="shape", expected=shape, got=got)
    raise SubjectOutputError(f"{label} returned {describe_value(ret)}; expected the new state, an "
                             f"array of shape {shape}", location, kind="type", expected=shape,
                             got=describe_value(ret))


def _check_shape(value: Any, shape: tuple, label: str, location: Location | None) -> np.ndarray:
    if not is_array(value):
        raise SubjectOutputError(f"{label} returned {describe_value(value)} where the state "
                                 f"should be, expected an array of shape {shape}", location,
                                 kind="type", expected=shape, got=describe_value(value))
    if np.shape(value) != shape:
        raise SubjectOutputError(f"{label} returned a state of shape {tuple(np.shape(value))}; "
                                 f"expected {shape}", location, kind="shape", expected=shape,
                                 got=tuple(np.shape(value)))
    return as_float(value, label, location)


def _as_states(value: Any, T: int, step_shape: tuple, seq_shape: tuple, seq_shape_h0: tuple,
               label: str, location: Location | None) -> tuple[np.ndarray, bool, bool] | None:
    """Read all T states from one value: (native stacked array, steps container, includes h0)."""
    if is_array(value):
        if np.shape(value) == seq_shape:
            return as_float(value, label, location), False, False
        if np.shape(value) == seq_shape_h0:
            return as_float(value, label, location), False, True
        return None
    if isinstance(value, dict):
        if all(t in value for t in range(T)) and all(
                is_array(value[t]) and np.shape(value[t]) == step_shape for t in range(T)):
            return np.stack([as_float(value[t], label, location) for t in range(T)]), True, False
        return None
    if isinstance(value, (list, tuple)) and len(value) in (T, T + 1) and value and all(
            is_array(v) and np.shape(v) == step_shape for v in value):
        return np.stack([as_float(v, label, location) for v in value]), True, len(value) == T + 1
    return None


# ------------------------------------------------------------------------------------------------
# Bindings: one callable view of a user object (class) or function + params
# ------------------------------------------------------------------------------------------------


class Binding:
    """What the engine needs from the user's code. Subclasses: class instances and functions."""

    label: str  # "GRUCell.forward", for messages
    location: Location | None
    user_files: set[str]
    root: Any  # the object or dict that holds the parameters
    backward_label: str = "backward"
    backward_arity: int | None = None  # None: no usable backward

    def clone(self, memo: dict[int, Any] | None = None) -> Binding:
        """A deep copy of the user's object; ``memo`` as in `clone`."""
        raise NotImplementedError

    def forward(self, x: Any, h: Any) -> Any:
        raise NotImplementedError

    def backward(self, dh: Any, fwd_ret: Any, out_index: Any) -> Any:
        raise NotImplementedError

    def stored_gradients(self) -> dict[str, Any]:
        return {}


def cache_of(fwd_ret: Any, out_index: Any) -> Any:
    """The cache a ``backward(dh, cache)`` wants: what the forward returned besides the state."""
    if isinstance(fwd_ret, dict):
        return fwd_ret
    if isinstance(fwd_ret, (tuple, list)):
        rest = [v for i, v in enumerate(fwd_ret) if i != out_index]
        return rest[-1] if rest else None  # (a_next, yt_pred, cache): the cache comes last
    return None


class ClassBinding(Binding):
    def __init__(self, obj: Any, method: str, backward: str | None, label: str,
                 location: Location | None, user_files: set[str]):
        self.obj = obj
        self.method = method
        self.backward_name = backward
        self.label = label
        self.location = location
        self.user_files = user_files
        self.backward_label = f"{type(obj).__qualname__}.{backward}" if backward else "backward"
        self.backward_arity = None
        if backward:
            _, req = required_positional(getattr(obj, backward))
            self.backward_arity = len(req) if len(req) in (1, 2) else None

    @property
    def root(self) -> Any:
        return self.obj

    def clone(self, memo: dict[int, Any] | None = None) -> ClassBinding:
        new = copy.copy(self)
        new.obj = clone(self.obj, memo)
        return new

    def forward(self, x: Any, h: Any) -> Any:
        return call_user(getattr(self.obj, self.method), x, h, during="forward",
                         user_files=self.user_files)

    def backward(self, dh: Any, fwd_ret: Any, out_index: Any) -> Any:
        fn = getattr(self.obj, self.backward_name)
        args = (dh,) if self.backward_arity == 1 else (dh, cache_of(fwd_ret, out_index))
        return call_user(fn, *args, during="backward", user_files=self.user_files)

    def stored_gradients(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, value in vars(self.obj).items():
            if isinstance(value, dict) and norm(name) in {"grads", "grad", "gradients", "dparams",
                                                          "paramgrads"}:
                found.update(value)
            elif is_array(value) and (name.startswith("d") or "grad" in name.lower()):
                found[name] = value
        return found


# ------------------------------------------------------------------------------------------------
# Reading a hand-written backward
# ------------------------------------------------------------------------------------------------

#: gradient keys for the input and for the previous state, in order of preference
_DX_KEYS = ("dx", "dxt", "dxs", "dinput", "dinputs", "dxin", "gradx", "dxtt", "x", "xt", "xs")
_DH_KEYS = ("dhprev", "dprevh", "daprev", "dh0", "da0", "dhinit", "dsprev", "dprevstate",
            "dhtm1", "dht1", "dhx", "dcprev", "dinitialstate", "dstate", "dhidden", "dh", "dhnext",
            "danext", "dprev", "hprev", "h0", "h", "aprev")


@dataclass
class ReadGradients:
    params: dict[str, np.ndarray]
    dx: np.ndarray | None
    dh: np.ndarray | None
    unknown: list[str]


def read_gradients(raw: Any, binding: Binding, paths: Mapping[str, Path],
                   shapes: Mapping[str, tuple], x_shape: tuple, h_shape: tuple) -> ReadGradients:
    """Map what a user's backward returned onto parameter names, dx and dh (native shapes)."""
    label = binding.backward_label
    entries: dict[Any, Any] = {}
    px = ph = None
    stray = 0
    if raw is None:
        entries = dict(binding.stored_gradients())
    elif isinstance(raw, dict):
        entries = dict(raw)
    elif isinstance(raw, (tuple, list)) or is_array(raw):
        for item in (raw if isinstance(raw, (tuple, list)) else [raw]):
            if isinstance(item, dict):
                entries.update(item)
            elif is_array(item) and np.shape(item) == x_shape and px is None:
                px = item
            elif is_array(item) and np.shape(item) == h_shape and ph is None:
                ph = item
            elif item is not None:
                stray += 1
    if not entries and px is None and ph is None:
        raise GradientsUnavailable(
            f"{label} returned {describe_value(raw)}; grudiag reads a dict of gradients keyed by "
            "parameter name (dWz or Wz) with dx / dh_prev entries")

    leaf_names: dict[str, list[str]] = {}
    for name, path in paths.items():
        leaf_names.setdefault(str(path[-1]), []).append(name)
    lower_names = {k.lower(): v for k, v in leaf_names.items()}

    params: dict[str, np.ndarray] = {}
    dx_found: dict[str, Any] = {}
    dh_found: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in entries.items():
        if value is None:
            continue
        key_s = str(key)
        name = _param_for_key(key_s, leaf_names, lower_names)
        if name is not None:
            if name not in params:
                params[name] = _fit_gradient(value, shapes[name], key_s, name, label,
                                             binding.location)
            continue
        n = norm(key_s)
        if n in _DX_KEYS:
            dx_found[n] = value
        elif n in _DH_KEYS:
            dh_found[n] = value
        else:
            unknown.append(key_s)
    if stray:
        unknown.append(f"{stray} unnamed array(s)")
    dx = px if px is not None else _first(dx_found, _DX_KEYS)
    dh = ph if ph is not None else _first(dh_found, _DH_KEYS)
    if dx is not None:
        dx = _fit_gradient(dx, x_shape, "dx", "the input", label, binding.location)
    if dh is not None:
        dh = _fit_gradient(dh, h_shape, "dh_prev", "the previous state", label, binding.location)
    return ReadGradients(params, dx, dh, unknown)


def _first(found: dict[str, Any], order: tuple[str, ...]) -> Any:
    for key in order:
        if key in found:
            return found[key]
    return None


def _param_for_key(key: str, leaf_names: dict[str, list[str]],
                   lower_names: dict[str, list[str]]) -> str | None:
    stems = [key]
    for prefix in ("d_", "grad_", "d", "grad", "g_"):
        if key.startswith(prefix) and len(key) > len(prefix):
            stems.append(key[len(prefix):])
    for suffix in ("_grad", "_g", "grad"):
        if key.endswith(suffix) and len(key) > len(suffix):
            stems.append(key[: -len(suffix)])
    for table, fold in ((leaf_names, False), (lower_names, True)):
        for stem in stems:
            names = table.get(stem.lower() if fold else stem)
            if names:
                return names[0]
    return None


def _fit_gradient(value: Any, shape: tuple, key: str, what: str, label: str,
                  location: Location | None) -> np.ndarray:
    arr = as_float(value, label, location)
    if arr.shape == tuple(shape):
        return arr
    if tuple(d for d in arr.shape if d != 1) == tuple(d for d in shape if d != 1):
        return arr.reshape(shape)  # a (H, 1) gradient for a (H,) bias is the same numbers
    raise SubjectOutputError(
        f"{label} returned gradient {key!r} of shape {arr.shape} for {what}, whose shape is "
        f"{tuple(shape)}", location, kind="shape", expected=tuple(shape), got=arr.shape)


# ------------------------------------------------------------------------------------------------
# The engine: running, and vector-Jacobian products through the user's backward
# ------------------------------------------------------------------------------------------------


def run_cell(b: Binding, spec: Spec, xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
    L = spec.layout
    T, B, _ = xs.shape
    H = h0.shape[1]
    out = np.empty((T, B, H))
    h = h0
    for t in range(T):
        ret = b.forward(L.step(xs[t]), L.step(h))
        native, _ = cell_state(ret, L.step_shape(B, H), spec.out_index, b.label, b.location)
        h = L.step_back(native)
        out[t] = h
    return out


def sequence_states(ret: Any, spec: Spec, T: int, B: int, H: int, b: Binding) -> np.ndarray:
    """(T, B, H) canonical states from a sequence forward's return."""
    L = spec.layout
    value = ret if spec.out_index is None else _element(ret, spec.out_index)
    if value is _MISSING:
        raise SubjectOutputError(f"{b.label} returned {describe_value(ret)}; earlier calls "
                                 f"returned the states as element {spec.out_index!r}",
                                 b.location, kind="type", got=describe_value(ret))
    seq_shape = L.seq_shape(T, B, H)
    read = _as_states(value, T, L.step_shape(B, H), seq_shape, L.seq_shape(T + 1, B, H),
                      b.label, b.location)
    if read is None:
        got = tuple(np.shape(value)) if is_array(value) else describe_value(value)
        raise SubjectOutputError(
            f"{b.label} returned {describe_value(value)} for the states; expected {seq_shape} "
            f"{L.describe(True, 'H')} or a list of {T} arrays of shape {L.step_shape(B, H)}",
            b.location, kind="shape" if is_array(value) else "type", expected=seq_shape, got=got)
    states, steps, with_h0 = read
    if steps:
        states = np.stack([L.step_back(s) for s in states])
    else:
        states = L.seq_back(states)
    return states[1:] if with_h0 else states


def run_sequence(b: Binding, spec: Spec, xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
    L = spec.layout
    T, B, _ = xs.shape
    H = h0.shape[1]
    if not spec.final_only:
        return sequence_states(b.forward(L.seq(xs), L.step(h0)), spec, T, B, H, b)
    # Only the last state comes back: state t is the last state of the prefix xs[:t + 1].
    out = np.empty((T, B, H))
    for t in range(T):
        ret = b.forward(L.seq(xs[: t + 1]), L.step(h0))
        native, _ = cell_state(ret, L.step_shape(B, H), spec.out_index, b.label, b.location)
        out[t] = L.step_back(native)
    return out


def run(b: Binding, spec: Spec, xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
    fn = run_sequence if spec.sequence else run_cell
    if spec.layout.batched or xs.shape[1] == 1:
        return fn(b, spec, xs, h0)
    # One example per call, in order: a user with a one-example cell feeds sequences one by one.
    return np.concatenate([fn(b, spec, xs[:, i:i + 1], h0[i:i + 1]) for i in range(xs.shape[1])],
                          axis=1)


@dataclass
class VjpPart:
    dxs: np.ndarray
    dh0: np.ndarray
    params: dict[str, np.ndarray]
    unknown: set[str]
    missing_dx: bool = False
    missing_dh: bool = False


def _vjp_cell(template: Binding, spec: Spec, paths, shapes, xs, h0, dhs, shared) -> VjpPart:
    L = spec.layout
    T, B, I = xs.shape
    H = h0.shape[1]
    steps = []
    h = h0
    for t in range(T):
        b = template.clone(shared)
        ret = b.forward(L.step(xs[t]), L.step(h))
        native, _ = cell_state(ret, L.step_shape(B, H), spec.out_index, b.label, b.location)
        h = L.step_back(native)
        steps.append((b, ret))
    part = VjpPart(np.zeros_like(xs), np.zeros_like(h0), {}, set())
    carry = np.zeros_like(h0)
    for t in reversed(range(T)):
        b, ret = steps[t]
        raw = b.backward(L.step(dhs[t] + carry), ret, spec.out_index)
        g = read_gradients(raw, b, paths, shapes, L.step_shape(B, I), L.step_shape(B, H))
        _accumulate(part, g)
        if g.dx is None:
            part.missing_dx = True
        else:
            part.dxs[t] = L.step_back(g.dx)
        if g.dh is None:
            part.missing_dh = True
            carry = np.zeros_like(h0)
        else:
            carry = L.step_back(g.dh)
    part.dh0 = carry
    return part


def _vjp_sequence(template: Binding, spec: Spec, paths, shapes, xs, h0, dhs, shared) -> VjpPart:
    L = spec.layout
    T, B, I = xs.shape
    H = h0.shape[1]
    part = VjpPart(np.zeros_like(xs), np.zeros_like(h0), {}, set())
    if spec.backward_mode == "all":
        windows = [(T, dhs)]
    else:  # the backward takes the last state's gradient: sum the prefixes (linearity)
        windows = [(t + 1, dhs[t]) for t in range(T)]
    for n, dh in windows:
        b = template.clone(shared)
        ret = b.forward(L.seq(xs[:n]), L.step(h0))
        if spec.backward_mode == "all":
            native = dh
            if spec.includes_h0:
                native = np.concatenate([np.zeros_like(dh[:1]), dh])
            native_dh = L.seq(native)
        else:
            native_dh = L.step(dh)
        raw = b.backward(native_dh, ret, spec.out_index)
        g = read_gradients(raw, b, paths, shapes, L.seq_shape(n, B, I), L.step_shape(B, H))
        _accumulate(part, g)
        if g.dx is None:
            part.missing_dx = True
        else:
            part.dxs[:n] += L.seq_back(g.dx)
        if g.dh is None:
            part.missing_dh = True
        else:
            part.dh0 += L.step_back(g.dh)
    return part


def _accumulate(part: VjpPart, g: ReadGradients) -> None:
    for name, value in g.params.items():
        part.params[name] = part.params[name] + value if name in part.params else value.copy()
    part.unknown.update(g.unknown)


def vjp_parts(template: Binding, spec: Spec, paths, shapes, xs, h0, dhs) -> VjpPart:
    """The gradients, from a copy of the user's object per step (cells cache on ``self``).

    The copies share one copy of the parameters per call instead of one each: at large hidden
    sizes the weights are most of what a copy copies. Code that changes a parameter in place
    (``self.W -= lr * dW`` in a backward) would carry that change from one step's copy to the
    next, so then every step gets its own copy, as it would without sharing.
    """
    params = [get_path(template.root, p) for p in paths.values()]
    shared = {id(a): np.array(a) for a in params}
    part = _vjp_parts(template, spec, paths, shapes, xs, h0, dhs, shared)
    if all(np.array_equal(shared[id(a)], a) or np.array_equal(shared[id(a)], a, equal_nan=True)
           for a in params):
        return part
    return _vjp_parts(template, spec, paths, shapes, xs, h0, dhs, None)


def _vjp_parts(template: Binding, spec: Spec, paths, shapes, xs, h0, dhs, shared) -> VjpPart:
    fn = _vjp_sequence if spec.sequence else _vjp_cell
    if spec.layout.batched or xs.shape[1] == 1:
        return fn(template, spec, paths, shapes, xs, h0, dhs, shared)
    parts = [fn(template, spec, paths, shapes, xs[:, i:i + 1], h0[i:i + 1], dhs[:, i:i + 1],
                shared) for i in range(xs.shape[1])]
    total = VjpPart(np.concatenate([p.dxs for p in parts], axis=1),
                    np.concatenate([p.dh0 for p in parts], axis=0), {}, set())
    for p in parts:
        _accumulate(total, ReadGradients(p.params, None, None, sorted(p.unknown)))
        total.missing_dx |= p.missing_dx
        total.missing_dh |= p.missing_dh
    return total


# ------------------------------------------------------------------------------------------------
# Inference
# ------------------------------------------------------------------------------------------------


class InferenceFailed(Exception):
    def __init__(self, error: SubjectError):
        super().__init__(error.message)
        self.error = error


def _probe_inputs(I: int, H: int, options: Options | None):
    B = distinct(options.batch if options else DEFAULT_BATCH, {I, H})
    T = distinct(options.time if options else DEFAULT_TIME, {I, H, B, B + 1, 2})
    rng = np.random.default_rng(20240917)
    return B, T, rng.normal(size=(T, B, I)), rng.uniform(-0.5, 0.5, size=(B, H))


def _try_cell(template: Binding, L: Layout, xs, h0) -> Spec:
    B = xs.shape[1] if L.batched else 1
    H = h0.shape[1]
    b = template.clone()
    ret = b.forward(L.step(xs[0, :B]), L.step(h0[:B]))
    state, index = cell_state(ret, L.step_shape(B, H), None, b.label, b.location, search=True)
    others = [k for k, v in _elements(ret) if k != index and is_array(v)
              and np.shape(v) == np.shape(state) and not np.array_equal(v, state)]
    return Spec(False, L, out_index=index, others=tuple(others))


def _try_sequence(template: Binding, L: Layout, xs, h0) -> Spec:
    T, B0, _ = xs.shape
    B = B0 if L.batched else 1
    H = h0.shape[1]
    b = template.clone()
    ret = b.forward(L.seq(xs[:, :B]), L.step(h0[:B]))
    shapes = (L.step_shape(B, H), L.seq_shape(T, B, H), L.seq_shape(T + 1, B, H))
    candidates = [(None, ret)] + _elements(ret)
    for index, value in candidates:
        read = _as_states(value, T, *shapes, b.label, b.location)
        if read is not None:
            _, steps, with_h0 = read
            if with_h0:
                first = read[0][0] if steps else np.moveaxis(read[0], L.time_axis, 0)[0]
                if not np.allclose(first, L.step(h0[:B])):
                    continue
            return Spec(True, L, out_index=index, steps=steps, includes_h0=with_h0)
    for index, value in candidates:
        if is_array(value) and np.shape(value) == shapes[0]:
            return Spec(True, L, out_index=index, final_only=True)
    expected = shapes[1]
    got = tuple(np.shape(ret)) if is_array(ret) else describe_value(ret)
    raise SubjectOutputError(f"{b.label} returned {describe_value(ret)} for a sequence "
                             f"{L.describe(True)}; expected the states {expected}", b.location,
                             kind="shape" if is_array(ret) else "type", expected=expected, got=got)


def _first_success(attempt: Callable[[Layout], Spec], layouts, errors: list
                   ) -> tuple[Spec, SubjectError | None] | None:
    """The first layout that works, with the batched attempt's error when only a
    one-example layout did."""
    batched_error = None
    for L in layouts:
        try:
            spec = attempt(L)
        except SubjectError as exc:
            errors.append(exc)
            if L.batched:
                batched_error = batched_error or exc
            continue
        return spec, (None if L.batched else batched_error)
    return None


def _batch_mixing(template: Binding, spec: Spec, xs, h0) -> bool:
    """Does example 0's input change other examples' states? (a sequence read as a cell does)"""
    if not spec.layout.batched:
        return False
    xs2 = xs.copy()
    xs2[:, 0] += 1.0
    if not spec.sequence:
        xs, xs2 = xs[:1], xs2[:1]
    try:
        a = run(template.clone(), spec, xs, h0)
        b = run(template.clone(), spec, xs2, h0)
    except SubjectError:
        return True
    return not np.allclose(a[:, 1:], b[:, 1:], rtol=1e-9, atol=1e-12)


def _time_coupled(template: Binding, spec: Spec, xs, h0) -> bool:
    """Does x_0 reach later states? Not when a cell broadcasts over a whole sequence."""
    xs2 = xs.copy()
    xs2[0] += 1.0
    try:
        a = run(template.clone(), spec, xs, h0)
        b = run(template.clone(), spec, xs2, h0)
    except SubjectError:
        return True
    return not np.allclose(a[1:], b[1:], rtol=1e-9, atol=1e-12)


def _echoes_h0(template: Binding, spec: Spec, xs, h0) -> bool:
    """A cell reading that picked h0 out of a returned list of states ([h0, h1, ...])."""
    if spec.out_index is None:
        return False
    try:
        return bool(np.array_equal(run(template.clone(), spec, xs[:1], h0)[0], h0))
    except SubjectError:
        return False


def best_error(errors: list[SubjectError]) -> SubjectError:
    """The most telling failure: code that ran and returned the wrong thing, else the deepest raise."""
    if not errors:
        return SubjectError("grudiag found nothing to call")
    outputs = [e for e in errors if isinstance(e, SubjectOutputError)]
    if outputs:
        return outputs[0]
    return max(errors, key=lambda e: (e.location.line or 0) if e.location else 0)


@dataclass
class Inferred:
    spec: Spec
    batch_failure: SubjectError | None
    notes: list[str]


def infer(template: Binding, I: int, H: int, options: Options | None, hint: str | None
          ) -> Inferred:
    """Work out how to call the user's code by running it (see the module docstring)."""
    B, T, xs, h0 = _probe_inputs(I, H, options)
    errors: list[SubjectError] = []
    cell = _first_success(lambda L: _try_cell(template, L, xs, h0), CELL_LAYOUTS, errors)
    seq = None
    if cell is None or hint != "cell" or _batch_mixing(template, cell[0], xs, h0):
        seq = _first_success(lambda L: _try_sequence(template, L, xs, h0), SEQUENCE_LAYOUTS,
                             errors)
    if cell is None and seq is None:
        raise InferenceFailed(best_error(errors))
    notes = []
    if cell is not None and seq is not None:
        choice = _choose(template, cell[0], seq[0], hint, xs, h0)
    else:
        choice = "cell" if cell is not None else "sequence"
    spec, batch_failure = cell if choice == "cell" else seq
    if batch_failure is not None:
        notes.append(f"{template.label} works one example at a time only: with a batch of {B} "
                     f"it failed ({batch_failure.message}); grudiag feeds the batch one example "
                     "per call")
    if spec.final_only:
        notes.append(f"{template.label} returns only the last state; grudiag runs it once per "
                     "prefix of the sequence to get every state")
    if spec.includes_h0:
        notes.append(f"{template.label} returns h0 in front of the states; grudiag drops it")
    if spec.others:
        notes.append(f"{template.label} returns several arrays of the state's shape; grudiag "
                     f"takes element {spec.out_index!r} as the new state, not "
                     f"{', '.join(repr(k) for k in spec.others)}")
    if spec.layout.math != "vector":
        spec = replace(spec, unbatched=_accepts_vectors(template, spec, xs, h0))
    else:
        spec = replace(spec, unbatched=True)
    return Inferred(spec, batch_failure, notes)


def _choose(template: Binding, cell: Spec, seq: Spec, hint: str | None, xs, h0) -> str:
    """Both readings ran. A sequence model read as a cell treats the batch as time, so its
    examples mix; when exactly one reading keeps examples independent, it wins. Else names
    decide, else the cell (a cell fed a sequence often runs too, by broadcasting)."""
    cell_mixes = _batch_mixing(template, cell, xs, h0) or _echoes_h0(template, cell, xs, h0)
    if cell_mixes != _batch_mixing(template, seq, xs, h0):
        return "sequence" if cell_mixes else "cell"
    if not cell_mixes and not _time_coupled(template, seq, xs, h0):
        return "cell"  # the "sequence" never carries a state from one step to the next
    return hint or "cell"


def _accepts_vectors(template: Binding, spec: Spec, xs, h0) -> bool:
    vec = replace(spec, layout=UNBATCHED)
    try:
        if spec.sequence:
            return run_unbatched(template.clone(), vec, xs[:, 0], h0[0]).shape == xs[:, 0].shape[
                :1] + h0[0].shape
        return run_unbatched(template.clone(), vec, xs[:1, 0], h0[0]).shape == (1, h0.shape[1])
    except SubjectError:
        return False


def run_unbatched(b: Binding, spec: Spec, xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """(T, I), (H,) through the user's 1-D path -> (T, H)."""
    return run(b, replace(spec, layout=UNBATCHED), xs[:, None, :], h0[None])[:, 0]


def choose_backward_mode(template: Binding, spec: Spec, paths, shapes, I, H, options,
                         backward_arg: str) -> tuple[Spec, str | None]:
    """Try the user's backward once; returns the spec with its mode and a note, or None mode.

    For a sequence, a backward over every state's gradient ("all") is tried first, unless its
    argument is named for the last state only; a failure there falls back to "last".
    """
    if template.backward_arity is None:
        return spec, None
    if not spec.sequence:
        modes = ["step"]
    elif spec.final_only or norm(backward_arg) in {"dhlast", "dhfinal", "dhn", "dlast", "dhend",
                                                    "dhtfinal", "dfinal"}:
        modes = ["last"]
    else:
        modes = ["all", "last"]
    B, T, xs, h0 = _probe_inputs(I, H, options)
    xs, T = xs[:3], 3
    B = B if spec.layout.batched else 1
    xs, h0 = xs[:, :B], h0[:B]
    dhs = np.random.default_rng(7).normal(size=(T, B, H))
    first_error: Exception | None = None
    for mode in modes:
        trial = replace(spec, backward_mode=mode)
        try:
            vjp_parts(template, trial, paths, shapes, xs, h0, dhs)
            return trial, None
        except (SubjectError, GradientsUnavailable) as exc:
            first_error = first_error or exc
    if isinstance(first_error, GradientsUnavailable):
        return spec, str(first_error)
    # The backward crashes or returns wrong shapes: that is a finding for the gradient checks.
    return replace(spec, backward_mode=modes[0]), None


# ------------------------------------------------------------------------------------------------
# The subject
# ------------------------------------------------------------------------------------------------


class NumpySubject(Subject):
    """Shared by NumPy classes and functions: runs and differentiates through a `Binding`.

    Beyond `Subject`: ``batched`` (False when the user's code takes one example per call),
    ``native_layout`` (e.g. ``"(T, B, I)"``) and ``batch_failure`` (the error a batched call gave
    when ``batched`` is False).
    """

    def __init__(self, *, id: str, kind: str, binding: Binding, spec: Spec, input_size: int,
                 hidden_size: int, location: Location | None, user_module: Any,
                 sizes_fixed: bool, gradient_source: str | None, notes: list[str],
                 batch_failure: SubjectError | None, owner: Any,
                 paths: Mapping[str, Path], seed: int = 0):
        Subject.__init__(self, id=id, kind=kind, backend="numpy", input_size=input_size,
                         hidden_size=hidden_size, is_sequence=spec.sequence,
                         layout=spec.layout.math, location=location,
                         gradient_source=gradient_source, supports_unbatched=spec.unbatched,
                         user_module=user_module, sizes_fixed=sizes_fixed, notes=list(notes))
        #: never run: the source of every copy (with `_overrides` applied)
        self._base = binding
        #: parameter values (by name) that replace the base's in this subject's copies
        self._overrides: dict[str, np.ndarray] = {}
        self._made_work: Binding | None = None
        self._made_template: Binding | None = None
        self._spec = spec
        self._paths = dict(paths)
        self._shapes = {n: get_path(binding.root, p).shape for n, p in self._paths.items()}
        self._owner = owner
        self.batched = spec.layout.batched
        self.native_layout = spec.describe()
        self.batch_failure = batch_failure
        #: seed of the global RNGs during each call into user code (dropout drawn from np.random
        #: gives the same mask on every run of a check)
        self.seed = seed

    # --- running ---------------------------------------------------------------------------
    def _check_inputs(self, xs: np.ndarray, h0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xs = np.asarray(xs, dtype=np.float64)
        h0 = np.asarray(h0, dtype=np.float64)
        if xs.ndim != 3 or xs.shape[2] != self.input_size or h0.shape != (xs.shape[1],
                                                                           self.hidden_size):
            raise ValueError(f"expected xs (T, B, {self.input_size}) and h0 (B, "
                             f"{self.hidden_size}), got {xs.shape} and {h0.shape}")
        return xs, h0

    # Every entry point into user code guards the process-global state (RNGs, np.seterr...)
    # once per call, not once per step: a snapshot costs about as much as a small forward.
    def run(self, xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
        xs, h0 = self._check_inputs(xs, h0)
        with guarded_global_state(self.seed):
            return run(self._work, self._spec, xs, h0)

    def run_unbatched(self, xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
        if not self._spec.unbatched:
            raise NotImplementedError(f"{self._base.label} has no 1-D (unbatched) path")
        with guarded_global_state(self.seed):
            return run_unbatched(self._work, self._spec, np.asarray(xs, dtype=np.float64),
                                 np.asarray(h0, dtype=np.float64))

    # --- parameters ------------------------------------------------------------------------
    def parameters(self) -> dict[str, np.ndarray]:
        return {n: np.array(self._overrides[n] if n in self._overrides
                            else get_path(self._base.root, p), dtype=np.float64)
                for n, p in self._paths.items()}

    def with_parameters(self, params: Mapping[str, np.ndarray]) -> NumpySubject:
        for name, value in params.items():
            if name not in self._paths:
                raise KeyError(f"unknown parameter {name!r}; this subject has "
                               f"{sorted(self._paths)}")
            if np.shape(value) != self._shapes[name]:
                raise ValueError(f"parameter {name!r} has shape {self._shapes[name]}, got "
                                 f"{np.shape(value)}")
        new = copy.copy(self)
        new._overrides = {**self._overrides,
                          **{n: np.array(v, dtype=np.float64) for n, v in params.items()}}
        # Copies of the user's object are made on first use: many subjects are made only to
        # be copied again (the runner's copy per probe) or are never differentiated.
        new._made_work = new._made_template = None
        new.notes = list(self.notes)
        return new

    @property
    def _work(self) -> Binding:
        """The copy the runs use (and may change: a cell keeps its caches on itself)."""
        if self._made_work is None:
            self._made_work = self._copy_of_base()
        return self._made_work

    @property
    def _template(self) -> Binding:
        """A copy with this subject's parameters that is never run: the vjp copies it per step."""
        if not self._overrides:
            return self._base
        if self._made_template is None:
            self._made_template = self._copy_of_base()
        return self._made_template

    def _copy_of_base(self) -> Binding:
        # The replaced arrays are not copied first: the memo maps each to its new value (and so
        # does any other reference to it in the object, such as a dict of the same arrays).
        values = {n: v.copy() for n, v in self._overrides.items()}
        binding = self._base.clone({id(get_path(self._base.root, self._paths[n])): v
                                    for n, v in values.items()})
        for name, value in values.items():
            if get_path(binding.root, self._paths[name]) is not value:  # the memo was not used
                set_path(binding.root, self._paths[name], value)
        return binding

    def parameter_locations(self) -> dict[str, Location]:
        return param_locations(self._paths, self._owner)

    # --- gradients -------------------------------------------------------------------------
    def vjp(self, xs: np.ndarray, h0: np.ndarray, dhs: np.ndarray) -> Gradients:
        if self.gradient_source != "user-backward":
            raise GradientsUnavailable(f"{self.id} has no usable backward")
        xs, h0 = self._check_inputs(xs, h0)
        dhs = np.asarray(dhs, dtype=np.float64)
        with guarded_global_state(self.seed):
            part = vjp_parts(self._template, self._spec, self._paths, self._shapes, xs, h0, dhs)
        label = self._template.backward_label
        if part.missing_dx:
            self._note(f"{label} returned no gradient for the input x; grudiag takes it as zero")
        if part.missing_dh:
            self._note(f"{label} returned no gradient for the previous state h_prev; grudiag "
                       "takes it as zero, so nothing flows back through time")
        missing = sorted(set(self._paths) - set(part.params))
        if missing:
            self._note(f"{label} returned no gradient for {', '.join(missing)}")
        if part.unknown:
            self._note(f"{label} returned gradients grudiag cannot attribute: "
                       f"{', '.join(sorted(part.unknown))}")
        params = {name: part.params.get(name) for name in self._paths}
        return Gradients(xs=part.dxs, h0=part.dh0, params=params, source="user-backward")

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


class NumpyCellSubject(NumpySubject):
    """A NumPy class whose forward takes one step: ``forward(x, h_prev) -> h``."""


class NumpySequenceSubject(NumpySubject):
    """A NumPy class whose forward takes a whole sequence: ``forward(xs, h0) -> hs``."""


# ------------------------------------------------------------------------------------------------
# Discovery
# ------------------------------------------------------------------------------------------------

_FORWARD_NAMES = ("forward", "forward_step", "step", "__call__")
_BACKWARD_NAMES = ("backward", "backward_step", "step_backward", "backward_pass", "bptt",
                   "backprop")
_RECURRENT_WORDS = ("gru", "rnn", "cell", "recurrent", "lstm", "elman")


def _own_function(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if klass is object:
            return None
        if name in vars(klass):
            fn = vars(klass)[name]
            return fn if inspect.isfunction(fn) else None
    return None


def forward_method(cls: type) -> tuple[str, Any] | None:
    """The first forward-like method taking (x, h) — two positional arguments besides self."""
    for name in _FORWARD_NAMES:
        fn = _own_function(cls, name)
        if fn is None:
            continue
        names, req = required_positional(fn)
        if len(names) >= 3 and len(req) <= 3:
            return name, fn
    return None


def backward_method(cls: type) -> str | None:
    for name in _BACKWARD_NAMES:
        fn = _own_function(cls, name)
        if fn is not None:
            names, req = required_positional(fn)
            if len(req) in (2, 3):  # self, dh[, cache]
                return name
    return None


def _is_torch_class(cls: type) -> bool:
    return any((k.__module__ or "").startswith("torch") for k in cls.__mro__)


def _is_stub(fn: Any) -> bool:
    """``def forward(...): raise NotImplementedError`` (or only ``pass``): an abstract base."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False
    body = tree.body[0].body if tree.body and hasattr(tree.body[0], "body") else []
    body = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if not body:
        return True
    if len(body) == 1 and isinstance(body[0], ast.Pass):
        return True
    if len(body) == 1 and isinstance(body[0], ast.Raise):
        exc = body[0].exc
        name = exc.func if isinstance(exc, ast.Call) else exc
        return isinstance(name, ast.Name) and name.id == "NotImplementedError"
    return False


def looks_like_cell(cls: type, method: str, fn: Any) -> bool:
    names, _ = required_positional(fn)
    x_name, h_name = names[1], names[2]
    if is_h_name(h_name):
        return True
    named = any(w in cls.__name__.lower() for w in _RECURRENT_WORDS)
    return named and is_x_name(x_name)


def probe_sizes(options: Options | None) -> tuple[int, int]:
    I = (options.input_size if options else None) or DEFAULT_INPUT_SIZE
    H = (options.hidden_size if options else None) or DEFAULT_HIDDEN_SIZE
    return I, H


def stable_seed(options: Options | None, *keys: object) -> int:
    """A stable per-purpose seed for user constructors and factories."""
    return zlib.crc32(":".join(str(k) for k in ((options.seed if options else 0), *keys)).encode())


def find_candidates(module: types.ModuleType, path: str, options: Options) -> list[Candidate]:
    """NumPy classes defined in ``module`` that look like recurrent cells or sequence models."""
    classes = [c for c in vars(module).values()
               if inspect.isclass(c) and c.__module__ == module.__name__ and not _is_torch_class(c)]
    found = []
    for cls in classes:
        if inspect.isabstract(cls) or issubclass(cls, BaseException):
            continue
        fm = forward_method(cls)
        if fm is None or not looks_like_cell(cls, *fm) or _is_stub(fm[1]):
            continue
        I, H = probe_sizes(options)
        if size_call(cls, I, H, 0) is None:
            continue
        found.append(_class_candidate(cls, fm, path, options, instance=None, name=None))
    found.sort(key=lambda c: (c.location.line or 0) if c.location else 0)
    return found


def candidate_for_object(obj: Any, options: Options, name: str | None = None) -> Candidate | None:
    """A NumPy cell/sequence instance (or class) handed to the API."""
    cls = obj if inspect.isclass(obj) else type(obj)
    if _is_torch_class(cls) or isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
        return None
    fm = forward_method(cls)
    if fm is None:
        return None
    if inspect.isclass(obj):
        I, H = probe_sizes(options)
        if size_call(cls, I, H, 0) is None:
            return None
        return _class_candidate(cls, fm, None, options, instance=None, name=name)
    return _class_candidate(cls, fm, None, options, instance=obj, name=name)


def _class_candidate(cls: type, fm: tuple[str, Any], path: str | None, options: Options,
                     instance: Any, name: str | None) -> Candidate:
    method, fn = fm
    location = source_location(fn, f"{cls.__qualname__}.{method}")
    file = path or (location.file if location else None) or "<object>"
    subject_id = f"{os.path.basename(file)}::{name or cls.__qualname__}"
    names, _ = required_positional(fn)
    hint = sequence_hint(names[1], names[2], method)
    # Provisional: only building (running the forward) tells a cell from a sequence model.
    kind = "numpy-sequence" if hint == "sequence" else "numpy-cell"
    # An instance is copied now: later changes to the user's object must not leak into the build.
    snapshot = clone(instance) if instance is not None else None

    def build() -> NumpySubject:
        # Seeded, so constructors drawing from np.random give the same weights for a --seed;
        # restored, so the user's own streams are untouched (DESIGN §6).
        with guarded_global_state(stable_seed(options, subject_id, "construct")):
            return build_class_subject(cls, method, subject_id, location, options, snapshot,
                                       hint)

    return Candidate(id=subject_id, kind=kind, location=location, build=build)


def build_class_subject(cls: type, method: str, subject_id: str, location: Location | None,
                        options: Options, instance: Any = None, hint: str | None = None
                        ) -> NumpySubject:
    user_files = {location.file} if location and location.file else set()
    try:
        user_files.add(os.path.abspath(inspect.getsourcefile(cls)))
    except TypeError:
        pass
    I, H = probe_sizes(options)
    sizes_fixed = True
    if instance is None:
        args, kwargs, sized = size_call(cls, I, H, stable_seed(options, subject_id)) or ([], {}, False)
        obj = call_user(cls, *args, during="construct", user_files=user_files, **kwargs)
        sizes_fixed = not sized
    else:
        obj = clone(instance)
    notes = []
    backward = backward_method(cls)
    paths = collect_params(obj, skip=cache_attrs(cls, {method, backward}))
    converted = own_float64(obj, paths)
    if converted:
        notes.append("grudiag runs its copy in float64; the parameters were "
                     + ", ".join(converted))
    template = ClassBinding(obj, method, backward, f"{cls.__qualname__}.{method}", location,
                            user_files)
    size_options = [(I, H)] if not sizes_fixed else instance_sizes(obj, paths)
    inferred, I, H = infer_sizes(template, size_options, options, hint)
    notes += inferred.notes
    spec = inferred.spec
    gradient_source = None
    if backward:
        bnames, _ = required_positional(getattr(cls, backward))
        spec, problem = choose_backward_mode(template, spec, paths,
                                             {n: get_path(obj, p).shape for n, p in paths.items()},
                                             I, H, options, bnames[1] if len(bnames) > 1 else "")
        if template.backward_arity is None:
            notes.append(f"{cls.__qualname__}.{backward} takes arguments grudiag cannot supply; "
                         "it supports backward(dh) and backward(dh, cache)")
        elif problem:
            notes.append(problem)
        else:
            gradient_source = "user-backward"
    subject_cls = NumpySequenceSubject if spec.sequence else NumpyCellSubject
    return subject_cls(
        id=subject_id, kind="numpy-sequence" if spec.sequence else "numpy-cell", binding=template,
        spec=spec, input_size=I, hidden_size=H, location=location,
        user_module=sys.modules.get(cls.__module__), sizes_fixed=sizes_fixed,
        gradient_source=gradient_source, notes=notes, batch_failure=inferred.batch_failure,
        owner=cls, paths=paths, seed=options.seed)


def cache_attrs(cls: type, methods: set[str | None]) -> frozenset[str]:
    """Attributes only the forward/backward assign: the caches of the last call, not parameters.

    Matters for instances handed over after a forward ran (``self.z = ...`` is then an array).
    """
    return frozenset(attr for attr, where in _assignments(cls) if where <= methods)


@functools.lru_cache(maxsize=64)  # parses the source of the class and of its bases
def _assignments(cls: type) -> tuple[tuple[str, frozenset[str]], ...]:
    """Each ``self.<attr>`` assigned in a method of ``cls`` (or a base), with those methods."""
    assigned: dict[str, set[str]] = {}
    for klass in cls.__mro__:
        if klass is object or klass.__module__ in ("builtins",):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for sub in ast.walk(node):
                targets = sub.targets if isinstance(sub, ast.Assign) else \
                    [sub.target] if isinstance(sub, (ast.AnnAssign, ast.AugAssign)) else []
                for t in targets:
                    for leaf in ast.walk(t):
                        if isinstance(leaf, ast.Attribute) and isinstance(leaf.value, ast.Name) \
                                and leaf.value.id == "self":
                            assigned.setdefault(leaf.attr, set()).add(node.name)
    return tuple((attr, frozenset(where)) for attr, where in assigned.items())


def instance_sizes(obj: Any, paths: Mapping[str, Path]) -> list[tuple[int, int]]:
    """Plausible (input, hidden) sizes of an already-built object, most plausible first."""
    attrs = vars(obj) if hasattr(obj, "__dict__") else {}
    named = {}
    for key, value in attrs.items():
        role = size_role(key)
        if role in ("input", "hidden") and isinstance(value, (int, np.integer)) and value > 0:
            named.setdefault(role, int(value))
    guesses = [(named["input"], named["hidden"])] if len(named) == 2 else []
    arrays = [get_path(obj, p) for p in paths.values()]
    return guesses + [g for g in shape_guesses(arrays) if g not in guesses]


def shape_guesses(arrays: list[np.ndarray], limit: int = 40) -> list[tuple[int, int]]:
    """(input, hidden) pairs read off parameter shapes: square matrices first for the hidden size."""
    squares, dims = [], []
    for a in arrays:
        if a.ndim == 2 and a.shape[0] == a.shape[1]:
            squares.append(a.shape[0])
        dims.extend(a.shape)
    hs: list[int] = []
    for d in squares + dims + [d // k for d in dims for k in (3, 2, 4) if d % k == 0]:
        if d > 0 and d not in hs:
            hs.append(d)
    pairs = []
    for h in hs:
        ins = [d for d in dims if d > 0] + [d - h for d in dims if d > h] \
            + [d - h for d in dims if d > h and (d - h) % 3 == 0]
        for i in dict.fromkeys(ins):
            if (i, h) not in pairs:
                pairs.append((i, h))
    return pairs[:limit]


def infer_sizes(template: Binding, sizes: list[tuple[int, int]], options: Options | None,
                hint: str | None) -> tuple[Inferred, int, int]:
    """Inference at the first size pair that works; the first pair's error when none does."""
    first: InferenceFailed | None = None
    for I, H in sizes:
        try:
            return infer(template, I, H, options, hint), I, H
        except InferenceFailed as exc:
            first = first or exc
    if first is None:
        raise SubjectOutputError(f"grudiag could not tell the input and hidden sizes of "
                                 f"{template.label}: no float parameters found", template.location)
    error = first.error
    error.message = f"{error.message} (while grudiag was working out how to call {template.label})"
    error.args = (error.message,)
    raise error
