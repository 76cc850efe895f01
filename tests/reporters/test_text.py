"""Terminal output: full and concise formats, colour rules, and the CLI's --html option."""
from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from grudiag import api, cli
from grudiag.reporters.text import render, summary_line

from . import build_report


@pytest.fixture
def fake_check(monkeypatch):
    """`grudiag check` without running anything: the report is built by hand."""
    monkeypatch.setattr(api, "check", lambda *a, **k: build_report())


def test_full_format_has_code_severity_location_and_help():
    text = click.unstyle(render(build_report()))
    assert "GD401 [error] gradient-mismatch: ∂h/∂weight_hh differs" in text
    assert " --> /abs/path/to/cells.py:40 in MyGRUCell.forward" in text
    assert " help: Check the derivative of the update gate" in text
    assert "Found 2 errors, 1 warning, 1 info in 2 subjects (4 checks run, 1 skipped: " \
           "the subject has no backward" in text
    assert text.rstrip().endswith("Reproduce: grudiag check cells.py --seed 1234")


def test_concise_format_is_one_line_per_finding():
    lines = click.unstyle(render(build_report(), concise=True)).splitlines()
    finding_lines = [ln for ln in lines if " [error] " in ln or " [warning] " in ln
                     or " [info] " in ln]
    assert len(finding_lines) == 4
    assert "/abs/path/to/cells.py:40: GD401 [error] gradient-mismatch: " in finding_lines[0]
    assert not any(ln.startswith(" help:") for ln in lines)


def test_summary_line_of_a_clean_report():
    text = click.unstyle(summary_line(build_report(findings=False)))
    assert text.startswith("Found 0 errors, 0 warnings, 0 info in 2 subjects")


@pytest.mark.parametrize("fmt", ["text", "concise"])
def test_no_color_means_no_escape_codes(fake_check, monkeypatch, fmt):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    result = CliRunner().invoke(cli.main, ["check", "cells.py", "--format", fmt], color=True)
    assert result.exit_code == 1
    assert "GD401" in result.stdout and "\x1b[" not in result.stdout


def test_force_color_colours(fake_check, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    result = CliRunner().invoke(cli.main, ["check", "cells.py"])
    assert "\x1b[31m" in result.stdout  # errors in red


def test_not_a_terminal_means_plain_text(fake_check, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    result = CliRunner().invoke(cli.main, ["check", "cells.py"])
    assert "\x1b[" not in result.stdout and "\x1b[" not in result.stderr


def test_html_option_with_json_keeps_stdout_pure(fake_check, tmp_path):
    out = tmp_path / "r" / "report.html"
    result = CliRunner().invoke(cli.main, ["check", "cells.py", "--format", "json", "--html",
                                           str(out)])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["summary"]["error"] == 2
    assert f"Wrote HTML report to {out}" in result.stderr
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_progress_stays_off_when_stderr_is_not_a_terminal(capsys):
    with cli._Progress("checking", delay=0.0) as progress:
        pass
    assert not progress.enabled
    assert capsys.readouterr().err == ""
