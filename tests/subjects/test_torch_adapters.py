"""The torch adapters, user-file loading and the global-state guard."""
from __future__ import annotations

import os
import random
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from grudiag.subjects import DiscoveryProblem, SubjectOutputError, SubjectRaised
from grudiag.subjects.loading import guarded_global_state, import_user_file
from grudiag.subjects.torch_module import (
    NotASubject,
    TorchCellSubject,
    TorchSequenceSubject,
    adapt_module,
)

HERE = os.path.abspath(__file__)


def inputs(I=5, H=7, T=6, B=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, B, I)), rng.uniform(-0.5, 0.5, size=(B, H))


def loop(cell: nn.Module, xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """Reference: the cell itself in float64, stepped by hand."""
    ref = cell.double() if cell.weight_ih.dtype != torch.float64 else cell
    h, hs = torch.tensor(h0), []
    with torch.no_grad():
        for x in torch.tensor(xs):
            h = ref(x, h)
            hs.append(h)
    return torch.stack(hs).numpy()


def snapshot(module: nn.Module):
    return ({k: v.clone() for k, v in module.state_dict().items()}, module.training,
            [(n, p.requires_grad, p.dtype) for n, p in module.named_parameters()])


def assert_untouched(module: nn.Module, before) -> None:
    state, training, flags = before
    after = module.state_dict()
    assert state.keys() == after.keys()
    for k in state:
        assert state[k].dtype == after[k].dtype and torch.equal(state[k], after[k]), k
    assert module.training == training
    assert [(n, p.requires_grad, p.dtype) for n, p in module.named_parameters()] == flags


# --- cells -------------------------------------------------------------------------------

def test_grucell_runs_like_itself_in_float64():
    torch.manual_seed(0)
    cell = nn.GRUCell(5, 7)
    s = adapt_module(cell, id="c")
    assert isinstance(s, TorchCellSubject)
    assert (s.kind, s.input_size, s.hidden_size, s.layout) == ("torch-cell", 5, 7, "row")
    assert s.dtype == torch.float64 and s.supports_unbatched
    xs, h0 = inputs()
    hs = s.run(xs, h0)
    assert hs.dtype == np.float64 and hs.shape == (6, 3, 7)
    np.testing.assert_allclose(hs, loop(cell, xs, h0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.step(xs[0], h0), hs[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(s.run_unbatched(xs[:, 1], h0[1]), hs[:, 1], rtol=1e-12, atol=1e-14)


class ReadoutCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)
        self.out = nn.Linear(hidden_size, 2)

    def forward(self, x, h):
        h = self.cell(x, h)
        return self.out(h), h


def test_cell_returning_out_and_h_uses_the_state():
    s = adapt_module(ReadoutCell(5, 7), id="r", input_size=5, hidden_size=7)
    assert s.state_index == 1
    xs, h0 = inputs()
    np.testing.assert_allclose(s.run(xs, h0), loop(s.module.cell, xs, h0), rtol=1e-12)


class ReturnsWhatItIsTold(nn.Module):
    """A 'cell' whose return value is set by the test."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lin = nn.Linear(input_size, hidden_size)
        self.mode = "ok"

    def forward(self, x, h):
        new = torch.tanh(self.lin(x) + h)
        return {"ok": new, "none": None, "str": "h", "list": [1, 2],
                "broadcast": new.unsqueeze(0).expand(3, *new.shape)}[self.mode]


@pytest.mark.parametrize("mode, kind, text", [
    ("none", "type", "returned None as the new state; expected a tensor of shape (3, 7)"),
    ("str", "type", "returned a str as the new state"),
    ("list", "type", "returned a list of 2 items (int, int) as the new state"),
    ("broadcast", "shape", "returned a state of shape (3, 3, 7); expected (3, 7)"),
])
def test_wrong_outputs_are_subject_output_errors(mode, kind, text):
    s = adapt_module(ReturnsWhatItIsTold(5, 7), id="w", input_size=5, hidden_size=7)
    s.module.mode = mode
    with pytest.raises(SubjectOutputError) as info:
        s.run(*inputs())
    assert info.value.kind == kind
    assert text in info.value.message
    assert info.value.location.qualname == "ReturnsWhatItIsTold.forward"
    if kind == "shape":
        assert (info.value.expected, info.value.got) == ((3, 7), (3, 3, 7))


def test_a_broken_gru_cell_is_adapted_only_when_allowed():
    class BrokenGRUCell(ReturnsWhatItIsTold):
        pass

    cell = BrokenGRUCell(5, 7)
    cell.mode = "broadcast"
    with pytest.raises(NotASubject, match=r"returned a state of shape \(3, 3, 7\)"):
        adapt_module(cell, id="b", input_size=5, hidden_size=7)
    s = adapt_module(cell, id="b", input_size=5, hidden_size=7, allow_broken=True)
    assert s.kind == "torch-cell" and any("no trial call" in n for n in s.notes)
    with pytest.raises(SubjectOutputError):
        s.run(*inputs())


class Raiser(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(5, 7)

    def forward(self, x, h):
        if h.abs().max() > 10:
            raise ValueError("state exploded")
        return torch.tanh(self.lin(x) + h)


def test_exceptions_become_subject_raised_with_the_users_line():
    s = adapt_module(Raiser(), id="r")
    xs, h0 = inputs()
    with pytest.raises(SubjectRaised) as info:
        s.run(xs, h0 + 100)
    err = info.value
    assert err.exc_type == "ValueError" and "state exploded" in err.message
    assert err.location.file == HERE
    assert "raise ValueError" in open(HERE).readlines()[err.location.line - 1]


class SpinningCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lin = nn.Linear(input_size, hidden_size)

    def forward(self, x, h):
        while True:
            h = h + 0


def test_a_hanging_cell_costs_one_time_limit_not_one_per_trial():
    import time

    from grudiag.subjects import base

    base.set_call_time_limit(0.3)
    try:
        start = time.perf_counter()
        s = adapt_module(SpinningCell(5, 7), id="spin", input_size=5, hidden_size=7,
                         allow_broken=True)
        assert time.perf_counter() - start < 2.0
        assert any("did not return within 0.3 s" in n for n in s.notes)
        with pytest.raises(NotASubject, match="did not return"):
            adapt_module(SpinningCell(5, 7), id="spin", input_size=5, hidden_size=7)
    finally:
        base.set_call_time_limit(None)


class Float32Only(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lin = nn.Linear(input_size + hidden_size, hidden_size)
        self.hidden_size = hidden_size

    def forward(self, x, h):
        mask = torch.ones(self.hidden_size, self.hidden_size, dtype=torch.float32)
        return torch.tanh(self.lin(torch.cat([x, h], -1))) @ mask / self.hidden_size


def test_hard_coded_float32_falls_back_with_a_note():
    s = adapt_module(Float32Only(5, 7), id="f", input_size=5, hidden_size=7)
    assert s.dtype == torch.float32
    assert any("runs in float32" in n for n in s.notes)
    assert s.run(*inputs()).dtype == np.float64


class ZerosInForward(nn.Module):
    """Creates tensors with the default dtype inside forward: fine in float64 too."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lin = nn.Linear(input_size, hidden_size)
        self.hidden_size = hidden_size

    def forward(self, x, h):
        bias = torch.zeros(self.hidden_size)
        return torch.tanh(self.lin(x) + h @ torch.eye(self.hidden_size) + bias)


def test_default_dtype_tensors_inside_forward_stay_float64():
    s = adapt_module(ZerosInForward(5, 7), id="z", input_size=5, hidden_size=7)
    assert s.dtype == torch.float64 and not s.notes
    assert torch.get_default_dtype() == torch.float32


class Stateful(nn.Module):
    """Carries state across calls (a stale-state bug): fresh() must start over."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lin = nn.Linear(input_size, hidden_size)
        self.memory = None

    def forward(self, x, h):
        out = torch.tanh(self.lin(x) + h + (0 if self.memory is None else self.memory))
        self.memory = out
        return out


def test_fresh_subjects_do_not_share_state():
    s = adapt_module(Stateful(5, 7), id="s", input_size=5, hidden_size=7)
    xs, h0 = inputs()
    first = s.run(xs, h0)
    assert not np.allclose(first, s.run(xs, h0))
    np.testing.assert_array_equal(first, s.fresh().run(xs, h0))


def test_parameters_and_with_parameters():
    torch.manual_seed(1)
    cell = nn.GRUCell(5, 7)
    s = adapt_module(cell, id="c")
    params = s.parameters()
    assert set(params) == {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}
    assert all(v.dtype == np.float64 for v in params.values())
    zero_hh = s.with_parameters({"weight_hh": np.zeros((21, 7))})
    np.testing.assert_array_equal(zero_hh.parameters()["weight_hh"], 0)
    np.testing.assert_array_equal(zero_hh.parameters()["weight_ih"], params["weight_ih"])
    np.testing.assert_array_equal(s.parameters()["weight_hh"], params["weight_hh"])
    xs, h0 = inputs()
    assert not np.allclose(zero_hh.run(xs, h0), s.run(xs, h0))
    with pytest.raises(KeyError, match="W_hh"):
        s.with_parameters({"W_hh": np.zeros((21, 7))})
    with pytest.raises(ValueError, match="shape"):
        s.with_parameters({"weight_hh": np.zeros((7, 7))})


def test_the_users_module_is_never_touched():
    torch.manual_seed(2)
    cell = nn.GRUCell(5, 7)
    cell.bias_hh.requires_grad_(False)
    cell.eval()
    before = snapshot(cell)
    torch.set_grad_enabled(False)
    try:
        s = adapt_module(cell, id="c")
        xs, h0 = inputs()
        s.run(xs, h0)
        s.vjp(xs, h0, np.ones((6, 3, 7)))
        s.with_parameters({"weight_ih": np.zeros((21, 5))}).run(xs, h0)
        s.fresh().run(xs, h0)
        assert not torch.is_grad_enabled()
    finally:
        torch.set_grad_enabled(True)
    assert_untouched(cell, before)
    assert cell.weight_ih.grad is None


def test_parameter_locations_point_at_init():
    s = adapt_module(Float32Only(5, 7), id="f", input_size=5, hidden_size=7)
    locs = s.parameter_locations()
    assert set(locs) == {"lin.weight", "lin.bias"}
    assert "self.lin = nn.Linear" in open(HERE).readlines()[locs["lin.weight"].line - 1]
    assert adapt_module(nn.GRUCell(2, 3), id="g").parameter_locations() == {}


# --- gradients ---------------------------------------------------------------------------

def test_vjp_matches_autograd_on_nn_gru():
    torch.manual_seed(3)
    gru = nn.GRU(5, 7)
    s = adapt_module(gru, id="g")
    xs, h0 = inputs()
    dhs = np.random.default_rng(4).normal(size=(6, 3, 7))
    g = s.vjp(xs, h0, dhs)
    assert g.source == "autograd"
    ref = gru.double()
    x_t = torch.tensor(xs, requires_grad=True)
    h_t = torch.tensor(h0[None], requires_grad=True)
    out, _ = ref(x_t, h_t)
    grads = torch.autograd.grad(out, [x_t, h_t, *ref.parameters()], torch.tensor(dhs))
    np.testing.assert_allclose(g.xs, grads[0].numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(g.h0, grads[1][0].numpy(), rtol=1e-10, atol=1e-13)
    for (name, _), grad in zip(ref.named_parameters(), grads[2:]):
        np.testing.assert_allclose(g.params[name], grad.numpy(), rtol=1e-10, atol=1e-13)


class HalfUsed(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lin = nn.Linear(input_size, hidden_size)
        self.unused = nn.Parameter(torch.ones(hidden_size))

    def forward(self, x, h):
        return torch.tanh(self.lin(x) + 0.5 * h)


class Detaching(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lin = nn.Linear(input_size, hidden_size)

    def forward(self, x, h):
        return torch.tanh(self.lin(x) + 0.5 * h).detach()


def test_vjp_unused_parameter_is_none_and_cut_graphs_do_not_raise():
    s = adapt_module(HalfUsed(5, 7), id="u", input_size=5, hidden_size=7)
    xs, h0 = inputs()
    g = s.vjp(xs, h0, np.ones((6, 3, 7)))
    assert g.params["unused"] is None and g.params["lin.weight"] is not None
    d = adapt_module(Detaching(5, 7), id="d", input_size=5, hidden_size=7)
    g = d.vjp(xs, h0, np.ones((6, 3, 7)))
    assert all(v is None for v in g.params.values())
    assert not g.xs.any() and not g.h0.any()


class CountingFunction(torch.autograd.Function):
    calls = 0

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return torch.tanh(a)

    @staticmethod
    def backward(ctx, grad):
        CountingFunction.calls += 1
        (a,) = ctx.saved_tensors
        return grad * (1 - torch.tanh(a) ** 2)


class FunctionCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lin = nn.Linear(input_size + hidden_size, hidden_size)

    def forward(self, x, h):
        return CountingFunction.apply(self.lin(torch.cat([x, h], 1)))


def test_vjp_runs_the_users_custom_backward():
    s = adapt_module(FunctionCell(5, 7), id="f", input_size=5, hidden_size=7)
    CountingFunction.calls = 0
    s.vjp(*inputs(), np.ones((6, 3, 7)))
    assert CountingFunction.calls == 6


def test_torch_forward_is_differentiable_and_canonical():
    s = adapt_module(nn.GRU(5, 7, batch_first=True), id="g")
    xs_t = torch.tensor(inputs()[0], requires_grad=True)
    h0_t = torch.zeros(3, 7, dtype=torch.float64, requires_grad=True)
    hs = s.torch_forward(xs_t, h0_t)
    assert hs.shape == (6, 3, 7) and hs.requires_grad
    hs.sum().backward()
    assert xs_t.grad is not None and h0_t.grad is not None


# --- sequence models ---------------------------------------------------------------------

def test_nn_gru_batch_first_and_h0():
    torch.manual_seed(5)
    gru = nn.GRU(5, 7, batch_first=True)
    s = adapt_module(gru, id="g")
    assert isinstance(s, TorchSequenceSubject)
    assert (s.kind, s.layout, s.is_sequence, s.accepts_h0) == ("torch-sequence", "batch-first", True, True)
    xs, h0 = inputs()
    with torch.no_grad():
        out, _ = gru.double()(torch.tensor(xs).transpose(0, 1), torch.tensor(h0)[None])
    np.testing.assert_allclose(s.run(xs, h0), out.transpose(0, 1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(s.run_unbatched(xs[:, 2], h0[2]), out[2].numpy(), rtol=1e-12)


def test_stacked_bidirectional_gru_checks_layer_zero_forward():
    torch.manual_seed(6)
    gru = nn.GRU(5, 7, num_layers=2, bidirectional=True)
    s = adapt_module(gru, id="g")
    xs, h0 = inputs()
    single = nn.GRU(5, 7).double()
    with torch.no_grad():
        for name, p in single.named_parameters():
            p.copy_(getattr(gru, name))
        expected, _ = single(torch.tensor(xs), torch.tensor(h0)[None])
    np.testing.assert_allclose(s.run(xs, h0), expected.numpy(), rtol=1e-12)
    assert gru.num_layers == 2 and gru.weight_ih_l0.dtype == torch.float32


class CellLoop(nn.Module):
    """Sequence model without batch_first; batch-first or time-major as the test says."""

    def __init__(self, input_size, hidden_size, time_axis=1, takes_h0=True):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)
        self.time_axis = time_axis
        self.takes_h0 = takes_h0
        self.hidden_size = hidden_size

    def forward(self, x, h0=None):
        batch = x.shape[1 - self.time_axis]
        h = h0 if (h0 is not None and self.takes_h0) else x.new_zeros(batch, self.hidden_size)
        outs = []
        for t in range(x.shape[self.time_axis]):
            h = self.cell(x.select(self.time_axis, t), h)
            outs.append(h)
        return torch.stack(outs, self.time_axis), h


@pytest.mark.parametrize("time_axis, layout", [(0, "time-major"), (1, "batch-first")])
def test_layout_is_inferred_without_batch_first(time_axis, layout):
    s = adapt_module(CellLoop(5, 7, time_axis), id="l", input_size=5, hidden_size=7)
    assert s.layout == layout
    assert any("inferred" in n for n in s.notes)
    xs, h0 = inputs()
    np.testing.assert_allclose(s.run(xs, h0), loop(s.module.cell, xs, h0), rtol=1e-12)


def test_batch_first_attribute_is_trusted():
    model = CellLoop(5, 7, time_axis=1)
    model.batch_first = True
    s = adapt_module(model, id="l", input_size=5, hidden_size=7)
    assert s.layout == "batch-first" and not any("inferred" in n for n in s.notes)


class NoH0(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size)

    def forward(self, x):
        return self.gru(x)[0]


def test_forward_without_h0_sets_accepts_h0_false_and_ignores_h0():
    s = adapt_module(NoH0(5, 7), id="n", input_size=5, hidden_size=7)
    assert s.accepts_h0 is False and s.h0_mode == "none"
    assert any("cannot set h0" in n for n in s.notes)
    xs, h0 = inputs()
    np.testing.assert_array_equal(s.run(xs, h0), s.run(xs, np.zeros_like(h0)))


def test_a_wrapper_of_nn_gru_takes_h0_per_layer():
    class Wrapper(nn.Module):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.gru = nn.GRU(input_size, hidden_size)

        def forward(self, x, hidden):
            return self.gru(x, hidden)

    s = adapt_module(Wrapper(5, 7), id="w", input_size=5, hidden_size=7)
    assert (s.h0_mode, s.layout, s.accepts_h0) == ("layers", "time-major", True)


def test_per_step_mlp_is_not_a_subject_and_lstm_is_refused():
    mlp = nn.Sequential(nn.Linear(5, 7), nn.Tanh())

    class PerStep(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = mlp

        def forward(self, x):
            return self.net(x)

    with pytest.raises(NotASubject, match="not recurrent"):
        adapt_module(PerStep(), id="p", input_size=5, hidden_size=7)
    with pytest.raises(NotASubject, match="LSTM"):
        adapt_module(nn.LSTM(5, 7), id="l")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script, still in use
@pytest.mark.filterwarnings("ignore::UserWarning")  # ScriptModule.to() reads .grad of its params
def test_scripted_cells_work_and_lazy_ones_are_refused_with_advice():
    scripted = torch.jit.script(nn.GRUCell(5, 7))
    s = adapt_module(scripted, id="j")
    assert (s.kind, s.input_size, s.hidden_size) == ("torch-cell", 5, 7)
    assert s.run(*inputs()).shape == (6, 3, 7)

    class LazyCell(nn.Module):
        def __init__(self):
            super().__init__()
            self.lx, self.lh = nn.LazyLinear(7), nn.Linear(7, 7)

        def forward(self, x, h):
            return torch.tanh(self.lx(x) + self.lh(h))

    with pytest.raises(NotASubject, match="call it once on a batch"):
        adapt_module(LazyCell(), id="z")


def test_location_is_the_forward_definition():
    s = adapt_module(Raiser(), id="r")
    assert s.location.file == HERE and s.location.qualname == "Raiser.forward"
    assert open(HERE).readlines()[s.location.line - 1].strip().startswith("def forward")


# --- loading -----------------------------------------------------------------------------

def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_import_user_file_behaves_like_running_it(tmp_path):
    write(tmp_path, "helpers_for_cell.py", "SCALE = 3\n")
    path = write(tmp_path, "my_gru.py", """
        from helpers_for_cell import SCALE
        ran_main = False
        if __name__ == "__main__":
            ran_main = True
    """)
    module = import_user_file(path)
    assert module.SCALE == 3 and module.ran_main is False
    assert module.__file__ == path
    assert module.__name__ != "__main__" and sys.modules[module.__name__] is module
    assert import_user_file(path).__name__ != module.__name__


@pytest.mark.parametrize("name, text, message, line", [
    ("absent.py", None, "absent.py: no such file", None),
    ("notes.txt", "hello", "notes.txt: not a Python (.py) file", None),
    ("my_gru.py", "x = 1\ndef f(:\n    pass\n", "my_gru.py:2: SyntaxError: invalid syntax", 2),
    ("my_gru.py", "import numpy\n\n\ndef boom():\n    raise ValueError('bad size')\n\nboom()\n",
     "importing my_gru.py raised ValueError: bad size (my_gru.py:5)", 5),
    ("my_gru.py", "import sys\nsys.exit(3)\n", "importing my_gru.py raised SystemExit: 3 (my_gru.py:2)", 2),
    ("my_gru.py", "import not_a_module_anywhere\n",
     "importing my_gru.py raised ModuleNotFoundError: No module named 'not_a_module_anywhere' "
     "(my_gru.py:1)", 1),
])
def test_import_problems_name_file_line_and_error(tmp_path, name, text, message, line):
    path = str(tmp_path / name) if text is None else write(tmp_path, name, text)
    with pytest.raises(DiscoveryProblem) as info:
        import_user_file(path)
    assert info.value.message.startswith(message)
    assert info.value.location.line == line


def test_a_failed_import_leaves_no_module_behind(tmp_path):
    path = write(tmp_path, "half.py", "import torch\ntorch.set_default_dtype(torch.float64)\n1/0\n")
    names = set(sys.modules)
    with pytest.raises(DiscoveryProblem, match="ZeroDivisionError"):
        import_user_file(path)
    assert set(sys.modules) - names <= {"torch"}
    assert torch.get_default_dtype() == torch.float32


def test_guard_restores_everything_it_covers():
    torch.manual_seed(11)
    np.random.seed(11)
    random.seed(11)
    threads = torch.get_num_threads()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(11)
    np.random.seed(11)
    random.seed(11)
    err = np.geterr()
    with guarded_global_state(seed=0):
        torch.set_default_dtype(torch.float64)
        torch.set_grad_enabled(False)
        torch.set_num_threads(1)
        np.seterr(all="raise")
        torch.rand(100), np.random.rand(100), random.random()
    assert torch.get_default_dtype() == torch.float32
    assert torch.is_grad_enabled()
    assert torch.get_num_threads() == threads
    assert np.geterr() == err
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]


def test_guard_seeds_for_determinism():
    with guarded_global_state(seed=4):
        a = torch.rand(2), np.random.rand(2)
    with guarded_global_state(seed=4):
        b = torch.rand(2), np.random.rand(2)
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_nested_seeded_guards_leave_the_streams_to_the_outer_one():
    torch.manual_seed(11)
    np.random.seed(11)
    random.seed(11)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(11)
    np.random.seed(11)
    random.seed(11)
    draws = []
    with guarded_global_state():
        for _ in range(2):
            with guarded_global_state(seed=4):
                torch.set_default_dtype(torch.float64)
                draws.append((torch.rand(2), np.random.rand(2), random.random()))
            assert torch.get_default_dtype() == torch.float32  # the rest is still restored
        with guarded_global_state():  # unseeded: its streams are put back at once
            inner = np.random.rand(2)
        assert np.array_equal(np.random.rand(2), inner)
    assert torch.equal(draws[0][0], draws[1][0]) and np.array_equal(draws[0][1], draws[1][1])
    assert draws[0][2] == draws[1][2]
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]
