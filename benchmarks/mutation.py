"""Mutation benchmark: how many deliberately broken GRU cells does grudiag catch?

    .venv/bin/python benchmarks/mutation.py            # every operator, torch and NumPy
    .venv/bin/python benchmarks/mutation.py --quick    # one base variant per backend
    .venv/bin/python benchmarks/mutation.py --ops bwd-sign-dz,init-zero --backends torch

Mutants are built from one template cell (benchmarks/mutants/template.py) whose pieces each
operator replaces (activations, reset placement, update blend, dropped terms, detach, init,
sequence loop, hand-written backward). Every mutant is checked in-process with
``grudiag.check(obj, seed=0)`` and every check selected. A mutant is KILLED when the report
holds at least one finding of severity warning or error (info does not count). Equivalent
mutants (correct GRUs under another parameterisation) are run, reported with the reason and
excluded from the kill rate; a warning on one of them counts as a false positive, as does any
warning/error on the correct cells (all 8 variants x torch/NumPy cell, sequence,
hand-written backward and flat-parameter cell; nn.GRUCell; ReferenceGRUCell; several correct
initialisations).

The ``flat-*`` operators store every parameter in one flat vector, which grudiag's
``conventions`` probe cannot map onto a GRU: only the black-box fallback (GD220) can catch their
equation bugs, so they survive where GD220 is not registered (the header line says which).

Prints a table and writes benchmarks/results/mutation.json (``--out`` to change).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import grudiag  # noqa: E402
from grudiag.checks import CHECKS  # noqa: E402
from mutants import BASES, OPERATORS, correct_subjects, mutants  # noqa: E402

TARGET_KILL = 0.95


def findings_of(obj, seed: int = 0) -> tuple[list[dict], list[str]]:
    # no warnings filter here: grudiag records floating-point warnings itself (GD505)
    report = grudiag.check(obj, seed=seed)
    out = [{"code": f.code, "name": f.name, "severity": f.severity.value}
           for res in report.results for f in res.findings]
    return out, [str(p) for p in report.problems]


def is_killed(found: list[dict]) -> bool:
    return any(f["severity"] in ("warning", "error") for f in found)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one base variant per backend")
    ap.add_argument("--ops", default="", help="comma-separated operator names (default all)")
    ap.add_argument("--backends", default="torch,numpy")
    ap.add_argument("--no-correct", action="store_true", help="skip the false-positive set")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "mutation.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    started = time.monotonic()
    backends = tuple(b for b in args.backends.split(",") if b)
    wanted = {o for o in args.ops.split(",") if o}
    unknown = wanted - {o.name for o in OPERATORS}
    if unknown:
        ap.error(f"unknown operators: {sorted(unknown)}")
    if args.quick:
        for b in BASES:
            del BASES[b][1:]

    rows, equivalents = [], []
    for op in OPERATORS:
        if wanted and op.name not in wanted:
            continue
        for backend, base, obj in mutants(op):
            if backend not in backends:
                continue
            t = time.monotonic()
            found, problems = findings_of(obj)
            rec = {"operator": op.name, "bug": op.bug, "kind": op.kind, "backend": backend,
                   "base": base, "killed": is_killed(found) and not problems,
                   "codes": sorted({f["code"] for f in found if f["severity"] != "info"}),
                   "problems": problems, "seconds": round(time.monotonic() - t, 2)}
            (equivalents if op.equivalent else rows).append(
                dict(rec, reason=op.equivalent) if op.equivalent else rec)

    correct = []
    if not args.no_correct:
        subjects = list(correct_subjects())
        from grudiag.reference.torch_gru import ReferenceGRUCell
        from grudiag.reference.variants import ALL_VARIANTS
        torch.manual_seed(0)
        subjects += [("torch", f"ReferenceGRUCell {v.name}", ReferenceGRUCell(5, 7, v))
                     for v in ALL_VARIANTS]
        subjects.append(("torch", "nn.GRUCell", torch.nn.GRUCell(5, 7)))
        for backend, label, obj in subjects:
            if backend not in backends:
                continue
            found, problems = findings_of(obj)
            correct.append({"subject": label, "backend": backend,
                            "false_positive": is_killed(found) or bool(problems),
                            "codes": sorted({f["code"] for f in found if f["severity"] != "info"}),
                            "problems": problems})

    # --- aggregate ------------------------------------------------------------------------
    table = {}
    for r in rows:
        key = (r["operator"], r["backend"])
        t = table.setdefault(key, {"operator": r["operator"], "backend": r["backend"],
                                   "mutants": 0, "killed": 0, "by": {}})
        t["mutants"] += 1
        t["killed"] += r["killed"]
        for c in r["codes"]:
            t["by"][c] = t["by"].get(c, 0) + 1
    total = len(rows)
    killed = sum(r["killed"] for r in rows)
    survivors = [r for r in rows if not r["killed"]]
    fp_correct = [c for c in correct if c["false_positive"]]
    fp_equiv = [e for e in equivalents if e["killed"]]
    rate = killed / total if total else float("nan")
    meta = {"date": datetime.date.today().isoformat(),
            "cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__,
            "grudiag": getattr(grudiag, "__version__", "?"), "seed": 0,
            "quick": args.quick, "sizes": {"input": 5, "hidden": 7},
            "checks_registered": len(CHECKS), "gd220_registered": "GD220" in CHECKS}

    # --- print ----------------------------------------------------------------------------
    print(f"grudiag mutation benchmark  {meta['date']}  machine: {meta['cpu']} ({meta['cores']} "
          f"cores), python {meta['python']}, torch {meta['torch']}, numpy {meta['numpy']}")
    print(f"killed = at least one warning/error finding; grudiag.check(obj, seed=0), all "
          f"{len(CHECKS)} registered checks (GD220 black-box fallback "
          f"{'registered' if 'GD220' in CHECKS else 'NOT registered'})\n")
    hdr = f"{'operator':26} {'backend':7} {'mutants':>7} {'killed':>6} {'surv':>4} {'rate':>6}  killed by"
    print(hdr)
    print("-" * len(hdr))
    for t in table.values():
        by = ", ".join(f"{c}x{n}" if n > 1 else c for c, n in sorted(t["by"].items()))
        print(f"{t['operator']:26} {t['backend']:7} {t['mutants']:7d} {t['killed']:6d} "
              f"{t['mutants'] - t['killed']:4d} {t['killed'] / t['mutants']:6.0%}  {by}")
    print("-" * len(hdr))
    per_backend = {}
    for b in backends:
        br = [r for r in rows if r["backend"] == b]
        if br:
            per_backend[b] = {"mutants": len(br), "killed": sum(r["killed"] for r in br)}
            print(f"{'total ' + b:34} {len(br):7d} {per_backend[b]['killed']:6d} "
                  f"{len(br) - per_backend[b]['killed']:4d} {per_backend[b]['killed'] / len(br):6.0%}")
    print(f"{'OVERALL (non-equivalent)':34} {total:7d} {killed:6d} {total - killed:4d} {rate:6.1%}"
          f"   target >= {TARGET_KILL:.0%}: {'met' if rate >= TARGET_KILL else 'MISSED'}")
    if survivors:
        print("\nsurvivors:")
        for r in survivors:
            why = f" (grudiag could not diagnose: {r['problems']})" if r["problems"] else ""
            print(f"  {r['operator']:26} {r['backend']:6} {r['base']:14} {r['bug']}{why}")
    print("\nequivalent mutants (excluded from the kill rate; a warning here is a false positive):")
    for e in equivalents:
        flag = "FLAGGED " + ",".join(e["codes"]) if e["killed"] else "clean"
        print(f"  {e['operator']:26} {e['backend']:6} {e['base']:14} {flag}")
    for name in dict.fromkeys(e["operator"] for e in equivalents):
        reason = next(e["reason"] for e in equivalents if e["operator"] == name)
        print(f"    {name}: {reason}")
    print(f"\ncorrect cells: {len(correct)} checked, {len(fp_correct)} false positives"
          + (f"; equivalent mutants flagged: {len(fp_equiv)}" if equivalents else ""))
    for c in fp_correct:
        print(f"  FALSE POSITIVE {c['backend']:6} {c['subject']}: {c['codes']} {c['problems']}")
    elapsed = time.monotonic() - started
    print(f"\ntotal time {elapsed:.0f} s")

    data = {"meta": meta, "target_kill_rate": TARGET_KILL, "kill_rate": rate,
            "mutants": total, "killed": killed, "per_backend": per_backend,
            "table": list(table.values()), "mutant_results": rows,
            "survivors": [{k: r[k] for k in ("operator", "backend", "base", "bug", "problems")}
                          for r in survivors],
            "equivalent": equivalents, "correct": correct,
            "false_positives": {"correct": len(fp_correct), "equivalent": len(fp_equiv)},
            "total_s": round(elapsed, 1)}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(data, fh, indent=1, default=str)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
