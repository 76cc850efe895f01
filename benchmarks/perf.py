"""grudiag performance benchmark: one command, one table, one JSON file.

    .venv/bin/python benchmarks/perf.py            # sections 1, 2, 5, 6 (a few minutes)
    .venv/bin/python benchmarks/perf.py --scale    # + section 3 (2-layer, hidden 1024, T 64..512)
    .venv/bin/python benchmarks/perf.py --quick    # tiny sizes, seconds (used by the smoke test)

Sections (see benchmarks/README.md):
  1. cost of a full `grudiag.check` as a multiple of one forward+backward pass (T=6, batch 3)
     of the same cell, hidden 32..512 (each check is paired with a forward+backward timing
     taken just before it, so both see the same load on the machine; the median of 3 pairs
     counts, and the process's first, one-off check is not counted), with a per-probe time
     breakdown at the largest size;
  2. grudiag's gradient check vs torch.autograd.gradcheck (slow and fast mode): time and
     detection on a correct custom-autograd GRU cell and wrong-backward mutants;
  3. (--scale) 2-layer hidden-1024 subjects, probe time T = 64..512: time and peak RSS per
     measurement, each in its own subprocess;
  4. run-mode overhead: measured in benchmarks/run_overhead.py, not here;
  5. torchtest2 side by side (when installed);
  6. GPU: the section-1 table on CUDA subjects, nn.GRU (cuDNN) identified with TF32 off;
  7. targets: a missed target prints a "REGRESSION" line; the run itself never fails on one.

Timings are wall-clock on a shared machine: compare the RATIOS of one run, not absolute seconds
across runs. Torch runs single-threaded here (grudiag's runner sets 1 thread for its probes, so
the forward+backward reference uses 1 thread too).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import grudiag  # noqa: E402
from grudiag.probes.base import PROBES  # noqa: E402

INPUT = 16
T_PROBE = 6
BATCH = 3
TARGET_RATIO = 50.0
#: (forward+backward, check) pairs timed per subject (the median ratio counts), after one
#: warm-up check per process
CHECK_REPEATS = 3
#: seconds of forward+backward repetitions timed just before each check
PAIRED_FWD_BWD_S = 0.15
TARGET_GRADCHECK_SPEEDUP = 100.0
TARGET_SCALE_S = 60.0
TARGET_SCALE_BYTES = 4 * 2**30
#: slope tolerance (log-log) for "check cost grows no faster than forward+backward"
SLOPE_TOLERANCE = 0.25

REGRESSIONS: list[str] = []


def regression(msg: str) -> None:
    REGRESSIONS.append(msg)
    print(f"REGRESSION: {msg}", flush=True)


# --------------------------------------------------------------------------- subjects

class TorchGRUCell(nn.Module):
    """Hand-written torch GRU cell, PyTorch convention (r|z|n, reset after the matmul)."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x, h):
        gi = x @ self.weight_ih.T + self.bias_ih
        gh = h @ self.weight_hh.T + self.bias_hh
        i_r, i_z, i_n = gi.chunk(3, dim=1)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h


def _sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))


class NumpyGRUCell:
    """Hand-written NumPy GRU cell (row layout, split weights) with a correct backward(dh)."""

    def __init__(self, input_size, hidden_size, seed=0):
        rng = np.random.default_rng(seed)
        s = 1 / np.sqrt(hidden_size)
        for g in "zrh":
            setattr(self, f"W{g}", rng.uniform(-s, s, (input_size, hidden_size)))
            setattr(self, f"U{g}", rng.uniform(-s, s, (hidden_size, hidden_size)))
            setattr(self, f"b{g}", rng.uniform(-s, s, hidden_size))
        self.cache = None

    def forward(self, x, h_prev):
        z = _sigmoid(x @ self.Wz + h_prev @ self.Uz + self.bz)
        r = _sigmoid(x @ self.Wr + h_prev @ self.Ur + self.br)
        h_tilde = np.tanh(x @ self.Wh + (r * h_prev) @ self.Uh + self.bh)
        h = (1 - z) * h_prev + z * h_tilde
        self.cache = (x, h_prev, z, r, h_tilde)
        return h

    def backward(self, dh):
        x, h_prev, z, r, h_tilde = self.cache
        dz = dh * (h_tilde - h_prev)
        dh_tilde = dh * z
        dh_prev = dh * (1 - z)
        da_h = dh_tilde * (1 - h_tilde ** 2)
        d_rh = da_h @ self.Uh.T
        dr = d_rh * h_prev
        dh_prev += d_rh * r
        da_z = dz * z * (1 - z)
        da_r = dr * r * (1 - r)
        dh_prev += da_z @ self.Uz.T + da_r @ self.Ur.T
        dx = da_z @ self.Wz.T + da_r @ self.Wr.T + da_h @ self.Wh.T
        return {
            "Wz": x.T @ da_z, "Uz": h_prev.T @ da_z, "bz": da_z.sum(0),
            "Wr": x.T @ da_r, "Ur": h_prev.T @ da_r, "br": da_r.sum(0),
            "Wh": x.T @ da_h, "Uh": (r * h_prev).T @ da_h, "bh": da_h.sum(0),
            "x": dx, "h_prev": dh_prev,
        }


