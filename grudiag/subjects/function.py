"""Functions ``f(x, h_prev, params)`` as subjects (DESIGN §5.5), alone or with their backward.

Discovery looks for, in the user's file:

* a **forward**: a function whose first three positional arguments read as (input, previous state,
  params) — ``gru_cell_forward(xt, a_prev, parameters)``, ``step(x, h, p)`` — returning ``h`` or a
  tuple holding it (``(h, cache)``, Andrew Ng's ``(a_next, yt_pred, cache)``). Sequence functions
  (``gru_forward(x, a0, parameters)`` over ``(n_x, m, T_x)``) are recognised by running them, like
  NumPy classes (numpy_class.py);
* a **params factory**: a function named like one (``initialize_parameters``, ``init_params``,
  ``make_weights``...) taking the two sizes by position or by a recognised name (``n_x``/``n_a``,
  ``input_size``/``hidden_size``...; an output size such as ``n_y`` gets a size of its own) and
  returning a dict of arrays. It runs with the global RNGs seeded and then restored;
* optionally a **backward** paired by name (``gru_cell_backward`` for ``gru_cell_forward``,
  ``cell_backward`` for ``cell_forward``, ``gru_step_grad`` for ``gru_step``) taking
  ``(dh, cache)`` (or ``(dh, cache, params)``) and returning a dict of gradients (``dxt``,
  ``da_prev``, ``dWz``...) or a tuple holding one. The subject is then a ``function-pair`` whose
  `vjp` unrolls a few steps and chains each step's cache into its backward.

Parameter names are the keys of the params dict (``Wz``; ``gru.Wz`` for a nested dict).
"""
from __future__ import annotations

import copy
import inspect
import os
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

from ..model import Location
from ..options import Options
from .base import Candidate, SubjectError, SubjectOutputError, call_user
from .loading import guarded_global_state
from .numpy_class import (
    Binding,
    InferenceFailed,
    NumpySubject,
    best_error,
    cache_of,
    choose_backward_mode,
    clone,
    collect_params,
    get_path,
    infer,
    infer_sizes,
    is_h_name,
    norm,
    own_float64,
    probe_sizes,
    required_positional,
    sequence_hint,
    shape_guesses,
    size_call,
    size_role,
    source_location,
    stable_seed,
    tokens,
)

_FORWARD_WORDS = {"forward", "fwd", "fprop", "step", "call", "apply"}
_BACKWARD_WORDS = {"backward", "bwd", "bprop", "backprop", "backpropagation", "grad", "grads",
                   "gradient", "gradients", "back", "vjp", "deriv", "derivative", "derivatives"}
_FACTORY_WORDS = {"init", "initialize", "initialise", "initial", "params", "parameters", "param",
                  "weights", "weight", "make", "create", "build", "new", "setup", "random", "get",
                  "gen", "generate", "xavier", "glorot"}
#: words that say nothing about which forward a factory belongs to
_GENERIC_WORDS = _FACTORY_WORDS | _FORWARD_WORDS | {"the", "a", "of", "for"}
_CACHE_NAMES = {"cache", "caches", "ctx", "saved", "memo", "context", "cached", "stash"}


class FunctionBinding(Binding):
    def __init__(self, fn: Callable, params: dict, backward: Callable | None, label: str,
                 location: Location | None, user_files: set[str]):
        self.fn = fn
        self.params = params
        self.backward_fn = backward
        self.label = label
        self.location = location
        self.user_files = user_files
        self.backward_label = backward.__qualname__ if backward else "backward"
        self.backward_arity = None
        if backward is not None:
            _, req = required_positional(backward)
            self.backward_arity = len(req) if len(req) in (2, 3) else None

    @property
    def root(self) -> Any:
        return self.params

    def clone(self, memo: dict[int, Any] | None = None) -> FunctionBinding:
        new = copy.copy(self)
        new.params = clone(self.params, memo)
        return new

    def forward(self, x: Any, h: Any) -> Any:
        return call_user(self.fn, x, h, self.params, during="forward", user_files=self.user_files)

    def backward(self, dh: Any, fwd_ret: Any, out_index: Any) -> Any:
        args = (dh, cache_of(fwd_ret, out_index))
        if self.backward_arity == 3:
            args += (self.params,)
        return call_user(self.backward_fn, *args, during="backward", user_files=self.user_files)


class FunctionSubject(NumpySubject):
    """``f(x, h_prev, params)`` (kind "function"), or with a paired backward ("function-pair")."""


# ------------------------------------------------------------------------------------------------
# Recognising the three roles by signature and name (nothing user-written is called here)
# ------------------------------------------------------------------------------------------------


def _defined_functions(module: types.ModuleType) -> list[Callable]:
    fns = [f for f in vars(module).values()
           if inspect.isfunction(f) and f.__module__ == module.__name__]
    return sorted(fns, key=lambda f: f.__code__.co_firstlineno)


