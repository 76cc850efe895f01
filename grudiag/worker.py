"""The worker process: imports a user's file, discovers its subjects and diagnoses them.

Run as ``python -m grudiag.worker``; it reads one JSON request on stdin and writes JSON-line
events on a private copy of the original stdout. File descriptor 1 is pointed at stderr before
any user code runs, so a user's ``print`` (or a C library writing to fd 1) can never corrupt the
protocol, nor the CLI's JSON output.
"""
from __future__ import annotations

import json
import os
import sys
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
    from .subjects.base import DiscoveryProblem
    from .subjects.discovery import discover_path

    options = Options.from_dict(request["options"])
    start = int(request.get("start", 0))
    try:
        _module, candidates = discover_path(request["path"], options)
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


if __name__ == "__main__":
    sys.exit(main())
