"""The one interface every supported cell style is adapted to.

Downstream code (probes) sees only `Subject`. All arrays crossing this interface are float64 NumPy
in one canonical layout, whatever the user's layout is:

* a sequence of inputs ``xs`` is ``(T, B, input_size)`` (time-major),
* a state ``h`` is ``(B, hidden_size)``,
* ``run`` returns every state ``hs = (h_1, ..., h_T)`` as ``(T, B, hidden_size)``.

Adapters translate to the user's native layout (batch-first, column ``(features, batch)``, ...),
call the user's code, validate what comes back and translate it back. They never mutate the
user's object: parameters are replaced on copies (`with_parameters`).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from abc import ABC, abstractmethod
from contextlib import contextmanager
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model import Location

#: Default probe sizes: all different, so that transposes and axis mix-ups cannot hide (DESIGN §6).
DEFAULT_INPUT_SIZE = 5
DEFAULT_HIDDEN_SIZE = 7
DEFAULT_BATCH = 3
DEFAULT_TIME = 6


class SubjectError(Exception):
    """Base of the errors a subject's own code causes; probes let them propagate."""

    def __init__(self, message: str, location: Location | None = None):
        super().__init__(message)
        self.message = message
        self.location = location


class SubjectRaised(SubjectError):
    """The user's code raised. `location` is the deepest frame in the user's files."""

    def __init__(self, exc: BaseException, location: Location | None = None, during: str = "forward"):
        name = type(exc).__name__
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        super().__init__(f"{name}: {text}" if text else name, location)
        self.exc = exc
        self.exc_type = name
        self.during = during

    @property
    def is_memory_error(self) -> bool:
        text = str(self.exc).lower()
        return isinstance(self.exc, MemoryError) or (
            isinstance(self.exc, RuntimeError)
            and ("can't allocate memory" in text or "out of memory" in text)
        )


class SubjectOutputError(SubjectError):
    """The user's code returned something that is not a state: wrong type, wrong shape, ..."""

    def __init__(self, message: str, location: Location | None = None, *, kind: str = "type",
                 expected: tuple | None = None, got: Any = None):
        super().__init__(message, location)
        self.kind = kind  # "type" (not an array / wrong structure) or "shape"
        self.expected = expected
        self.got = got


class GradientsUnavailable(Exception):
    """This subject offers no gradients of this kind (no autograd, no backward)."""


@dataclass
class Gradients:
    """Gradients of ``sum(dhs * hs)`` with respect to everything, in canonical layout.

    ``params[name]`` is None when the user's code gave no gradient at all for that parameter
    (autograd returned None / the user's backward omitted it): the parameter is not used.
    """

    xs: np.ndarray
    h0: np.ndarray
    params: dict[str, np.ndarray | None]
    source: str  # "autograd" | "user-backward"


