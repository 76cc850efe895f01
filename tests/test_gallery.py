"""The examples gallery: each file says what grudiag must report, and grudiag must say exactly that.

Every `examples/*.py` declares one line ``Expected categories: a, b`` (or ``none``): the set of
categories of all error- and warning-level findings. Correct cells must get no error at all.
The whole gallery is diagnosed once, through the same worker isolation the CLI uses.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import grudiag
from grudiag.model import Severity

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXPECTED = re.compile(r"^Expected categories:\s*(.+)$", re.M)


def gallery_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith(("_", "test_")))


def expected_categories(path: Path) -> set[str]:
    found = EXPECTED.findall(path.read_text())
    assert len(found) == 1, f"{path.name} must declare exactly one 'Expected categories:' line"
    value = found[0].strip()
    return set() if value == "none" else {c.strip() for c in value.split(",")}


@pytest.fixture(scope="module")
def gallery_reports():
    files = gallery_files()
    report = grudiag.check([str(p) for p in files])
    assert not report.problems, [str(p) for p in report.problems]
    by_file: dict[str, list] = {p.name: [] for p in files}
    for finding in report.findings:
        by_file[finding.subject.split("::")[0]].append(finding)
    subjects = {p.name: [s for s in report.subjects if s.id.startswith(p.name + "::")]
                for p in files}
    return by_file, subjects


@pytest.mark.parametrize("path", gallery_files(), ids=lambda p: p.name)
def test_gallery_file_gets_exactly_its_expected_categories(path, gallery_reports):
    by_file, subjects = gallery_reports
    assert subjects[path.name], f"no subject discovered in {path.name}"
    reported = {f.category for f in by_file[path.name]
                if f.severity in (Severity.ERROR, Severity.WARNING)}
    details = [f"{f.code} {f.severity.value} {f.category}: {f.message}"
               for f in by_file[path.name]]
    assert reported == expected_categories(path), details


@pytest.mark.parametrize("path", [p for p in gallery_files() if p.name.startswith("correct_")],
                         ids=lambda p: p.name)
def test_correct_cells_get_no_error(path, gallery_reports):
    by_file, _ = gallery_reports
    errors = [f for f in by_file[path.name] if f.severity is Severity.ERROR]
    assert errors == []


def test_gallery_covers_every_bug_category_in_torch_and_numpy():
    covered: dict[str, set[str]] = {}
    for path in gallery_files():
        backend = "torch" if "_torch" in path.stem else "numpy" if "_numpy" in path.stem else "?"
        for category in expected_categories(path):
            covered.setdefault(category, set()).add(backend)
    behavioural = {"zero-init-symmetry", "wrong-gradient", "truncated-bptt",
                   "stale-hidden-state", "ignored-recurrence", "bad-shapes", "gate-saturation",
                   "exploding-gradients", "vanishing-gradients", "numerical-instability"}
    missing = {c: {"torch", "numpy"} - covered.get(c, set()) for c in behavioural}
    missing = {c: sorted(b) for c, b in missing.items() if b}
    # truncated-bptt needs autograd: a NumPy cell has no graph to cut
    missing.pop("truncated-bptt", None) if missing.get("truncated-bptt") == ["numpy"] else None
    assert missing == {}
