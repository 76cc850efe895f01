"""The pytest plugin, exercised the way users meet it: through pytester, in a subprocess, loaded
by its `pytest11` entry point with no configuration."""
from __future__ import annotations

import json
import sys

import pytest

CELLS = '''
import torch
from torch import nn


class GoodCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)

    def forward(self, x, h):
        return self.cell(x, h)


class CrashingCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)

    def forward(self, x, h):
        raise RuntimeError("boom from the user's cell")
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(cells=CELLS)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_plugin_loads_by_entry_point_and_prints_the_seed(project):
    project.makepyfile(test_a="def test_fixture_exists(grudiag):\n    assert grudiag.seed == 7\n")
    result = run(project, "--grudiag-seed=7")
    result.stdout.fnmatch_lines(["grudiag: seed=7 (replay with --grudiag-seed=7)"])
    result.assert_outcomes(passed=1)


def test_helpers_pass_on_a_correct_cell_and_fail_readably_on_a_broken_one(project):
    project.makepyfile(test_b='''
from cells import GoodCell, CrashingCell
from grudiag.testing import assert_no_findings, assert_findings

def test_good(grudiag):
    assert_no_findings(grudiag.check(GoodCell(5, 7)))

def test_crash_is_reported(grudiag):
    assert_no_findings(grudiag.check(CrashingCell(5, 7)))

def test_expected_bug(grudiag):
    assert_findings(grudiag.check(CrashingCell(5, 7)), ["crash", "GD901"])
''')
    result = run(project)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*grudiag found 1 error in <CrashingCell> (fail_on=error):*",
        "*GD901 ?error? subject-raised: the forward raised RuntimeError: boom from the user's cell*",
        "*Reproduce: grudiag.check(..., seed=0) or pytest --grudiag-seed=0*",
        "*- grudiag -*",
    ])
    assert "grudiag/testing.py" not in result.stdout.str()  # helpers hide their frames


def test_marker_options_apply_and_unknown_keys_are_an_error(project):
    project.makepyfile(test_c='''
import pytest
from cells import CrashingCell

@pytest.mark.grudiag(seed=11, select=("GD5",))
def test_marker(grudiag):
    report = grudiag.check(CrashingCell(5, 7))
    assert report.seed == 11
''')
    run(project).assert_outcomes(passed=1)
    project.makepyfile(test_d='''
import pytest

@pytest.mark.grudiag(sede=3)
def test_typo(grudiag):
    pass
''')
    result = run(project, "test_d.py")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*unknown @pytest.mark.grudiag option(s) sede*"])


def test_seed_reproduces_the_same_report(project):
    project.makepyfile(test_e='''
import json
from cells import GoodCell

def test_dump(grudiag):
    import torch
    torch.manual_seed(0)  # the same cell every run: only grudiag's seed varies
    report = grudiag.check(GoodCell(5, 7))
    print("MEASURE", json.dumps(report.to_dict()["measurements"], sort_keys=True)[:2000])
''')
    first = run(project, "-s", "--grudiag-seed=5").stdout.str()
    second = run(project, "-s", "--grudiag-seed=5").stdout.str()
    other = run(project, "-s", "--grudiag-seed=6").stdout.str()
    def grab(out: str) -> str:
        line = next(line for line in out.splitlines() if "MEASURE" in line)
        return line[line.index("MEASURE"):]

    assert grab(first) == grab(second)
    assert grab(first) != grab(other)


def test_session_json_is_written_once_with_every_report(project):
    project.makepyfile(test_f='''
from cells import GoodCell, CrashingCell

def test_one(grudiag):
    grudiag.check(GoodCell(5, 7))

def test_two(grudiag):
    grudiag.check(CrashingCell(5, 7))
''')
    out = project.path / "out" / "grudiag.json"
    result = run(project, f"--grudiag-json={out}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"grudiag: wrote {out}"])
    doc = json.loads(out.read_text())
    assert [s["id"] for s in doc["subjects"]] == ["<GoodCell>", "<CrashingCell>"] or \
        len(doc["subjects"]) == 2
    assert [f["code"] for f in doc["findings"] if f["severity"] == "error"] == ["GD901"]


def test_plugin_import_is_cheap():
    code = ("import sys, grudiag.pytest_plugin; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'numpy') if m in sys.modules))")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_session_json_under_xdist_is_written_once_by_the_controller(project):
    project.makepyfile(test_g='''
import pytest
from cells import GoodCell, CrashingCell

@pytest.mark.parametrize("cls", [GoodCell, CrashingCell, GoodCell, CrashingCell])
def test_many(grudiag, cls):
    grudiag.check(cls(5, 7), select=("GD5", "GD9"))
''')
    out = project.path / "xdist.json"
    result = run(project, "-n", "2", f"--grudiag-json={out}")
    result.assert_outcomes(passed=4)
    doc = json.loads(out.read_text())
    assert len(doc["subjects"]) == 4
    assert sorted(f["code"] for f in doc["findings"]) == ["GD901", "GD901"]
    assert not (project.path / "xdist.json.parts").exists()
