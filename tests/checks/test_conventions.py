"""GD2xx conventions: variant identification (GD201), known mistakes (GD210-GD216), not-a-GRU."""
from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from grudiag.model import Severity
from grudiag.options import Options
from grudiag.reference.identify import Model, identify
from grudiag.runner import diagnose
from grudiag.subjects.discovery import discover_object, discover_path

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")
OPTS = Options(select=("GD201", "GD202", "GD21"))
D, H = 5, 7


def _results(path):
    _, cands = discover_path(os.path.join(EXAMPLES, path), OPTS)
    return {c.id.split("::")[1]: diagnose(c.build(), OPTS) for c in cands}


def _one(obj):
    (cand,) = discover_object(obj, OPTS, name="cell")
    return diagnose(cand.build(), OPTS)


def _errors(result):
    return [f for f in result.findings if f.severity == Severity.ERROR]


def _convention(result):
    (f,) = [f for f in result.findings if f.code == "GD201"]
    assert f.category == "convention" and f.severity == Severity.INFO
    return f.evidence


# ------------------------------------------------------------------ correct cells: identified

CORRECT = [
    ("correct_pytorch_style_torch.py", "FusedGRUCell", "reset-after", "torch", "r|z|n"),
    ("correct_cho_reset_before_torch.py", "ChoGRUCell", "reset-before", "torch", None),
    ("correct_cho_reset_before_torch.py", "ChoEncoder", "reset-before", "torch", None),
    ("correct_keras_style_numpy.py", "KerasLikeGRUCell", "reset-after", "torch", "z|r|n"),
    ("correct_andrew_ng_numpy.py", "gru_cell_forward", "reset-before", "chung", None),
    ("correct_numpy_backward_row.py", "GRUCell", "reset-before", "chung", None),
    ("correct_numpy_column.py", "ColumnGRU", "reset-after", "torch", "r|z|n"),
    ("correct_nn_gru_classifier_torch.py", "SentimentClassifier.rnn", "reset-after", "torch", "r|z|n"),
    ("correct_nn_gru_classifier_torch.py", "decoder_cell", "reset-after", "torch", "r|z|n"),
]


@pytest.mark.parametrize("path,name,family,update,order", CORRECT)
def test_correct_examples_are_identified(path, name, family, update, order):
    result = _results(path)[name]
    assert not _errors(result)
    ev = _convention(result)
    assert (ev["family"], ev["update"]) == (family, update)
    assert ev["error_own"] < 1e-9 and ev["error_random"] < 1e-9
    if order:
        assert ev["gate_order"] == order
    if path == "correct_andrew_ng_numpy.py":
        assert ev["arrangement"] == "concatenated [h, x] weights"
    if path == "correct_keras_style_numpy.py":
        assert ev["orientation"] == "x W"


def test_convention_string_for_the_subject_json():
    ev = _convention(_one(nn.GRUCell(D, H)))
    assert ev["convention"] == "reset-after"
    ev = _convention(_results("correct_andrew_ng_numpy.py")["gru_cell_forward"])
    assert ev["convention"] == "reset-before, chung update"


@pytest.mark.parametrize("init", ["default", "orthogonal", "normal", "small"])
def test_nn_gru_under_several_inits(init):
    torch.manual_seed(0)
    gru = nn.GRU(D, H, batch_first=True)
    with torch.no_grad():
        for name, p in gru.named_parameters():
            if init == "orthogonal" and "weight" in name:
                nn.init.orthogonal_(p)
            elif init == "normal":
                nn.init.normal_(p, 0.0, 1.0)
            elif init == "small":
                nn.init.uniform_(p, -1e-3, 1e-3)
    result = _one(gru)
    assert not _errors(result)
    assert _convention(result)["family"] == "reset-after"


# ------------------------------------------------------------------ known mistakes

MISTAKES = [  # (model mutation, code, mistake id)
    (dict(candidate="relu"), "GD210", "candidate-relu"),
    (dict(candidate="identity"), "GD210", "candidate-identity"),
    (dict(candidate="sigmoid"), "GD210", "candidate-sigmoid"),
    (dict(output="tanh"), "GD211", "state-tanh"),
    (dict(reset="unused"), "GD212", "reset-unused"),
    (dict(reset="update-gate"), "GD213", "reset-is-update"),
    (dict(update="sum-z"), "GD214", "update-not-convex"),
    (dict(reset="on-input"), "GD215", "reset-on-input"),
]


