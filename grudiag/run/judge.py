"""Judge one recorded training run into findings (GD7xx). Measures nothing; reads the record."""
from __future__ import annotations

import math
import os
import statistics
from typing import Any

from ..checks.training import (ClippingAlwaysBinds, ClippingNeverBinds, MissingGradientClipping,
                               NonFiniteDuringTraining, TrainingCheck,
                               TrainingGradientExplodesThroughTime,
                               TrainingGradientVanishesThroughTime, TrainingScriptRaised,
                               TrainingScriptStopped)
from ..model import Finding, Location, Severity, SubjectInfo, SubjectResult

ALL_CHECKS = (MissingGradientClipping, TrainingGradientExplodesThroughTime,
              TrainingGradientVanishesThroughTime, NonFiniteDuringTraining, ClippingNeverBinds,
              ClippingAlwaysBinds, TrainingScriptRaised, TrainingScriptStopped)


def _num(x: Any) -> float | None:
    """Measurements travel as JSON: non-finite floats arrive as strings."""
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str):
        try:
            return float(x)
        except ValueError:
            return None
    return None


def _fin(x: Any) -> bool:
    v = _num(x)
    return v is not None and math.isfinite(v)


def _threshold(check: type[TrainingCheck], name: str, overrides: dict[str, float]) -> float:
    key = f"{check.code}.{name}"
    if key in overrides:
        return float(overrides[key])
    return float(overrides.get(name, check.thresholds[name]))


