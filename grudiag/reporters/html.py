"""The HTML report: one self-contained file (inline CSS, inline SVG/PNG figures, no scripts).

Rendered on the server side with Jinja2 and autoescaping, so every user-derived string (subject
ids, class names, messages, exception text, file paths, docstrings) is escaped; only grudiag's own
figures and CSS are marked safe. The full JSON report is embedded as
``<script type="application/json" id="grudiag-data">`` (with ``<``, ``>`` and ``&`` escaped) so the
page is also machine-readable. Like every reporter it computes nothing: it lays out a `Report`.
"""
from __future__ import annotations

import json
import math
import platform
import re
import sys
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from .. import __version__
from ..model import ExitCode, Finding, Report, Severity

#: evidence values longer than this are cut (the full value is in the embedded JSON)
MAX_TEXT = 400
#: lists up to this many numbers are shown inline; longer ones are summarised
MAX_INLINE = 8


def write_html(report: Report, path: str | Path, **kwargs: Any) -> Path:
    """Write the report to `path` (parent folders are created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, **kwargs), encoding="utf-8")
    return path


def render_html(report: Report, *, now: datetime | None = None, plots: bool = True) -> str:
    """The report as one HTML document. `now` fixes the timestamp (tests); `plots=False` skips
    the figures (fast, for huge reports)."""
    context = build_context(report, now=now, plots=plots)
    return _template().render(**context)


# --- the view model -----------------------------------------------------------------------------

_VERDICT = {
    ExitCode.OK: ("pass", "PASS", "No findings at or above the failure threshold"),
    ExitCode.FINDINGS: ("fail", "FAIL", "grudiag found problems in the checked cells"),
    ExitCode.CANNOT_DIAGNOSE: ("error", "COULD NOT DIAGNOSE",
                               "At least one target could not be checked at all"),
    ExitCode.INTERNAL_ERROR: ("error", "INTERNAL ERROR",
                              "grudiag itself failed; the other checks still ran"),
}


def build_context(report: Report, *, now: datetime | None = None,
                  plots: bool = True) -> dict[str, Any]:
    from .. import plots as plotting

    now = now or datetime.now(timezone.utc)
    data = report.to_dict()
    exit_code = report.exit_code
    klass, word, sentence = _VERDICT[exit_code]
    counts = {s.value: report.count(s) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)}
    checks = _check_registry()
    measurements = {r.info.id: r.measurements for r in report.results}
    cache: dict = {}

    findings = []
    seen: dict[str, int] = {}
    for f in report.findings:
        seen[f.code] = seen.get(f.code, 0) + 1
        anchor = f"{f.code}-{seen[f.code]}"
        check = checks.get(f.code)
        plot = (plotting.finding_plot(f, measurements.get(f.subject, {}), salt=anchor,
                                      cache=cache) if plots else None)
        findings.append({
            "anchor": anchor,
            "code": f.code,
            "name": f.name,
            "category": f.category,
            "severity": f.severity.value,
            "subject": f.subject,
            "message": f.message,
            "hint": f.hint,
            "location": str(f.location) if f.location and (f.location.file or f.location.qualname)
            else "",
            "evidence": evidence_rows(f.evidence),
            "plot": _plot_view(plot),
            "why": markdown(check.section("Why is this bad?")) if check else "",
            "instead": markdown(check.section("Use instead")) if check else "",
            "summary": check.summary() if check else "",
            "suppress": _suppress(report, f),
        })

    subjects = []
    for r in report.results:
        info = r.info
        gallery = (plotting.probe_plots(r.measurements, salt=_slug(info.id), cache=cache)
                   if plots else [])
        subjects.append({
            "id": info.id,
            "anchor": "subject-" + _slug(info.id),
            "kind": info.kind,
            "sizes": (f"{info.input_size} → {info.hidden_size}"
                      if info.input_size is not None or info.hidden_size is not None else "–"),
            "input_size": info.input_size,
            "hidden_size": info.hidden_size,
            "layout": info.layout or "–",
            "convention": info.convention or "not identified",
            "gradient_source": info.gradient_source or "none",
            "location": str(info.location) if info.location else "",
            "notes": info.notes,
            "n_findings": sum(1 for f in report.findings if f.subject == info.id),
            "worst": _worst(report, info.id),
            "checks_run": len(info.checks_run),
            "checks_skipped": len(info.checks_skipped),
            "gallery": [_plot_view(p) for p in gallery],
            "probes": sorted(r.measurements),
        })

    run = [{"code": c, "name": checks[c].name if c in checks else "",
            "summary": checks[c].summary() if c in checks else ""} for c in report.checks_run()]
    skipped = [{"code": c, "name": checks[c].name if c in checks else "", "reason": reason}
               for c, reason in report.checks_skipped().items()]
    reproduce = report.reproduce or f"grudiag.check(<object>, seed={report.seed})"
    title = f"grudiag: {word}"
    if report.findings:
        title += " – " + ", ".join(f"{n} {k}{'s' if n != 1 else ''}"
                                   for k, n in counts.items() if n)
    return {
        "title": title,
        "verdict": {"class": klass, "word": word, "sentence": sentence,
                    "exit_code": int(exit_code), "fail_on": report.fail_on.value},
        "counts": counts,
        "n_subjects": len(report.results),
        "targets": report.targets,
        "problems": [{"target": p.target, "message": p.message,
                      "location": str(p.location) if p.location else ""}
                     for p in report.problems],
        "subjects": subjects,
        "findings": findings,
        "checks_run": run,
        "checks_skipped": skipped,
        "seed": report.seed,
        "reproduce": reproduce,
        "duration": f"{report.duration_s:.1f} s",
        "versions": versions(),
        "generated_at": now.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
        "grudiag_version": __version__,
        "css": Markup(_css()),
        "json_blob": Markup(embed_json(data)),
    }


def versions() -> list[tuple[str, str]]:
    out = [("grudiag", __version__)]
    for dist in ("numpy", "torch", "matplotlib"):
        try:
            out.append((dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            out.append((dist, "not installed"))
    out.append(("python", sys.version.split()[0]))
    out.append(("platform", f"{platform.system()}-{platform.machine()}"))
    return out


def embed_json(data: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: no ``</script>``, no ``<!--``."""
    text = json.dumps(data, indent=None, separators=(",", ":"), allow_nan=False,
                      ensure_ascii=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# --- evidence: a compact table, never walls of arrays ---------------------------------------

def evidence_rows(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, value in (evidence or {}).items():
        if key == "plot":
            continue
        if key == "traceback" or (isinstance(value, str) and "\n" in value and len(value) > 80):
            if value:
                rows.append({"key": key, "value": _cut(str(value), 4000), "pre": True})
            continue
        rows.append({"key": key, "value": describe(value), "pre": False})
    return rows


def describe(value: Any, depth: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return _num(value)
    if isinstance(value, str):
        return _cut(value, MAX_TEXT)
    if isinstance(value, (list, tuple)):
        flat, shape = _flatten(value)
        if flat is not None and shape is not None:
            if len(flat) <= MAX_INLINE and len(shape) == 1:
                return "[" + ", ".join(_num(v) for v in flat) + "]"
            finite = [v for v in flat if isinstance(v, (int, float)) and math.isfinite(v)]
            text = "array " + "×".join(str(n) for n in shape)
            if finite:
                text += f", min {_num(min(finite))}, max {_num(max(finite))}"
            if len(finite) < len(flat):
                text += f", {len(flat) - len(finite)} non-finite"
            return text
        if len(value) <= MAX_INLINE and depth < 2:
            return _cut("[" + ", ".join(describe(v, depth + 1) for v in value) + "]", MAX_TEXT)
        return f"{len(value)} items (see the JSON)"
    if isinstance(value, dict):
        if depth < 2 and len(value) <= 6:
            return _cut(", ".join(f"{k} = {describe(v, depth + 1)}" for k, v in value.items()),
                        MAX_TEXT)
        return f"{len(value)} entries (see the JSON)"
    return _cut(str(value), MAX_TEXT)


def _flatten(value: Any) -> tuple[list | None, list[int] | None]:
    """Numbers of a regular nested list and its shape, or (None, None)."""
    if not isinstance(value, (list, tuple)):
        if isinstance(value, bool):
            return None, None
        if isinstance(value, (int, float)):
            return [value], []
        if isinstance(value, str) and value in ("nan", "inf", "-inf"):
            return [float(value)], []
        return None, None
    if not value:
        return [], [0]
    parts = [_flatten(v) for v in value]
    shapes = {tuple(s) for _, s in parts if s is not None}
    if any(f is None for f, _ in parts) or len(shapes) != 1:
        return None, None
    return [x for f, _ in parts for x in f], [len(value), *shapes.pop()]


def _num(x: Any) -> str:
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        if x == 0:
            return "0"
        return f"{x:.4g}"
    return str(x)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- check docs: a tiny, escaping Markdown subset --------------------------------------------

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```\s*$", re.M | re.S)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"\*\*([^*\n]+)\*\*")


def markdown(text: str) -> Markup:
    """Paragraphs, bullet lists, fenced code and `inline code`; everything else is escaped."""
    if not text:
        return Markup("")
    out: list[str] = []
    pos = 0
    for m in _FENCE.finditer(text):
        out.append(_paragraphs(text[pos:m.start()]))
        out.append(f"<pre><code>{escape(m.group(1).rstrip())}</code></pre>")
        pos = m.end()
    out.append(_paragraphs(text[pos:]))
    return Markup("".join(out))


def _paragraphs(text: str) -> str:
    html = []
    for block in re.split(r"\n\s*\n", text.strip()):
        if not block.strip():
            continue
        lines = block.strip().splitlines()
        if all(re.match(r"^\s*[-*] ", ln) or ln.startswith("  ") for ln in lines) and \
                re.match(r"^\s*[-*] ", lines[0]):
            items: list[str] = []
            for ln in lines:
                if re.match(r"^\s*[-*] ", ln):
                    items.append(re.sub(r"^\s*[-*] ", "", ln))
                else:
                    items[-1] += " " + ln.strip()
            html.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
        elif all(ln.startswith("    ") for ln in lines):
            html.append(f"<pre><code>{escape(chr(10).join(ln[4:] for ln in lines))}</code></pre>")
        else:
            html.append(f"<p>{_inline(' '.join(ln.strip() for ln in lines))}</p>")
    return "".join(html)


def _inline(text: str) -> str:
    escaped = str(escape(text))  # backticks and asterisks survive escaping unchanged
    escaped = _INLINE_CODE.sub(r"<code>\1</code>", escaped)
    return _BOLD.sub(r"<strong>\1</strong>", escaped)


# --- helpers ------------------------------------------------------------------------------

_VIEWBOX = re.compile(r'viewBox="[-\d.]+ [-\d.]+ ([\d.]+) ([\d.]+)"')


def _plot_view(plot: Any) -> dict[str, Any] | None:
    if plot is None:
        return None
    if plot.is_svg:
        m = _VIEWBOX.search(plot.content[:2000])
        wide = bool(m) and float(m.group(1)) > 540  # points: figures wider than 7.5 in
        return {"name": plot.name, "caption": plot.caption, "svg": Markup(plot.content),
                "src": None, "wide": wide}
    if plot.content.startswith("data:image/"):
        return {"name": plot.name, "caption": plot.caption, "svg": None, "src": plot.content,
                "wide": True}
    return None


def _check_registry() -> dict[str, Any]:
    try:
        from ..checks import CHECKS
    except Exception:  # noqa: BLE001 - docs are a bonus; the report must render without them
        return {}
    return dict(CHECKS)


def _worst(report: Report, subject: str) -> str:
    ranks = [f.severity for f in report.findings if f.subject == subject]
    return max(ranks, key=lambda s: s.rank).value if ranks else "ok"


def _suppress(report: Report, f: Finding) -> str:
    if report.reproduce:
        return f"{report.reproduce} --ignore {f.code}"
    return f'grudiag.check(<object>, seed={report.seed}, ignore="{f.code}")'


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:80] or "subject"


@lru_cache(maxsize=1)
def _css() -> str:
    return (resources.files("grudiag.reporters") / "static" / "report.css").read_text("utf-8")


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    source = (resources.files("grudiag.reporters") / "templates" / "report.html.j2").read_text(
        "utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env.from_string(source)