class TorchMutantCell(nn.Module):
    """PyTorch-layout cell (fused r|z|n, W x) computing a mutated reference in torch ops."""

    def __init__(self, model: Model):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        k = 1 / H ** 0.5
        self.weight_ih = nn.Parameter((torch.rand(3 * H, D, generator=g, dtype=torch.float64) * 2 - 1) * k)
        self.weight_hh = nn.Parameter((torch.rand(3 * H, H, generator=g, dtype=torch.float64) * 2 - 1) * k)
        self.bias_ih = nn.Parameter((torch.rand(3 * H, generator=g, dtype=torch.float64) * 2 - 1) * k)
        self.bias_hh = nn.Parameter((torch.rand(3 * H, generator=g, dtype=torch.float64) * 2 - 1) * k)
        self.model = model
        self.input_size, self.hidden_size = D, H

    def forward(self, x, h):
        m = self.model
        i_r, i_z, i_n = (x @ self.weight_ih.T + self.bias_ih).chunk(3, 1)
        h_r, h_z, h_n = (h @ self.weight_hh.T + self.bias_hh).chunk(3, 1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        r = {"unused": torch.ones_like(r), "update-gate": z}.get(m.reset, r)
        a = r * i_n + h_n if m.reset == "on-input" else i_n + r * h_n
        n = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda t: t,
             "sigmoid": torch.sigmoid}[m.candidate](a)
        out = z * (h + n) if m.update == "sum-z" else (1 - z) * n + z * h
        return torch.tanh(out) if m.output == "tanh" else out


class NumpyMutantCell:
    """Cho-style NumPy cell (row layout x @ W, split weights, reset-before) with a mutation."""

    def __init__(self, input_size, hidden_size, model: Model = Model(), seed=2):
        rng = np.random.default_rng(seed)
        s = 1 / np.sqrt(hidden_size)
        for g in "zrh":
            setattr(self, f"W{g}", rng.uniform(-s, s, (input_size, hidden_size)))
            setattr(self, f"U{g}", rng.uniform(-s, s, (hidden_size, hidden_size)))
            setattr(self, f"b{g}", rng.uniform(-s, s, hidden_size))
        self.model = replace(model, family="reset-before")

    def forward(self, x, h_prev):
        P = {"W_ir": self.Wr.T, "W_iz": self.Wz.T, "W_in": self.Wh.T, "W_hr": self.Ur.T,
             "W_hz": self.Uz.T, "W_hn": self.Uh.T, "b_ir": self.br, "b_iz": self.bz,
             "b_in": self.bh, "b_hn": np.zeros_like(self.bh)}
        return self.model.step(P, x, h_prev)


def _mistake_finding(result, code):
    errors = _errors(result)
    assert [f.code for f in errors] == [code], [f.message for f in errors]
    f = errors[0]
    assert f.category == "equation-mismatch" and f.severity == Severity.ERROR
    assert f.evidence["error_own"] < 1e-9 and f.evidence["error_random"] < 1e-9
    return f


@pytest.mark.parametrize("mutation,code,mistake", MISTAKES)
def test_known_mistake_named_in_torch(mutation, code, mistake):
    f = _mistake_finding(_one(TorchMutantCell(Model(**mutation))), code)
    assert f.evidence["mistake"] == mistake


@pytest.mark.parametrize("mutation,code,mistake", MISTAKES)
def test_known_mistake_named_in_numpy(mutation, code, mistake):
    cls = type("MutantGRUCell", (NumpyMutantCell,),
               {"__init__": lambda self, i, h: NumpyMutantCell.__init__(self, i, h, Model(**mutation))})
    f = _mistake_finding(_one(cls), code)
    assert f.evidence["mistake"] == mistake


def test_unmutated_mutant_cells_are_correct():
    assert _convention(_one(TorchMutantCell(Model())))["family"] == "reset-after"
    ev = _convention(_one(NumpyMutantCell))
    assert (ev["family"], ev["orientation"]) == ("reset-before", "x W")