def judge(path: str, outcome: dict[str, Any], thresholds: dict[str, float] | None = None
          ) -> SubjectResult:
    thresholds = thresholds or {}
    name = os.path.basename(path)
    sid = f"{name}::run"
    where = Location(os.path.abspath(path), None, None)
    rec = outcome.get("recording") or {}
    steps: list[dict[str, Any]] = rec.get("steps") or []
    flow: list[dict[str, Any]] = rec.get("flow") or []
    recurrent: dict[str, str] = rec.get("recurrent") or {}
    info = SubjectInfo(id=sid, kind="training-run", location=where,
                       checks_run=[c.code for c in ALL_CHECKS])
    info.notes.append(f"{len(steps)} optimizer steps observed; outcome: {outcome.get('outcome')}")
    if recurrent:
        info.notes.append("recurrent modules: " + ", ".join(sorted(recurrent)))
    site = rec.get("step_site") or {}
    step_loc = Location(site["file"], site.get("line"), None) if site.get("file") else where
    findings: list[Finding] = []

    def add(check: type[TrainingCheck], message: str, hint: str, *, severity: Severity | None = None,
            location: Location | None = None, evidence: dict[str, Any] | None = None) -> None:
        findings.append(check.make(sid, message, hint, location=location or step_loc,
                                   evidence=evidence, severity=severity))

    # ---- the script's own failure
    error = outcome.get("error")
    kind = outcome.get("outcome")
    if kind in ("raised", "exited") and error:
        loc = Location(error.get("file") or path, error.get("line"), None)
        if kind == "exited":
            message = f"{name} exited with status {outcome.get('exit_status')} after {len(steps)} steps"
        else:
            message = (f"{name} raised {error['type']}: {error['message']} "
                       f"(at {os.path.basename(loc.file or name)}:{loc.line}, "
                       f"after {len(steps)} optimizer steps)")
        add(TrainingScriptRaised, message, "Fix the error at the line named; the steps "
            "recorded before it are judged below.", location=loc,
            evidence={"type": error.get("type"), "traceback": error.get("traceback", "")[-4000:]})
    elif kind == "timed-out":
        add(TrainingScriptStopped, f"{name} did not finish within {outcome.get('timeout'):g} s "
            f"and was stopped after {len(steps)} optimizer steps",
            "Use --max-steps to diagnose the first steps, or raise --timeout")
    elif kind == "process-exited":
        add(TrainingScriptStopped, f"{name} ended the process (exit status "
            f"{outcome.get('exit_status')}) after {len(steps)} optimizer steps",
            "Do not call os._exit(); look for an allocation that grows every step")

    # ---- non-finite values
    first_bad = None
    for s in steps:
        bad = []
        raw = s.get("raw_norm")
        if (raw is not None and not _fin(raw)) or not _fin(s.get("norm")):
            bad.append("gradient")
        if "loss" in s and not _fin(s["loss"]):
            bad.append("loss")
        if s.get("nonfinite_param"):
            bad.append("parameter")
        if bad:
            first_bad = (s, bad)
            break
    nfl = rec.get("first_nonfinite_loss")
    if first_bad is not None:
        s, bad = first_bad
        which = s.get("nonfinite_grad") or s.get("nonfinite_param")
        message = (f"the {', '.join(bad)} became non-finite at optimizer step {s['step']}"
                   + (f" (first parameter: {which})" if which else "")
                   + (f"; loss {s.get('loss')}" if "loss" in s else ""))
        add(NonFiniteDuringTraining, message, "Lower the learning rate and clip the gradients "
            "(torch.nn.utils.clip_grad_norm_); check the loss for log(0) or division by zero",
            evidence={"step": s["step"], "what": bad, "parameter": which})
    elif nfl is not None:
        add(NonFiniteDuringTraining, f"the loss became non-finite ({nfl['value']}) before "
            f"optimizer step {nfl['step']}", "Check the loss for log(0) or division by zero",
            evidence=dict(nfl))

    # ---- clipping
    clipped_steps = [s for s in steps if s.get("clipped")]
    clip_called = [s for s in steps if s.get("clip_calls")]
    clipping = bool(clipped_steps or clip_called)
    spike_factor = _threshold(MissingGradientClipping, "spike_factor", thresholds)
    min_steps = int(_threshold(MissingGradientClipping, "min_steps", thresholds))
    history: list[float] = []
    spike = None
    nonfinite_grad_step = None
    for s in steps:
        raw = _num(s.get("raw_norm"))
        raw = raw if raw is not None else _num(s.get("norm"))
        if raw is None:
            continue
        if not math.isfinite(raw):
            nonfinite_grad_step = nonfinite_grad_step or s
            break
        if len(history) >= min_steps:
            median = statistics.median(history)
            if median > 0 and raw > spike_factor * median:
                spike = (s, raw, median)
                break
        history.append(raw)
    clip_hint = ("Clip before stepping: torch.nn.utils.clip_grad_norm_(model.parameters(), "
                 "max_norm=1.0) between loss.backward() and optimizer.step()")
    if not clipping and spike is not None:
        s, raw, median = spike
        add(MissingGradientClipping,
            f"the gradient norm spiked to {raw:.3g} at optimizer step {s['step']}, "
            f"{raw / median:.3g}× the running median {median:.3g} of the previous steps "
            f"(threshold {spike_factor:g}×), and no clipping was in place",
            clip_hint, evidence={"step": s["step"], "raw_norm": raw, "median": median,
                                 "probe": "training"})
    elif not clipping and nonfinite_grad_step is not None:
        add(MissingGradientClipping,
            f"the gradients became non-finite at optimizer step {nonfinite_grad_step['step']} "
            "and no clipping was in place", clip_hint,
            evidence={"step": nonfinite_grad_step["step"], "probe": "training"})
    elif not clipping and recurrent and steps:
        add(MissingGradientClipping,
            f"the recurrent model ({', '.join(sorted(recurrent))}) trained {len(steps)} steps "
            "without gradient clipping; no spike was seen in these steps, but recurrent "
            "gradients can jump by orders of magnitude later in training",
            clip_hint, severity=Severity.WARNING,
            evidence={"steps": len(steps), "probe": "training"})
    if clip_called:
        finite = [s for s in clip_called if _fin(s.get("norm"))]
        binds = [s for s in finite if s.get("clipped")]
        if len(finite) >= _threshold(ClippingNeverBinds, "min_steps", thresholds) and not binds:
            limit = finite[-1].get("clip_max_norm", finite[-1].get("clip_value"))
            top = max((_num(s.get("raw_norm")) or 0.0) for s in finite)
            add(ClippingNeverBinds, f"clipping was called on {len(finite)} steps and never "
                f"changed the gradients (threshold {limit}, largest raw norm {top:.3g})",
                "A threshold near the top of the typical norms clips only the spikes",
                evidence={"probe": "training", "max_norm": limit, "largest_raw_norm": top})
    if clipped_steps:
        finite = [s for s in steps if _fin(s.get("norm"))]
        if len(finite) >= _threshold(ClippingAlwaysBinds, "min_steps", thresholds) and all(
                s.get("clipped") for s in finite):
            add(ClippingAlwaysBinds, f"the gradients were rescaled at every one of {len(finite)} "
                "steps: clipping acts as gradient normalisation",
                "Raise max_norm so that only spikes are clipped",
                evidence={"probe": "training"})

    # ---- flow through time
    growth = _threshold(TrainingGradientExplodesThroughTime, "growth", thresholds)
    ratio = _threshold(TrainingGradientVanishesThroughTime, "ratio", thresholds)
    min_len = _threshold(TrainingGradientExplodesThroughTime, "min_length", thresholds)
    exploded = vanished = False
    for f in flow:
        norms = [_num(n) for n in f.get("norms", [])]
        if len(norms) < min_len or not all(n is not None and math.isfinite(n) for n in norms):
            continue
        top, last, first = max(norms), norms[-1], norms[0]
        if not exploded and last > 0 and top / last > growth:
            exploded = True
            add(TrainingGradientExplodesThroughTime,
                f"{f['module']}: at optimizer step {f['step']} the gradient {f['quantity']} grew "
                f"{top / last:.3g}× from the last of {len(norms)} time steps back to its peak "
                f"(threshold {growth:g}×)", "Clip gradients; keep the recurrence a convex blend",
                evidence={"plot": {"kind": "training_flow", **f}})
        if not vanished and top > 0 and first / top < ratio:
            vanished = True
            add(TrainingGradientVanishesThroughTime,
                f"{f['module']}: at optimizer step {f['step']} the gradient reaching the first of "
                f"{len(norms)} time steps is {first / top:.3g} of its peak (threshold {ratio:g})",
                "Check the recurrent weights' scale; prefer gated cells",
                evidence={"plot": {"kind": "training_flow", **f}})

    measurements = {"training": _plot_data(steps, flow, rec)}
    return SubjectResult(info=info, findings=findings, measurements=measurements)


def _plot_data(steps: list[dict[str, Any]], flow: list[dict[str, Any]], rec: dict[str, Any]
               ) -> dict[str, Any]:
    modules: dict[str, list[Any]] = {}
    sampled = [s for s in steps if s.get("module_norms")]
    for s in sampled:
        for k in s["module_norms"]:
            modules.setdefault(k, [])
    for k in modules:
        modules[k] = [s["module_norms"].get(k) for s in sampled]
    limits = [s.get("clip_max_norm") for s in steps if s.get("clip_max_norm") is not None]
    return {
        "step": [s["step"] for s in steps],
        "norm": [s.get("norm") for s in steps],
        "raw_norm": [s.get("raw_norm") for s in steps],
        "clipped": [bool(s.get("clipped")) for s in steps],
        "clip_max_norm": limits[-1] if limits else None,
        "loss": [s.get("loss") for s in steps] if any("loss" in s for s in steps) else [],
        "update_ratio": [s.get("update_ratio") for s in steps],
        "module_steps": [s["step"] for s in sampled],
        "module_norms": modules,
        "flow": flow[-8:],
        "sample_every": rec.get("sample_every"),
    }
