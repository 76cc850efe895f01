"""State, recurrence and shape checks: GD102–GD105 (bad-shapes), GD301–GD303
(stale-hidden-state), GD311–GD313 (ignored-recurrence).

Each check is exercised on the gallery example it must catch (exact code, category, severity and
key evidence) and on correct cells in several conventions, layouts and initialisations that it
must leave alone.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from grudiag.checks.recurrence import _unused_recurrent
from grudiag.model import Severity
from grudiag.options import Options
from grudiag.probes.state import recurrent_layout
from grudiag.reference import conversions as cv
from grudiag.reference import numpy_gru
from grudiag.reference.torch_gru import ReferenceGRU, ReferenceGRUCell
from grudiag.reference.variants import CHO, PYTORCH, Variant
from grudiag.runner import diagnose_candidate
from grudiag.subjects.discovery import discover_object, discover_path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
OPTIONS = Options(select=("GD1", "GD3"))
MINE = {"GD102", "GD103", "GD104", "GD105", "GD301", "GD302", "GD303", "GD311", "GD312", "GD313"}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny float64 matmuls: extra threads only add contention on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.cache
def file_results(name: str):
    _, candidates = discover_path(str(EXAMPLES / name), OPTIONS)
    return [diagnose_candidate(c, OPTIONS) for c in candidates]


def object_result(obj, name=None):
    candidates = discover_object(obj, OPTIONS, name=name)
    assert len(candidates) == 1, [c.id for c in candidates]
    return diagnose_candidate(candidates[0], OPTIONS)


def findings(result, severity_at_least=Severity.WARNING):
    return [f for f in result.findings if f.severity.rank >= severity_at_least.rank]


def only(result, code):
    """The single finding of `code`, and no other warning/error from these checks."""
    mine = [f for f in findings(result) if f.code in MINE]
    assert [f.code for f in mine] == [code], [(f.code, f.message) for f in mine]
    return mine[0]


# --------------------------------------------------------------------------- stale-hidden-state

def test_gd301_sequence_passing_h0_to_every_step():
    [result] = file_results("stale_hidden_state_torch.py")
    f = only(result, "GD301")
    assert (f.name, f.category, f.severity) == ("state-not-carried", "stale-hidden-state",
                                                Severity.ERROR)
    ev = f.evidence
    assert ev["steps_not_carried"] == [1, 2, 3, 4, 5]
    assert all(r == 0.0 for r in ev["ratios"])
    assert all(d > 0.1 for d in ev["h0_dependence"])  # every step still sees h0
    assert "restarts from h0" in f.message


def test_gd301_numpy_sequence_with_zero_state_each_step():
    [result] = file_results("stale_hidden_state_numpy_loop.py")
    f = only(result, "GD301")
    assert f.severity is Severity.ERROR and f.category == "stale-hidden-state"
    assert f.evidence["steps_not_carried"] == [1, 2, 3, 4, 5]
    assert all(d == 0.0 for d in f.evidence["h0_dependence"])
    assert "nor on h0" in f.message


class ChunkedGRU(nn.Module):
    """Resets its state every 3 steps (a truncated-BPTT chunking bug inside forward)."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)

    def forward(self, x, h0):
        h, out = h0, []
        for t in range(x.size(0)):
            if t % 3 == 0 and t:
                h = torch.zeros_like(h)
            h = self.cell(x[t], h)
            out.append(h)
        return torch.stack(out)


def test_gd301_names_the_steps_where_the_state_is_dropped():
    f = only(object_result(ChunkedGRU), "GD301")
    assert f.evidence["steps_not_carried"] == [3]
    assert "steps 3 of 5" in f.message


@pytest.mark.parametrize("name", ["stale_hidden_state_torch_stateful.py",
                                  "stale_hidden_state_numpy.py"])