def test_unused_bias_is_named():
    class ForgetsBias(nn.Module):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.lin_x = nn.Linear(input_size, 3 * hidden_size)
            self.lin_h = nn.Linear(hidden_size, 3 * hidden_size, bias=False)
            self.b_z = nn.Parameter(torch.full((hidden_size,), 0.5))

        def forward(self, x, h):
            x_r, x_z, x_n = self.lin_x(x).chunk(3, -1)
            h_r, h_z, h_n = self.lin_h(h).chunk(3, -1)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)  # b_z forgotten
            return (1 - z) * torch.tanh(x_n + r * h_n) + z * h

    f = _mistake_finding(_one(ForgetsBias), "GD216")
    assert f.evidence["unused_biases"] == ["b_z"]
    assert "b_z" in f.message


# ------------------------------------------------------------------ examples of the category

@pytest.mark.parametrize("path,code", [
    ("equation_mismatch_torch_relu.py", "GD210"),
    ("equation_mismatch_numpy_nonconvex.py", "GD214"),
    ("equation_mismatch_torch_reset_unused.py", "GD212"),
])
def test_equation_mismatch_examples(path, code):
    with open(os.path.join(EXAMPLES, path)) as fh:
        assert "equation-mismatch" in fh.read()
    (result,) = _results(path).values()
    _mistake_finding(result, code)


def test_not_a_gru_reports_nearest_and_location():
    class SinGRUCell(TorchMutantCell):
        def forward(self, x, h):
            i_r, i_z, i_n = (x @ self.weight_ih.T + self.bias_ih).chunk(3, 1)
            h_r, h_z, h_n = (h @ self.weight_hh.T + self.bias_hh).chunk(3, 1)
            r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
            return (1 - z) * torch.sin(2 * (i_n + r * h_n)) + z * h

    result = _one(SinGRUCell(Model()))
    (f,) = _errors(result)
    assert (f.code, f.name, f.category) == ("GD202", "not-a-gru", "equation-mismatch")
    assert f.evidence["nearest"].startswith("reset-")
    assert f.evidence["max_abs_diff"] > 0.05
    assert {"step", "sample", "unit", "per_step_max"} <= set(f.evidence)


# ------------------------------------------------------------------ blind spots and skips

