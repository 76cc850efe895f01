"""Run a training script unmodified as ``__main__`` in a worker process, under instrumentation.

Worker: ``python -m grudiag.run.script`` reads one JSON request on stdin and writes JSON-line
events on a private copy of the original stdout; fd 1 is pointed at stderr before the user's
script runs, so its prints can never corrupt the protocol nor the CLI's ``--format json``.
The parent (`run_script`) enforces the time limit and survives ``os._exit`` and signals.
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
import traceback
from typing import Any, TextIO


def _send(channel: TextIO, event: dict[str, Any]) -> None:
    from ..model import jsonable

    channel.write(json.dumps(jsonable(event), allow_nan=False) + "\n")
    channel.flush()


def _error_event(exc: BaseException, path: str) -> dict[str, Any]:
    """The exception, and the deepest frame of the user's script (else of any user file)."""
    frames = traceback.extract_tb(exc.__traceback__)
    script = os.path.realpath(path)
    line = file = None
    for frame in frames:
        if os.path.realpath(frame.filename) == script:
            file, line = frame.filename, frame.lineno
    if file is None:
        internal = (os.sep + "torch" + os.sep, os.sep + "grudiag" + os.sep, "<frozen", "runpy")
        for frame in frames:
            if not any(s in frame.filename for s in internal):
                file, line = frame.filename, frame.lineno
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"type": type(exc).__name__, "message": str(exc)[:2000], "file": file or path,
            "line": line, "traceback": text[-8000:]}


def worker_main() -> int:
    os.environ["GRUDIAG_WORKER"] = "1"
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    request = json.loads(sys.stdin.readline())
    sys.stdin = open(os.devnull)
    path = os.path.abspath(request["path"])

    import runpy

    from .instrument import Recorder, StopRun

    def on_step(record: dict[str, Any]) -> None:
        _send(channel, {"event": "step", "record": record})

    recorder = Recorder(max_steps=request.get("max_steps"),
                        sample_every=int(request.get("sample_every") or 20),
                        seed=int(request.get("seed", 0)), on_step=on_step)
    sys.argv = [path, *request.get("args", [])]
    sys.path.insert(0, os.path.dirname(path))
    if request.get("cwd"):
        os.chdir(request["cwd"])
    outcome: dict[str, Any] = {"outcome": "completed"}
    started = time.perf_counter()
    recorder.install()
    try:
        runpy.run_path(path, run_name="__main__")
    except StopRun:
        outcome = {"outcome": "max-steps"}
    except SystemExit as exc:
        code = exc.code
        if code not in (None, 0):
            outcome = {"outcome": "exited", "exit_status": code if isinstance(code, int) else 1,
                       "error": _error_event(exc, path)}
    except BaseException as exc:  # noqa: BLE001 - the user's error is the report, never hidden
        outcome = {"outcome": "raised", "error": _error_event(exc, path)}
    finally:
        recorder.uninstall()
    outcome["duration_s"] = time.perf_counter() - started
    summary = recorder.summary()
    summary.pop("steps")  # already sent, one event per step
    _send(channel, {"event": "done", **outcome, "recording": summary})
    return 0


def run_script(path: str, args: list[str], *, max_steps: int | None, timeout: float,
               sample_every: int = 20, seed: int = 0, cwd: str | None = None
               ) -> dict[str, Any]:
    """Run the worker; returns the `done` event with ``recording["steps"]`` filled in, or an
    outcome ``timed-out`` / ``process-exited`` holding the steps recorded before that."""
    stderr = tempfile.TemporaryFile(mode="w+b")
    env = dict(os.environ, PYTHONUNBUFFERED="1", GRUDIAG_WORKER="1")
    # the worker imports grudiag from wherever this process imported it
    pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen([sys.executable, "-m", "grudiag.run.script"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                            env=env, cwd=cwd or os.getcwd(), start_new_session=True)
    request = {"path": os.path.abspath(path), "args": list(args), "max_steps": max_steps,
               "sample_every": sample_every, "seed": seed, "cwd": cwd or os.getcwd()}
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps(request) + "\n").encode())
    proc.stdin.close()
    events: queue.Queue[Any] = queue.Queue()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            try:
                events.put(json.loads(line))
            except json.JSONDecodeError:
                continue
        events.put(None)

    threading.Thread(target=read, daemon=True).start()
    steps: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    done: dict[str, Any] | None = None
    while True:
        try:
            event = events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            done = {"outcome": "timed-out", "timeout": timeout}
            break
        if event is None:
            break
        if event.get("event") == "step":
            steps.append(event["record"])
        elif event.get("event") == "done":
            done = event
            break
    if proc.poll() is None:
        try:
            if done is not None and done.get("outcome") != "timed-out":
                proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
    status = proc.wait()
    stderr.seek(0)
    output = stderr.read().decode(errors="replace")
    stderr.close()
    if done is None:
        done = {"outcome": "process-exited", "exit_status": status}
    done.setdefault("recording", {})
    done["recording"]["steps"] = steps
    done["output"] = output[-100_000:]
    return done


if __name__ == "__main__":
    sys.exit(worker_main())