def _is_backward_name(fn: Callable) -> bool:
    return bool(set(tokens(fn.__name__)) & _BACKWARD_WORDS)


def is_forward(fn: Callable) -> bool:
    names, req = required_positional(fn)
    if len(names) < 3 or len(req) > 3 or len(req) < 2 or _is_backward_name(fn):
        return False
    if norm(names[0]).startswith(("d", "grad")) and not norm(names[0]).startswith("data"):
        return False  # (dh, cache, params) is a backward whatever its name
    return is_h_name(names[1])


def is_factory(fn: Callable, input_size: int, hidden_size: int) -> bool:
    if not set(tokens(fn.__name__)) & _FACTORY_WORDS or _is_backward_name(fn):
        return False
    plan = size_call(fn, input_size, hidden_size, 0)
    return plan is not None and plan[2]


def _backward_arity_ok(fn: Callable) -> bool:
    _, req = required_positional(fn)
    return len(req) in (2, 3)


def pair_backward(fn: Callable, functions: list[Callable], forwards: list[Callable]
                  ) -> Callable | None:
    """The backward named after ``fn`` (``x_forward`` <-> ``x_backward``, ``step`` <-> ``step_grad``)."""
    base = tuple(t for t in tokens(fn.__name__) if t not in _FORWARD_WORDS)
    backwards = [g for g in functions if g is not fn and _is_backward_name(g)
                 and _backward_arity_ok(g)]
    for g in backwards:
        if tuple(t for t in tokens(g.__name__)
                 if t not in _BACKWARD_WORDS | _FORWARD_WORDS) == base:
            return g
    if len(forwards) == 1:
        # One forward and one backward taking (dh, cache): they belong together.
        plausible = []
        for g in backwards:
            names, _ = required_positional(g)
            if norm(names[0]).startswith(("d", "grad", "delta")) and norm(names[1]) in _CACHE_NAMES:
                plausible.append(g)
        if len(plausible) == 1:
            return plausible[0]
    return None


def _factory_order(fn: Callable, factories: list[Callable]) -> list[Callable]:
    """Factories sharing a specific word with the forward (``gru``) first, then in file order."""
    words = set(tokens(fn.__name__)) - _GENERIC_WORDS
    return sorted(factories, key=lambda f: not (set(tokens(f.__name__)) & words))


# ------------------------------------------------------------------------------------------------
# Discovery
# ------------------------------------------------------------------------------------------------


def find_candidates(module: types.ModuleType, path: str, options: Options) -> list[Candidate]:
    """Forward functions with a params factory in the same file (DESIGN §5.5)."""
    functions = _defined_functions(module)
    I, H = probe_sizes(options)
    factories = [f for f in functions if is_factory(f, I, H)]
    if not factories:
        return []
    forwards = [f for f in functions if f not in factories and is_forward(f)]
    return [_candidate(fn, pair_backward(fn, functions, forwards), _factory_order(fn, factories),
                       None, path, options, None)
            for fn in forwards]


def candidate_for_object(obj: Any, options: Options, name: str | None = None) -> Candidate | None:
    """A forward function handed to the API: bare (its module must hold a params factory), or
    ``(forward, params)`` / ``(forward, params, backward)``."""
    params = backward = None
    if isinstance(obj, tuple) and 2 <= len(obj) <= 3 and callable(obj[0]):
        fn = obj[0]
        dicts = [o for o in obj[1:] if isinstance(o, Mapping)]
        funcs = [o for o in obj[1:] if callable(o) and not isinstance(o, Mapping)]
        if len(dicts) != 1 or len(funcs) > 1:
            return None
        params, backward = dicts[0], (funcs[0] if funcs else None)
        names, req = required_positional(fn)
        if len(names) < 3 or len(req) > 3:
            return None
        return _candidate(fn, backward, [], params, None, options, name)
    if not inspect.isfunction(obj) or not is_forward(obj):
        return None
    module = sys.modules.get(obj.__module__)
    if module is None:
        return None
    functions = _defined_functions(module)
    I, H = probe_sizes(options)
    factories = [f for f in functions if is_factory(f, I, H)]
    if not factories:
        return None
    forwards = [f for f in functions if f not in factories and is_forward(f)]
    return _candidate(obj, pair_backward(obj, functions, forwards), _factory_order(obj, factories),
                      None, None, options, name)


def _candidate(fn: Callable, backward: Callable | None, factories: list[Callable],
               params: Mapping | None, path: str | None, options: Options,
               name: str | None) -> Candidate:
    location = source_location(fn)
    file = path or (location.file if location else None) or "<function>"
    subject_id = f"{os.path.basename(file)}::{name or fn.__qualname__}"
    # Given params are copied now: later changes to the user's dict must not leak into the build.
    snapshot = clone(dict(params)) if params is not None else None

    def build() -> FunctionSubject:
        with guarded_global_state(stable_seed(options, subject_id, "build")):
            return build_function_subject(fn, backward, factories, snapshot, subject_id,
                                          location, options)

    kind = "function-pair" if backward is not None else "function"
    return Candidate(id=subject_id, kind=kind, location=location, build=build)