def test_gd302_state_kept_between_calls(name):
    [result] = file_results(name)
    f = only(result, "GD302")
    assert (f.name, f.category, f.severity) == ("state-persists-across-calls",
                                                "stale-hidden-state", Severity.ERROR)
    assert f.evidence["repeat_diff"] > 0.1
    assert f.evidence["fresh_copies_diff"] == 0.0
    assert len(f.evidence["repeat_diff_per_step"]) == 6


class RemembersWhenNoH0(nn.Module):
    """Continues from its last h_n when called without h0, a common "stateful inference" idea."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size)
        self.last = None

    def forward(self, x, h0=None):
        if h0 is None and self.last is not None and self.last.shape[1] == x.shape[1]:
            h0 = self.last
        out, h_n = self.gru(x, h0)
        self.last = h_n.detach()
        return out, h_n


class DefaultZeroState(RemembersWhenNoH0):
    def forward(self, x, h0=None):
        return self.gru(x, h0)


def test_gd302_state_kept_only_for_calls_without_h0():
    torch.manual_seed(0)
    f = only(object_result(RemembersWhenNoH0(5, 7)), "GD302")
    assert "no h0 (its default)" in f.message
    assert f.evidence["repeat_diff"] == 0.0  # calls with h0 agree: only the default path leaks
    ds = f.evidence["default_state"]
    assert ds["ok"] and ds["repeat_diff"] > 0.01


def test_optional_h0_used_correctly_is_not_flagged():
    torch.manual_seed(0)
    result = object_result(DefaultZeroState(5, 7))
    assert findings(result) == []
    ds = result.measurements["call-state"]["default_state"]
    assert ds["ok"] and ds["repeat_diff"] == 0.0 and ds["scale"] > 0.1


class IgnoresH0(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.gru = nn.GRU(input_size, hidden_size)

    def forward(self, x, h0=None):
        h = x.new_zeros(1, x.size(1), self.hidden_size)  # h0 is never used
        return self.gru(x, h)


def test_gd303_initial_state_ignored():
    f = only(object_result(IgnoresH0), "GD303")
    assert (f.category, f.severity) == ("stale-hidden-state", Severity.ERROR)
    assert all(v == 0.0 for v in f.evidence["h0_dependence"])
    assert f.evidence["x0_dependence"] > 0.05


# --------------------------------------------------------------------------- ignored-recurrence

def test_gd311_cell_overwrites_h_prev():
    [result] = file_results("ignored_recurrence_numpy.py")
    f = only(result, "GD311")
    assert (f.name, f.category, f.severity) == ("hidden-state-ignored", "ignored-recurrence",
                                                Severity.ERROR)
    assert f.evidence["h_effect"] == [0.0, 0.0, 0.0]
    assert min(f.evidence["x_effect"]) > 0.05
    assert f.evidence["unused_recurrent_weights"] == ["U"]


def test_gd313_gates_from_x_only_names_the_weights():
    [result] = file_results("ignored_recurrence_torch.py")
    f = only(result, "GD313")
    assert (f.name, f.category, f.severity) == ("recurrent-weight-unused", "ignored-recurrence",
                                                Severity.ERROR)
    assert sorted(u["name"] for u in f.evidence["unused"]) == ["U_r.weight", "U_z.weight"]
    assert sorted(f.evidence["autograd"]["none"]) == ["U_r.weight", "U_z.weight"]
    assert f.evidence["effects"]["U_n.weight"] > 1e-3
    assert f.location is not None and f.location.line  # where U_z is created


class KerasFusedNoUpdateRecurrence:
    """Keras layout x @ kernel, z|r|h columns; the z block of the recurrent kernel is skipped."""

    def __init__(self, input_size, hidden_size):
        rng = np.random.default_rng(1)
        k = 1 / np.sqrt(hidden_size)
        self.units = hidden_size
        self.kernel = rng.uniform(-k, k, (input_size, 3 * hidden_size))
        self.recurrent_kernel = rng.uniform(-k, k, (hidden_size, 3 * hidden_size))
        self.bias = rng.uniform(-k, k, 3 * hidden_size)

    def forward(self, x, h_prev):
        H = self.units
        gx = x @ self.kernel + self.bias
        rk = self.recurrent_kernel
        z = 1 / (1 + np.exp(-gx[:, :H]))  # the z block of rk is never read
        r = 1 / (1 + np.exp(-(gx[:, H:2 * H] + h_prev @ rk[:, H:2 * H])))
        n = np.tanh(gx[:, 2 * H:] + (r * h_prev) @ rk[:, 2 * H:])
        return z * h_prev + (1 - z) * n


def test_gd313_names_the_unused_block_of_a_fused_weight():
    f = only(object_result(KerasFusedNoUpdateRecurrence(5, 7), "keras_cell"), "GD313")
    assert f.evidence["unused"] == [{"name": "recurrent_kernel", "shape": [7, 21],
                                     "part": "[:, 0:7]"}]
    assert "recurrent_kernel[:, 0:7]" in f.message


class MinimalGRU(nn.Module):
    """minGRU-style: gates and candidate from x only, the state passes through z ⊙ h."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lin_z = nn.Linear(input_size, hidden_size)
        self.lin_n = nn.Linear(input_size, hidden_size)

    def forward(self, x, h):
        z = torch.sigmoid(self.lin_z(x))
        return (1 - z) * torch.tanh(self.lin_n(x)) + z * h


