"""Reports built by hand for the reporter tests: they depend on no probe and no check."""
from __future__ import annotations

import numpy as np

from grudiag.model import Finding, Location, Report, Severity, SubjectInfo, SubjectResult, jsonable


def _states(T: int, B: int, H: int, seed: int = 0, scale: float = 0.6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    W = rng.normal(0, scale / np.sqrt(H), (H, H))
    U = rng.normal(0, 0.8, (H, 3))
    h = rng.uniform(-0.5, 0.5, (B, H))
    xs = rng.normal(size=(T, B, 3))
    out = []
    for t in range(T):
        h = np.tanh(h @ W.T + xs[t] @ U.T)
        out.append(h)
    return np.array(out)


def measurements(seed: int = 0, broken: bool = True) -> dict:
    """Probe summaries shaped like the real probes' (forward, jacobian_spectrum, …)."""
    rng = np.random.default_rng(seed)
    T, B, H = 6, 3, 7
    hs = _states(T, B, H, seed)
    norms = [1.35 ** (29 - t) for t in range(30)] if broken else [0.9 ** (29 - t) for t in range(30)]
    batch = np.diag(rng.uniform(0.2, 0.8, B))
    if broken:
        batch[0, 2] = 0.03
    time = np.tril(rng.uniform(0.01, 0.5, (T, T)))
    z = 1 / (1 + np.exp(-rng.normal(0, 4 if broken else 1, (T, 8, H))))
    n = np.tanh(rng.normal(0, 1, (T, 8, H)))
    blocks = [{"label": lbl, "group": "param", "parameter": lbl, "shape": [21, 5],
               "provided": True, "analytic": a, "numeric": nu,
               "abs_error": abs(a - nu), "rel_error": abs(a - nu) / abs(nu)}
              for lbl, a, nu in (("weight_ih", 0.52, 0.52 + 1e-9),
                                 ("weight_hh", -1.30 if broken else 0.41, 0.41),
                                 ("bias_ih", 0.11, 0.11 + 2e-10), ("xs", 0.83, 0.83))]
    return jsonable({
        "forward": {"xs": rng.normal(size=(T, B, 5)), "h0": rng.uniform(-0.5, 0.5, (B, H)),
                    "hs": hs, "non_finite_count": 0, "size": hs.size, "first_non_finite": None,
                    "max_abs_state": float(np.abs(hs).max()), "fp_warnings": []},
        "jacobian_spectrum": {"T": 30, "grad_norms": norms,
                              "sigma_max": list(rng.uniform(1.2, 1.5, 30)),
                              "sigma_min": list(rng.uniform(0.05, 0.2, 30)),
                              "mean_spectrum": sorted(rng.uniform(0.1, 1.4, H), reverse=True),
                              "rate": norms[0] ** (1 / 29), "jacobian_zero": False},
        "gradient_check": {"source": "autograd", "eps": 1e-6,
                           "one_step": {"T": 1, "batch": 3, "blocks": blocks},
                           "unroll": {"T": 4, "batch": 3, "blocks": blocks[:2]}},
        "gradient_flow": {"T": T, "autograd": [0.0, 0.0, 0.0, 0.2, -0.4, 0.9] if broken
                          else [0.05, 0.1, -0.15, 0.2, -0.4, 0.9],
                          "numeric": [0.05, 0.1, -0.15, 0.2, -0.4, 0.9]},
        "batch-dependence": {"matrix": batch, "scale": 0.9, "batch": B, "time": T},
        "time-dependence": {"matrix": time, "h0_dependence": list(np.linspace(0.5, 0.05, T)),
                            "scale": 0.9, "time": T, "batch": B},
        "gate_activations": {"gates": [
            {"name": "the sigmoid at cell.py:14", "kind": "sigmoid", "values": z.reshape(-1, H),
             "time_unit": z.mean(axis=1), "mean": float(z.mean()), "min": float(z.min()),
             "max": float(z.max())},
            {"name": "the tanh at cell.py:16", "kind": "tanh", "values": n.reshape(-1, H),
             "mean": float(n.mean()), "min": float(n.min()), "max": float(n.max())}],
            "time": T, "batch": 8},
    })


HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(1)>"


def build_report(*, hostile: bool = False, findings: bool = True) -> Report:
    """Two subjects, findings of every severity, a skipped check and a harness crash."""
    evil = HOSTILE if hostile else ""
    sid = f"cells.py::MyGRUCell{evil}"
    loc = Location("/abs/path/to/cells.py", 12, f"MyGRUCell{evil}")
    info = SubjectInfo(id=sid, kind="torch-cell", input_size=5, hidden_size=7, layout="row",
                       convention="reset-after", gradient_source="autograd", location=loc,
                       checks_run=["GD101", "GD401", "GD402", "GD501"],
                       checks_skipped={"GD403": f"the subject has no backward{evil}"},
                       notes=[f"built as MyGRUCell(5, 7){evil}"])
    result = SubjectResult(info=info, measurements=measurements(0, broken=True))
    if findings:
        result.findings = [
            Finding(sid, "GD401", "gradient-mismatch", "wrong-gradient", Severity.ERROR,
                    f"∂h/∂weight_hh differs from finite differences (rel. error 4.2){evil}",
                    f"Check the derivative of the update gate{evil}",
                    Location("/abs/path/to/cells.py", 40, "MyGRUCell.forward"),
                    {"probe": "gradient_check", "block": "weight_hh", "rel_error": 4.17,
                     "rtol": 1e-5, "worst_index": [2, 1], "bad_entries": 7, "entries": 105,
                     "note": evil or "directional, float64"}),
            Finding(sid, "GD402", "exploding-gradient-norm", "exploding-gradients",
                    Severity.WARNING, "‖∂L/∂h_t‖ grows ×1.35 per step back in time "
                    "(×6.0e3 over 29 steps)", "Initialise the recurrent weights orthogonally",
                    loc, {"rate": 1.35, "total_change": 6.0e3, "threshold": 1.05}),
            Finding(sid, "GD201", "convention-detected", "convention", Severity.INFO,
                    "The cell is a reset-after GRU with the (1-z)·n + z·h update (PyTorch form)",
                    "", loc, {"variant": "reset-after", "max_abs_diff": 3.1e-16}),
        ]
    info2 = SubjectInfo(id="cells.py::TinyNumpyRNN", kind="numpy-cell", input_size=5,
                        hidden_size=7, layout="column", convention=None,
                        gradient_source="backward", location=Location("cells.py", 80, "TinyNumpyRNN"),
                        checks_run=["GD101"], checks_skipped={})
    result2 = SubjectResult(info=info2, measurements={})
    if findings:
        result2.findings = [
            Finding(info2.id, "GD901", "subject-raised", "crash", Severity.ERROR,
                    f"forward raised ValueError: shapes (7,5) and (3,5) not aligned{evil}",
                    "Accept inputs of shape (batch, input_size)",
                    Location("cells.py", 91, "TinyNumpyRNN.forward"),
                    {"exception": f"ValueError{evil}",
                     "traceback": "Traceback (most recent call last):\n  File \"cells.py\", "
                                  f"line 91, in forward\nValueError: not aligned{evil}"}),
        ]
    return Report(results=[result, result2], seed=1234, targets=["cells.py"],
                  reproduce="grudiag check cells.py --seed 1234", duration_s=2.71)
