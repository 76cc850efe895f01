"""`grudiag run`: real small training scripts, run as __main__ in the worker, judged exactly."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from grudiag.model import ExitCode
from grudiag.run import run

SCRIPTS = Path(__file__).resolve().parent / "scripts"
ROOT = Path(__file__).resolve().parents[2]
# two shared cores: one intra-op thread keeps these tiny models fast and the timing stable
ENV = {"OMP_NUM_THREADS": "1"}


def _run(name: str, args=(), timeout=120, **kw):
    with mock.patch.dict(os.environ, ENV):
        report, output = run(str(SCRIPTS / name), list(args), timeout=timeout, **kw)
    return report, output


def _codes(report):
    return sorted((f.code, f.severity.value) for f in report.findings)


def _training(report):
    return report.results[0].measurements["training"]


def test_diverging_gru_without_clipping_is_an_error_and_names_the_nan():
    report, output = _run("diverge.py")
    assert _codes(report) == [("GD701", "error"), ("GD704", "error")]
    by_code = {f.code: f for f in report.findings}
    assert "spiked" in by_code["GD701"].message and "no clipping" in by_code["GD701"].message
    nan = by_code["GD704"]
    assert nan.category == "numerical-instability"
    assert nan.evidence["step"] == 12 and nan.evidence["parameter"] == "Regressor.head.weight"
    assert nan.location.line == 33 and nan.location.file.endswith("diverge.py")
    assert report.exit_code == ExitCode.FINDINGS
    assert "step 0 loss" in output  # the script's prints are kept, away from stdout
    data = _training(report)
    assert len(data["step"]) == 40 and not any(data["clipped"])
    assert data["flow"] and data["flow"][0]["module"] == "GRU"


def test_the_clipped_twin_gets_no_missing_clipping_error():
    report, _ = _run("diverge_clipped.py")
    assert _codes(report) == [("GD706", "info")]  # it clips at every step: info only
    data = _training(report)
    assert all(data["clipped"]) and data["clip_max_norm"] == 1.0
    assert max(data["norm"]) <= 1.0 + 1e-4 < min(data["raw_norm"])
    assert report.exit_code == ExitCode.OK


def test_manual_clipping_is_seen_from_raw_vs_applied_norms():
    report, _ = _run("manual_clip.py")
    assert _codes(report) == [("GD706", "info")]
    data = _training(report)
    assert all(data["clipped"]) and data["clip_max_norm"] is None
    assert all(r > n for r, n in zip(data["raw_norm"], data["norm"]))


def test_non_recurrent_model_gets_no_clipping_warning():
    report, _ = _run("mlp.py")
    assert _codes(report) == []
    assert report.results[0].info.kind == "training-run"
    assert len(_training(report)["step"]) == 30


def test_a_two_argument_forward_that_is_not_a_cell_is_not_recurrent():
    report, _ = _run("two_inputs_mlp.py")
    assert _codes(report) == []
    assert report.results[0].measurements["training"]["flow"] == []


def test_script_arguments_reach_the_script():
    report, _ = _run("diverge.py", ["--lr", "0.00001", "--steps", "12"])
    # a tiny learning rate: no spike, no NaN; a GRU trained without clipping is a warning
    assert _codes(report) == [("GD701", "warning")]
    assert len(_training(report)["step"]) == 12


def test_script_that_raises_is_reported_at_its_line():
    report, _ = _run("raises.py")
    assert _codes(report) == [("GD701", "warning"), ("GD707", "error")]
    crash = next(f for f in report.findings if f.code == "GD707")
    assert crash.category == "crash" and "RuntimeError" in crash.message
    assert crash.location.file.endswith("raises.py") and crash.location.line == 18
    assert len(_training(report)["step"]) == 3
    # the hand-written loop over GRUCell: the flow through time is measured per call
    flow = _training(report)["flow"][0]
    assert flow["kind"] == "cell" and len(flow["norms"]) == 6


def test_max_steps_stops_cleanly_and_exploding_flow_is_reported():
    report, _ = _run("exploding_cell.py", max_steps=2)
    assert _codes(report) == [("GD702", "warning")]
    assert len(_training(report)["step"]) == 2
    assert report.results[0].info.notes[0].endswith("outcome: max-steps")


def test_cli_json_is_clean_and_the_exit_code_follows_the_findings(tmp_path):
    html = tmp_path / "r.html"
    proc = subprocess.run(
        [sys.executable, "-m", "grudiag", "run", str(SCRIPTS / "diverge.py"), "--format", "json",
         "--max-steps", "15", "--html", str(html), "--", "--steps", "20"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, **ENV}, timeout=120)
    doc = json.loads(proc.stdout)  # the script printed a line per step: none of it here
    assert proc.returncode == 1, proc.stderr
    assert [(f["code"], f["severity"]) for f in doc["findings"]] == [("GD701", "error"),
                                                                      ("GD704", "error")]
    assert doc["subjects"][0]["kind"] == "training-run"
    assert len(doc["measurements"]["diverge.py::run"]["training"]["step"]) == 15
    page = html.read_text()
    assert "missing-gradient-clipping" in page and "<svg" in page


def test_missing_file_is_exit_2():
    report, _ = _run("no_such_script.py")
    assert report.exit_code == ExitCode.CANNOT_DIAGNOSE


def test_training_plot_draws_raw_applied_and_threshold():
    from grudiag.plots import render
    from grudiag.plots import training as _  # noqa: F401

    data = {"step": [0, 1, 2], "norm": [1.0, 1.0, "nan"], "raw_norm": [3.0, 5.0, "inf"],
            "clip_max_norm": 1.0, "loss": [2.0, 1.0, "nan"], "module_steps": [0],
            "module_norms": {"Model.gru": [2.0]}}
    plot = render("training", data)
    assert plot is not None and "clip max_norm = 1" in plot.content
    assert render("training", {"step": [0]}) is None


def test_a_hanging_script_is_stopped_and_its_steps_are_kept():
    report, _ = _run("hangs.py", timeout=8)
    assert _codes(report) == [("GD708", "error")]
    assert "did not finish within 8 s" in report.findings[0].message
    assert len(_training(report)["step"]) == 2
