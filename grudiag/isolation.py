"""Run the diagnosis of one file in worker processes, surviving whatever the user's code does.

A subject that hangs is stopped at the time limit; one that ends the process (``os._exit``, a
segfault, the OOM killer) is reported from the exit status. Either way the worker is restarted
for the remaining subjects, so one bad subject never costs the report of the others.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .checks.base import CHECKS
from .model import Location, Problem, SubjectInfo, SubjectResult
from .options import Options

_EOF = object()
#: a file whose subjects keep killing workers is given up on after this many
MAX_WORKERS_PER_FILE = 25


@dataclass
class _Discovered:
    id: str
    kind: str
    location: Location | None


@dataclass
class FileOutcome:
    results: list[SubjectResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: what the user's code wrote to stdout/stderr in the worker (kept for --debug)
    output: str = ""


class _Worker:
    def __init__(self, path: str, options: Options, start: int, exclude: list[str]):
        self.stderr = tempfile.TemporaryFile(mode="w+b")
        env = dict(os.environ, PYTHONUNBUFFERED="1", GRUDIAG_WORKER="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "grudiag.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
            env=env, start_new_session=True,  # so a kill reaches the user's child processes too
        )
        request = {"path": path, "options": options.to_dict(), "start": start,
                   "exclude": exclude}
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.close()
        self.events: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except json.JSONDecodeError:
                continue
        self.events.put(_EOF)

    def next_event(self, deadline: float) -> Any:
        """The next event, `_EOF` if the process ended, or None at the deadline."""
        try:
            return self.events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None

    def exit_status(self) -> int | None:
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        self.proc.wait()

    def output_tail(self, limit: int = 2000) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-limit:]


def check_file(path: str, options: Options) -> FileOutcome:
    """Diagnose every subject of one file; a fresh worker resumes after any subject that kills
    or hangs its worker (discovery is deterministic, so every worker finds the same list)."""
    outcome = FileOutcome()
    start, excluded = 0, []
    for _attempt in range(MAX_WORKERS_PER_FILE):
        worker = _Worker(path, options, start, excluded)
        try:
            discovered = _await_discovery(worker, path, options, outcome)
            resume = None
            if isinstance(discovered, str):  # discovery itself was killed by this user class
                excluded.append(discovered)
                resume = 0
            elif discovered is not None:
                resume = _collect(worker, discovered, options, outcome)
        finally:
            worker.stop()
            outcome.output += worker.output_tail(100_000)
        if resume is None or (isinstance(discovered, list) and resume >= len(discovered)):
            break
        start = resume
    outcome.results.sort(key=lambda r: (r.info.location.line or 0) if r.info.location else 0)
    return outcome


def _await_discovery(worker: _Worker, path: str, options: Options,
                     outcome: FileOutcome) -> list[_Discovered] | str | None:
    """The discovered subjects; or the name of a user class whose code ended the worker during
    discovery (reported here, to be left out on the next try); or None on a problem."""
    name = os.path.basename(path)
    calling: dict[str, Any] | None = None
    deadline = time.monotonic() + options.import_timeout
    while True:
        event = worker.next_event(deadline)
        if event is None or event is _EOF or event["event"] != "calling":
            break
        calling = event
    if event is None:
        message = f"importing {name} did not finish within {options.import_timeout:g} s"
    elif event is _EOF:
        status = _describe_exit(worker.exit_status())
        tail = _last_line(worker.output_tail())
        if calling is not None:
            culprit = _Discovered(f"{name}::{calling['name']}", "unknown",
                                  Location(path, calling.get("line"), calling["name"]))
            outcome.results.append(_crash(culprit, "GD903",
                                          f"ended the process ({status}) while grudiag was "
                                          "building and calling it" + (f": {tail}" if tail else ""),
                                          "Do not call os._exit() or code that can crash the "
                                          "interpreter from a cell"))
            return calling["name"]
        message = f"importing {name} ended the process ({status})" + (f": {tail}" if tail else "")
    elif event["event"] == "problem":
        loc = event.get("location")
        outcome.problems.append(Problem(path, event["message"],
                                        Location(**loc) if loc else Location(path)))
        return None
    else:
        return [_Discovered(s["id"], s["kind"], Location(**s["location"]) if s["location"]
                            else None) for s in event["subjects"]]
    outcome.problems.append(Problem(path, message, Location(path)))
    return None


def _collect(worker: _Worker, discovered: list[_Discovered], options: Options,
             outcome: FileOutcome) -> int | None:
    """Gather results until the worker is done (None) or a subject killed or hung it (the index
    to resume from)."""
    current: int | None = None
    deadline = time.monotonic() + options.import_timeout
    while True:
        event = worker.next_event(deadline)
        if event is None and current is None:
            outcome.problems.append(Problem(discovered[0].id.split("::")[0],
                                            "the grudiag worker stopped responding"))
            return None
        if event is None:
            outcome.results.append(_crash(
                discovered[current], "GD902",
                f"did not finish within {options.timeout:g} s and was stopped",
                "Look for a loop that never ends or a call that waits for input"))
            return current + 1
        if event is _EOF:
            status = worker.exit_status()
            if current is None:
                return None
            tail = _last_line(worker.output_tail())
            killed = status == -signal.SIGKILL
            outcome.results.append(_crash(
                discovered[current], "GD904" if killed else "GD903",
                f"ended the process ({_describe_exit(status)})" + (f": {tail}" if tail else ""),
                "Look for an allocation that grows with every call or an outer product" if killed
                else "Do not call os._exit() or code that can crash the interpreter from a cell"))
            return current + 1
        if event["event"] == "start":
            current = event["index"]
            # The worker stops a pure-Python hang itself at `timeout` and reports it with the
            # line; the parent's kill is the backstop for hangs in native code.
            deadline = time.monotonic() + options.timeout + max(10.0, 0.5 * options.timeout)
        elif event["event"] == "result":
            outcome.results.append(SubjectResult.from_dict(event["result"]))
            current = None
            deadline = time.monotonic() + options.import_timeout
        elif event["event"] == "done":
            return None
        # "calling" events (announced while building) need no action here


def _crash(subject: _Discovered, code: str, message: str, hint: str) -> SubjectResult:
    info = SubjectInfo(id=subject.id, kind=subject.kind, location=subject.location)
    finding = CHECKS[code].make(subject.id, f"{subject.id} {message}", hint,
                                location=subject.location)
    return SubjectResult(info, [finding])


def _describe_exit(status: int | None) -> str:
    if status is None:
        return "no exit status"
    if status < 0:
        try:
            sig = signal.Signals(-status).name
        except ValueError:
            sig = f"signal {-status}"
        extra = ", often the out-of-memory killer" if -status == signal.SIGKILL else ""
        return f"killed by {sig}{extra}"
    return f"exit code {status}"


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""