@dataclass
class Subject(ABC):
    """One thing grudiag diagnoses: a cell or a sequence model, adapted to the canonical layout."""

    id: str
    kind: str  # torch-cell | torch-sequence | numpy-cell | numpy-sequence | function | function-pair
    backend: str  # "torch" | "numpy"
    input_size: int
    hidden_size: int
    is_sequence: bool = False
    #: user's native layout: "batch-first" / "time-major" (torch sequence), "row" / "column" (NumPy)
    layout: str = "row"
    location: Location | None = None
    #: "autograd", "user-backward" or None: which `vjp` this subject offers
    gradient_source: str | None = None
    supports_unbatched: bool = False
    #: the user's module object (for probes that patch activation functions); may be None
    user_module: Any = None
    #: True when the sizes were fixed by the user (an instance), not chosen by grudiag
    sizes_fixed: bool = False
    notes: list[str] = field(default_factory=list)

    # --- running ---------------------------------------------------------------------------
    @abstractmethod
    def run(self, xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
        """(T, B, I), (B, H) -> (T, B, H). Raises SubjectRaised / SubjectOutputError."""

    def step(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        """(B, I), (B, H) -> (B, H): one step."""
        return self.run(x[None], h)[0]

    def run_unbatched(self, xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
        """(T, I), (H,) -> (T, H) through the user's unbatched path, where it has one."""
        raise NotImplementedError

    #: True when the user's forward also runs without an initial state (h0 has a default);
    #: a plain class attribute, not a dataclass field, that adapters override
    h0_optional = False

    def run_default_state(self, xs: np.ndarray) -> np.ndarray:
        """(T, B, I) -> (T, B, H) letting the subject choose its own initial state (the call
        without h0), where `h0_optional`: a model may remember its last state only there."""
        raise NotImplementedError

    # --- parameters ------------------------------------------------------------------------
    @abstractmethod
    def parameters(self) -> dict[str, np.ndarray]:
        """Float64 copies of the parameters under the user's own names, in their own shapes."""

    @abstractmethod
    def with_parameters(self, params: Mapping[str, np.ndarray]) -> Subject:
        """A new subject on a copy of the user's object with these parameter values.

        Names missing from ``params`` keep their current values. The user's object is untouched.
        """

    def parameter_locations(self) -> dict[str, Location]:
        """Where each parameter is created in the user's source, where known."""
        return {}

    # --- gradients -------------------------------------------------------------------------
    def vjp(self, xs: np.ndarray, h0: np.ndarray, dhs: np.ndarray) -> Gradients:
        """Gradients of ``sum(dhs * run(xs, h0))`` from autograd or the user's own backward."""
        raise GradientsUnavailable(f"{self.kind} subjects offer no gradients")

    # --- conveniences for probes -----------------------------------------------------------
    def fresh(self) -> Subject:
        """A new copy of the subject (no state carried from earlier calls)."""
        return self.with_parameters({})


def user_location(tb, user_files: set[str] | None = None) -> Location | None:
    """The deepest traceback frame that lies in the user's files (or outside grudiag/torch/numpy)."""
    best = None
    for frame, lineno in traceback.walk_tb(tb):
        path = os.path.abspath(frame.f_code.co_filename)
        if user_files is not None:
            if path in user_files:
                best = Location(path, lineno, frame.f_code.co_qualname
                                if hasattr(frame.f_code, "co_qualname") else frame.f_code.co_name)
        elif not _is_library(path):
            best = Location(path, lineno, getattr(frame.f_code, "co_qualname", frame.f_code.co_name))
    return best


_LIBRARY_ROOTS = tuple(
    os.path.dirname(os.path.abspath(p))
    for p in (os.__file__, np.__file__, os.path.dirname(__file__))
)


def _is_library(path: str) -> bool:
    return path.startswith(_LIBRARY_ROOTS) or "site-packages" in path or path.startswith("<")


class SubjectTimeout(Exception):
    """A call into the user's code did not return within the time limit."""


class _CallTimedOut(BaseException):
    """Raised inside the user's code by the alarm; a BaseException so user code rarely eats it."""


#: seconds one call into user code may take; set only in the worker process, where the alarm
#: signal belongs to grudiag (never in a user's own process through the Python API)
_call_time_limit: float | None = None


#: called with each user callable before it runs (the worker reports whom it is calling, so a
#: class that kills the process during discovery can be named and left out on the next try)
_call_observer: Callable[[Any], None] | None = None


def set_call_observer(observer: Callable[[Any], None] | None) -> None:
    global _call_observer
    _call_observer = observer


def set_call_time_limit(seconds: float | None) -> None:
    global _call_time_limit
    _call_time_limit = seconds


@contextmanager
def _time_limit():
    """Interrupt pure-Python hangs (``while True``) from within; a hang in native code is
    caught by the parent process's deadline instead."""
    if (_call_time_limit is None or threading.current_thread() is not threading.main_thread()
            or signal.getitimer(signal.ITIMER_REAL)[0] > 0):  # nested call: the outer limit rules
        yield
        return

    def interrupt(signum, frame):
        raise _CallTimedOut()

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, _call_time_limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def call_user(fn: Callable[..., Any], *args: Any, during: str = "forward",
              user_files: set[str] | None = None, **kwargs: Any) -> Any:
    """Call user code; any exception (SystemExit included) becomes `SubjectRaised`, and so
    does a hang in the worker process (as `SubjectTimeout`)."""
    if _call_observer is not None:
        _call_observer(fn)
    try:
        with _time_limit():
            return fn(*args, **kwargs)
    except _CallTimedOut as exc:
        timeout = SubjectTimeout(f"did not return within {_call_time_limit:g} s")
        raise SubjectRaised(timeout, user_location(exc.__traceback__, user_files),
                            during) from None
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # noqa: BLE001 - user code may raise anything
        if isinstance(exc, KeyboardInterrupt) and not _in_worker():
            raise
        raise SubjectRaised(exc, user_location(exc.__traceback__, user_files), during) from exc


def _in_worker() -> bool:
    return os.environ.get("GRUDIAG_WORKER") == "1" or "grudiag.worker" in sys.modules


@dataclass
class Candidate:
    """A subject found by discovery, not built yet: building runs the user's constructor.

    ``build`` may raise `SubjectRaised` (``during="construct"``); the harness reports it as a
    crash finding for this candidate and carries on with the others.
    """

    id: str  # "my_gru.py::MyCell" (file name, then the qualified name or the variable name)
    kind: str
    location: Location | None
    build: Callable[[], Subject]


class DiscoveryProblem(Exception):
    """The target cannot be diagnosed at all: missing file, syntax/import error, nothing found.

    The CLI exits 2 with this message; it names the file and line where known.
    """

    def __init__(self, message: str, location: Location | None = None):
        super().__init__(message)
        self.message = message
        self.location = location