SUBJECTS: dict[str, Callable[[int], Any]] = {
    "nn.GRUCell": lambda H: nn.GRUCell(INPUT, H),
    "torch hand-written": lambda H: TorchGRUCell(INPUT, H),
    "numpy hand-written": lambda H: NumpyGRUCell(INPUT, H),
}


# --------------------------------------------------------------------------- timing helpers

def best_time(fn: Callable[[], Any], min_total: float = 0.3, max_reps: int = 200) -> float:
    """Median of repeated calls (at least 3, until ~min_total seconds)."""
    fn()  # warm-up
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_total and len(times) < max_reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def fwd_bwd_fn(subject: Any, H: int, device: str = "cpu") -> Callable[[], Any]:
    """One forward + backward pass over T_PROBE steps, batch BATCH, float64 (as the probes run)."""
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(T_PROBE, BATCH, INPUT))
    h0 = rng.uniform(-0.5, 0.5, size=(BATCH, H))
    v = rng.normal(size=(BATCH, H))
    if isinstance(subject, nn.Module):
        mod = subject.to(device=device, dtype=torch.float64)
        xs_t = torch.tensor(xs, device=device)
        h0_t = torch.tensor(h0, device=device)
        v_t = torch.tensor(v, device=device)

        def run():
            h = h0_t.requires_grad_(True)
            hh = h
            for t in range(T_PROBE):
                hh = mod(xs_t[t], hh)
            (hh * v_t).sum().backward()
            if device != "cpu":
                torch.cuda.synchronize()
        return run

    def run_np():
        caches = []
        h = h0
        for t in range(T_PROBE):
            h = subject.forward(xs[t], h)
            caches.append(subject.cache)
        dh = v
        for t in reversed(range(T_PROBE)):
            subject.cache = caches[t]
            dh = subject.backward(dh)["h_prev"]
        return dh
    return run_np


class ProbeTimer:
    """Wraps PROBES[name].measure with timers; grudiag is not edited."""

    def __init__(self):
        self.times: dict[str, float] = {}
        self._orig: dict[str, Any] = {}

    def __enter__(self):
        for name, probe in PROBES.items():
            orig = probe.measure
            self._orig[name] = orig

            def timed(subject, ctx, _orig=orig, _name=name):
                t = time.perf_counter()
                try:
                    return _orig(subject, ctx)
                finally:
                    self.times[_name] = self.times.get(_name, 0.0) + time.perf_counter() - t
            probe.measure = timed
        return self

    def __exit__(self, *exc):
        for name, orig in self._orig.items():
            PROBES[name].measure = orig  # restores the bound method
            try:
                del PROBES[name].measure  # drop the instance attribute, back to the class method
            except AttributeError:
                pass


def slope(xs: list[float], ys: list[float]) -> float | None:
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if y and y > 0]
    if len(pts) < 2:
        return None
    a = np.array(pts)
    return float(np.polyfit(a[:, 0], a[:, 1], 1)[0])


def findings_of(report) -> list[str]:
    return sorted({f.code for r in report.results for f in r.findings})


# --------------------------------------------------------------------------- section 1

