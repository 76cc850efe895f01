"""Discovery of NumPy classes and functions (DESIGN §5.4-5.5) over the user-style corpus."""
from __future__ import annotations

import importlib.util
import os
import sys
import textwrap

import numpy as np
import pytest

from grudiag.options import Options
from grudiag.subjects import function, numpy_class
from grudiag.subjects.base import Candidate

CORPUS = os.path.join(os.path.dirname(__file__), "..", "corpus")


def load(path: str):
    name = "grudiag_disc_" + os.path.basename(path)[:-3] + f"_{abs(hash(path))}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def discover(path: str, options: Options | None = None) -> list[Candidate]:
    options = options or Options()
    module = load(path)
    return numpy_class.find_candidates(module, path, options) + \
        function.find_candidates(module, path, options)


# file -> every subject it holds: (id, kind, input_size, hidden_size, layout, gradient_source)
EXPECTED = {
    "numpy_row_split.py": [("numpy_row_split.py::GRUCell", "numpy-cell", 5, 7, "row", None)],
    "numpy_column.py": [("numpy_column.py::GRU", "numpy-cell", 5, 7, "column", None)],
    "numpy_backward.py": [("numpy_backward.py::GRUCellWithGrad", "numpy-cell", 5, 7, "row",
                           "user-backward")],
    "numpy_params_dict.py": [("numpy_params_dict.py::DictGRU", "numpy-cell", 5, 7, "row",
                              "user-backward")],
    "numpy_sequence.py": [("numpy_sequence.py::GRULayer", "numpy-sequence", 5, 7, "row", None)],
    "numpy_fused.py": [("numpy_fused.py::FusedGRUCell", "numpy-cell", 5, 7, "row", None)],
    "numpy_keras.py": [("numpy_keras.py::KerasGRUCell", "numpy-cell", 5, 7, "row", None)],
    "numpy_defaults.py": [("numpy_defaults.py::TinyGRU", "numpy-cell", 8, 12, "column", None)],
    "numpy_vector.py": [("numpy_vector.py::CharGRU", "numpy-cell", 5, 7, "vector", None)],
    "numpy_seq_backward.py": [("numpy_seq_backward.py::BatchFirstGRU", "numpy-sequence", 5, 7,
                               "row", "user-backward")],
    "numpy_nested.py": [("numpy_nested.py::GRUCell", "numpy-cell", 5, 7, "row", None),
                        ("numpy_nested.py::Encoder", "numpy-sequence", 5, 7, "row", None)],
    "fn_andrew_ng.py": [
        ("fn_andrew_ng.py::gru_cell_forward", "function-pair", 5, 7, "column", "user-backward"),
        ("fn_andrew_ng.py::gru_forward", "function-pair", 5, 7, "column", "user-backward")],
    "fn_row_cache.py": [("fn_row_cache.py::gru_step", "function", 5, 7, "row", None),
                        ("fn_row_cache.py::run_gru", "function", 5, 7, "row", None)],
    "fn_pair.py": [("fn_pair.py::cell_forward", "function-pair", 5, 7, "row", "user-backward")],
}

#: the native shape of x each one is called with
NATIVE = {
    "numpy_row_split.py::GRUCell": "(B, I)", "numpy_column.py::GRU": "(I, B)",
    "numpy_sequence.py::GRULayer": "(T, B, I)", "numpy_vector.py::CharGRU": "(I,)",
    "numpy_seq_backward.py::BatchFirstGRU": "(B, T, I)", "numpy_nested.py::Encoder": "(T, B, I)",
    "fn_andrew_ng.py::gru_cell_forward": "(I, B)", "fn_andrew_ng.py::gru_forward": "(I, B, T)",
    "fn_row_cache.py::run_gru": "(T, B, I)",
}


def test_corpus_is_fully_covered():
    files = sorted(f for f in os.listdir(CORPUS) if f.startswith(("numpy_", "fn_")))
    assert files == sorted(EXPECTED)
    assert len(files) >= 12