class ZeroBiasDiagonalRB(nn.Module):
    """Reset-before, zero biases, diagonal W_hn: RA and RB agree on its own weights."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.W_r, self.W_z, self.W_h = (nn.Linear(input_size, hidden_size, bias=True) for _ in range(3))
        self.U_r, self.U_z, self.U_h = (nn.Linear(hidden_size, hidden_size, bias=False) for _ in range(3))
        with torch.no_grad():
            for lin in (self.W_r, self.W_z, self.W_h):
                lin.bias.zero_()
            self.U_h.weight.copy_(torch.diag(torch.linspace(-0.9, 0.9, hidden_size)))

    def forward(self, x, h):
        r = torch.sigmoid(self.W_r(x) + self.U_r(h))
        z = torch.sigmoid(self.W_z(x) + self.U_z(h))
        return z * h + (1 - z) * torch.tanh(self.W_h(x) + self.U_h(r * h))


def test_reset_after_vs_before_blind_spot_is_resolved():
    (cand,) = discover_object(ZeroBiasDiagonalRB, OPTS, name="cell")
    subject = cand.build()
    result = identify(subject, np.random.default_rng(0))
    assert result.status == "identified" and result.match.model.family == "reset-before"
    # the blind spot is real: on its own weights the reset-after model agrees too
    own = subject.parameters()
    P = result.match.layout.canonical(own)
    rng = np.random.default_rng(1)
    xs, h0 = rng.normal(size=(1, 3, subject.input_size)), rng.uniform(-1, 1, (3, subject.hidden_size))
    ra = Model(family="reset-after").run(P, xs, h0)
    assert np.max(np.abs(ra - subject.run(xs, h0))) < 1e-12
    assert _convention(diagnose(subject, OPTS))["family"] == "reset-before"


def test_unmappable_parameters_are_skipped_not_flagged():
    class Odd(nn.Module):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.cell = nn.GRUCell(input_size, hidden_size)
            self.scale = nn.Parameter(torch.ones(3, 3))

        def forward(self, x, h):
            return self.cell(x, h) * self.scale.mean()

    result = _one(Odd)
    assert not _errors(result)
    assert "could not map the parameters" in result.info.checks_skipped["GD201"]


# ------------------------------------------- reparameterisations: identified, with a note

class TransposedBlockCell(TorchMutantCell):
    """PyTorch layout, but the z block of weight_hh is used as h @ W_hz (not h @ W_hz.T)."""

    def forward(self, x, h):
        i_r, i_z, i_n = (x @ self.weight_ih.T + self.bias_ih).chunk(3, 1)
        W_hr, W_hz, W_hn = self.weight_hh.chunk(3, 0)
        b_hr, b_hz, b_hn = self.bias_hh.chunk(3, 0)
        r = torch.sigmoid(i_r + h @ W_hr.T + b_hr)
        z = torch.sigmoid(i_z + h @ W_hz + b_hz)
        n = torch.tanh(i_n + r * (h @ W_hn.T + b_hn))
        return (1 - z) * n + z * h


class ViewedInputWeightCell(TorchMutantCell):
    """weight_ih stored (D, 3H), as a port from Keras would, then view()ed as (3H, D)."""

    def __init__(self):
        super().__init__(Model())
        self.weight_ih = nn.Parameter(self.weight_ih.detach().reshape(D, 3 * H).clone())

    def forward(self, x, h):
        gi = x @ self.weight_ih.view(3 * H, D).T + self.bias_ih
        i_r, i_z, i_n = gi.chunk(3, 1)
        h_r, h_z, h_n = (h @ self.weight_hh.T + self.bias_hh).chunk(3, 1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        return (1 - z) * torch.tanh(i_n + r * h_n) + z * h


class NumpyFusedTransposedBlockCell:
    """Row layout x @ W with fused (., 3H) weights; the candidate's recurrent block is used as
    h @ U_n.T."""

    def __init__(self, input_size, hidden_size):
        rng = np.random.default_rng(4)
        s = 1 / np.sqrt(hidden_size)
        self.W = rng.uniform(-s, s, (input_size, 3 * hidden_size))
        self.U = rng.uniform(-s, s, (hidden_size, 3 * hidden_size))
        self.b = rng.uniform(-s, s, 3 * hidden_size)

    def forward(self, x, h_prev):
        Hs = self.U.shape[0]
        a = x @ self.W + self.b
        U_r, U_z, U_n = self.U[:, :Hs], self.U[:, Hs:2 * Hs], self.U[:, 2 * Hs:]
        r = 1 / (1 + np.exp(-(a[:, :Hs] + h_prev @ U_r)))
        z = 1 / (1 + np.exp(-(a[:, Hs:2 * Hs] + h_prev @ U_z)))
        n = np.tanh(a[:, 2 * Hs:] + (r * h_prev) @ U_n.T)
        return (1 - z) * n + z * h_prev


@pytest.mark.parametrize("cell,unusual", [
    (TransposedBlockCell(Model()),
     "weight_hh[7:14] (the z block) is used transposed, h·W instead of W·h"),
    (ViewedInputWeightCell(), "weight_ih is reshaped (view) where a transpose was likely meant"),
    (NumpyFusedTransposedBlockCell,
     "U[:, 14:21] (the n block) is used transposed, h·W instead of W·h"),
])
def test_reparameterised_weights_are_identified_not_flagged(cell, unusual):
    result = _one(cell)
    assert _errors(result) == []
    ev = _convention(result)
    assert ev["unusual"] == [unusual]
    assert max(ev["error_own"], ev["error_random"]) < 1e-9
    (f,) = [f for f in result.findings if f.code == "GD201"]
    assert "weights copied from another implementation will not give its results" in f.message


def test_standard_cells_have_no_unusual_reading():
    assert _convention(_one(TorchMutantCell(Model())))["unusual"] == []
    ev = _convention(_one(NumpyMutantCell))
    assert ev["unusual"] == [] and ev["mapping"]["W_hn"] == "Uh.T"


def test_split_weights_read_either_way_need_no_widened_search():
    # one split weight used as h @ U.T among x @ W ones is an ordinary (mixed) orientation
    class OneColumnWeight(NumpyMutantCell):
        def __init__(self, input_size, hidden_size):
            super().__init__(input_size, hidden_size)

        def forward(self, x, h_prev):
            P = {"W_ir": self.Wr.T, "W_iz": self.Wz.T, "W_in": self.Wh.T, "W_hr": self.Ur.T,
                 "W_hz": self.Uz.T, "W_hn": self.Uh, "b_ir": self.br, "b_iz": self.bz,
                 "b_in": self.bh, "b_hn": np.zeros_like(self.bh)}
            return self.model.step(P, x, h_prev)

    ev = _convention(_one(OneColumnWeight))
    assert (ev["orientation"], ev["mapping"]["W_hn"], ev["unusual"]) == (
        "mixed W x and x W", "Uh", [])