def test_gd312_diagonal_jacobian_is_a_warning():
    f = only(object_result(MinimalGRU), "GD312")
    assert (f.name, f.category, f.severity) == ("no-recurrent-mixing", "ignored-recurrence",
                                                Severity.WARNING)
    assert f.evidence["offdiag_max"] == 0.0 and f.evidence["diag_max"] > 0.1
    jac = np.array(f.evidence["jacobian_abs"])
    assert jac.shape == (7, 7) and np.all(jac[~np.eye(7, dtype=bool)] == 0)


def test_recurrent_layout_and_block_naming():
    assert recurrent_layout((21, 7), 5, 7) == ([(0, 7), (7, 14), (14, 21)], [(0, 7)])
    assert recurrent_layout((21, 5), 5, 7) is None  # an input weight
    assert recurrent_layout((7, 5), 5, 7) is None
    assert recurrent_layout((7,), 5, 7) is None
    rows, cols = recurrent_layout((7, 12), 5, 7)  # Andrew Ng's W acting on [h; x]
    assert rows == [(0, 7)] and cols == [(0, 5), (5, 7), (7, 12)]
    blocks = [{"rows": [0, 7], "cols": list(c), "effect": 0.0 if c[0] < 7 else 0.3} for c in cols]
    rec = {"params_scale": 1.0, "parameters": {
        "Wr": {"shape": [7, 12], "recurrent_shaped": True, "effect": 0.5, "blocks": blocks}}}
    assert _unused_recurrent(rec, 1e-8) == [{"name": "Wr", "shape": [7, 12], "part": "[:, 0:7]"}]


# ----------------------------------------------------------------------------------- bad-shapes

def test_gd102_squeeze_breaks_batch_of_one():
    [result] = file_results("bad_shapes_numpy.py")
    f = only(result, "GD102")
    assert (f.name, f.category, f.severity) == ("breaks-at-other-sizes", "bad-shapes",
                                                Severity.ERROR)
    failed = {(p["batch"], p["time"]) for p in f.evidence["failed"]}
    assert failed == {(1, 1), (1, 6)}
    assert f.evidence["failed"][0]["got"] == [7]
    assert "batch 1" in f.message and f.location.line  # the user's line where it broke