def section_check_cost(sizes: list[int], device: str = "cpu") -> dict[str, Any]:
    title = "1. Full check cost vs one forward+backward" + (f" [device={device}]" if device != "cpu" else "")
    print(f"\n== {title} (T={T_PROBE}, batch {BATCH}, input {INPUT}, float64) ==", flush=True)
    print(f"{'subject':<20}{'H':>5}{'check s':>10}{'fwd+bwd ms':>12}{'ratio':>10}  findings")
    rows, breakdown = [], {}
    for sname, make in SUBJECTS.items():
        if device != "cpu" and sname.startswith("numpy"):
            continue
        for H in sizes:
            torch.manual_seed(0)
            subj = make(H)
            if isinstance(subj, nn.Module):
                subj = subj.to(device)
            fwd_bwd = fwd_bwd_fn(make(H) if not isinstance(subj, nn.Module) else
                                 _clone_module(subj), H, device)
            opts = {"seed": 0} if device == "cpu" else {"seed": 0, "device": device}
            if not rows:  # the process's first check pays one-off imports and set-up
                grudiag.check(subj, **opts)
            pairs = []
            for _ in range(CHECK_REPEATS):
                # the reference right before the check: the machine's speed drifts by tens of
                # percent over minutes, and a ratio of timings taken apart inherits that drift
                fb = best_time(fwd_bwd, min_total=PAIRED_FWD_BWD_S)
                with ProbeTimer() as pt:
                    t = time.perf_counter()
                    report = grudiag.check(subj, **opts)
                    ct = time.perf_counter() - t
                pairs.append((ct / fb, ct, fb, dict(pt.times)))
            ratio, ct, fb, probe_s = sorted(pairs, key=lambda p: p[0])[len(pairs) // 2]
            codes = findings_of(report)
            row = {"subject": sname, "hidden": H, "check_s": ct, "fwd_bwd_s": fb, "ratio": ratio,
                   "findings": codes, "subjects_checked": len(report.results),
                   "check_repeats": CHECK_REPEATS, "probe_s": probe_s}
            rows.append(row)
            print(f"{sname:<20}{H:>5}{ct:>10.3f}{fb * 1e3:>12.3f}{ratio:>10.0f}  {','.join(codes) or '-'}",
                  flush=True)
            if ratio > TARGET_RATIO:
                regression(f"check/fwd+bwd = {ratio:.0f}x > {TARGET_RATIO:.0f}x for {sname} H={H}"
                           f"{' on ' + device if device != 'cpu' else ''}")
        breakdown[sname] = rows[-1]
    slopes = {}
    for sname in SUBJECTS:
        rs = [r for r in rows if r["subject"] == sname]
        if len(rs) < 2:
            continue
        hs = [r["hidden"] for r in rs]
        s_check = slope(hs, [r["check_s"] for r in rs])
        s_fb = slope(hs, [r["fwd_bwd_s"] for r in rs])
        # the top of the range shows the asymptotic growth; small sizes are overhead-bound
        top = rs[-3:] if len(rs) >= 3 else rs
        s_check_top = slope([r["hidden"] for r in top], [r["check_s"] for r in top])
        s_fb_top = slope([r["hidden"] for r in top], [r["fwd_bwd_s"] for r in top])
        slopes[sname] = {"check": s_check, "fwd_bwd": s_fb,
                         "check_top3": s_check_top, "fwd_bwd_top3": s_fb_top}
        if s_check_top is not None and s_fb_top is not None and s_check_top > s_fb_top + SLOPE_TOLERANCE:
            regression(f"check cost grows as H^{s_check_top:.2f} vs fwd+bwd H^{s_fb_top:.2f} "
                       f"for {sname} (top {len(top)} sizes)")
    print("\nlog-log growth in H (all sizes / top 3 sizes):")
    for sname, s in slopes.items():
        print(f"  {sname:<20} check H^{_f(s['check'])} / H^{_f(s['check_top3'])}   "
              f"fwd+bwd H^{_f(s['fwd_bwd'])} / H^{_f(s['fwd_bwd_top3'])}")
    Hmax = max(sizes)
    print(f"\nper-probe time at H={Hmax} (s, share of the check):")
    names = sorted({p for b in breakdown.values() for p in b["probe_s"]},
                   key=lambda p: -max(b["probe_s"].get(p, 0) for b in breakdown.values()))
    print(f"  {'probe':<22}" + "".join(f"{s:>22}" for s in breakdown))
    for p in names:
        cells = []
        for b in breakdown.values():
            v = b["probe_s"].get(p)
            cells.append(f"{v:>10.3f} ({100 * v / b['check_s']:>4.1f}%)" if v is not None else f"{'-':>17}")
        print(f"  {p:<22}" + "".join(f"{c:>22}" for c in cells))
    dominant = {s: max(b["probe_s"], key=b["probe_s"].get) for s, b in breakdown.items()}
    return {"title": title, "rows": rows, "slopes": slopes, "largest_hidden": Hmax,
            "dominant_probe_at_largest": dominant}


def _clone_module(mod: nn.Module) -> nn.Module:
    import copy
    return copy.deepcopy(mod)


def _f(x):
    return "n/a" if x is None else f"{x:.2f}"


# --------------------------------------------------------------------------- section 2

MUTANTS = {
    "correct": "the true backward",
    "z-no-sigmoid-deriv": "da_z = dz (forgets z*(1-z))",
    "dh-missing-z-path": "dh_prev lacks the direct dh*z term",
    "n-reset-missing": "recurrent n-gate grad lacks the *r factor",
    "bias_hh-grad-zero": "grad of bias_hh returned as zeros",
    "w_ih-grad-1pct": "grad of weight_ih 1% too large",
}


class GRUStepFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h, w_ih, w_hh, b_ih, b_hh, mutant="correct"):
        gi = x @ w_ih.t() + b_ih
        gh = h @ w_hh.t() + b_hh
        i_r, i_z, i_n = gi.chunk(3, 1)
        h_r, h_z, h_n = gh.chunk(3, 1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        ctx.save_for_backward(x, h, w_ih, w_hh, r, z, n, h_n)
        ctx.mutant = mutant
        return (1 - z) * n + z * h

    @staticmethod
    def backward(ctx, dh):
        x, h, w_ih, w_hh, r, z, n, h_n = ctx.saved_tensors
        m = ctx.mutant
        dn = dh * (1 - z)
        dz = dh * (h - n)
        da_n = dn * (1 - n ** 2)
        da_z = dz if m == "z-no-sigmoid-deriv" else dz * z * (1 - z)
        da_r = da_n * h_n * r * (1 - r)
        dgi = torch.cat([da_r, da_z, da_n], 1)
        dgh = torch.cat([da_r, da_z, da_n if m == "n-reset-missing" else da_n * r], 1)
        dx = dgi @ w_ih
        dh_prev = dgh @ w_hh if m == "dh-missing-z-path" else dh * z + dgh @ w_hh
        dw_ih = dgi.t() @ x
        if m == "w_ih-grad-1pct":
            dw_ih = dw_ih * 1.01
        db_hh = torch.zeros_like(dgh[0]) if m == "bias_hh-grad-zero" else dgh.sum(0)
        return dx, dh_prev, dw_ih, dgh.t() @ h, dgi.sum(0), db_hh, None


def make_custom_cell(mutant: str) -> type:
    class CustomGRUCell(nn.Module):
        MUTANT = mutant

        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.input_size, self.hidden_size = input_size, hidden_size
            self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
            self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
            self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
            k = 1 / math.sqrt(hidden_size)
            for p in self.parameters():
                nn.init.uniform_(p, -k, k)

        def forward(self, x, h):
            return GRUStepFn.apply(x, h, self.weight_ih, self.weight_hh, self.bias_ih,
                                   self.bias_hh, self.MUTANT)
    CustomGRUCell.__qualname__ = f"CustomGRUCell[{mutant}]"
    return CustomGRUCell


def _gradcheck(cell: nn.Module, H: int, fast: bool) -> tuple[float, bool]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, INPUT, dtype=torch.float64, generator=g, requires_grad=True)
    h = (torch.rand(BATCH, H, dtype=torch.float64, generator=g) - 0.5).requires_grad_(True)
    params = tuple(p.detach().clone().requires_grad_(True) for p in
                   (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh))
    t = time.perf_counter()
    ok = torch.autograd.gradcheck(lambda *a: GRUStepFn.apply(*a, cell.MUTANT), (x, h, *params),
                                  raise_exception=False, fast_mode=fast)
    return time.perf_counter() - t, not ok


