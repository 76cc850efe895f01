"""Bad input gets a clear error and loses nothing (DESIGN §3, §4).

Each hostile file is run through the real CLI in a subprocess, as a user would run it.
"""
from __future__ import annotations

import json

import pytest

from .cli_helpers import HOSTILE, grudiag

# Harness, shape and numerics checks only: these tests are about surviving, not about GRU maths.
FAST = ("--select", "GD1,GD5,GD9")


@pytest.mark.parametrize("name, fragments", [
    ("syntax_error.py", ["syntax_error.py:10", "SyntaxError"]),
    ("import_raises.py", ["import_raises.py:8", "FileNotFoundError", "config/gru.yaml"]),
    ("import_missing_package.py", ["import_missing_package.py:2", "ModuleNotFoundError",
                                   "tensorflow_addons_not_installed"]),
    ("exits_at_import.py", ["exits_at_import.py:5", "SystemExit"]),
    ("nothing_here.py", ["nothing_here.py", "looked for"]),
])
def test_files_that_cannot_be_diagnosed_exit_2_naming_file_and_line(name, fragments):
    result = grudiag("check", str(HOSTILE / name), "--format", "json", *FAST)
    assert result.code == 2
    problems = result.json["problems"]
    assert len(problems) == 1
    text = f"{problems[0]['location'].get('file', '')}:{problems[0]['location'].get('line', '')} " \
           f"{problems[0]['message']}"
    for fragment in fragments:
        assert fragment.lower() in (text + result.stderr).lower(), (fragment, text, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.json["summary"]["exit_code"] == 2


def test_text_mode_error_goes_to_stderr_without_traceback():
    result = grudiag("check", str(HOSTILE / "syntax_error.py"))
    assert result.code == 2
    assert "syntax_error.py:10" in result.stderr and "SyntaxError" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_file_exits_2():
    result = grudiag("check", "no/such/file.py", "--format", "json")
    assert result.code == 2
    assert result.json["problems"][0]["message"] == "no/such/file.py does not exist"


def test_hang_at_import_is_stopped():
    result = grudiag("check", str(HOSTILE / "hangs_at_import.py"), "--format", "json", *FAST,
                     "--import-timeout", "8")
    assert result.code == 2
    assert "did not finish within 8 s" in result.json["problems"][0]["message"]


def test_every_crash_becomes_a_finding_and_the_good_cell_survives():
    result = grudiag("check", str(HOSTILE / "crashing_cells.py"), "--format", "json", *FAST,
                     "--timeout", "10")
    assert result.code == 1
    by_subject = {}
    for f in result.findings():
        by_subject.setdefault(f["subject"].split("::")[1], []).append(f)
    assert [f["code"] for f in by_subject["RaisingCell"]] == ["GD901"]
    raising = by_subject["RaisingCell"][0]
    assert "ValueError: expected a batch of 32, got 3" in raising["message"]
    assert raising["location"]["file"].endswith("crashing_cells.py")
    assert raising["location"]["line"] == 19
    assert raising["category"] == "crash"

    exiting = by_subject["ExitingCell"][0]
    assert exiting["code"] == "GD901" and "sys.exit('state looks fine, stopping')" in exiting["message"]
    assert exiting["location"]["line"] == 31

    hanging = by_subject["HangingCell"][0]
    assert hanging["code"] == "GD902"
    # Normally the worker interrupts the loop itself and names the line; under heavy load the
    # parent's backstop deadline may stop the worker first. Both are the same verdict.
    if "did not return within 10 s" in hanging["message"]:
        assert hanging["location"]["line"] == 43  # where the loop was interrupted
    else:
        assert "did not finish within 10 s and was stopped" in hanging["message"]

    killing = by_subject["KillingCell"][0]
    assert killing["code"] == "GD903" and "exit code 3" in killing["message"]

    none = by_subject["NoneCell"][0]
    assert none["code"] == "GD905" and none["category"] == "crash"
    assert "None" in none["message"]

    assert "GoodCell" not in by_subject
    ids = [s["id"].split("::")[1] for s in result.json["subjects"]]
    assert ids == ["RaisingCell", "ExitingCell", "HangingCell", "KillingCell", "NoneCell",
                   "GoodCell"]
    good = next(s for s in result.json["subjects"] if s["id"].endswith("GoodCell"))
    assert good["kind"] == "torch-cell" and good["checks_run"]


@pytest.mark.parametrize("name, code, category, fragment", [
    ("memory_hog.py", "GD904", "crash", "MemoryError"),
    ("segfault.py", "GD903", "crash", "SIGSEGV"),
    ("nan_output.py", "GD501", "numerical-instability", "NaN/Inf"),
    ("constructor_raises.py", "GD906", "crash", "input_size must equal hidden_size"),
])
def test_single_failure_modes(name, code, category, fragment):
    result = grudiag("check", str(HOSTILE / name), "--format", "json", *FAST)
    assert result.code == 1
    codes = [(f["code"], f["category"]) for f in result.findings()]
    assert (code, category) in codes
    finding = next(f for f in result.findings() if f["code"] == code)
    assert fragment in finding["message"]


def test_prints_and_global_state_changes_do_not_break_json_or_probes():
    result = grudiag("check", str(HOSTILE / "noisy_and_global_state.py"), "--format", "json")
    document = json.loads(result.stdout)  # exactly one JSON document, no user prints
    assert document["subjects"][0]["id"].endswith("::ChattyGRU")
    assert [f for f in document["findings"] if f["severity"] == "error"] == []
    assert result.code == 0
