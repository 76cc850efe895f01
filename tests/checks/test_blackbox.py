"""GD220 state-not-a-convex-blend and GD221 state-not-carried-when-gate-saturates: the
black-box fallback for cells whose parameters grudiag cannot map onto a GRU (one flat parameter
vector here)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import grudiag
import grudiag.checks.blackbox  # noqa: F401 - registers GD220 (until grudiag.checks imports it)
import grudiag.probes.blackbox  # noqa: F401 - registers the probe
from grudiag.reference import numpy_gru, torch_gru
from grudiag.reference.torch_gru import ReferenceGRUCell
from grudiag.reference.variants import ALL_VARIANTS, PYTORCH

D, H = 5, 7
SHAPES = numpy_gru.param_shapes(D, H)


def _split(theta):
    out, k = {}, 0
    for name, shape in SHAPES.items():
        m = int(np.prod(shape))
        out[name] = theta[k:k + m].reshape(shape)
        k += m
    return out


def _candidate(kind):
    return {"tanh": None, "relu": torch.relu, "identity": lambda a: a}[kind]


class FlatTorchCell(nn.Module):
    """A GRU whose parameters live in one flat vector: conventions cannot map them."""

    def __init__(self, input_size, hidden_size, variant=PYTORCH, mutation=None):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.variant, self.mutation = variant, mutation
        n = sum(int(np.prod(s)) for s in SHAPES.values())
        g = torch.Generator().manual_seed(0)
        self.theta = nn.Parameter((torch.rand(n, generator=g) * 2 - 1) / hidden_size ** 0.5)

    def forward(self, x, h=None):
        if h is None:
            h = x.new_zeros(x.shape[:-1] + (self.hidden_size,))
        p = _split(self.theta)
        if self.mutation is None:
            return torch_gru.step(p, x, h, self.variant)
        b = (lambda n: p[n]) if self.variant.bias else (lambda n: 0.0)
        r = torch.sigmoid(x @ p["W_ir"].T + b("b_ir") + h @ p["W_hr"].T + b("b_hr"))
        z = torch.sigmoid(x @ p["W_iz"].T + b("b_iz") + h @ p["W_hz"].T + b("b_hz"))
        a = x @ p["W_in"].T + b("b_in") + r * (h @ p["W_hn"].T + b("b_hn"))
        if self.mutation == "relu":
            n = torch.relu(a)
        elif self.mutation == "no-activation":
            n = a
        else:
            n = torch.tanh(a)
        if self.mutation == "z-z":
            return z * n + z * h
        if self.mutation == "h-plus-n":
            return (1 - z) * (h + n)
        if self.mutation == "damped":
            return (1 - z) * n + z * (0.1 * h)
        if self.mutation == "tanh-state":
            return torch.tanh((1 - z) * n + z * h)
        return (1 - z) * n + z * h


class FlatNumpyCell:
    def __init__(self, input_size, hidden_size, variant=PYTORCH, mutation=None):
        self.input_size, self.hidden_size, self.variant = input_size, hidden_size, variant
        self.mutation = mutation
        n = sum(int(np.prod(s)) for s in SHAPES.values())
        self.theta = np.random.default_rng(0).uniform(-1, 1, n) / hidden_size ** 0.5

    def forward(self, x, h_prev):
        h = numpy_gru.step(_split(self.theta), x, h_prev, self.variant)[0]
        if self.mutation == "tanh-state":
            return np.tanh(h)
        if self.mutation == "scaled":
            return 0.9 * h
        return h


def _report(obj):
    return grudiag.check(obj, seed=0)


def _gd220(report):
    return [f for r in report.results for f in r.findings if f.code == "GD220"]


def _gd221(report):
    return [f for r in report.results for f in r.findings if f.code == "GD221"]


@pytest.mark.parametrize("variant", ALL_VARIANTS, ids=lambda v: v.name)
@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_correct_unmappable_cells_not_flagged(variant, backend):
    cell = FlatTorchCell(D, H, variant) if backend == "torch" else FlatNumpyCell(D, H, variant)
    report = _report(cell)
    (result,) = report.results
    # the fallback is only meaningful where the equation checks could not run
    assert "could not map" in result.info.checks_skipped.get("GD202", "")
    assert {"GD220", "GD221"} <= set(result.info.checks_run)
    assert not _gd220(report) and not _gd221(report)
    assert result.measurements["blackbox"]["max_excess"] <= 1e-5
    carry = result.measurements["blackbox"]["carry"]
    assert carry["units_judged"] == carry["units_total"] == 8 * H
    assert carry["fraction_neither"] == 0.0
    # every unit keeps h_prev exactly at one of the two input signs (its update gate shut)
    assert carry["fraction_carried"] == 1.0


@pytest.mark.parametrize("variant", ALL_VARIANTS, ids=lambda v: v.name)
def test_bound_holds_on_reference_cells_and_check_defers_to_equations(variant):
    torch.manual_seed(0)
    report = _report(ReferenceGRUCell(D, H, variant))
    (result,) = report.results
    assert result.measurements["blackbox"]["max_excess"] <= 1e-5
    assert not _gd220(report) and not _gd221(report)
    assert "mapped" in result.info.checks_skipped["GD220"]
    assert "mapped" in result.info.checks_skipped["GD221"]
    assert result.measurements["blackbox"]["carry"]["fraction_neither"] == 0.0


@pytest.mark.parametrize("mutation", ["relu", "no-activation", "z-z", "h-plus-n"])
def test_non_convex_unmappable_cells_flagged(mutation):
    report = _report(FlatTorchCell(D, H, mutation=mutation))
    (finding,) = _gd220(report)
    assert finding.severity.value == "warning"
    assert finding.category == "equation-mismatch"
    assert "lower confidence" in finding.message
    assert finding.evidence["worst"]["max_excess"] > 1e-3


def test_correct_flat_cell_through_the_mutation_path_not_flagged():
    # the hand-written branch of FlatTorchCell with no mutation applied is a correct GRU
    report = _report(FlatTorchCell(D, H, mutation="none"))
    assert not _gd220(report)


def test_threshold_is_overridable():
    report = grudiag.check(FlatTorchCell(D, H, mutation="relu"), seed=0,
                           thresholds={"GD220.tolerance": 1e9})
    assert not _gd220(report)


@pytest.mark.parametrize("mutation", [
    "damped",      # the shut update gate gives 0.1·h instead of h
    "tanh-state",  # tanh(h) ≠ h and tanh(±1) ≠ ±1
    "z-z",         # z = 1 gives h + n, z = 0 gives 0
])
def test_state_that_cannot_be_carried_flagged_on_torch_cells(mutation):
    report = _report(FlatTorchCell(D, H, mutation=mutation))
    (finding,) = _gd221(report)
    assert (finding.severity.value, finding.category) == ("warning", "equation-mismatch")
    assert "lower confidence" in finding.message and "did neither" in finding.message
    carry = finding.evidence["carry"]
    # each unit fails at the input sign that shuts its update gate
    assert carry["fraction_neither"] == 1.0 and carry["fraction_carried"] == 0.0
    assert carry["units_judged"] == 8 * H


def test_damped_state_passes_the_bound_but_not_the_carry_test():
    # 0.1·h stays inside [min(h, -1), max(h, 1)]: only the carry property sees it
    report = _report(FlatTorchCell(D, H, mutation="damped"))
    assert not _gd220(report)
    assert len(_gd221(report)) == 1


@pytest.mark.parametrize("mutation", ["tanh-state", "scaled"])
def test_state_that_cannot_be_carried_flagged_on_numpy_cells(mutation):
    (finding,) = _gd221(_report(FlatNumpyCell(D, H, mutation=mutation)))
    assert finding.evidence["carry"]["fraction_neither"] == 1.0
    assert finding.evidence["carry"]["fraction_carried"] == 0.0


def test_cell_that_ignores_its_input_is_not_judged():
    cell = FlatTorchCell(D, H)
    with torch.no_grad():
        cell.theta.zero_()  # every gate at 0.5 whatever the input: GD601's business
    (result,) = _report(cell).results
    assert "responds to the input" in result.info.checks_skipped["GD221"]


class StackedFlatGRU(nn.Module):
    """A correct 2-layer sequence model: its second layer reads the first layer's bounded
    states, so no input can saturate its gates (the carry property does not apply)."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.layer1 = FlatTorchCell(input_size, hidden_size)
        self.project = nn.Linear(hidden_size, input_size)  # layer 2's input: layer 1's states
        self.layer2 = FlatTorchCell(input_size, hidden_size)

    def forward(self, xs, h0):
        h1, h2, out = h0, h0, []
        for x in xs:
            h1 = self.layer1(x, h1)
            h2 = self.layer2(torch.tanh(self.project(h1)), h2)
            out.append(h2)
        return torch.stack(out)


def test_stacked_sequence_model_is_not_judged_by_the_carry_property():
    torch.manual_seed(0)
    report = _report(StackedFlatGRU(D, H))
    (result,) = report.results
    assert result.info.kind == "torch-sequence"
    assert not _gd221(report)
    assert "stack layers" in result.info.checks_skipped["GD221"]
    # the property itself does fail here: the guard, not luck, keeps the finding away
    assert result.measurements["blackbox"]["carry"]["fraction_neither"] > 0.5