def test_gd104_reshape_instead_of_transpose_mixes_samples():
    [result] = file_results("bad_shapes_numpy_mixing.py")
    f = only(result, "GD104")
    assert (f.name, f.category, f.severity) == ("batch-samples-mixed", "bad-shapes",
                                                Severity.ERROR)
    mat = np.array(f.evidence["matrix"])
    assert mat.shape == (3, 3) and mat[~np.eye(3, dtype=bool)].max() > 0.1
    assert f.evidence["leaking_pairs"] == 6


def test_gd104_gd105_view_instead_of_transpose_in_a_batch_first_model():
    [result] = file_results("bad_shapes_torch.py")
    mine = sorted(f.code for f in findings(result) if f.code in MINE)
    assert mine == ["GD104", "GD105"]
    f = next(f for f in result.findings if f.code == "GD105")
    assert (f.name, f.category, f.severity) == ("time-causality-violated", "bad-shapes",
                                                Severity.ERROR)
    mat = np.array(f.evidence["matrix"])
    assert mat.shape == (6, 6) and np.triu(mat, 1).max() > 0.1
    assert "GD301" in result.info.checks_skipped  # the scrambled time axis is not judged twice


class TimeReversed(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size)

    def forward(self, x, h0=None):
        out, h = self.gru(torch.flip(x, [0]), h0)  # reversed on the way in, not on the way out
        return out, h


def test_gd105_reversed_sequence():
    f = only(object_result(TimeReversed), "GD105")
    assert f.evidence["future_pairs"] == 9  # h_t sees x_s for s >= T-1-t


