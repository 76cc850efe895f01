"""The worker process: imports a user's file, discovers its subjects and diagnoses them.

Run as ``python -m grudiag.worker``; it reads one JSON request on stdin and writes JSON-line
events on a private copy of the original stdout. File descriptor 1 is pointed at stderr before
any user code runs, so a user's ``print`` (or a C library writing to fd 1) can never corrupt the
protocol, nor the CLI's JSON output.
"""
from __future__ import annotations

import inspect
import json
import os
import sys
from types import ModuleType
from typing import Any, TextIO

#: address-space cap for user code; a runaway allocation becomes a MemoryError, not a dead machine
DEFAULT_MEMORY_LIMIT_BYTES = 8 * 1024**3


def _send(channel: TextIO, event: dict[str, Any]) -> None:
    from .model import jsonable

    channel.write(json.dumps(jsonable(event), allow_nan=False) + "\n")
    channel.flush()


def _limit_memory(limit: int) -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):  # not on this platform: run without the cap
        pass


def main() -> int:
    os.environ["GRUDIAG_WORKER"] = "1"
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    request = json.loads(sys.stdin.readline())
    sys.stdin = open(os.devnull)  # a cell that calls input() gets EOF, not the protocol
    _limit_memory(int(request.get("memory_limit") or DEFAULT_MEMORY_LIMIT_BYTES))

    from .model import Location
    from .options import Options
    from .runner import diagnose_candidate
    from .subjects.base import DiscoveryProblem, set_call_observer, set_call_time_limit
    from .subjects.discovery import discover_module
    from .subjects.loading import import_user_file

    options = Options.from_dict(request["options"])
    set_call_time_limit(options.timeout)
    start = int(request.get("start", 0))
    path = request["path"]
    try:
        module = import_user_file(path)
        _leave_out(module, request.get("exclude", []))
        set_call_observer(_Announcer(channel, module.__name__))
        try:
            candidates = discover_module(module, path, options)
        finally:
            set_call_observer(None)
    except DiscoveryProblem as problem:
        loc = problem.location.to_dict() if problem.location else None
        _send(channel, {"event": "problem", "message": problem.message, "location": loc})
        return 0
    _send(channel, {"event": "discovered", "subjects": [
        {"id": c.id, "kind": c.kind,
         "location": (c.location or Location()).to_dict()} for c in candidates]})
    for index, candidate in enumerate(candidates):
        if index < start:
            continue
        _send(channel, {"event": "start", "index": index})
        result = diagnose_candidate(candidate, options)
        _send(channel, {"event": "result", "index": index, "result": result.to_dict()})
    _send(channel, {"event": "done"})
    return 0


class _Announcer:
    """Tells the parent which user class discovery is about to call into, so that a class
    whose code ends the process can be reported and left out when discovery is retried."""

    def __init__(self, channel: TextIO, module_name: str):
        self.channel = channel
        self.module_name = module_name
        self.last: str | None = None

    def __call__(self, fn: Any) -> None:
        owner = fn if inspect.isclass(fn) or inspect.isfunction(fn) else (
            type(fn.__self__) if hasattr(fn, "__self__") else type(fn))
        if getattr(owner, "__module__", None) != self.module_name:
            return
        name = owner.__qualname__.split(".")[0]
        if name != self.last:
            self.last = name
            try:
                line = inspect.getsourcelines(owner)[1]
            except (OSError, TypeError):
                line = None
            _send(self.channel, {"event": "calling", "name": name, "line": line})


def _leave_out(module: ModuleType, names: list[str]) -> None:
    """Remove classes (and functions) that crashed discovery before, with their instances."""
    for name in names:
        obj = module.__dict__.pop(name, None)
        if inspect.isclass(obj):
            for attr, value in list(module.__dict__.items()):
                if isinstance(value, obj):
                    del module.__dict__[attr]


if __name__ == "__main__":
    sys.exit(main())
