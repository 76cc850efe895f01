"""Smoke test of benchmarks/perf.py: the --quick run finishes and writes the expected JSON fields.

No timing assertions: a missed performance target is a finding of the benchmark (a REGRESSION
line in its output), never a failing test.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PERF = os.path.join(ROOT, "benchmarks", "perf.py")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("perf") / "perf.json"
    # sections 5 (peer) and 6 (GPU) depend on the environment; the smoke run keeps 1 and 2
    proc = subprocess.run([sys.executable, PERF, "--quick", "--skip", "5", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, json.loads(out.read_text())


def test_prints_machine_and_versions(quick_run):
    stdout, _ = quick_run
    assert "machine:" in stdout and "torch" in stdout and "numpy" in stdout
    assert "== 1." in stdout and "== 2." in stdout and "== 4." in stdout


def test_json_fields(quick_run):
    _, data = quick_run
    for key in ("meta", "targets", "check_cost", "gradcheck", "scale", "run_overhead", "peer",
                "gpu", "regressions", "total_s"):
        assert key in data, key
    for key in ("cpu", "cores", "torch", "numpy", "date"):
        assert key in data["meta"], key
    rows = data["check_cost"]["rows"]
    assert {r["subject"] for r in rows} == {"nn.GRUCell", "torch hand-written", "numpy hand-written"}
    for r in rows:
        for key in ("hidden", "check_s", "fwd_bwd_s", "ratio", "probe_s", "findings"):
            assert key in r, key
        assert r["check_s"] > 0 and r["fwd_bwd_s"] > 0
        assert "jacobian_spectrum" in r["probe_s"]
    assert data["check_cost"]["dominant_probe_at_largest"]
    g = data["gradcheck"]["rows"]
    assert {r["mutant"] for r in g} >= {"correct", "z-no-sigmoid-deriv"}
    for r in g:
        assert set(r["caught"]) == {"grudiag", "slow", "fast"}
        assert "grudiag_s" in r and "fast_s" in r
    assert data["scale"].get("skipped") is True
    assert isinstance(data["regressions"], list)
    assert "available" in data["gpu"] or data["gpu"].get("skipped")


def test_detection_on_tiny_cells(quick_run):
    """Detection (not speed) is deterministic: grudiag flags each wrong backward, not the true one."""
    _, data = quick_run
    for r in data["gradcheck"]["rows"]:
        assert r["caught"]["grudiag"] == (r["mutant"] != "correct"), r["mutant"]