# ------------------------------------------------------------------------------------------------
# Building
# ------------------------------------------------------------------------------------------------


def _params_from(ret: Any, factory: Callable, location: Location | None) -> dict:
    """The params dict a factory returned (a dict, or the first dict of a tuple)."""
    found = ret if isinstance(ret, dict) else next(
        (r for r in ret if isinstance(r, dict)), None) if isinstance(ret, tuple) else None
    if found is None or not collect_params(found):
        raise SubjectOutputError(f"{factory.__qualname__} returned {type(ret).__name__}; grudiag "
                                 "expects a dict of parameter arrays", location, kind="type",
                                 got=type(ret).__name__)
    return clone(found)  # the factory may hand out a module-level dict: never write into it


def build_function_subject(fn: Callable, backward: Callable | None, factories: list[Callable],
                           params: dict | None, subject_id: str, location: Location | None,
                           options: Options) -> FunctionSubject:
    user_files = {location.file} if location and location.file else set()
    names, _ = required_positional(fn)
    hint = sequence_hint(names[0], names[1], "step" if {"cell", "step"} & set(
        tokens(fn.__name__)) else "")
    label = fn.__qualname__
    notes: list[str] = []
    owner: Any = fn
    I, H = probe_sizes(options)
    if params is not None:
        sizes_fixed = True
        params = dict(params)
        paths = collect_params(params)
        notes += _float64_note(params, paths)
        template = FunctionBinding(fn, params, backward, label, location, user_files)
        arrays = [get_path(params, p) for p in paths.values()]
        inferred, I, H = infer_sizes(template, shape_guesses(arrays), options, hint)
    else:
        sizes_fixed = False
        template, inferred, owner, paths = _from_factories(
            fn, backward, factories, label, location, user_files, options, hint, notes)
    notes += inferred.notes
    spec = inferred.spec
    gradient_source = None
    if backward is not None:
        bnames, _ = required_positional(backward)
        shapes = {n: get_path(template.root, p).shape for n, p in paths.items()}
        spec, problem = choose_backward_mode(template, spec, paths, shapes, I, H, options,
                                             bnames[0] if bnames else "")
        if template.backward_arity is None:
            notes.append(f"{backward.__qualname__} takes arguments grudiag cannot supply; it "
                         "supports backward(dh, cache) and backward(dh, cache, params)")
        elif problem:
            notes.append(problem)
        else:
            gradient_source = "user-backward"
    return FunctionSubject(
        id=subject_id, kind="function-pair" if backward is not None else "function",
        binding=template, spec=spec, input_size=I, hidden_size=H, location=location,
        user_module=sys.modules.get(fn.__module__), sizes_fixed=sizes_fixed,
        gradient_source=gradient_source, notes=notes, batch_failure=inferred.batch_failure,
        owner=owner, paths=paths, seed=options.seed)


def _float64_note(params: dict, paths: Mapping) -> list[str]:
    converted = own_float64(params, paths)
    if converted:
        return ["grudiag runs its copy in float64; the parameters were " + ", ".join(converted)]
    return []


def _from_factories(fn, backward, factories, label, location, user_files, options, hint, notes):
    """Params from the first factory whose dict the forward runs with."""
    I, H = probe_sizes(options)
    errors: list[SubjectError] = []
    for factory in factories:
        args, kwargs, _ = size_call(factory, I, H, stable_seed(options, factory.__qualname__))
        factory_files = set(user_files)
        floc = source_location(factory)
        if floc and floc.file:
            factory_files.add(floc.file)
        try:
            with guarded_global_state(stable_seed(options, label, factory.__qualname__, "construct")):
                ret = call_user(factory, *args, during="construct", user_files=factory_files,
                                **kwargs)
            params = _params_from(ret, factory, floc)
        except SubjectError as exc:
            errors.append(exc)
            continue
        paths = collect_params(params)
        float_notes = _float64_note(params, paths)
        template = FunctionBinding(fn, params, backward, label, location, user_files)
        try:
            inferred = infer(template, I, H, options, hint)
        except InferenceFailed as exc:
            errors.append(exc.error)
            continue
        notes += float_notes
        if len(factories) > 1:
            notes.append(f"parameters from {factory.__qualname__}{_call_text(args, kwargs)}")
        return template, inferred, factory, paths
    error = best_error(errors)
    error.message = f"{error.message} (while grudiag was working out how to call {label})"
    error.args = (error.message,)
    raise error


def _call_text(args: list, kwargs: dict) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return "(" + ", ".join(parts) + ")"


__all__ = ["FunctionSubject", "find_candidates", "candidate_for_object", "size_role"]
