"""The demo: `grudiag check` on every file of the examples gallery.

Prints the terminal report and writes reports/demo.txt and reports/demo.json (plus an HTML
report when the HTML reporter is installed). Run it with `make demo`.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grudiag import check  # noqa: E402
from grudiag.reference import ALL_VARIANTS  # noqa: E402
from grudiag.reporters.text import render  # noqa: E402


def main() -> int:
    reports = ROOT / "reports"
    reports.mkdir(exist_ok=True)
    click.echo(click.style("Reference GRUs grudiag compares against:", bold=True))
    for variant in ALL_VARIANTS:
        click.echo(f"  - {variant.name}: {variant.description}")
    examples = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.py")
                      if not p.name.startswith(("_", "test_")))
    click.echo(click.style(f"\ngrudiag check on {len(examples)} example files\n", bold=True))
    started = time.monotonic()
    report = check(examples)
    text = render(report)
    click.echo(text)
    (reports / "demo.txt").write_text(click.unstyle(text) + "\n")
    (reports / "demo.json").write_text(report.to_json() + "\n")
    written = ["reports/demo.txt", "reports/demo.json"]
    try:
        from grudiag.reporters.html import write_html
    except ImportError:
        write_html = None
    if write_html is not None:
        write_html(report, reports / "demo.html")
        written.append("reports/demo.html")
    click.echo(f"\nWrote {', '.join(written)} in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
