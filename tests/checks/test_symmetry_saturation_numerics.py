"""Initialisation symmetry (GD601–GD604), gate saturation (GD240–GD241) and numerics (GD502–GD505).

Each check is run on the gallery example it must catch (exact code, category, severity and key
evidence) and on correct cells in several conventions and sane initialisations that it must
leave alone.
"""
from __future__ import annotations

import functools
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from grudiag.model import Severity
from grudiag.options import Options
from grudiag.probes.activations import ActivationRecorder, activation_kind
from grudiag.probes.base import ProbeContext
from grudiag.probes.numerics import SCALES, LargeInputsProbe
from grudiag.probes.parameters import unit_swap_distances
from grudiag.reference import numpy_gru
from grudiag.reference.torch_gru import ReferenceGRUCell
from grudiag.reference.variants import CHO, PYTORCH
from grudiag.runner import diagnose_candidate
from grudiag.subjects.discovery import discover_object, discover_path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MINE = ("GD240", "GD241", "GD502", "GD503", "GD504", "GD505", "GD601", "GD602", "GD603", "GD604")
OPTIONS = Options(select=MINE)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.lru_cache(maxsize=None)
def _example(name: str):
    _, candidates = discover_path(str(EXAMPLES / name), OPTIONS)
    assert len(candidates) == 1, [c.id for c in candidates]
    return diagnose_candidate(candidates[0], OPTIONS)


def _object(obj, name="cell"):
    candidates = discover_object(obj, OPTIONS, name=name)
    assert candidates
    return [diagnose_candidate(c, OPTIONS) for c in candidates]


def _findings(result, code=None):
    return [f for f in result.findings if code is None or f.code == code]


def _only(result, code):
    found = _findings(result, code)
    assert len(found) == 1, [f"{f.code}: {f.message}" for f in result.findings]
    return found[0]


def _loud(result):
    """Warning- and error-level findings from this family's checks."""
    return [f"{f.code} {f.severity.value}: {f.message}" for f in result.findings
            if f.code in MINE and f.severity in (Severity.WARNING, Severity.ERROR)]


# --- zero-init-symmetry -------------------------------------------------------------------------
def test_zero_init_numpy_is_an_error_with_one_distinct_unit():
    r = _example("zero_init_symmetry_numpy.py")
    f = _only(r, "GD601")
    assert (f.category, f.severity) == ("zero-init-symmetry", Severity.ERROR)
    assert f.evidence["parameters"] == ["Wz", "Uz", "Wr", "Ur", "Wh", "Uh"]
    assert f.evidence["distinct_units"] == 1 and f.evidence["units_compared"] == 7
    assert "all 7 hidden units are identical copies: 1 distinct unit" in f.message
    assert not _findings(r, "GD603") and not _findings(r, "GD604")  # one finding per cause


def test_zero_init_torch_units_stay_identical_after_sgd():
    r = _example("zero_init_symmetry_torch.py")
    f = _only(r, "GD601")
    assert f.severity is Severity.ERROR
    assert len(f.evidence["parameters"]) == 6 and f.evidence["distinct_units"] == 1
    assert f.evidence["stays_after_sgd"] is True
    assert "stay identical after 2 SGD steps" in f.message
    assert "bias" not in " ".join(f.evidence["parameters"])  # zero biases are not judged


def test_constant_init_torch():
    r = _example("zero_init_symmetry_torch_constant.py")
    f = _only(r, "GD602")
    assert (f.category, f.severity) == ("zero-init-symmetry", Severity.ERROR)
    assert f.evidence["parameters"] == ["weight_ih", "weight_hh"]
    assert f.evidence["values"] == {"weight_ih": 0.5, "weight_hh": 0.5}
    assert f.evidence["distinct_units"] == 1 and f.evidence["stays_after_sgd"] is True
    assert not _findings(r, "GD601")


def _swap_symmetric(params: dict[str, np.ndarray], i: int, j: int) -> dict[str, np.ndarray]:
    """Make units i and j exact copies: average every parameter with its unit-swapped self."""
    out = {}
    for name, a in params.items():
        p = np.arange(a.shape[0])
        p[i], p[j] = j, i
        square = a.ndim == 2 and a.shape[0] == a.shape[1]  # recurrent: units on both axes
        out[name] = (a + (a[np.ix_(p, p)] if square else a[p])) / 2
    return out


