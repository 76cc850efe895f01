"""The options of one diagnosis run, shared by the CLI, the Python API and the pytest plugin."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .model import Severity

DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Options:
    seed: int = 0
    #: seconds allowed per subject in the worker process (CLI and path targets)
    timeout: float = DEFAULT_TIMEOUT_S
    #: seconds allowed to import the user's file and find its subjects (torch import included)
    import_timeout: float = 120.0
    fail_on: Severity = Severity.ERROR
    #: codes ("GD401"), code prefixes ("GD4"), check names or categories; empty = all
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    #: overrides of named check thresholds: {"GD401.rtol": 1e-5} or {"rtol": 1e-5} for every check
    thresholds: dict[str, float] = field(default_factory=dict)
    #: sizes grudiag builds classes with (None: the defaults in subjects.base)
    input_size: int | None = None
    hidden_size: int | None = None
    batch: int = 3
    #: sequence length: the `forward` probe runs all of it, the others at most 16 steps
    time: int = 6
    device: str = "cpu"
    debug: bool = False

    def with_(self, **changes: Any) -> Options:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed, "timeout": self.timeout, "import_timeout": self.import_timeout, "fail_on": self.fail_on.value,
            "select": list(self.select), "ignore": list(self.ignore),
            "thresholds": dict(self.thresholds), "input_size": self.input_size,
            "hidden_size": self.hidden_size, "batch": self.batch, "time": self.time,
            "device": self.device, "debug": self.debug,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Options:
        d = dict(d)
        d["fail_on"] = Severity(d.get("fail_on", "error"))
        d["select"] = tuple(d.get("select", ()))
        d["ignore"] = tuple(d.get("ignore", ()))
        return cls(**d)