@pytest.mark.parametrize("filename", sorted(EXPECTED))
def test_discovers_exactly(filename):
    path = os.path.join(CORPUS, filename)
    found = discover(path)
    built = [c.build() for c in found]
    got = [(s.id, s.kind, s.input_size, s.hidden_size, s.layout, s.gradient_source) for s in built]
    assert got == EXPECTED[filename]
    for cand, s in zip(found, built):
        assert cand.id == s.id
        assert s.backend == "numpy"
        assert s.is_sequence == (s.kind == "numpy-sequence" or s.native_layout.count("T") == 1)
        assert s.location.file == os.path.abspath(path)
        qual = s.location.qualname
        src = open(path).read().splitlines()[s.location.line - 1]
        assert src.lstrip().startswith("def " + qual.split(".")[-1])
        assert s.user_module is load(path)
        if s.id in NATIVE:
            assert s.native_layout == NATIVE[s.id]
        if cand.kind.startswith("function"):
            assert cand.kind == s.kind


def test_non_cells_are_ignored():
    # Adam.step(params, grads), softmax, update_parameters, sample(...) are not cells
    ids = [c.id for c in discover(os.path.join(CORPUS, "numpy_backward.py"))]
    assert ids == ["numpy_backward.py::GRUCellWithGrad"]
    ids = [c.id for c in discover(os.path.join(CORPUS, "fn_andrew_ng.py"))]
    assert "fn_andrew_ng.py::update_parameters" not in ids


def test_torch_modules_are_left_to_the_torch_adapters(tmp_path):
    mod, path = _module(tmp_path, "torch_cell.py", """
        import torch
        from torch import nn

        class TorchGRUCell(nn.Module):
            def __init__(self, input_size, hidden_size):
                super().__init__()
                self.lin = nn.Linear(input_size + hidden_size, hidden_size)
            def forward(self, x, h_prev):
                return torch.tanh(self.lin(torch.cat([x, h_prev], -1)))
    """)
    assert numpy_class.find_candidates(mod, path, Options()) == []
    assert numpy_class.candidate_for_object(mod.TorchGRUCell(5, 7), Options()) is None


def test_sizes_from_options():
    found = discover(os.path.join(CORPUS, "fn_andrew_ng.py"), Options(input_size=4, hidden_size=9))
    s = found[0].build()
    assert (s.input_size, s.hidden_size) == (4, 9)
    assert s.parameters()["Wu"].shape == (9, 13)


def _module(tmp_path, filename, source):
    path = tmp_path / filename
    path.write_text(textwrap.dedent(source))
    return load(str(path)), str(path)


def test_constructor_argument_names(tmp_path):
    mod, path = _module(tmp_path, "ctor_names.py", """
        import numpy as np

        class HiddenFirst:  # sizes in the "wrong" order, by keyword name
            def __init__(self, hidden_dim, input_dim):
                self.W = np.random.randn(input_dim, hidden_dim)
                self.U = np.random.randn(hidden_dim, hidden_dim)
            def forward(self, x, h_prev):
                return np.tanh(x @ self.W + h_prev @ self.U)

        class LetterSizes:
            def __init__(self, D, H, *, seed=0):
                rng = np.random.default_rng(seed)
                self.W, self.U = rng.normal(size=(H, D)), rng.normal(size=(H, H))
            def step(self, x, h):
                return np.tanh(self.W @ x + self.U @ h)

        class WithOutput:  # Andrew Ng's RNN has an output layer too
            def __init__(self, n_a, n_x, n_y):
                self.Wax = np.random.randn(n_a, n_x)
                self.Waa = np.random.randn(n_a, n_a)
                self.Wya = np.random.randn(n_y, n_a)
            def forward(self, xt, a_prev):
                a_next = np.tanh(self.Wax @ xt + self.Waa @ a_prev)
                return a_next, self.Wya @ a_next

        class Unbuildable:
            def __init__(self, config):
                self.W = config["W"]
            def forward(self, x, h):
                return h
    """)
    found = {c.id.split("::")[1]: c for c in numpy_class.find_candidates(mod, path, Options())}
    assert sorted(found) == ["HiddenFirst", "LetterSizes", "WithOutput"]
    for name, layout in [("HiddenFirst", "row"), ("LetterSizes", "column"), ("WithOutput", "column")]:
        s = found[name].build()
        assert (s.input_size, s.hidden_size, s.layout, s.sizes_fixed) == (5, 7, layout, False)