def test_duplicate_units_built_by_symmetrising_two_units():
    params = numpy_gru.init_params(5, 7, np.random.default_rng(0))
    cell = ReferenceGRUCell(5, 7).double().load_canonical(_swap_symmetric(params, 2, 5))
    (r,) = _object(cell)
    f = _only(r, "GD603")
    assert (f.category, f.severity) == ("zero-init-symmetry", Severity.ERROR)
    assert f.evidence["copy_groups"] == [[2, 5]] and f.evidence["distinct_units"] == 6
    assert f.evidence["stays_after_sgd"] is True
    assert not _findings(r, "GD601") and not _findings(r, "GD602")


def test_tiled_rows_in_a_numpy_cell():
    class TiledGRU:
        def __init__(self, input_size, hidden_size):
            rng = np.random.default_rng(0)
            H = hidden_size
            # one random row per gate block, repeated for every unit
            rows = rng.normal(size=(3, 1, input_size)) * 0.3
            self.W = np.repeat(rows, H, axis=1).reshape(3 * H, -1)
            self.U = np.repeat(rng.normal(size=(3, 1, H)) * 0.3, H, axis=1).reshape(3 * H, H)
            self.U = self.U[:, :1].repeat(H, axis=1)  # the same value in every column too
            self.b = np.zeros(3 * H)
            self.H = H

        def forward(self, x, h):
            H = self.H
            g = x @ self.W.T + self.b
            u = h @ self.U.T
            r = 1 / (1 + np.exp(-(g[:, :H] + u[:, :H])))
            z = 1 / (1 + np.exp(-(g[:, H:2 * H] + u[:, H:2 * H])))
            n = np.tanh(g[:, 2 * H:] + r * u[:, 2 * H:])
            return (1 - z) * n + z * h

    (r,) = _object(TiledGRU)
    f = _only(r, "GD603")
    assert f.severity is Severity.ERROR and f.evidence["distinct_units"] == 1


def test_behaviour_only_copies_are_gd604():
    class OnTheFly(nn.Module):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.input_size, self.hidden_size = input_size, hidden_size
            self.scale = nn.Parameter(torch.tensor(0.3))

        def forward(self, x, h):
            W = torch.ones(self.hidden_size, self.input_size, dtype=x.dtype) * self.scale
            U = torch.ones(self.hidden_size, self.hidden_size, dtype=x.dtype) * self.scale
            z = torch.sigmoid(x @ W.T + h @ U.T)
            n = torch.tanh(x @ W.T - h @ U.T)
            return (1 - z) * n + z * h

    (r,) = _object(OnTheFly)
    f = _only(r, "GD604")
    assert (f.category, f.severity) == ("zero-init-symmetry", Severity.ERROR)
    assert f.evidence["distinct_units"] == 1 and f.evidence["trained"] is True
    assert "GD601" in r.info.checks_skipped  # only a scalar parameter: nothing to judge


def test_unit_swap_distance_reads_fused_and_concatenated_layouts():
    H, D = 4, 3
    rng = np.random.default_rng(1)
    fused = rng.normal(size=(3 * H, D))
    fused[[1, 1 + H, 1 + 2 * H]] = fused[[2, 2 + H, 2 + 2 * H]]
    d = unit_swap_distances(fused, H, D, H)
    assert d[1, 2] == 0 and d[0, 1] > 0
    concat = rng.normal(size=(H, H + D))  # [h, x] columns, Andrew Ng style
    concat[3] = concat[0]
    concat[:, [0, 3]] = concat[:, [0, 0]]
    assert unit_swap_distances(concat, H, D, H)[0, 3] == 0


# --- gate-saturation ----------------------------------------------------------------------------
def test_update_gate_bias_plus_ten_is_pinned_closed():
    r = _example("gate_saturation_torch.py")
    f = _only(r, "GD241")
    assert (f.category, f.severity) == ("gate-saturation", Severity.WARNING)
    assert f.evidence["units_closed_to_input"] == 7 and f.evidence["mean_kept_fraction"] > 0.9999
    assert f.location.line == 29 and f.location.file.endswith("gate_saturation_torch.py")
    assert "no input gets into the state" in f.message
    assert not _findings(r, "GD240")  # the reset gate and the candidate are fine