def section_gradcheck(sizes: list[int], slow_budget_s: float) -> dict[str, Any]:
    print("\n== 2. Gradient check: grudiag (select=wrong-gradient) vs torch.autograd.gradcheck "
          "(one step, batch 3, float64) ==", flush=True)
    print("mutants: " + "; ".join(f"{k}: {v}" for k, v in MUTANTS.items() if k != "correct"))
    print(f"{'H':>5} {'mutant':<20}{'grudiag s':>10}{'slow s':>10}{'fast s':>10}"
          f"{'slow/grudiag':>14}  caught: grudiag/slow/fast")
    rows = []
    slow_fit: list[tuple[int, float]] = []
    for H in sizes:
        predicted = None
        if len(slow_fit) >= 2:
            k = slope([a for a, _ in slow_fit], [b for _, b in slow_fit])
            predicted = slow_fit[-1][1] * (H / slow_fit[-1][0]) ** k
        run_slow = predicted is None or predicted <= slow_budget_s
        slow_times = []
        for mutant in MUTANTS:
            torch.manual_seed(0)
            cell = make_custom_cell(mutant)(INPUT, H).double()
            t = time.perf_counter()
            rep = grudiag.check(cell, select=("wrong-gradient",), seed=0)
            gt = time.perf_counter() - t
            g_caught = any(f.category == "wrong-gradient" for r in rep.results for f in r.findings)
            skipped = {c: why for r in rep.results for c, why in r.info.checks_skipped.items()}
            if run_slow:
                st, s_caught = _gradcheck(cell, H, fast=False)
                slow_times.append(st)
            else:
                st, s_caught = None, None
            if run_slow or mutant == "correct":
                ft, f_caught = _gradcheck(cell, H, fast=True)
            else:
                # fast mode re-runs slow mode to build its error message when it fails, so on
                # a mutant it costs about as much as slow mode: not run where slow is too slow
                ft, f_caught = None, None
            row = {"hidden": H, "mutant": mutant, "grudiag_s": gt, "slow_s": st, "fast_s": ft,
                   "slow_extrapolated_s": None if run_slow else predicted,
                   "caught": {"grudiag": g_caught, "slow": s_caught, "fast": f_caught},
                   "grudiag_checks_skipped": skipped}
            rows.append(row)
            slow_txt = f"{st:>10.2f}" if st is not None else f"{'~' + format(predicted, '.0f'):>10}"
            sp = (st if st is not None else predicted) / gt
            row["speedup_vs_slow"] = sp
            row["speedup_vs_fast"] = None if ft is None else ft / gt
            yn = lambda b: "-" if b is None else ("Y" if b else "n")  # noqa: E731
            print(f"{H:>5} {mutant:<20}{gt:>10.3f}{slow_txt}{'not run' if ft is None else format(ft, '.3f'):>10}{sp:>13.1f}x  "
                  f"{yn(g_caught)}/{yn(s_caught)}/{yn(f_caught)}"
                  + ("" if run_slow else "  (slow mode extrapolated, not run)")
                  + (f"  skipped: {skipped}" if skipped else ""), flush=True)
            expected = mutant != "correct"
            if g_caught != expected:
                regression(f"grudiag gradient check {'missed' if expected else 'false alarm on'} "
                           f"{mutant} at H={H}")
            if s_caught is not None and g_caught != s_caught:
                regression(f"grudiag detection differs from gradcheck slow mode on {mutant} at H={H}")
        if slow_times:
            slow_fit.append((H, float(np.median(slow_times))))
    Hmax = max(sizes)
    top = [r for r in rows if r["hidden"] == Hmax]
    med = float(np.median([r["speedup_vs_slow"] for r in top]))
    extrap = any(r["slow_s"] is None for r in top)
    print(f"median speed-up vs slow gradcheck at H={Hmax}: {med:.1f}x"
          + (" (slow mode EXTRAPOLATED from smaller H by a power-law fit)" if extrap else ""))
    if med < TARGET_GRADCHECK_SPEEDUP:
        regression(f"grudiag gradient check only {med:.1f}x faster than slow gradcheck at "
                   f"H={Hmax} (target >= {TARGET_GRADCHECK_SPEEDUP:.0f}x)"
                   + (" [slow mode extrapolated]" if extrap else ""))
    return {"rows": rows, "mutants": MUTANTS, "largest_hidden": Hmax,
            "median_speedup_vs_slow_at_largest": med, "slow_extrapolated_at_largest": extrap,
            "slow_fit": slow_fit}


