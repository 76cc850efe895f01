"""Fast subset of benchmarks/mutation.py: a few torch mutants are killed, correct cells are not.

A mutant is killed when grudiag reports at least one warning or error. The full benchmark
(every operator, torch and NumPy) is `.venv/bin/python benchmarks/mutation.py`.
"""
from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from mutants import OPERATORS, Spec, build  # noqa: E402
from mutants.template import TorchCell, TorchFunctionCell, TorchSeq  # noqa: E402
from mutation import findings_of, is_killed  # noqa: E402

OPS = {o.name: o for o in OPERATORS}
BASE = Spec(family="after", update="torch")
SUBSET = {  # operator -> the check that must be among the killers
    "cand-act-relu": "GD210",
    "drop-bias-hn": "GD216",
    "loop-passes-h0": "GD301",
    "loop-detach": "GD402",
    "init-zero": "GD601",
    "bwd-no-sigmoid-deriv": "GD401",
}


@pytest.mark.parametrize("name", sorted(SUBSET))
def test_torch_mutant_killed(name):
    found, problems = findings_of(build(OPS[name], "torch", BASE))
    assert not problems
    assert is_killed(found), found
    assert SUBSET[name] in {f["code"] for f in found if f["severity"] != "info"}, found


@pytest.mark.parametrize("cls", [TorchCell, TorchSeq, TorchFunctionCell])
@pytest.mark.parametrize("spec", [BASE, Spec(family="before", update="chung", bias=False)])
def test_correct_template_not_flagged(cls, spec):
    found, problems = findings_of(cls(5, 7, spec))
    assert not problems
    assert not is_killed(found), found
    assert "GD201" in {f["code"] for f in found}


def test_equivalent_update_flip_not_flagged():
    found, _ = findings_of(build(OPS["eq-update-flip"], "torch", BASE))
    assert OPS["eq-update-flip"].equivalent
    assert not is_killed(found), found


def test_kill_definition_ignores_info():
    assert not is_killed([{"code": "GD201", "severity": "info"}])
    assert is_killed([{"code": "GD505", "severity": "warning"}])
