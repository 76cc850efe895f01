"""Find every GRU-like subject in a user's file with no configuration (DESIGN §5).

The order of the rules:

6. a module-level ``__grudiag_subjects__`` (a list, or a zero-argument function returning one)
   overrides everything else;
1. torch ``nn.Module`` subclasses defined in the file, built with grudiag's sizes;
2. ``nn.Module`` instances at module level (their sizes are the user's);
3. models that are not cells themselves but contain recurrent parts: the parts are subjects,
   named ``file.py::Model.part``;
4. NumPy classes and 5. functions: `numpy_class.find_candidates` / `function.find_candidates`.

Candidates come out in source-line order. Everything that was looked at and rejected is kept
with its reason, so "nothing found" says what grudiag saw. torch is never imported here unless
the user's file imported it.
"""
from __future__ import annotations

import ast
import inspect
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..model import Location
from ..options import Options
from .base import (
    DEFAULT_HIDDEN_SIZE,
    DEFAULT_INPUT_SIZE,
    Candidate,
    DiscoveryProblem,
    Subject,
    SubjectRaised,
    call_user,
)
from .loading import guarded_global_state, import_user_file

HOOK = "__grudiag_subjects__"

LOOKED_FOR = (
    "torch nn.Module subclasses defined in the file, built as Cls(input_size, hidden_size) "
    "(positional, by keyword, or with no arguments), whose forward takes (x, h) [a cell] or "
    "(x) / (x, h0) [a sequence model]",
    "nn.Module instances at module level (nn.GRU, nn.GRUCell, your own models)",
    "recurrent parts (nn.GRU, nn.RNN, nn.GRUCell, your cells) inside models that are not cells "
    "themselves",
    "NumPy classes with forward(x, h_prev), built as Cls(input_size, hidden_size)",
    "functions f(x, h_prev, params) with a params factory f(input_size, hidden_size) in the "
    "same file",
    f"a module-level {HOOK} list (or zero-argument function returning one) naming the subjects "
    "explicitly",
)

# Constructor arguments grudiag can fill besides the two sizes: name -> value.
_FIXED_ARGS = {
    "num_layers": 1, "n_layers": 1, "layers": 1, "nlayers": 1, "depth": 1,
    "bias": True, "use_bias": True, "batch_first": False, "bidirectional": False,
    "dropout": 0.0, "drop": 0.0, "dropout_rate": 0.0, "p_dropout": 0.0,
}
# Other required integer arguments (output size, number of classes, vocabulary size...) get
# distinct values that differ from the probe sizes, so no axis can be mistaken for another.
_SPARE_INTS = (4, 9, 11, 13, 2)


def discover_path(path: str, options: Options | None = None) -> tuple[ModuleType, list[Candidate]]:
    """Import the file at ``path`` and discover its subjects. Raises `DiscoveryProblem`."""
    module = import_user_file(path)
    return module, discover_module(module, path, options)


def discover_module(module: ModuleType, path: str, options: Options | None = None) -> list[Candidate]:
    """Every subject in an imported user module, in source order. Raises `DiscoveryProblem`."""
    options = options or Options()
    path = os.path.abspath(path)
    if HOOK in vars(module):
        return _from_hook(vars(module)[HOOK], module, path, options)
    finder = _TorchFinder(module, path, options)
    found: list[tuple[tuple[float, int], Candidate]] = []
    if "torch" in sys.modules:
        found += finder.find()
    for style in ("numpy_class", "function"):
        finder_module = _optional(style)
        if finder_module is not None:
            for c in finder_module.find_candidates(module, path, options):
                line = c.location.line if c.location and c.location.line else float("inf")
                found.append(((line, len(found)), c))
    candidates = _unique([c for _, c in sorted(found, key=lambda kc: kc[0])])
    if not candidates:
        raise DiscoveryProblem(_nothing_found(os.path.basename(path), finder.seen), Location(path))
    return candidates


def discover_object(obj: Any, options: Options | None = None, name: str | None = None) -> list[Candidate]:
    """Subjects for one object: an nn.Module (instance or class), a NumPy cell, a function,
    a `Subject`, or a container of recurrent parts. ``name`` becomes the subject's name."""
    options = options or Options()
    return _object_candidates(obj, options, name, path=None, module=None)


# ------------------------------------------------------------------------------------ hook

