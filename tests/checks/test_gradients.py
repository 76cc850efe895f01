"""GD401-GD404: wrong gradients, cut graphs, exploding and vanishing gradient flow."""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from grudiag.model import Severity
from grudiag.options import Options
from grudiag.probes.base import ProbeContext
from grudiag.probes import finite_differences as fd
from grudiag.reference import numpy_gru
from grudiag.reference.torch_gru import ReferenceGRUCell
from grudiag.reference.variants import CHO, PYTORCH, Variant
from grudiag.runner import diagnose_candidate
from grudiag.subjects.base import SubjectRaised
from grudiag.subjects.discovery import discover_object, discover_path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GD4 = Options(select=("GD4",))


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # the probes make hundreds of tiny forward calls: thread start-up dominates on a busy machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def results_for_path(path, options=GD4):
    _, candidates = discover_path(str(path), options)
    assert candidates, f"nothing discovered in {path}"
    return [diagnose_candidate(c, options) for c in candidates]


def results_for_object(obj, options=GD4):
    candidates = discover_object(obj, options)
    assert candidates
    return [diagnose_candidate(c, options) for c in candidates]


def only_finding(results, code):
    found = [f for r in results for f in r.findings]
    assert [f.code for f in found] == [code], [(f.code, f.message) for f in found]
    return found[0]


def gd4_findings(results):
    return [(f.code, f.message) for r in results for f in r.findings if f.code.startswith("GD4")]


# --------------------------------------------------------------------------- GD401 wrong-gradient

def test_numpy_backward_missing_factor_is_wrong_gradient():
    results = results_for_path(EXAMPLES / "wrong_gradient_numpy.py")
    f = only_finding(results, "GD401")
    assert (f.category, f.severity) == ("wrong-gradient", Severity.ERROR)
    ev = f.evidence
    assert ev["source"] == "user-backward"
    assert ev["relative_error"] > 0.1 and ev["rtol"] == 1e-5
    # the dz path is wrong at one step already; dWh/dUh (candidate) and the reset gate are right
    assert {"dWz", "dUz", "dbz"} <= set(ev["one_step_failing"])
    assert not {"dWh", "dUh", "dWr"} & set(ev["one_step_failing"])
    assert "worst_index" in ev["blocks"][0]
    assert "one step" in f.message and "tolerance 1e-05" in f.message


def test_function_pair_sign_error_is_wrong_gradient():
    f = only_finding(results_for_path(EXAMPLES / "wrong_gradient_numpy_function_pair.py"), "GD401")
    assert f.category == "wrong-gradient"
    assert "dW_n" in f.evidence["one_step_failing"]
    assert f.evidence["relative_error"] > 0.1


def test_custom_autograd_function_with_wrong_backward():
    f = only_finding(results_for_path(EXAMPLES / "wrong_gradient_torch.py"), "GD401")
    assert (f.category, f.severity) == ("wrong-gradient", Severity.ERROR)
    assert f.evidence["custom_functions"] == ["GRUStep"]
    assert "GRUStep" in f.message
    assert "dweight_ih" in f.evidence["one_step_failing"]


def test_custom_autograd_function_with_correct_backward_passes(tmp_path):
    src = (EXAMPLES / "wrong_gradient_torch.py").read_text()
    fixed = src.replace("da_z = dz                                   # BUG: missing * z * (1 - z)",
                        "da_z = dz * z * (1 - z)")
    assert fixed != src
    path = tmp_path / "fixed_custom_function.py"
    path.write_text(fixed)
    results = results_for_path(path)
    assert gd4_findings(results) == []
    assert "GD401" in results[0].info.checks_run


# --------------------------------------------------------------------------- GD402 truncated-bptt

@pytest.mark.parametrize("name", ["truncated_bptt_torch.py",
                                  "truncated_bptt_torch_numpy_roundtrip.py",
                                  "truncated_bptt_numpy.py"])
def test_cut_graph_is_truncated_bptt(name):
    f = only_finding(results_for_path(EXAMPLES / name), "GD402")
    assert (f.category, f.severity) == ("truncated-bptt", Severity.ERROR)
    ev = f.evidence
    T = ev["T"]
    assert ev["stop_step"] == T - 2 and ev["steps_back"] == 1
    assert ev["autograd"][T - 2] == pytest.approx(0.0, abs=1e-12)
    assert abs(ev["numeric"][T - 2]) > 1e-3
    # the last input is still reached correctly
    assert ev["autograd"][T - 1] == pytest.approx(ev["numeric"][T - 1], rel=1e-5)
    assert "stops after 1 step" in f.message