def test_sequence_vs_cell_when_both_readings_run(tmp_path):
    mod, path = _module(tmp_path, "ambiguous.py", """
        import numpy as np

        class Seq:  # named like a cell, but loops over time and returns (all, last)
            def __init__(self, input_size, hidden_size):
                self.W = np.random.randn(input_size, hidden_size) * 0.3
                self.U = np.random.randn(hidden_size, hidden_size) * 0.3
            def forward(self, inputs, state):
                out = []
                for x in inputs:
                    state = np.tanh(x @ self.W + state @ self.U)
                    out.append(state)
                return np.stack(out), state

        class LastOnly:  # returns only the final state
            def __init__(self, input_size, hidden_size):
                self.W = np.random.randn(input_size, hidden_size) * 0.3
                self.U = np.random.randn(hidden_size, hidden_size) * 0.3
            def forward(self, X, h0):
                h = h0
                for x in X:
                    h = np.tanh(x @ self.W + h @ self.U)
                return h

        class Cell:  # a cell fed a sequence broadcasts and runs too
            def __init__(self, input_size, hidden_size):
                self.W = np.random.randn(input_size, hidden_size) * 0.3
                self.U = np.random.randn(hidden_size, hidden_size) * 0.3
            def forward(self, inputs, state):
                return np.tanh(inputs @ self.W + state @ self.U)

        class CellNamedLikeASequence:  # names say sequence; no state flows from step to step
            def __init__(self, input_size, hidden_size):
                self.W = np.random.randn(input_size, hidden_size) * 0.3
                self.U = np.random.randn(hidden_size, hidden_size) * 0.3
            def forward(self, X, h0):
                return np.tanh(X @ self.W + h0 @ self.U)

        class OutputAndState:  # (h, y) with y shaped like h: the first is taken, with a note
            def __init__(self, input_size, hidden_size):
                self.W = np.random.randn(input_size, hidden_size) * 0.3
                self.V = np.random.randn(hidden_size, hidden_size) * 0.3
            def forward(self, x, h_prev):
                h = np.tanh(x @ self.W + h_prev)
                return h, h @ self.V
    """)
    found = {c.id.split("::")[1]: c.build() for c in numpy_class.find_candidates(mod, path,
                                                                                Options())}
    assert found["Seq"].kind == "numpy-sequence"
    assert found["LastOnly"].kind == "numpy-sequence"
    assert found["Cell"].kind == "numpy-cell"
    assert found["CellNamedLikeASequence"].kind == "numpy-cell"
    assert found["OutputAndState"].kind == "numpy-cell"
    assert any("several arrays" in n for n in found["OutputAndState"].notes)
    s = found["LastOnly"]
    rng = np.random.default_rng(0)
    xs, h0 = rng.normal(size=(4, 3, 5)), rng.normal(size=(3, 7))
    p = s.parameters()
    h, expected = h0, []
    for x in xs:
        h = np.tanh(x @ p["W"] + h @ p["U"])
        expected.append(h)
    np.testing.assert_allclose(s.run(xs, h0), np.stack(expected), atol=1e-12)
    assert any("prefix" in n for n in s.notes)