def _from_hook(hook: Any, module: ModuleType, path: str, options: Options) -> list[Candidate]:
    fname = os.path.basename(path)
    if callable(hook) and not isinstance(hook, (list, tuple)):
        try:
            with guarded_global_state(options.seed):
                hook = call_user(hook, during="discovery")
        except SubjectRaised as exc:
            raise DiscoveryProblem(f"{fname}: {HOOK}() raised {exc.message}",
                                   exc.location or Location(path)) from exc
    if not isinstance(hook, (list, tuple)):
        raise DiscoveryProblem(f"{fname}: {HOOK} must be a list of subjects (or a function "
                               f"returning one), not {type(hook).__name__}", Location(path))
    names = {id(v): k for k, v in vars(module).items() if not k.startswith("__")}
    candidates: list[Candidate] = []
    for item in hook:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, obj = item
        elif isinstance(item, Subject):
            name, obj = None, item  # it carries the id its author gave it
        else:
            name, obj = names.get(id(item)), item
        candidates += _object_candidates(obj, options, name, path=path, module=module)
    if not candidates:
        raise DiscoveryProblem(f"{fname}: {HOOK} is empty", Location(path))
    return _unique(candidates)


def _object_candidates(obj: Any, options: Options, name: str | None, path: str | None,
                       module: ModuleType | None) -> list[Candidate]:
    if isinstance(obj, Subject):
        if name:
            obj.id = _prefixed(path, name)
        subject = obj
        return [Candidate(subject.id, subject.kind, subject.location, lambda: subject)]
    if "torch" in sys.modules:
        from torch import nn

        if isinstance(obj, nn.Module) or (inspect.isclass(obj) and issubclass(obj, nn.Module)):
            finder = _TorchFinder(module, path, options)
            found = finder.object(obj, name)
            if not found:
                what = name or getattr(obj, "__qualname__", type(obj).__qualname__)
                reasons = "; ".join(finder.seen) or "not a recurrent cell or sequence model"
                raise DiscoveryProblem(f"{what}: {reasons}")
            return found
    for style in ("numpy_class", "function"):
        finder_module = _optional(style)
        if finder_module is None:
            continue
        candidate = finder_module.candidate_for_object(obj, options, name)
        if candidate is not None:
            return [candidate]
    what = name or getattr(obj, "__qualname__", None) or type(obj).__qualname__
    raise DiscoveryProblem(
        f"grudiag does not know how to diagnose {what!r} ({type(obj).__name__}): it is not a "
        "torch module, a NumPy cell with forward(x, h_prev), a function f(x, h_prev, params) "
        "or a grudiag Subject")


# ----------------------------------------------------------------------------------- torch