def test_huge_init_scale_torch_saturates_gates():
    r = _example("gate_saturation_torch_init_scale.py")
    lines = sorted(f.location.line for f in _findings(r, "GD240"))
    assert lines == [26, 27]  # the reset gate and the candidate; the update gate is GD241
    for f in _findings(r, "GD240"):
        assert f.severity is Severity.WARNING and f.evidence["units_saturated"] >= 4
        assert f.evidence["fraction_values_saturated"] > 0.7
    assert _only(r, "GD241").evidence["units_saturated"] == 7


def test_huge_init_scale_numpy_module_sigmoid_and_np_tanh_are_recorded():
    r = _example("gate_saturation_numpy.py")
    kinds = sorted(f.evidence["kind"] for f in _findings(r, "GD240"))
    assert kinds == ["sigmoid", "tanh"]
    assert _only(r, "GD241").location.line == 30
    mod = sys.modules.get("gate_saturation_numpy")
    if mod is not None:  # patches are undone
        assert mod.np is np and not hasattr(mod.sigmoid, "__grudiag_wrapped__")


def test_builtin_gru_cell_gates_are_computed_from_its_weights():
    torch.manual_seed(0)
    cell = nn.GRUCell(5, 7)
    with torch.no_grad():
        cell.bias_hh[7:14] = 10.0  # r|z|n: the update gate's block
    (r,) = _object(cell)
    f = _only(r, "GD241")
    assert "nn.GRUCell" in f.message and f.evidence["units_closed_to_input"] == 7


def test_update_gate_identified_in_either_blend_form():
    for cell in (ReferenceGRUCell(5, 7, PYTORCH).double(), ReferenceGRUCell(5, 7, CHO).double()):
        (r,) = _object(cell)
        assert "GD241" in r.info.checks_run, r.info.checks_skipped
    # h' = (1 - z) * h + z * n (the update multiplies the candidate)
    r = _example("correct_numpy_backward_row.py")
    assert "GD241" in r.info.checks_run
    assert r.measurements["gate_activations"]["update_gate"]["form"] == "(1-z)*h+z*n"


def test_nothing_recorded_is_a_skip_with_a_reason():
    class Silent(nn.Module):  # a "GRU" with hard-sigmoid written by hand: no sigmoid/tanh calls
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.lin = nn.Linear(input_size + hidden_size, 3 * hidden_size)
            self.hidden_size = hidden_size

        def forward(self, x, h):
            H = self.hidden_size
            g = self.lin(torch.cat([h, x], dim=1))
            z = (g[:, :H] * 0.2 + 0.5).clamp(0, 1)
            n = g[:, 2 * H:].clamp(-1, 1)
            return (1 - z) * n + z * h

    (r,) = _object(Silent)
    assert "no sigmoid or tanh call could be recorded" in r.info.checks_skipped["GD240"]


def test_activation_names():
    assert activation_kind("sigmoid") == activation_kind("_sigmoid") == "sigmoid"
    assert activation_kind("stable_sigmoid") == activation_kind("sigm") == "sigmoid"
    assert activation_kind("tanh") == "tanh"
    for name in ("dsigmoid", "sigmoid_derivative", "tanh_prime", "d_tanh", "sigmoid_backward",
                 "log_sigmoid"):
        assert activation_kind(name) is None, name


def test_recorder_restores_the_user_module():
    mod = types.ModuleType("fake_user")
    mod.np = np

    def sigmoid(a):
        return 1 / (1 + np.exp(-a))

    mod.sigmoid = sigmoid

    class S:  # the bits of a Subject the recorder reads
        backend, location, user_module = "numpy", None, mod

    with ActivationRecorder(S()) as rec:
        mod.sigmoid(np.zeros(3))
        mod.np.tanh(np.ones(2))
    assert [r.kind for r in rec.records] == ["sigmoid", "tanh"]
    assert mod.sigmoid is sigmoid and mod.np is np


# --- numerical-instability ----------------------------------------------------------------------
def test_exp_formula_sigmoid_gives_nan_at_large_inputs():
    r = _example("numerical_instability_numpy.py")
    f = _only(r, "GD502")
    assert (f.category, f.severity) == ("numerical-instability", Severity.ERROR)
    assert f.evidence["scale"] == 3000 and f.evidence["non_finite"] > 0
    assert f.evidence["non_finite_by_scale"][0] == 0
    assert f.location.line == 12 and "overflow encountered in exp" in f.message