def test_candidate_for_object():
    opts = Options()
    row = load(os.path.join(CORPUS, "numpy_row_split.py"))
    cand = numpy_class.candidate_for_object(row.GRUCell(3, 4), opts, name="my_cell")
    s = cand.build()
    assert cand.id == "numpy_row_split.py::my_cell"
    assert (s.input_size, s.hidden_size, s.sizes_fixed) == (3, 4, True)  # from self.input_size
    s = numpy_class.candidate_for_object(row.GRUCell, opts).build()  # a class: grudiag's sizes
    assert (s.input_size, s.hidden_size, s.sizes_fixed) == (5, 7, False)
    assert numpy_class.candidate_for_object(np.zeros(3), opts) is None
    assert numpy_class.candidate_for_object(row.sigmoid, opts) is None

    ng = load(os.path.join(CORPUS, "fn_andrew_ng.py"))
    cand = function.candidate_for_object(ng.gru_cell_forward, opts)
    assert cand.kind == "function-pair" and cand.id == "fn_andrew_ng.py::gru_cell_forward"
    assert cand.build().layout == "column"
    params = ng.initialize_parameters(2, 3)
    s = function.candidate_for_object((ng.gru_cell_forward, params), opts, name="cell").build()
    assert (s.kind, s.input_size, s.hidden_size, s.gradient_source) == ("function", 2, 3, None)
    s = function.candidate_for_object((ng.gru_cell_forward, params, ng.gru_cell_backward),
                                      opts).build()
    assert (s.kind, s.gradient_source) == ("function-pair", "user-backward")
    assert function.candidate_for_object(ng.sigmoid, opts) is None
    assert function.candidate_for_object((ng.gru_cell_forward, 3), opts) is None


def test_functions_need_a_factory(tmp_path):
    mod, path = _module(tmp_path, "no_factory.py", """
        import numpy as np
        def gru_step(x, h_prev, params):
            return np.tanh(x @ params["W"] + h_prev @ params["U"])
    """)
    assert function.find_candidates(mod, path, Options()) == []
    assert function.candidate_for_object(mod.gru_step, Options()) is None


def test_backward_pairing_by_name(tmp_path):
    mod, path = _module(tmp_path, "pairs.py", """
        import numpy as np

        def get_params(input_size, hidden_size):
            rng = np.random.default_rng(0)
            return {"W": rng.normal(size=(input_size, hidden_size)),
                    "U": rng.normal(size=(hidden_size, hidden_size)) * 0.3}

        def rnn_step(x, h, params):
            h_new = np.tanh(x @ params["W"] + h @ params["U"])
            return h_new, (x, h, h_new, params)

        def rnn_step_grad(dh, cache):
            x, h, h_new, params = cache
            da = dh * (1 - h_new ** 2)
            return {"dW": x.T @ da, "dU": h.T @ da, "dx": da @ params["W"].T,
                    "dh": da @ params["U"].T}

        def clip_gradients(gradients, max_value):
            return {k: np.clip(v, -max_value, max_value) for k, v in gradients.items()}
    """)
    found = function.find_candidates(mod, path, Options())
    assert [(c.id, c.kind) for c in found] == [("pairs.py::rnn_step", "function-pair")]
    s = found[0].build()
    assert s.gradient_source == "user-backward"
    rng = np.random.default_rng(0)
    xs, h0, dhs = rng.normal(size=(3, 2, 5)), rng.normal(size=(2, 7)), rng.normal(size=(3, 2, 7))
    g = s.vjp(xs, h0, dhs)
    p = s.parameters()
    eps = 1e-6
    plus, minus = p["U"].copy(), p["U"].copy()
    plus[1, 2] += eps
    minus[1, 2] -= eps
    fd = (np.sum(dhs * s.with_parameters({"U": plus}).run(xs, h0))
          - np.sum(dhs * s.with_parameters({"U": minus}).run(xs, h0))) / (2 * eps)
    assert abs(g.params["U"][1, 2] - fd) < 1e-7