# --------------------------------------------------------------------------- section 3

class StackedCustomGRU(nn.Module):
    """A 2-layer sequence model built from hand-written cells: forward(xs (T,B,I), h0 (L,B,H))."""

    def __init__(self, input_size, hidden_size, num_layers=2):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.cells = nn.ModuleList(TorchGRUCell(input_size if i == 0 else hidden_size, hidden_size)
                                   for i in range(num_layers))

    def forward(self, xs, h0):
        out = xs
        finals = []
        for i, cell in enumerate(self.cells):
            h, seq = h0[i], []
            for t in range(out.shape[0]):
                h = cell(out[t], h)
                seq.append(h)
            out = torch.stack(seq)
            finals.append(h)
        return out, torch.stack(finals)


def _peak_rss_bytes() -> int:
    """This process's peak resident memory. VmHWM, not getrusage's ru_maxrss: Linux keeps
    ru_maxrss across fork+exec, so a child would report its parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def scale_one(kind: str, T: int, hidden: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = nn.GRU(INPUT, hidden, num_layers=2) if kind == "nn.GRU" else StackedCustomGRU(INPUT, hidden)
    with ProbeTimer() as pt:
        t = time.perf_counter()
        rep = grudiag.check(model, time=T, seed=0)
        dt = time.perf_counter() - t
    maxrss = _peak_rss_bytes()
    return {"kind": kind, "T": T, "hidden": hidden, "check_s": dt, "peak_rss_bytes": maxrss,
            "subjects": [r.info.id for r in rep.results], "findings": findings_of(rep),
            "probe_s": pt.times}


def section_scale(Ts: list[int], hidden: int, timeout_s: float) -> dict[str, Any]:
    print(f"\n== 3. Scale: 2 layers, hidden {hidden}, option time=T (each in its own subprocess, "
          f"timeout {timeout_s:.0f}s) ==", flush=True)
    print("note: the forward probe runs all T steps; every other probe runs at most 16 (the "
          "Jacobian probe 30, the gradient checks 1 and 3), so the check's cost is nearly flat "
          "in T")
    print(f"{'model':<16}{'T':>5}{'check s':>10}{'peak RSS MiB':>14}  subjects / findings")
    rows = []
    for kind in ("nn.GRU", "custom 2-layer"):
        for T in Ts:
            cmd = [sys.executable, os.path.abspath(__file__), "--_scale-one", kind, str(T), str(hidden)]
            t = time.perf_counter()
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
                out = p.stdout.strip().splitlines()
                row = json.loads(out[-1]) if p.returncode == 0 and out else {
                    "kind": kind, "T": T, "error": (p.stderr or "")[-500:]}
            except subprocess.TimeoutExpired:
                row = {"kind": kind, "T": T, "timeout_s": timeout_s,
                       "check_s": None, "peak_rss_bytes": None}
            row["wall_s_incl_import"] = time.perf_counter() - t
            rows.append(row)
            if row.get("check_s") is not None:
                print(f"{kind:<16}{T:>5}{row['check_s']:>10.2f}{row['peak_rss_bytes'] / 2**20:>14.0f}  "
                      f"{row['subjects']} / {','.join(row['findings']) or '-'}", flush=True)
            else:
                print(f"{kind:<16}{T:>5}  {'TIMEOUT after %.0fs' % timeout_s if 'timeout_s' in row else 'ERROR ' + row.get('error', '')[-200:]}",
                      flush=True)
            if row.get("check_s") is None or row["check_s"] > TARGET_SCALE_S:
                if T == max(Ts) or row.get("check_s") is None:
                    regression(f"scale: {kind} T={T}: check "
                               f"{'did not finish within %.0fs' % timeout_s if row.get('check_s') is None else '%.0fs' % row['check_s']}"
                               f" (target <= {TARGET_SCALE_S:.0f}s at T=512)")
            if row.get("peak_rss_bytes") and row["peak_rss_bytes"] > TARGET_SCALE_BYTES:
                regression(f"scale: {kind} T={T}: peak RSS {row['peak_rss_bytes'] / 2**30:.1f} GiB > 4 GiB")
    slopes = {}
    for kind in ("nn.GRU", "custom 2-layer"):
        rs = [r for r in rows if r["kind"] == kind and r.get("check_s")]
        slopes[kind] = slope([r["T"] for r in rs], [r["check_s"] for r in rs])
        print(f"  {kind}: time ~ T^{_f(slopes[kind])}")
        if slopes[kind] is not None and slopes[kind] > 1.0 + SLOPE_TOLERANCE:
            regression(f"scale: {kind} check time grows as T^{slopes[kind]:.2f} (target linear)")
    return {"rows": rows, "slopes_in_T": slopes, "hidden": hidden}


# --------------------------------------------------------------------------- section 5

def section_peer(sizes: list[int], overfit_steps: int) -> dict[str, Any]:
    print("\n== 5. Peer: torchtest2.check_model on the same torch cells ==", flush=True)
    try:
        import torchtest2
    except ImportError as exc:
        print(f"torchtest2 unavailable: {exc} (install: .venv/bin/pip install --no-deps torchtest2)")
        return {"available": False, "reason": str(exc)}
    version = getattr(torchtest2, "__version__", None)
    try:
        from importlib.metadata import version as _v
        version = version or _v("torchtest2")
    except Exception:  # noqa: BLE001
        pass
    print(f"torchtest2 {version}; check_model(model, (x, h), loss_fn=sum of squares, "
          f"overfit_steps={overfit_steps}); float64; gradcheck=True on the custom-Function cells")
    print(f"{'subject':<28}{'H':>5}{'torchtest2 s':>14}{'grudiag s':>11}  torchtest2 failures")
    rows = []
    cells = {"nn.GRUCell": lambda H: nn.GRUCell(INPUT, H),
             "torch hand-written": lambda H: TorchGRUCell(INPUT, H),
             "custom Fn correct": lambda H: make_custom_cell("correct")(INPUT, H),
             "custom Fn z-no-sigmoid-deriv": lambda H: make_custom_cell("z-no-sigmoid-deriv")(INPUT, H)}
    for name, make in cells.items():
        for H in sizes:
            torch.manual_seed(0)
            model = make(H).double()
            x = torch.randn(BATCH, INPUT, dtype=torch.float64)
            h = torch.rand(BATCH, H, dtype=torch.float64) - 0.5
            kw = {"gradcheck": True} if name.startswith("custom") else {}
            t = time.perf_counter()
            try:
                rep = torchtest2.check_model(model, (x, h), loss_fn=lambda out: out.pow(2).sum(),
                                             overfit_steps=overfit_steps, seed=0, **kw)
                tt = time.perf_counter() - t
                fails = [getattr(c, "name", str(c)) for c in rep.failures]
                err = None
            except Exception as exc:  # noqa: BLE001
                tt, fails, err = time.perf_counter() - t, None, f"{type(exc).__name__}: {exc}"
            t = time.perf_counter()
            grep = grudiag.check(make(H).double() if name.startswith("custom") else make(H), seed=0)
            gt = time.perf_counter() - t
            rows.append({"subject": name, "hidden": H, "torchtest2_s": tt, "grudiag_s": gt,
                         "torchtest2_failures": fails, "torchtest2_error": err,
                         "grudiag_findings": findings_of(grep)})
            print(f"{name:<28}{H:>5}{tt:>14.2f}{gt:>11.2f}  "
                  f"{err if err else (','.join(fails) or '-')}   grudiag: {','.join(findings_of(grep)) or '-'}",
                  flush=True)
    return {"available": True, "version": version, "rows": rows}


# --------------------------------------------------------------------------- section 6

def section_gpu(sizes: list[int]) -> dict[str, Any]:
    print("\n== 6. GPU ==", flush=True)
    if not torch.cuda.is_available():
        print("no GPU (torch.cuda.is_available() is False)")
        return {"available": False}
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    out = {"available": True, "device_name": torch.cuda.get_device_name(0)}
    print(f"{out['device_name']}; TF32 off")
    out["check_cost"] = section_check_cost(sizes, device="cuda")
    torch.manual_seed(0)
    gru = nn.GRU(INPUT, 64).cuda()
    t = time.perf_counter()
    rep = grudiag.check(gru, seed=0, device="cuda")
    out["nn.GRU_cudnn"] = {"check_s": time.perf_counter() - t, "findings": findings_of(rep),
                           "convention": [r.info.convention for r in rep.results]}
    print(f"nn.GRU (cuDNN) H=64: {out['nn.GRU_cudnn']}")
    if not any(out["nn.GRU_cudnn"]["convention"]):
        regression("nn.GRU on CUDA (cuDNN, TF32 off) was not identified against the reference")
    return out


# --------------------------------------------------------------------------- main

def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": affinity,
            "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run (seconds)")
    ap.add_argument("--scale", action="store_true", help="also run section 3 (slow)")
    ap.add_argument("--scale-T", default="64,128,256,512")
    ap.add_argument("--scale-timeout", type=float, default=300.0)
    ap.add_argument("--sizes", default=None, help="hidden sizes of section 1 (comma list)")
    ap.add_argument("--gradcheck-sizes", default=None)
    ap.add_argument("--slow-budget", type=float, default=60.0,
                    help="skip (and extrapolate) slow gradcheck when its predicted time exceeds this")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: 1,2,5,6")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "perf.json"))
    ap.add_argument("--_scale-one", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    if a._scale_one:
        kind, T, hidden = a._scale_one
        print(json.dumps(scale_one(kind, int(T), int(hidden)), default=str))
        return 0
    skip = set(s for s in a.skip.split(",") if s)
    sizes = [int(s) for s in a.sizes.split(",")] if a.sizes else ([8, 16] if a.quick else [32, 64, 128, 256, 512])
    gsizes = [int(s) for s in a.gradcheck_sizes.split(",")] if a.gradcheck_sizes else \
        ([8] if a.quick else [32, 64, 128, 256])
    meta = machine()
    meta.update({"quick": a.quick, "argv": sys.argv[1:]})
    print("grudiag perf benchmark")
    print(f"machine: {meta['cpu']}, {meta['cores']} cores ({meta['usable_cores']} usable), "
          f"{meta['platform']}")
    print(f"python {meta['python']}, torch {meta['torch']} (1 thread), numpy {meta['numpy']}; "
          f"date {meta['date']}")
    result: dict[str, Any] = {"meta": meta, "targets": {
        "check_over_fwd_bwd_max": TARGET_RATIO, "gradcheck_slow_speedup_min": TARGET_GRADCHECK_SPEEDUP,
        "scale_max_s": TARGET_SCALE_S, "scale_max_bytes": TARGET_SCALE_BYTES,
        "slope_tolerance": SLOPE_TOLERANCE}}
    started = time.perf_counter()
    result["check_cost"] = section_check_cost(sizes) if "1" not in skip else {"skipped": True}
    result["gradcheck"] = section_gradcheck(gsizes, a.slow_budget) if "2" not in skip else {"skipped": True}
    if a.scale:
        Ts = [int(t) for t in a.scale_T.split(",")]
        result["scale"] = section_scale(Ts if not a.quick else Ts[:1], 64 if a.quick else 1024,
                                        a.scale_timeout)
    else:
        result["scale"] = {"skipped": True, "reason": "run with --scale"}
        print("\n== 3. Scale: skipped (run with --scale) ==")
    print("\n== 4. Run-mode (subprocess isolation) overhead: see benchmarks/run_overhead.py ==")
    result["run_overhead"] = {"see": "benchmarks/run_overhead.py"}
    result["peer"] = section_peer([8] if a.quick else [64, 256], 5 if a.quick else 50) \
        if "5" not in skip else {"skipped": True}
    result["gpu"] = section_gpu(sizes) if "6" not in skip else {"skipped": True}
    result["regressions"] = list(REGRESSIONS)
    result["total_s"] = time.perf_counter() - started
    print(f"\n== 7. Targets: {len(REGRESSIONS)} REGRESSION line(s) ==")
    for r in REGRESSIONS:
        print(f"REGRESSION: {r}")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print(f"wrote {a.out} (total {result['total_s']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
