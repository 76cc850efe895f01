"""Import a user's file the way ``python file.py`` would, and keep its side effects contained.

User modules do surprising things at import: ``torch.set_default_dtype(torch.float64)``,
``torch.set_grad_enabled(False)``, ``np.seterr(all="raise")``, ``torch.manual_seed(0)``. Any of
these would change what grudiag's probes measure, or leak into the caller's process (the pytest
plugin and notebooks run in the user's own interpreter), so every import and every call into
user code runs inside `guarded_global_state`.

torch is only imported when the user's file imports it: NumPy-only users never pay for it.
"""
from __future__ import annotations

import importlib.util
import itertools
import os
import random
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np

from ..model import Location
from .base import DiscoveryProblem, user_location

_counter = itertools.count(1)

# A file that imports torch would import it anyway; importing it first lets the guard snapshot
# torch's state before the file can change it.
_IMPORTS_TORCH = re.compile(r"^\s*(import\s+torch\b|from\s+torch\b)", re.MULTILINE)


def import_user_file(path: str | os.PathLike) -> ModuleType:
    """Import ``path`` under a unique module name with its folder on ``sys.path``.

    ``__name__`` is not ``"__main__"``, so ``if __name__ == "__main__":`` blocks do not run.
    Raises `DiscoveryProblem` for a missing file, a non-.py file, a syntax error, or any exception
    (``SystemExit`` included) raised while the file runs.
    """
    path = os.path.abspath(os.fspath(path))
    name = os.path.basename(path)
    if not os.path.exists(path):
        raise DiscoveryProblem(f"{name}: no such file ({path})", Location(path))
    if os.path.isdir(path) or not path.endswith(".py"):
        raise DiscoveryProblem(f"{name}: not a Python (.py) file", Location(path))
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as exc:
        raise DiscoveryProblem(f"{name}: cannot read the file: {exc}", Location(path)) from exc

    try:
        compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        line = exc.lineno
        where = f"{name}:{line}" if line else name
        raise DiscoveryProblem(f"{where}: {type(exc).__name__}: {exc.msg}",
                               Location(path, line)) from exc
    except ValueError as exc:  # e.g. "source code string cannot contain null bytes"
        raise DiscoveryProblem(f"{name}: cannot compile: {exc}", Location(path)) from exc

    if _IMPORTS_TORCH.search(source.decode("utf-8", errors="replace")):
        import torch  # noqa: F401 - see _IMPORTS_TORCH

    folder = os.path.dirname(path)
    if folder not in sys.path:
        # As `python file.py` does; left in place because user code may import siblings lazily.
        sys.path.insert(0, folder)

    stem = re.sub(r"\W", "_", os.path.splitext(name)[0])
    mod_name = f"_grudiag_user_{stem}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise DiscoveryProblem(f"{name}: cannot be imported as a module", Location(path))
    module = importlib.util.module_from_spec(spec)
    # Registered before running: dataclasses, pickle and typing look the module up by name.
    sys.modules[mod_name] = module
    try:
        with guarded_global_state():
            spec.loader.exec_module(module)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # noqa: BLE001 - user code
        sys.modules.pop(mod_name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise _import_problem(exc, path) from exc
    return module


def _import_problem(exc: BaseException, path: str) -> DiscoveryProblem:
    name = os.path.basename(path)
    loc = user_location(exc.__traceback__, {path}) or user_location(exc.__traceback__)
    if isinstance(exc, SyntaxError) and exc.filename and loc is None:
        # A syntax error in a module the user's file imports: the traceback ends in importlib.
        loc = Location(exc.filename, exc.lineno)
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    where = f" ({os.path.basename(loc.file)}:{loc.line})" if loc and loc.file else ""
    return DiscoveryProblem(f"importing {name} raised {what}{where}", loc or Location(path))


@contextmanager
def guarded_global_state(seed: int | None = None) -> Iterator[None]:
    """Snapshot process-global numeric state, optionally seed it, and restore it on exit.

    Covers torch's default dtype, grad mode, anomaly mode, thread count and RNG states, NumPy's
    legacy global RNG and floating-point error state, Python's `random`, and the warnings
    filters. With ``seed``, the global RNGs are seeded inside the block, so user code that draws
    from them (weight init, dropout) is deterministic for a given seed and the user's own
    streams are left exactly where they were.
    """
    # Inside another guard, a seeded block leaves the RNG streams to the outer guard: each
    # block re-seeds them on entry, and the outermost one puts the user's streams back. NumPy's
    # legacy state alone costs ~130 us to save and restore, more than a small cell's step, and
    # a check enters a guard for every call into user code.
    rngs = seed is None or not _depth.value
    saved = _snapshot(rngs)
    if seed is not None:
        _seed_all(seed)
    _depth.value += 1
    try:
        yield
    finally:
        _depth.value -= 1
        _restore(saved)


class _Depth(threading.local):
    value = 0


_depth = _Depth()


def _snapshot(rngs: bool = True) -> dict[str, Any]:
    state: dict[str, Any] = {
        "random": random.getstate() if rngs else None,
        "np_random": np.random.get_state() if rngs else None,
        "np_err": np.geterr(),
        "warnings": list(warnings.filters),
        "torch": None,
    }
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_default_dtype"):
        t: dict[str, Any] = {
            "dtype": torch.get_default_dtype(),
            "grad": torch.is_grad_enabled(),
            "anomaly": torch.is_anomaly_enabled(),
            "threads": torch.get_num_threads(),
            "rng": torch.get_rng_state() if rngs else None,
            "cuda_rng": None,
        }
        if hasattr(torch, "get_default_device"):
            t["device"] = torch.get_default_device()
        if rngs and torch.cuda.is_available() and torch.cuda.is_initialized():
            t["cuda_rng"] = torch.cuda.get_rng_state_all()
        state["torch"] = t
    return state


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "default_generator"):
        # torch.manual_seed also seeds every accelerator backend: 80x slower per call.
        torch.default_generator.manual_seed(seed)
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.manual_seed_all(seed)


def _restore(state: dict[str, Any]) -> None:
    if state["random"] is not None:
        random.setstate(state["random"])
        np.random.set_state(state["np_random"])
    np.seterr(**state["np_err"])
    warnings.filters[:] = state["warnings"]
    mutated = getattr(warnings, "_filters_mutated", None)
    if mutated is not None:  # invalidates the cache of warnings already shown once
        mutated()
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "set_default_dtype"):
        return
    t = state["torch"]
    if t is None:
        # torch was first imported inside the block: put back what a fresh import has.
        torch.set_default_dtype(torch.float32)
        torch.set_grad_enabled(True)
        torch.autograd.set_detect_anomaly(False)
        if hasattr(torch, "set_default_device"):
            torch.set_default_device(None)
        return
    if torch.get_default_dtype() != t["dtype"]:
        torch.set_default_dtype(t["dtype"])
    torch.set_grad_enabled(t["grad"])
    if torch.is_anomaly_enabled() != t["anomaly"]:
        torch.autograd.set_detect_anomaly(t["anomaly"])
    if torch.get_num_threads() != t["threads"]:
        torch.set_num_threads(t["threads"])
    if t["rng"] is not None:
        torch.set_rng_state(t["rng"])
    if "device" in t and torch.get_default_device() != t["device"]:
        torch.set_default_device(t["device"])
    if t["cuda_rng"] is not None:
        torch.cuda.set_rng_state_all(t["cuda_rng"])