class BrokenUnbatched(nn.Module):
    """The 1-D branch forgets the reset gate: right shape, wrong numbers."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)

    def forward(self, x, h):
        if x.dim() == 1:
            gi = self.cell.weight_ih @ x + self.cell.bias_ih
            gh = self.cell.weight_hh @ h + self.cell.bias_hh
            i_r, i_z, i_n = gi.chunk(3)
            h_r, h_z, h_n = gh.chunk(3)
            z = torch.sigmoid(i_z + h_z)
            return (1 - z) * torch.tanh(i_n + h_n) + z * h
        return self.cell(x, h)


def test_gd103_unbatched_branch_disagrees():
    f = only(object_result(BrokenUnbatched), "GD103")
    assert (f.category, f.severity) == ("bad-shapes", Severity.WARNING)
    assert f.evidence["rel_diff"] > 1e-3


# ------------------------------------------------------------------------------ correct cells

CORRECT_FILES = sorted(p.name for p in EXAMPLES.glob("correct_*.py"))


def _quiet(results):
    return [(r.info.id, f.code, f.message) for r in results for f in findings(r)
            if f.code in MINE]


@pytest.mark.parametrize("name", CORRECT_FILES)
def test_correct_gallery_files_get_nothing(name):
    try:
        results = file_results(name)
    except Exception as exc:  # a file another engineer's discovery cannot read yet
        pytest.skip(f"{name}: {exc}")
    assert _quiet(results) == []


class LayoutCell:
    """A correct GRU stored in one of several published layouts, evaluated by the reference."""

    def __init__(self, input_size, hidden_size, layout="torch", variant=PYTORCH, scale=None,
                 seed=0):
        c = numpy_gru.init_params(input_size, hidden_size, np.random.default_rng(seed), scale)
        self.layout, self.variant = layout, variant
        if layout == "torch":
            store = cv.to_torch_cell(c)
        elif layout == "keras":
            k, u, b = cv.to_keras(c, reset_after=variant.reset_after)
            store = {"kernel": k, "recurrent_kernel": u, "bias": b}
        elif layout == "ng":
            store = cv.to_concat_hx(c)
            self.variant = CHO
        else:
            store = c
        self.names = list(store)
        for k, v in store.items():
            setattr(self, k, v)

    def forward(self, x, h_prev):
        s = {k: getattr(self, k) for k in self.names}
        c = {"torch": lambda: cv.from_torch_cell(**s),
             "keras": lambda: cv.from_keras(s["kernel"], s["recurrent_kernel"], s["bias"]),
             "ng": lambda: cv.from_concat_hx(**s), "canonical": lambda: s}[self.layout]()
        return numpy_gru.step(c, x, h_prev, self.variant)[0]


@pytest.mark.parametrize("layout,variant,scale", [
    ("torch", PYTORCH, None), ("keras", PYTORCH, None), ("keras", CHO, 1.0), ("ng", CHO, None),
    ("canonical", Variant("reset-before", "chung"), 0.05), ("canonical", PYTORCH, 2.0),
])
def test_correct_numpy_layouts_get_nothing(layout, variant, scale):
    assert _quiet([object_result(LayoutCell(5, 7, layout, variant, scale), "cell")]) == []


@pytest.mark.parametrize("make", [
    lambda: nn.GRUCell(5, 7),
    lambda: ReferenceGRUCell(5, 7, CHO),
    lambda: ReferenceGRUCell(5, 7, Variant("reset-after", "chung")),
    lambda: ReferenceGRU(5, 7, num_layers=2, batch_first=True),
    lambda: nn.GRU(5, 7, batch_first=True, bidirectional=True),
    lambda: nn.RNN(5, 7),
    lambda: nn.GRUCell(6, 6),  # input size = hidden size: input weights look recurrent too
], ids=["nn.GRUCell", "cho", "chung", "ref-gru-2-layers", "nn.GRU-bi", "nn.RNN", "square"])
def test_correct_torch_modules_get_nothing(make):
    torch.manual_seed(0)
    module = make()
    if isinstance(module, nn.GRUCell) and module.hidden_size == 7:
        nn.init.orthogonal_(module.weight_hh)  # another sane init
    assert _quiet([object_result(module, "m")]) == []


# ------------------------------------------------------------------------------ function style

def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def gru_step(x, h_prev, params):
    p = params
    z = _sigmoid(x @ p["Wz"] + h_prev @ p["Uz"] + p["bz"])
    r = _sigmoid(x @ p["Wr"] + h_prev @ p["Ur"] + p["br"])
    n = np.tanh(x @ p["Wn"] + (r * h_prev) @ p["Un"] + p["bn"])
    return (1 - z) * n + z * h_prev


def gru_step_fresh_state(x, h_prev, params):
    return gru_step(x, np.zeros_like(h_prev), params)  # BUG: the state passed in is dropped


def _params(input_size=5, hidden_size=7):
    rng = np.random.default_rng(3)
    k = 1 / np.sqrt(hidden_size)
    out = {}
    for g in "zrn":
        out[f"W{g}"] = rng.uniform(-k, k, (input_size, hidden_size))
        out[f"U{g}"] = rng.uniform(-k, k, (hidden_size, hidden_size))
        out[f"b{g}"] = rng.uniform(-k, k, hidden_size)
    return out


def test_function_style_correct_and_buggy():
    assert _quiet([object_result((gru_step, _params()), "gru_step")]) == []
    f = only(object_result((gru_step_fresh_state, _params()), "fresh"), "GD311")
    assert sorted(f.evidence["unused_recurrent_weights"]) == ["Un", "Ur", "Uz"]


class BlogStyleStatefulGRU(nn.Module):
    """Stores its state on self at the first call's batch size: later batch sizes crash."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)
        self.h = None

    def forward(self, x, h=None):
        if self.h is None:
            self.h = torch.zeros(x.size(0), self.cell.hidden_size, dtype=x.dtype)
        self.h = self.cell(x, self.h)
        return self.h


def test_stateful_cell_gets_gd302_and_no_knock_on_crash_from_later_probes():
    torch.manual_seed(0)
    candidates = discover_object(BlogStyleStatefulGRU(5, 7), Options(), name="cell")
    result = diagnose_candidate(candidates[0], Options())
    codes = {f.code for f in result.findings}
    assert "GD302" in codes
    assert "GD901" not in codes, [f.message for f in result.findings if f.code == "GD901"]