def test_fixed_numpy_bptt_and_detach_free_cell_pass(tmp_path):
    src = (EXAMPLES / "truncated_bptt_numpy.py").read_text()
    fixed = src.replace("dh = dhs[t]                               # BUG", "dh = dhs[t] + dh_next  #")
    assert fixed != src
    (tmp_path / "bptt_fixed.py").write_text(fixed)
    src = (EXAMPLES / "truncated_bptt_torch.py").read_text()
    fixed_t = src.replace("h = h.detach()", "h = h")
    (tmp_path / "detach_fixed.py").write_text(fixed_t)
    for name in ("bptt_fixed.py", "detach_fixed.py"):
        results = results_for_path(tmp_path / name)
        assert gd4_findings(results) == []
        assert {"GD401", "GD402"} <= set(results[0].info.checks_run)


def test_single_numpy_cell_skips_truncation_with_reason():
    results = results_for_path(EXAMPLES / "correct_numpy_backward_row.py")
    assert "chained over time" in results[0].info.checks_skipped["GD402"]


# ------------------------------------------------------------------ GD403 / GD404 gradient flow

@pytest.mark.parametrize("name", ["exploding_gradients_torch.py", "exploding_gradients_numpy.py"])
def test_accumulating_state_explodes(name):
    f = only_finding(results_for_path(EXAMPLES / name), "GD403")
    assert (f.category, f.severity) == ("exploding-gradients", Severity.WARNING)
    ev = f.evidence
    assert ev["rate"] > 1.03
    assert ev["fraction_sigma_above_1"] >= 0.9
    assert ev["sigma_max_median"] > 1.05
    assert len(ev["grad_norms"]) == ev["T"] + 1 == 31
    assert ev["grad_norms"][-1] == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["vanishing_gradients_torch.py", "vanishing_gradients_numpy.py"])
def test_damped_or_saturated_state_vanishes(name):
    f = only_finding(results_for_path(EXAMPLES / name), "GD404")
    assert (f.category, f.severity) == ("vanishing-gradients", Severity.WARNING)
    ev = f.evidence
    assert ev["horizon_1e3"] < 5 and ev["rate"] < 0.1
    assert ev["sigma_max_median"] < 0.1


def test_thresholds_are_overridable():
    opts = GD4.with_(thresholds={"GD404.min_horizon_steps": 2})
    results = results_for_path(EXAMPLES / "vanishing_gradients_torch.py", opts)
    assert gd4_findings(results) == []


# ------------------------------------------------------------------ correct cells: no findings

def _ref_cell(variant, scale=None, seed=0):
    torch.manual_seed(seed)
    cell = ReferenceGRUCell(5, 7, variant)
    if scale is not None:
        with torch.no_grad():
            for p in cell.parameters():
                p.uniform_(-scale, scale)
    return cell


@pytest.mark.parametrize("variant,scale", [
    (PYTORCH, None), (CHO, None), (Variant("reset-after", "chung"), None),
    (Variant("reset-before", "chung"), 0.1), (PYTORCH, 1.0), (CHO, 0.6),
])
def test_correct_torch_cells_have_no_gradient_findings(variant, scale):
    results = results_for_object(_ref_cell(variant, scale))
    assert gd4_findings(results) == []
    info = results[0].info
    assert {"GD401", "GD402", "GD403", "GD404"} <= set(info.checks_run)
    rate = results[0].measurements["jacobian_spectrum"]["rate"]
    assert 0.4 < rate < 0.95


def test_builtin_gru_modules_have_no_gradient_findings():
    torch.manual_seed(1)
    for module in (nn.GRUCell(5, 7), nn.GRU(5, 7, batch_first=True)):
        assert gd4_findings(results_for_object(module)) == []


@pytest.mark.parametrize("name", ["correct_numpy_backward_row.py", "correct_andrew_ng_numpy.py",
                                  "correct_keras_style_numpy.py", "correct_numpy_column.py",
                                  "correct_cho_reset_before_torch.py"])
def test_correct_examples_have_no_gradient_findings(name):
    assert gd4_findings(results_for_path(EXAMPLES / name)) == []


def test_correct_numpy_backward_agrees_to_float64_precision():
    results = results_for_path(EXAMPLES / "correct_numpy_backward_row.py")
    m = results[0].measurements["gradient_check"]
    worst = max(b["rel_error"] for s in ("one_step", "unroll") for b in m[s]["blocks"])
    assert worst < 1e-6


# --------------------------------------------------------------------------- skips

class Float32Cell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.cell = nn.GRUCell(input_size, hidden_size)

    def forward(self, x, h):
        return self.cell.float()(x.float(), h.float()).to(x.dtype)