class _TorchFinder:
    """Rules 1-3 for one user module (or for one object handed to the API)."""

    def __init__(self, module: ModuleType | None, path: str | None, options: Options):
        self.module = module
        self.path = path
        self.fname = os.path.basename(path) if path else None
        self.options = options
        self.seen: list[str] = []
        #: classes checked as classes (subject or container): their instances are not repeated
        self.handled: set[type] = set()
        #: candidate id -> class of a recurrent part found inside a container
        self.part_types: dict[str, type] = {}
        self.lines = _definition_lines(path) if path else {}

    # -- rules -------------------------------------------------------------------------
    def find(self) -> list[tuple[tuple[float, int], Candidate]]:
        from torch import nn

        out: list[tuple[tuple[float, int], Candidate]] = []
        names = vars(self.module)
        classes = {id(v): (k, v) for k, v in names.items()
                   if inspect.isclass(v) and issubclass(v, nn.Module)
                   and v.__module__ == self.module.__name__}
        for k, cls in sorted(classes.values(), key=lambda kv: self._line(kv[1].__name__, kv[1])):
            line = self._line(cls.__name__, cls)
            for n, c in enumerate(self._class(cls)):
                out.append(((line, n), c))
        instances: dict[int, tuple[str, Any]] = {}
        for k, v in names.items():
            if isinstance(v, nn.Module) and id(v) not in instances and not k.startswith("__"):
                instances[id(v)] = (k, v)
        for k, obj in instances.values():
            line = self.lines.get(k, float("inf"))
            for n, c in enumerate(self._instance(obj, k, Location(self.path, line, k)
                                                 if line != float("inf") else None)):
                out.append(((line, n), c))
        # A container defined above its cell's class adopted the cell before the class was
        # checked on its own: drop the duplicate.
        return [(k, c) for k, c in out if self.part_types.get(c.id) not in self.handled]

    def object(self, obj: Any, name: str | None) -> list[Candidate]:
        cls = obj if inspect.isclass(obj) else type(obj)
        if self.path is None and not _is_torch_class(cls):
            # Named after the file that defines the class, as NumPy objects are.
            location = _class_location(cls)
            self.fname = os.path.basename(location.file) if location and location.file else None
        if inspect.isclass(obj):
            return self._class(obj, name)
        return self._instance(obj, name or type(obj).__name__, None)

    def _class(self, cls: type, name: str | None = None) -> list[Candidate]:
        from . import torch_module as tm

        label = name or cls.__qualname__
        if inspect.isabstract(cls):
            self.seen.append(f"{label}: an abstract class")
            return []
        if getattr(cls, "forward", None) is getattr(tm.nn.Module, "forward", None):
            self.seen.append(f"{label}: defines no forward()")
            return []
        if issubclass(cls, tm.LSTM_TYPES):
            self.seen.append(f"{label}: an LSTM (grudiag checks GRU and plain RNN cells)")
            return []
        built = self._construct(cls)
        sid = self._id(label)
        if isinstance(built, str):
            self.seen.append(f"{label}: {built}")
            return []
        if isinstance(built, SubjectRaised):
            return self._construct_failed(cls, sid, built)
        instance, sizes = built
        found = self._adapt(instance, sid, sizes, label)
        if found:
            self.handled.add(cls)
        return found

    def _instance(self, obj: Any, name: str, location: Location | None) -> list[Candidate]:
        from . import torch_module as tm

        if type(obj) in self.handled:
            self.seen.append(f"{name}: an instance of {type(obj).__name__}, which is checked as "
                             "a class")
            return []
        if isinstance(obj, tm.LSTM_TYPES):
            self.seen.append(f"{name}: nn.{type(obj).__name__} (LSTMs are not supported)")
            return []
        sid = self._id(name)
        user_defined = not _is_torch_class(type(obj))
        if tm.is_builtin_recurrent(obj) or user_defined:
            return self._adapt(obj, sid, None, name, location)
        children = self._children(obj, sid, name)
        if not children:
            self.seen.append(f"{name}: nn.{type(obj).__name__}, not recurrent")
        return children

    # -- building and adapting ---------------------------------------------------------
    def _adapt(self, obj: Any, sid: str, sizes: tuple[int | None, int | None] | None,
               label: str, location: Location | None = None) -> list[Candidate]:
        from . import torch_module as tm

        recurrent_parts = self._has_recurrent_parts(obj)
        i, h = sizes if sizes else (None, None)
        try:
            subject = tm.adapt_module(
                obj, id=sid, input_size=i, hidden_size=h,
                location=location if tm.is_builtin_recurrent(obj) else None,
                user_module=self.module, sizes_fixed=sizes is None or None in sizes,
                seed=self.options.seed, device=self.options.device,
                allow_broken=not recurrent_parts or tm.takes_state(type(obj)))
        except tm.NotASubject as exc:
            children = self._children(obj, sid, label, exc.reason)
            if not children:
                self.seen.append(f"{label}: {exc.reason}")
            return children
        except SubjectRaised as exc:  # the module cannot even be copied
            self.seen.append(f"{label}: {exc.message}")
            return []
        return [_subject_candidate(subject)]

    def _children(self, obj: Any, sid: str, label: str, why: str | None = None) -> list[Candidate]:
        """Recurrent parts of a model that is not a cell itself (rule 3)."""
        from . import torch_module as tm

        found: list[Candidate] = []

        def walk(mod: Any, prefix: str) -> None:
            for child_name, child in mod.named_children():
                qual = f"{prefix}.{child_name}"
                if type(child) in self.handled:
                    continue  # its class is a subject of its own: not repeated
                if isinstance(child, tm.LSTM_TYPES):
                    self.seen.append(f"{label}{qual[len(sid):]}: an LSTM (not supported)")
                    continue
                if tm.is_builtin_recurrent(child) or (
                        not _is_torch_class(type(child)) and tm._defines_forward(child)):
                    builtin = tm.is_builtin_recurrent(child)
                    try:
                        subject = tm.adapt_module(
                            child, id=qual, user_module=self.module, seed=self.options.seed,
                            device=self.options.device,
                            location=_child_location(obj, qual[len(sid) + 1:]) if builtin else None)
                        if why:
                            subject.notes.append(f"checked as a part of {label}, which is not a "
                                                 f"cell or sequence model itself: {why}")
                        found.append(_subject_candidate(subject))
                        self.part_types[subject.id] = type(child)
                        continue
                    except (tm.NotASubject, SubjectRaised):
                        pass
                walk(child, qual)

        walk(obj, sid)
        return found

    def _construct(self, cls: type) -> tuple[Any, tuple[int | None, int | None] | None] | str | SubjectRaised:
        """Build ``cls`` with grudiag's sizes: (instance, (I, H) or None when sizes are the
        class's own), a reason it cannot be built, or the error its constructor raised."""
        I = self.options.input_size or DEFAULT_INPUT_SIZE
        H = self.options.hidden_size or DEFAULT_HIDDEN_SIZE
        plans = _construction_plans(cls, I, H)
        if isinstance(plans, str):
            return plans
        first_error: SubjectRaised | None = None
        for args, kwargs, sizes in plans:
            try:
                with guarded_global_state(self.options.seed):
                    instance = call_user(cls, *args, during="construct", **kwargs)
            except SubjectRaised as exc:
                first_error = first_error or _describe_construct(exc, cls, args, kwargs)
                continue
            return instance, sizes
        return first_error or "cannot be built"

    def _construct_failed(self, cls: type, sid: str, err: SubjectRaised) -> list[Candidate]:
        """A recurrent-looking class whose constructor raised: a candidate whose build re-raises,
        so the user sees a crash finding rather than a silently skipped cell."""
        from . import torch_module as tm

        if not tm.looks_recurrent(cls):
            self.seen.append(f"{cls.__qualname__}: {err.message}")
            return []
        n_pos = len(tm.forward_arguments(cls))
        kind = "torch-cell" if n_pos >= 2 else "torch-sequence"

        def build() -> Subject:
            raise err

        self.handled.add(cls)
        return [Candidate(sid, kind, _class_location(cls), build)]

    def _has_recurrent_parts(self, obj: Any) -> bool:
        """Whether ``obj`` holds a recurrent module: then a failing forward makes it a container
        (its parts are checked), never a broken subject of its own."""
        from . import torch_module as tm

        return any(tm.is_builtin_recurrent(m) or isinstance(m, tm.LSTM_TYPES)
                   or type(m) in self.handled
                   or (not _is_torch_class(type(m)) and tm.looks_recurrent(type(m)))
                   for m in obj.modules() if m is not obj)

    # -- names -------------------------------------------------------------------------
    def _id(self, name: str) -> str:
        return f"{self.fname}::{name}" if self.fname else name

    def _line(self, name: str, obj: Any) -> float:
        if name in self.lines:
            return self.lines[name]
        try:
            return inspect.getsourcelines(obj)[1]
        except (TypeError, OSError):
            return float("inf")


