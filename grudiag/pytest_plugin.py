"""grudiag's pytest plugin, registered through the ``pytest11`` entry point.

Cheap to import: torch, numpy and matplotlib load only when a fixture or helper is used.

* fixtures: ``grudiag`` (``grudiag.check(obj, **options)``; the session keeps every report),
  ``grudiag_inputs`` (seeded float64 inputs), ``grudiag_reference_cell`` (a reference GRU factory);
* marker: ``@pytest.mark.grudiag(seed=..., select=..., ...)`` sets per-test check options;
* options: ``--grudiag-seed``, ``--grudiag-html PATH``, ``--grudiag-json PATH``.
"""
from __future__ import annotations

import json
import os
from typing import Any

import pytest

#: keys the marker accepts: the options of `grudiag.check`
MARKER_KEYS = frozenset({"seed", "timeout", "fail_on", "select", "ignore", "thresholds",
                         "input_size", "hidden_size", "batch", "time"})

_REPORTS = pytest.StashKey[list]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grudiag", "grudiag: diagnostics for GRU/RNN cells")
    group.addoption("--grudiag-seed", type=int, default=None,
                    help="Seed of grudiag's probe inputs (default 0).")
    group.addoption("--grudiag-html", metavar="PATH", default=None,
                    help="Write one HTML report of every grudiag check run in the session.")
    group.addoption("--grudiag-json", metavar="PATH", default=None,
                    help="Write one JSON report of every grudiag check run in the session.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "grudiag(**options): options for the grudiag fixture in this test "
                   f"({', '.join(sorted(MARKER_KEYS))})")
    config.stash[_REPORTS] = []


def _seed(config: pytest.Config) -> int:
    seed = config.getoption("--grudiag-seed")
    return 0 if seed is None else seed


def pytest_report_header(config: pytest.Config) -> str:
    return f"grudiag: seed={_seed(config)} (replay with --grudiag-seed={_seed(config)})"


def _marker_options(item: pytest.Item) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for marker in reversed(list(item.iter_markers("grudiag"))):
        if marker.args:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.grudiag takes keyword "
                                    "arguments only")
        unknown = set(marker.kwargs) - MARKER_KEYS
        if unknown:
            raise pytest.UsageError(
                f"{item.nodeid}: unknown @pytest.mark.grudiag option(s) "
                f"{', '.join(sorted(unknown))}; known: {', '.join(sorted(MARKER_KEYS))}")
        options.update(marker.kwargs)
    return options


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        _marker_options(item)  # a bad key fails the run at collection, not mid-way


class GrudiagFixture:
    """What the ``grudiag`` fixture gives a test: ``grudiag.check`` with the session's seed
    and the test's marker options, keeping every report for the session report."""

    def __init__(self, item: pytest.Item, seed: int, store: list):
        self._item = item
        self._defaults = {"seed": seed, **_marker_options(item)}
        self._store = store
        self.reports: list = []

    def check(self, obj: Any, **options: Any):
        from .api import check

        report = check(obj, **{**self._defaults, **options})
        self.reports.append(report)
        self._store.append((self._item.nodeid, report))
        return report

    @property
    def seed(self) -> int:
        return self._defaults["seed"]


@pytest.fixture
def grudiag(request: pytest.FixtureRequest) -> GrudiagFixture:
    fixture = GrudiagFixture(request.node, _seed(request.config),
                             request.config.stash[_REPORTS])
    request.node.stash[_ITEM_FIXTURE] = fixture
    return fixture


_ITEM_FIXTURE = pytest.StashKey[GrudiagFixture]()


@pytest.fixture
def grudiag_inputs(request: pytest.FixtureRequest):
    """A factory of seeded float64 probe inputs: ``xs (T, B, I), h0 (B, H)``."""
    import numpy as np

    seed = _seed(request.config)

    def make(input_size: int = 5, hidden_size: int = 7, batch: int = 3, time: int = 6):
        rng = np.random.default_rng(seed)
        return (rng.normal(size=(time, batch, input_size)),
                rng.uniform(-0.5, 0.5, size=(batch, hidden_size)))

    return make


@pytest.fixture
def grudiag_reference_cell(request: pytest.FixtureRequest):
    """A factory of torch reference GRU cells, seeded: ``make(5, 7, variant="reset-before")``."""
    def make(input_size: int = 5, hidden_size: int = 7, variant: str = "reset-after",
             dtype=None):
        import torch

        from .reference import ALL_VARIANTS, ReferenceGRUCell

        chosen = next((v for v in ALL_VARIANTS if v.name == variant), None)
        if chosen is None:
            raise ValueError(f"unknown variant {variant!r}: "
                             f"{', '.join(v.name for v in ALL_VARIANTS)}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed(request.config))
            return ReferenceGRUCell(input_size, hidden_size, chosen, dtype=dtype)

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    fixture = item.stash.get(_ITEM_FIXTURE, None)
    if report.when == "call" and report.failed and fixture and fixture.reports:
        from .reporters.text import render

        text = "\n\n".join(render(r) for r in fixture.reports)
        report.sections.append(("grudiag", _unstyle(text)))


def _unstyle(text: str) -> str:
    import click

    return click.unstyle(text)


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    json_path, html_path = config.getoption("--grudiag-json"), config.getoption("--grudiag-html")
    if not (json_path or html_path):
        return
    reports = [r for _, r in config.stash.get(_REPORTS, [])]
    parts_dir = os.path.abspath(json_path or html_path) + ".parts"
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        # Under pytest-xdist each worker leaves its part; the controller merges and writes once.
        os.makedirs(parts_dir, exist_ok=True)
        part = os.path.join(parts_dir, f"{worker['workerid']}.json")
        with open(part, "w") as fh:
            json.dump([r.to_dict() for r in reports], fh)
        return
    reports += _read_parts(parts_dir)
    merged = _merge(reports, _seed(config))
    if json_path:
        os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
        with open(json_path, "w") as fh:
            json.dump(merged.to_dict(), fh, indent=2)
    if html_path:
        from .reporters.html import write_html

        write_html(merged, html_path)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    for option in ("--grudiag-json", "--grudiag-html"):
        path = config.getoption(option)
        if path and not hasattr(config, "workerinput"):
            terminalreporter.write_line(f"grudiag: wrote {path}")


def _read_parts(parts_dir: str) -> list:
    import shutil

    from .model import Problem, Report, SubjectResult, Location

    if not os.path.isdir(parts_dir):
        return []
    reports = []
    for name in sorted(os.listdir(parts_dir)):
        with open(os.path.join(parts_dir, name)) as fh:
            for doc in json.load(fh):
                report = Report(seed=doc["seed"], targets=doc["targets"])
                measurements = doc.get("measurements", {})
                for info in doc["subjects"]:
                    findings = [f for f in doc["findings"] if f["subject"] == info["id"]]
                    report.results.append(SubjectResult.from_dict({
                        "info": info, "findings": findings,
                        "measurements": measurements.get(info["id"], {})}))
                report.problems.extend(
                    Problem(p["target"], p["message"],
                            Location(**p["location"]) if p.get("location") else None)
                    for p in doc["problems"])
                reports.append(report)
    shutil.rmtree(parts_dir, ignore_errors=True)
    return reports


def _merge(reports: list, seed: int):
    from .model import Report

    merged = Report(seed=seed)
    for report in reports:
        merged.results.extend(report.results)
        merged.problems.extend(report.problems)
        merged.targets.extend(report.targets)
        merged.duration_s += report.duration_s
    return merged