def test_hand_written_torch_sigmoid_gives_nan_gradients_at_large_inputs():
    r = _example("numerical_instability_torch.py")
    f = _only(r, "GD504")
    assert (f.category, f.severity) == ("numerical-instability", Severity.ERROR)
    assert f.evidence["scale"] == 3000 and "weight_ih" in f.evidence["non_finite"]
    assert f.location.line == 16 and "torch.exp" in f.message
    assert not _findings(r, "GD503") and not _findings(r, "GD502")


def test_nan_gradient_on_ordinary_inputs():
    class WhereCell(nn.Module):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.cell = ReferenceGRUCell(input_size, hidden_size)

        def forward(self, x, h):
            out = self.cell(x, h)
            return torch.where(out > 5, torch.sqrt(out - 5), out)  # unused branch: NaN gradient

    (r,) = _object(WhereCell)
    f = _only(r, "GD503")
    assert (f.category, f.severity) == ("numerical-instability", Severity.ERROR)
    assert "cell.W_ir" in f.evidence["non_finite"]


def test_large_inputs_side_by_side_measure_what_one_run_per_scale_measures():
    (candidate,) = discover_object(ReferenceGRUCell(5, 7, variant=CHO), OPTIONS, name="cell")
    subject = candidate.build()
    probe, ctx = LargeInputsProbe(), ProbeContext(OPTIONS, {})
    calls = []
    run, vjp = subject.run, subject.vjp
    subject.run = lambda *a: calls.append("run") or run(*a)
    subject.vjp = lambda *a: calls.append("vjp") or vjp(*a)
    stacked = probe.measure(subject, ctx)["runs"]
    assert calls == ["run", "vjp"]  # all four scales in one forward and one backward
    xs, h0 = ctx.inputs(subject, "large-inputs")
    dhs = ctx.rng("large-inputs", "dhs").normal(size=(xs.shape[0], xs.shape[1], 7))
    for got, scale in zip(stacked, SCALES):
        alone = probe._one(subject, xs * scale, h0, dhs, scale)
        assert got.keys() == alone.keys() and got["gradients"] == alone["gradients"]
        for key in ("raised", "size", "non_finite", "first_non_finite", "events"):
            assert got[key] == alone[key], key
        assert math.isclose(got["max_abs_state"], alone["max_abs_state"], rel_tol=1e-12)
        assert math.isclose(got["max_abs_x"], alone["max_abs_x"], rel_tol=1e-15)


def test_naive_numpy_sigmoid_is_only_info():
    r = _example("correct_numpy_column.py")
    f = _only(r, "GD505")
    assert f.severity is Severity.INFO and f.evidence["scale"] == 3000
    assert _loud(r) == []


# --- correct cells: nothing at warning or error level -------------------------------------------
@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("correct_*.py")))
def test_correct_gallery_cells_are_quiet(name):
    _, candidates = discover_path(str(EXAMPLES / name), OPTIONS)
    for c in candidates:
        r = diagnose_candidate(c, OPTIONS)
        assert _loud(r) == [], (c.id, _loud(r))


def _init(kind: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    p = numpy_gru.init_params(5, 7, rng)
    for name, a in p.items():
        if kind == "xavier-zero-bias":
            if name.startswith("b_"):
                p[name] = np.zeros_like(a)
            elif name.startswith("W_h"):
                p[name] = np.linalg.qr(rng.normal(size=a.shape))[0]  # orthogonal recurrent
            else:
                k = math.sqrt(6 / sum(a.shape))
                p[name] = rng.uniform(-k, k, a.shape)
        elif kind == "chrono" and name == "b_iz":
            p[name] = np.log(rng.uniform(1, 20, a.shape))  # bias towards keeping, ≤ log 20
    return p


@pytest.mark.parametrize("variant", [PYTORCH, CHO], ids=["reset-after", "reset-before"])
@pytest.mark.parametrize("init", ["pytorch", "xavier-zero-bias", "chrono"])
def test_correct_reference_cells_are_quiet(variant, init):
    cell = ReferenceGRUCell(5, 7, variant).double()
    cell.load_canonical(_init(init, np.random.default_rng(3)))
    for r in _object(cell):
        assert _loud(r) == []
        assert "GD601" in r.info.checks_run and "GD603" in r.info.checks_run


def test_builtin_gru_is_quiet():
    torch.manual_seed(1)
    for r in _object(nn.GRU(5, 7)) + _object(nn.GRUCell(5, 7)):
        assert _loud(r) == []
        assert "GD241" in r.info.checks_run