def _construction_plans(cls: type, I: int, H: int) -> list[tuple[tuple, dict, Any]] | str:
    """Ways to call ``cls``, most specific first: (args, kwargs, sizes it was built with)."""
    from . import torch_module as tm

    try:
        params = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return [((I, H), {}, (I, H)), ((), {}, None)]
    named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    in_p = next((p for p in named if p.name.lower() in tm.INPUT_NAMES), None)
    hid_p = next((p for p in named if p.name.lower() in tm.HIDDEN_NAMES), None)
    required = [p for p in named if p.default is p.empty]
    plans: list[tuple[tuple, dict, Any]] = []

    def fill(skip: set[str], spare: list[int]) -> dict[str, Any] | str:
        kwargs: dict[str, Any] = {}
        for p in required:
            if p.name in skip:
                continue
            if p.name.lower() in _FIXED_ARGS:
                kwargs[p.name] = _FIXED_ARGS[p.name.lower()]
            elif p.annotation in (p.empty, int, "int") and spare:
                kwargs[p.name] = spare.pop(0)
            else:
                return f"its constructor needs {p.name!r}, which grudiag cannot supply"
        return kwargs

    spare = [v for v in _SPARE_INTS if v not in (I, H)]
    if (in_p is None) != (hid_p is None):
        # One size is named the usual way; the first other required argument is the other size.
        other = next((p for p in required if p not in (in_p, hid_p)
                      and p.name.lower() not in _FIXED_ARGS), None)
        if other is not None:
            in_p, hid_p = (in_p, other) if in_p is not None else (other, hid_p)
    if in_p is not None or hid_p is not None:
        given = {p.name: v for p, v in ((in_p, I), (hid_p, H)) if p is not None}
        rest = fill(set(given), list(spare))
        if isinstance(rest, str):
            return rest
        plans.append(((), {**given, **rest}, (I if in_p else None, H if hid_p else None)))
    elif not required:
        plans.append(((), {}, None))
    else:
        positional = [p for p in named if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(positional) >= 2:
            rest = fill({positional[0].name, positional[1].name}, list(spare))
            if isinstance(rest, str):
                return rest
            kwonly = {k: v for k, v in rest.items()
                      if k not in {p.name for p in positional[:2]}}
            plans.append(((I, H), kwonly, (I, H)))
        else:
            return (f"its constructor takes ({', '.join(p.name for p in named)}); grudiag "
                    "builds classes as Cls(input_size, hidden_size)")
    if not required and plans[0][0:2] != ((), {}):
        plans.append(((), {}, None))
    return plans


def _describe_construct(exc: SubjectRaised, cls: type, args: tuple, kwargs: dict) -> SubjectRaised:
    call = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    exc.message = f"{cls.__name__}({call}) raised {exc.message}"
    exc.args = (exc.message,)
    return exc


def _subject_candidate(subject: Subject) -> Candidate:
    return Candidate(subject.id, subject.kind, subject.location, subject.fresh)


def _is_torch_class(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "torch"


def _class_location(cls: type) -> Location | None:
    try:
        return Location(os.path.abspath(inspect.getsourcefile(cls)),
                        inspect.getsourcelines(cls)[1], cls.__qualname__)
    except (TypeError, OSError):
        return None


def _child_location(container: Any, attr_path: str) -> Location | None:
    """Where ``self.<first attribute>`` of a container is assigned in its class."""
    from . import torch_module as tm

    file, lines = tm._parameter_lines(type(container))
    line = lines.get(attr_path.split(".")[0])
    return Location(file, line, f"{type(container).__name__}.__init__") if line else None


def _prefixed(path: str | None, name: str) -> str:
    return f"{os.path.basename(path)}::{name}" if path else name


def _definition_lines(path: str) -> dict[str, int]:
    """Line of each top-level class/function definition and (last) assignment."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return {}
    lines: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            lines[node.name] = node.lineno
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        lines[n.id] = node.lineno
    return lines


def _unique(candidates: list[Candidate]) -> list[Candidate]:
    """Ids must be unique: a repeated one gets "#2", "#3"."""
    seen: dict[str, int] = {}
    out = []
    for c in candidates:
        n = seen.get(c.id, 0) + 1
        seen[c.id] = n
        if n > 1:
            c = Candidate(f"{c.id}#{n}", c.kind, c.location, _renamed(c.build, f"{c.id}#{n}"))
        out.append(c)
    return out


def _renamed(build: Callable[[], Subject], new_id: str) -> Callable[[], Subject]:
    def wrapped() -> Subject:
        subject = build()
        subject.id = new_id
        return subject
    return wrapped


def _optional(name: str) -> ModuleType | None:
    """The NumPy / function finders, written separately; tolerated while they are absent."""
    import importlib

    try:
        return importlib.import_module(f"{__package__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__package__}.{name}":
            return None
        raise


def _nothing_found(fname: str, seen: list[str]) -> str:
    lines = [f"no GRU/RNN subject found in {fname}. grudiag looked for:"]
    lines += [f"  {k}. {text}" for k, text in enumerate(LOOKED_FOR, 1)]
    if seen:
        lines.append("It looked at these and set them aside:")
        lines += [f"  - {s}" for s in seen[:20]]
        if len(seen) > 20:
            lines.append(f"  ... and {len(seen) - 20} more")
    lines.append(f"Add a module-level {HOOK} = [...] listing your cell (an instance, a NumPy "
                 "object or a grudiag Subject) to tell grudiag exactly what to check.")
    return "\n".join(lines)
