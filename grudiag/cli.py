"""The `grudiag` command line.

Exit codes: 0 no finding at or above --fail-on; 1 findings; 2 could not diagnose (bad
arguments, missing file, syntax or import error, no subjects); 3 internal error of grudiag.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from importlib import metadata

import click

from . import __version__
from .model import ExitCode

_EXIT_HELP = ("Exit codes: 0 no finding at or above --fail-on, 1 findings, "
              "2 could not diagnose (file, import, no subjects), 3 internal error.")


def _versions() -> str:
    parts = [f"grudiag {__version__}"]
    for dist in ("numpy", "torch"):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist} (not installed)")
    return ", ".join(parts) + f", Python {sys.version.split()[0]}"


def _colour() -> bool | None:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return None  # click decides: colour on a terminal, plain text elsewhere


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(message=_versions(), version=__version__)
def main() -> None:
    """Find the silent bugs in hand-written GRU and RNN cells by measuring them."""


def _parse_thresholds(values: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values:
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise click.BadParameter(f"{item!r}: use NAME=NUMBER, e.g. GD401.rtol=1e-4",
                                     param_hint="--threshold")
    return out


@main.command(epilog=_EXIT_HELP)
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "concise", "json"]), default="text",
              show_default=True, help="Output on stdout; json is exactly one JSON document.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every probe input.")
@click.option("--timeout", type=float, default=60.0, show_default=True,
              help="Seconds allowed per subject before it is stopped.")
@click.option("--import-timeout", type=float, default=120.0, show_default=True,
              help="Seconds allowed to import each file and find its subjects.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info"]), default="error",
              show_default=True, help="Lowest severity that makes the exit code 1.")
@click.option("--select", default="", help="Only these checks: codes, prefixes (GD4), names "
                                           "or categories, comma-separated.")
@click.option("--ignore", default="", help="Skip these checks (same forms as --select).")
@click.option("--threshold", "thresholds", multiple=True, metavar="NAME=VALUE",
              help="Override a check threshold, e.g. GD401.rtol=1e-4 (repeatable).")
@click.option("--input-size", type=int, default=None, help="Input size to build classes with.")
@click.option("--hidden-size", type=int, default=None, help="Hidden size to build classes with.")
@click.option("--debug", is_flag=True, help="Show grudiag tracebacks and the subjects' output.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              metavar="PATH", help="Also write a self-contained HTML report with plots to PATH "
                                   "(works with any --format).")
def check(paths, fmt, seed, timeout, import_timeout, fail_on, select, ignore, thresholds, input_size,
          hidden_size, debug, html_path) -> None:
    """Diagnose every GRU/RNN cell found in PATHS."""
    from .api import check as run_check

    try:
        with _Progress(f"checking {', '.join(paths)}", enabled=not debug):
            report = run_check(
                list(paths), seed=seed, timeout=timeout, import_timeout=import_timeout, fail_on=fail_on, select=select,
                ignore=ignore, thresholds=_parse_thresholds(thresholds), input_size=input_size,
                hidden_size=hidden_size, debug=debug,
            )
    except click.ClickException:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug in grudiag: say so, exit 3
        click.echo(f"grudiag: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("This is a bug in grudiag; please report it with the output of --debug.",
                   err=True)
        if debug:
            traceback.print_exc()
        sys.exit(ExitCode.INTERNAL_ERROR)

    if fmt == "json":
        click.echo(report.to_json())
    else:
        from .reporters.text import render

        click.echo(render(report, concise=fmt == "concise"), color=_colour())
    for problem in report.problems:
        click.echo(f"grudiag: error: {problem}", err=True)
    if html_path:
        _write_html(report, html_path, debug)
    sys.exit(int(report.exit_code))


def _write_html(report, path: str, debug: bool) -> None:
    """Write the HTML report; say where on stderr (a clickable link on a terminal)."""
    try:
        from .reporters.html import write_html

        with _Progress("drawing the HTML report", enabled=not debug):
            written = write_html(report, path)
    except OSError as exc:
        click.echo(f"grudiag: cannot write the HTML report to {path}: {exc.strerror or exc}",
                   err=True)
        sys.exit(ExitCode.CANNOT_DIAGNOSE)
    except Exception as exc:  # noqa: BLE001 - a bug in grudiag: say so, exit 3
        click.echo(f"grudiag: internal error while writing the HTML report: "
                   f"{type(exc).__name__}: {exc}", err=True)
        if debug:
            traceback.print_exc()
        sys.exit(ExitCode.INTERNAL_ERROR)
    shown = click.format_filename(path)
    if sys.stderr.isatty() and _colour() is not False:  # OSC 8 hyperlink (coverage.py style)
        shown = f"\x1b]8;;{written.resolve().as_uri()}\x1b\\{shown}\x1b]8;;\x1b\\"
    click.echo(f"Wrote HTML report to {shown}", err=True)


class _Progress:
    """A transient spinner on stderr while a slow step runs.

    Shown only when stderr is a terminal and the step takes more than `delay` seconds; it is
    erased when the step ends, so nothing of it stays in logs or on stdout.
    """

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, label: str, *, enabled: bool = True, delay: float = 0.8):
        import threading

        self.label = label if len(label) <= 60 else label[:57] + "…"
        self.enabled = enabled and _stderr_is_tty()
        self.delay = delay
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._shown = False

    def __enter__(self) -> "_Progress":
        if self.enabled:
            import time

            self._started = time.monotonic()
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._stop.set()
            self._thread.join()
            if self._shown:
                sys.stderr.write("\r\x1b[K")
                sys.stderr.flush()

    def _run(self) -> None:
        import time

        if self._stop.wait(self.delay):
            return
        i = 0
        while not self._stop.is_set():
            elapsed = time.monotonic() - self._started
            frame = self.FRAMES[i % len(self.FRAMES)]
            sys.stderr.write(f"\r\x1b[K{frame} grudiag: {self.label} ({elapsed:.0f} s)")
            sys.stderr.flush()
            self._shown = True
            i += 1
            self._stop.wait(0.1)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


@main.command()
@click.argument("code")
def rule(code: str) -> None:
    """Print the documentation of one check (by code or name)."""
    from .checks import lookup

    check_cls = lookup(code)
    if check_cls is None:
        click.echo(f"grudiag: no check named {code!r}; `grudiag rules` lists them all", err=True)
        sys.exit(ExitCode.CANNOT_DIAGNOSE)
    click.echo(f"# {check_cls.name} ({check_cls.code})\n")
    click.echo(f"Category: {check_cls.category} · family: {check_cls.family()} · "
               f"default severity: {check_cls.severity.value}")
    if check_cls.thresholds:
        click.echo("Thresholds: " + ", ".join(f"{k} = {v:g}"
                                              for k, v in check_cls.thresholds.items()))
    click.echo("")
    click.echo(check_cls.doc())


@main.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def rules(fmt: str) -> None:
    """List every check."""
    from .checks import CHECKS

    if fmt == "json":
        click.echo(json.dumps([{
            "code": c.code, "name": c.name, "category": c.category, "family": c.family(),
            "severity": c.severity.value, "summary": c.summary(), "thresholds": c.thresholds,
            "explanation": c.doc(),
        } for c in CHECKS.values()], indent=2))
        return
    for code in sorted(CHECKS):
        c = CHECKS[code]
        click.echo(f"{c.code}  {c.name:<42} {c.category:<22} {c.severity.value:<8} {c.summary()}")


@main.command(context_settings={"ignore_unknown_options": True}, epilog=_EXIT_HELP)
@click.argument("script", type=click.Path())
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--max-steps", type=int, default=None, help="Stop cleanly after N optimizer steps.")
@click.option("--format", "fmt", type=click.Choice(["text", "concise", "json"]), default="text",
              show_default=True, help="Output on stdout; json is exactly one JSON document.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              metavar="PATH", help="Also write a self-contained HTML report with plots to PATH.")
@click.option("--timeout", type=float, default=600.0, show_default=True,
              help="Seconds the script may run before it is stopped.")
@click.option("--sample-every", type=int, default=20, show_default=True,
              help="Measure the gradient flow through time every N optimizer steps.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info"]), default="error",
              show_default=True, help="Lowest severity that makes the exit code 1.")
@click.option("--threshold", "thresholds", multiple=True, metavar="NAME=VALUE",
              help="Override a check threshold, e.g. GD701.spike_factor=20 (repeatable).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of grudiag's probes.")
@click.option("--debug", is_flag=True, help="Show grudiag tracebacks and the script's output.")
def run(script, script_args, max_steps, fmt, html_path, timeout, sample_every, fail_on,
        thresholds, seed, debug) -> None:
    """Run a training SCRIPT as __main__ under instrumentation (pass its arguments after --)."""
    from .run import run as run_training

    try:
        with _Progress(f"running {script}", enabled=not debug):
            report, output = run_training(script, list(script_args), max_steps=max_steps,
                                          timeout=timeout, sample_every=sample_every,
                                          fail_on=fail_on, seed=seed,
                                          thresholds=_parse_thresholds(thresholds))
    except click.ClickException:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug in grudiag: say so, exit 3
        click.echo(f"grudiag: internal error: {type(exc).__name__}: {exc}", err=True)
        if debug:
            traceback.print_exc()
        sys.exit(ExitCode.INTERNAL_ERROR)
    if debug and output:
        click.echo(output, err=True, nl=False)
    if fmt == "json":
        click.echo(report.to_json())
    else:
        from .reporters.text import render

        click.echo(render(report, concise=fmt == "concise"), color=_colour())
    for problem in report.problems:
        click.echo(f"grudiag: error: {problem}", err=True)
    if html_path:
        _write_html(report, html_path, debug)
    sys.exit(int(report.exit_code))


if __name__ == "__main__":
    main()