def test_float32_only_subject_skips_gradient_check():
    torch.manual_seed(0)
    results = results_for_object(Float32Cell(5, 7))
    skipped = results[0].info.checks_skipped
    assert "float32" in skipped["GD401"]
    assert gd4_findings(results) == []


# --------------------------------------------------------------------------- the FD utility

def test_finite_differences_match_reference_backward():
    rng = np.random.default_rng(0)
    params = numpy_gru.init_params(5, 7, rng)
    xs, h0 = rng.normal(size=(3, 2, 5)), rng.uniform(-0.5, 0.5, (2, 7))
    dhs = rng.normal(size=(3, 2, 7))
    _, caches = numpy_gru.forward(params, xs, h0)
    grads = numpy_gru.backward(params, caches, dhs)

    class Sub:
        hidden_size = 7

        def run(self, xs, h0):
            return numpy_gru.forward(params, xs, h0)[0]

        def step(self, x, h):
            return self.run(x[None], h)[0]

    u = fd.unit_direction(rng, xs.shape)
    numeric = fd.directional(Sub(), xs, h0, dhs, dxs=u)
    assert fd.relative_error(np.sum(grads["xs"] * u), numeric) < 1e-8
    eye = np.broadcast_to(np.eye(7), (2, 7, 7))
    J = fd.step_tangents(Sub(), xs[0], h0, eye)  # Q = I: the whole Jacobian, [b, i, j]
    for i in range(7):  # row i of J is the gradient of h_new[:, i] with respect to h
        _, caches1 = numpy_gru.forward(params, xs[:1], h0)
        e = np.zeros((1, 2, 7))
        e[0, :, i] = 1.0
        np.testing.assert_allclose(J[:, i, :], numpy_gru.backward(params, caches1, e)["h0"],
                                   rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(fd.step_tangents(Sub(), xs[0], h0, eye, stacked=False), J,
                               rtol=1e-9, atol=1e-12)
    assert fd.step_tangents_checked(Sub(), xs[0], h0, eye)[1]  # stacking is faithful
    assert not fd.computes_in_float32(numpy_gru.forward(params, xs, h0)[0])
    assert fd.computes_in_float32(numpy_gru.forward(params, xs, h0)[0].astype(np.float32))
    assert math.isclose(fd.relative_error(0.0, 0.0), 0.0)


class _SampleMixingCell:
    """Each sample's new state leaks the batch mean: stacked copies would change the result."""

    hidden_size = 7

    def __init__(self):
        self.params = numpy_gru.init_params(5, 7, np.random.default_rng(3))

    def run(self, xs, h0):
        hs = numpy_gru.forward(self.params, xs, h0)[0]
        return hs + 0.3 * hs.mean(axis=1, keepdims=True)

    def step(self, x, h):
        return self.run(x[None], h)[0]


def test_stacked_copies_are_refused_for_a_cell_that_mixes_samples():
    rng = np.random.default_rng(0)
    x, h = rng.normal(size=(3, 5)), rng.uniform(-0.5, 0.5, (3, 7))
    Q = np.linalg.qr(rng.normal(size=(3, 7, 4)))[0]
    cell = _SampleMixingCell()
    JQ, stacked = fd.step_tangents_checked(cell, x, h, Q)
    assert not stacked
    np.testing.assert_array_equal(JQ, fd.step_tangents(cell, x, h, Q, stacked=False))


class _CountingCell(_SampleMixingCell):
    """A correct cell (no mixing) that counts its calls and may refuse batches over 3."""

    def __init__(self, max_batch=None):
        super().__init__()
        self.calls, self.max_batch = 0, max_batch

    def run(self, xs, h0):
        self.calls += 1
        if self.max_batch is not None and xs.shape[1] > self.max_batch:
            raise SubjectRaised(ValueError("batch size is fixed at 3"))
        return numpy_gru.forward(self.params, xs, h0)[0]


def _perturbed_runs(n=5):
    rng = np.random.default_rng(1)
    xs, h0 = rng.normal(size=(4, 3, 5)), rng.uniform(-0.5, 0.5, (3, 7))
    return [(xs + rng.normal(size=xs.shape), h0 + 0.1 * rng.normal(size=h0.shape))
            for _ in range(n)]


def test_side_by_side_runs_independent_samples_in_one_call():
    cell, runs = _CountingCell(), _perturbed_runs()
    parts = fd.side_by_side(cell.run, runs)
    assert cell.calls == 2  # the stacked call and the last run alone, to compare
    for (xs, h0), hs in zip(runs, parts):
        np.testing.assert_allclose(hs, numpy_gru.forward(cell.params, xs, h0)[0],
                                   rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", [_SampleMixingCell(), _CountingCell(max_batch=3)],
                         ids=["mixes-samples", "fixed-batch"])
def test_side_by_side_falls_back_to_separate_calls(cell):
    runs = _perturbed_runs()
    parts = fd.side_by_side(cell.run, runs)
    for (xs, h0), hs in zip(runs, parts):
        np.testing.assert_array_equal(hs, cell.run(xs, h0))


def test_directionals_equal_one_directional_at_a_time():
    cell, rng = _CountingCell(), np.random.default_rng(2)
    xs, h0 = rng.normal(size=(3, 3, 5)), rng.uniform(-0.5, 0.5, (3, 7))
    dhs = rng.normal(size=(3, 3, 7))
    directions = [(fd.unit_direction(rng, xs.shape), None),
                  (None, fd.unit_direction(rng, h0.shape))]
    together = fd.directionals(cell, xs, h0, dhs, directions)
    assert cell.calls == 2
    alone = [fd.directional(cell, xs, h0, dhs, dxs=u, dh0=v) for u, v in directions]
    np.testing.assert_allclose(together, alone, rtol=1e-8)


def _exact_gradient_rate(cell: nn.Module, T: int = 30) -> float:
    """(‖∂L/∂h_0‖ / ‖∂L/∂h_T‖)^(1/T) through whole Jacobians by autograd on the probe's own
    trajectory, geometric mean over its 3 samples and 50 random loss directions each: the
    quantity the probe estimates from 8 tracked directions."""
    shape = SimpleNamespace(input_size=cell.input_size, hidden_size=cell.hidden_size)
    xs, h0 = ProbeContext(GD4).inputs(shape, "jacobian_spectrum", time=T)
    xs, h = torch.from_numpy(xs), torch.from_numpy(h0)
    jacobians = []
    with torch.no_grad():
        for t in range(T):
            J = torch.autograd.functional.jacobian(lambda hh: cell(xs[t], hh), h)  # (B, H, B, H)
            jacobians.append(torch.stack([J[b, :, b, :] for b in range(len(h))]))
            h = cell(xs[t], h)
    g = torch.randn(len(h), 50, cell.hidden_size, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(1))
    g = g / g.norm(dim=2, keepdim=True)
    for J in reversed(jacobians):
        g = torch.einsum("bij,bki->bkj", J, g)
    return float(torch.exp(torch.log(g.norm(dim=2)).mean() / T))


@pytest.mark.parametrize("hidden,scale", [(32, None), (64, None), (64, 0.6), (128, 1.0)])
def test_tracked_directions_measure_the_rate_of_whole_jacobians(hidden, scale):
    torch.manual_seed(0)
    cell = ReferenceGRUCell(5, hidden, PYTORCH).double()
    if scale is not None:
        with torch.no_grad():
            for p in cell.parameters():
                p.uniform_(-scale, scale)
    m = results_for_object(cell)[0].measurements["jacobian_spectrum"]
    assert m["tracked_directions"] == 8 and m["sigma_min"] is None
    exact = _exact_gradient_rate(cell)
    assert m["rate"] == pytest.approx(exact, rel=0.03)


def test_small_cells_track_every_direction_and_measure_exact_singular_values():
    torch.manual_seed(0)
    cell = ReferenceGRUCell(5, 6, PYTORCH).double()
    m = results_for_object(cell)[0].measurements["jacobian_spectrum"]
    assert m["tracked_directions"] == 6
    assert m["method"] == "one-step Jacobians by finite differences"
    assert len(m["sigma_min"]) == len(m["sigma_max"]) == 30
    assert all(lo <= hi for lo, hi in zip(m["sigma_min"], m["sigma_max"]))


class DetachedOutputLoop(nn.Module):
    """A tutorial-style loop that detaches every new state, the output included."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)
        self.hidden_size = hidden_size

    def forward(self, x):  # (B, T, I)
        h = torch.zeros(x.size(0), self.hidden_size, dtype=x.dtype)
        outs = []
        for t in range(x.size(1)):
            h = self.cell(x[:, t], h).detach()
            outs.append(h)
        return torch.stack(outs, 1)


def test_plain_autograd_disagreement_points_at_a_cut_graph_not_a_derivation():
    torch.manual_seed(0)
    (result,) = results_for_object(DetachedOutputLoop(5, 7))
    codes = {f.code for f in result.findings}
    assert {"GD401", "GD402"} <= codes
    (f,) = [f for f in result.findings if f.code == "GD401"]
    assert "the graph is cut between cell.weight_" in f.hint and ".detach()" in f.hint
    assert "Re-derive" not in f.hint
