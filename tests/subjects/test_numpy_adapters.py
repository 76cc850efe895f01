"""NumPy class and function subjects: running, parameters, gradients, errors.

Every corpus file is re-computed here from the subject's own parameters with plain equations,
and every hand-written backward is checked against central finite differences in float64.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import textwrap

import numpy as np
import pytest

from grudiag.options import Options
from grudiag.subjects import function, numpy_class
from grudiag.subjects.base import GradientsUnavailable, SubjectOutputError, SubjectRaised

CORPUS = os.path.join(os.path.dirname(__file__), "..", "corpus")
_loaded: dict[str, object] = {}


def load(path: str):
    path = os.path.abspath(path)
    if path not in _loaded:
        name = "grudiag_test_" + os.path.basename(path)[:-3] + f"_{len(_loaded)}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _loaded[path] = module
    return _loaded[path]


def subjects(filename: str, options: Options | None = None) -> dict:
    options = options or Options()
    path = os.path.join(CORPUS, filename)
    module = load(path)
    found = numpy_class.find_candidates(module, path, options) + \
        function.find_candidates(module, path, options)
    return {c.id.split("::")[1]: c.build() for c in found}


def subject(filename: str, name: str, options: Options | None = None):
    return subjects(filename, options)[name]


def inputs(s, T=6, B=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, B, s.input_size)), rng.uniform(-0.5, 0.5, (B, s.hidden_size))


# ---------------------------------------------------------------------------------------------
# Straightforward re-computations, row form (x @ W), from the subject's parameters
# ---------------------------------------------------------------------------------------------

def sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def reset_before(x, h, W, U, b, update):
    """W/U/b: dicts z, r, n of (in, H), (H, H), (H,)."""
    z = sig(x @ W["z"] + h @ U["z"] + b["z"])
    r = sig(x @ W["r"] + h @ U["r"] + b["r"])
    n = np.tanh(x @ W["n"] + (r * h) @ U["n"] + b["n"])
    return (1 - z) * h + z * n if update == "chung" else z * h + (1 - z) * n


def reset_after(x, h, W, U, bi, bh, update):
    z = sig(x @ W["z"] + bi["z"] + h @ U["z"] + bh["z"])
    r = sig(x @ W["r"] + bi["r"] + h @ U["r"] + bh["r"])
    n = np.tanh(x @ W["n"] + bi["n"] + r * (h @ U["n"] + bh["n"]))
    return (1 - z) * h + z * n if update == "chung" else z * h + (1 - z) * n


def split3(a, H):
    return {"z": a[..., :H], "r": a[..., H:2 * H], "n": a[..., 2 * H:]}


def step_row_split(p, x, h):
    W = {g: p["W" + k] for g, k in zip("zrn", "zrh")}
    U = {g: p["U" + k] for g, k in zip("zrn", "zrh")}
    b = {g: p["b" + k] for g, k in zip("zrn", "zrh")}
    return reset_before(x, h, W, U, b, "chung")


def step_column(p, x, h):
    W = {g: p["W_" + k].T for g, k in zip("zrn", "zrh")}
    U = {g: p["U_" + k].T for g, k in zip("zrn", "zrh")}
    b = {g: p["b_" + k].ravel() for g, k in zip("zrn", "zrh")}
    return reset_before(x, h, W, U, b, "cho")


def step_defaults(p, x, h):
    W = {g: p["W" + k].T for g, k in zip("zrn", "zrc")}
    U = {g: p["U" + k].T for g, k in zip("zrn", "zrc")}
    b = {g: p["b" + k].ravel() for g, k in zip("zrn", "zrc")}
    return reset_before(x, h, W, U, b, "chung")


def step_backward(p, x, h):
    W = {"z": p["Wxz"], "r": p["Wxr"], "n": p["Wxn"]}
    U = {"z": p["Whz"], "r": p["Whr"], "n": p["Whn"]}
    zero = np.zeros_like(p["bz"])
    return reset_after(x, h, W, U, {"z": p["bz"], "r": p["br"], "n": p["bxn"]},
                       {"z": zero, "r": zero, "n": p["bhn"]}, "cho")


def step_params_dict(p, x, h):
    W = {g: p["params.W_" + k] for g, k in zip("zrn", "zrh")}
    U = {g: p["params.U_" + k] for g, k in zip("zrn", "zrh")}
    b = {g: p["params.b_" + k] for g, k in zip("zrn", "zrh")}
    return reset_before(x, h, W, U, b, "chung")


def step_sequence(p, x, h):
    return reset_before(x, h, {g: p["W." + g] for g in "zrn"}, {g: p["U." + g] for g in "zrn"},
                        {g: p["b." + g] for g in "zrn"}, "chung")


def step_fused(p, x, h):
    I = x.shape[1]
    H = h.shape[1]
    W, b = p["W"], p["b"]
    return reset_before(x, h, split3(W[:I], H), split3(W[I:], H), split3(b, H), "chung")


def step_keras(p, x, h):
    H = h.shape[1]
    k, rk, b = p["kernel"], p["recurrent_kernel"], p["bias"]
    return reset_after(x, h, split3(k, H), split3(rk, H), split3(b[0], H), split3(b[1], H), "cho")


def step_vector(p, x, h):
    W = {"z": p["Wxz"].T, "r": p["Wxr"].T, "n": p["Wxh"].T}
    U = {"z": p["Whz"].T, "r": p["Whr"].T, "n": p["Whh"].T}
    return reset_before(x, h, W, U, {"z": p["bz"], "r": p["br"], "n": p["bh"]}, "chung")


def step_seq_backward(p, x, h):
    H = h.shape[1]
    return reset_before(x, h, split3(p["Wx"], H), split3(p["Wh"], H), split3(p["b"], H), "chung")


def step_torch(p, x, h, prefix=""):
    W = {g: p[f"{prefix}W_i{g}"].T for g in "zrn"}
    U = {g: p[f"{prefix}W_h{g}"].T for g in "zrn"}
    bi = {g: p[f"{prefix}b_i{g}"] for g in "zrn"}
    bh = {g: p[f"{prefix}b_h{g}"] for g in "zrn"}
    return reset_after(x, h, W, U, bi, bh, "cho")


def step_ng(p, x, h):
    H = h.shape[1]
    W = {g: p["W" + k][:, H:].T for g, k in zip("zrn", "urc")}
    U = {g: p["W" + k][:, :H].T for g, k in zip("zrn", "urc")}
    b = {g: p["b" + k].ravel() for g, k in zip("zrn", "urc")}
    return reset_before(x, h, W, U, b, "chung")


def step_row_cache(p, x, h):
    H = h.shape[1]
    gi = {"r": 0, "z": 1, "n": 2}

    def blocks(a):
        return {g: a[..., i * H:(i + 1) * H] for g, i in gi.items()}

    return reset_after(x, h, blocks(p["W_ih"]), blocks(p["W_hh"]), blocks(p["b_ih"]),
                       blocks(p["b_hh"]), "cho")


def step_pair(p, x, h):
    W = {g: p["W" + k] for g, k in zip("zrn", "urc")}
    U = {g: p["U" + k] for g, k in zip("zrn", "urc")}
    b = {g: p["b" + k] for g, k in zip("zrn", "urc")}
    return reset_before(x, h, W, U, b, "cho")


RECOMPUTE = [
    ("numpy_row_split.py", "GRUCell", step_row_split),
    ("numpy_column.py", "GRU", step_column),
    ("numpy_defaults.py", "TinyGRU", step_defaults),
    ("numpy_backward.py", "GRUCellWithGrad", step_backward),
    ("numpy_params_dict.py", "DictGRU", step_params_dict),
    ("numpy_sequence.py", "GRULayer", step_sequence),
    ("numpy_fused.py", "FusedGRUCell", step_fused),
    ("numpy_keras.py", "KerasGRUCell", step_keras),
    ("numpy_vector.py", "CharGRU", step_vector),
    ("numpy_seq_backward.py", "BatchFirstGRU", step_seq_backward),
    ("numpy_nested.py", "GRUCell", step_torch),
    ("numpy_nested.py", "Encoder", lambda p, x, h: step_torch(p, x, h, "cell.")),
    ("fn_andrew_ng.py", "gru_cell_forward", step_ng),
    ("fn_andrew_ng.py", "gru_forward", step_ng),
    ("fn_row_cache.py", "gru_step", step_row_cache),
    ("fn_row_cache.py", "run_gru", step_row_cache),
    ("fn_pair.py", "cell_forward", step_pair),
]


@pytest.mark.parametrize("filename,name,step", RECOMPUTE, ids=[f"{f}::{n}" for f, n, _ in RECOMPUTE])
def test_run_matches_recomputation(filename, name, step):
    s = subject(filename, name)
    xs, h0 = inputs(s)
    hs = s.run(xs, h0)
    assert hs.shape == (6, 3, s.hidden_size) and hs.dtype == np.float64
    assert np.isfinite(hs).all()
    p = s.parameters()
    h, expected = h0, []
    for x in xs:
        h = step(p, x, h)
        expected.append(h)
    np.testing.assert_allclose(hs, np.stack(expected), rtol=1e-12, atol=1e-12)
    # one step and a batch of one go through the same translation
    np.testing.assert_allclose(s.step(xs[0], h0), expected[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.run(xs[:, :1], h0[:1]), np.stack(expected)[:, :1], atol=1e-12)


def test_unbatched_path_matches_batched_run():
    for filename, name in [("numpy_row_split.py", "GRUCell"), ("fn_row_cache.py", "run_gru"),
                           ("numpy_vector.py", "CharGRU")]:
        s = subject(filename, name)
        assert s.supports_unbatched
        xs, h0 = inputs(s, B=1)
        np.testing.assert_allclose(s.run_unbatched(xs[:, 0], h0[0]), s.run(xs, h0)[:, 0],
                                   atol=1e-12)
    s = subject("numpy_column.py", "GRU")
    assert not s.supports_unbatched  # its (H, 1) biases broadcast a 1-D state to (H, H)
    with pytest.raises(NotImplementedError):
        s.run_unbatched(*inputs(s, B=1))


# ---------------------------------------------------------------------------------------------
# Gradients: the user's backward against central finite differences
# ---------------------------------------------------------------------------------------------

SMALL = Options(input_size=3, hidden_size=4, batch=2, time=5)
WITH_BACKWARD = [
    ("numpy_backward.py", "GRUCellWithGrad"),
    ("numpy_params_dict.py", "DictGRU"),
    ("numpy_seq_backward.py", "BatchFirstGRU"),
    ("fn_andrew_ng.py", "gru_cell_forward"),
    ("fn_andrew_ng.py", "gru_forward"),
    ("fn_pair.py", "cell_forward"),
]


def _objective(s, xs, h0, dhs):
    return float(np.sum(dhs * s.run(xs, h0)))


def _fd(f, value, eps=1e-6):
    grad = np.zeros_like(value)
    for idx in np.ndindex(value.shape):
        plus, minus = value.copy(), value.copy()
        plus[idx] += eps
        minus[idx] -= eps
        grad[idx] = (f(plus) - f(minus)) / (2 * eps)
    return grad


@pytest.mark.parametrize("filename,name", WITH_BACKWARD, ids=[f"{f}::{n}" for f, n in WITH_BACKWARD])
def test_vjp_matches_finite_differences(filename, name):
    s = subject(filename, name, SMALL)
    assert (s.input_size, s.hidden_size) == (3, 4)
    assert s.gradient_source == "user-backward"
    rng = np.random.default_rng(1)
    xs, h0 = inputs(s, T=4, B=2, seed=1)
    dhs = rng.normal(size=(4, 2, 4))
    g = s.vjp(xs, h0, dhs)
    assert g.source == "user-backward"
    params = s.parameters()
    assert set(g.params) == set(params)
    for pname, value in params.items():
        assert g.params[pname] is not None, pname
        fd = _fd(lambda v: _objective(s.with_parameters({pname: v}), xs, h0, dhs), value)
        np.testing.assert_allclose(g.params[pname], fd, rtol=1e-5, atol=1e-7, err_msg=pname)
    np.testing.assert_allclose(g.xs, _fd(lambda v: _objective(s, v, h0, dhs), xs),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g.h0, _fd(lambda v: _objective(s, xs, v, dhs), h0),
                               rtol=1e-5, atol=1e-7)
    assert not [n for n in s.notes if "no gradient" in n]


def test_vjp_unavailable_without_backward():
    s = subject("numpy_row_split.py", "GRUCell")
    assert s.gradient_source is None
    with pytest.raises(GradientsUnavailable):
        s.vjp(*inputs(s), np.zeros((6, 3, 7)))


# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------

def test_parameter_names_follow_the_users_paths():
    assert sorted(subject("numpy_params_dict.py", "DictGRU").parameters()) == sorted(
        f"params.{k}_{g}" for k in "WUb" for g in "zrh")
    assert sorted(subject("numpy_sequence.py", "GRULayer").parameters()) == sorted(
        f"{k}.{g}" for k in "WUb" for g in "zrn")
    assert "cell.W_hn" in subject("numpy_nested.py", "Encoder").parameters()
    # gradients and optimiser memories kept on the object are not parameters
    s = subject("numpy_backward.py", "GRUCellWithGrad")
    assert sorted(s.parameters()) == sorted(
        ["Wxz", "Whz", "bz", "Wxr", "Whr", "br", "Wxn", "Whn", "bxn", "bhn"])
    assert sorted(subject("fn_andrew_ng.py", "gru_cell_forward").parameters()) == sorted(
        ["Wu", "bu", "Wr", "br", "Wc", "bc"])


def test_with_parameters_copies_and_leaves_the_original_alone():
    s = subject("numpy_row_split.py", "GRUCell")
    xs, h0 = inputs(s)
    before = s.run(xs, h0)
    p = s.parameters()
    p["Uz"] = p["Uz"] * 0.0
    changed = s.with_parameters({"Uz": p["Uz"]})
    assert np.all(changed.parameters()["Uz"] == 0)
    assert not np.allclose(changed.run(xs, h0), before)
    np.testing.assert_array_equal(s.run(xs, h0), before)
    assert np.any(s.parameters()["Uz"] != 0)
    # parameters() hands out copies
    s.parameters()["Wz"][...] = 99
    np.testing.assert_array_equal(s.run(xs, h0), before)
    with pytest.raises(KeyError):
        s.with_parameters({"nope": np.zeros(3)})
    with pytest.raises(ValueError):
        s.with_parameters({"Uz": np.zeros((3, 3))})
    np.testing.assert_array_equal(s.fresh().run(xs, h0), before)


def test_parameters_are_float64_even_when_the_user_used_float32(tmp_path):
    mod = _module(tmp_path, "f32.py", """
        import numpy as np
        class Cell32:
            def __init__(self, input_size, hidden_size):
                self.W = np.ones((input_size, hidden_size), dtype=np.float32) * 0.1
                self.U = np.eye(hidden_size, dtype=np.float32) * 0.5
            def forward(self, x, h):
                return np.tanh(x @ self.W + h @ self.U)
    """)
    s = _first_subject(mod)
    assert all(v.dtype == np.float64 for v in s.parameters().values())
    assert any("float32" in n for n in s.notes)


def test_parameter_locations_point_at_the_assignments():
    s = subject("numpy_row_split.py", "GRUCell")
    loc = s.parameter_locations()["Uz"]
    lines = open(os.path.join(CORPUS, "numpy_row_split.py")).read().splitlines()
    assert lines[loc.line - 1].strip().startswith("self.Uz =")
    s = subject("fn_andrew_ng.py", "gru_cell_forward")
    loc = s.parameter_locations()["Wr"]
    lines = open(os.path.join(CORPUS, "fn_andrew_ng.py")).read().splitlines()
    assert lines[loc.line - 1].strip().startswith("Wr = np.random.randn")


def test_sizes_fixed_and_read_from_shapes_when_the_constructor_takes_none():
    s = subject("numpy_defaults.py", "TinyGRU")
    assert s.sizes_fixed and (s.input_size, s.hidden_size) == (8, 12)
    assert not subject("numpy_row_split.py", "GRUCell").sizes_fixed


def test_one_example_per_call_cells_are_batched_by_grudiag():
    s = subject("numpy_vector.py", "CharGRU")
    assert s.layout == "vector" and not s.batched and s.native_layout == "(I,)"
    assert s.batch_failure is not None
    assert any("one example at a time" in n for n in s.notes)


# ---------------------------------------------------------------------------------------------
# Errors from the user's code
# ---------------------------------------------------------------------------------------------

def _module(tmp_path, filename, source):
    path = tmp_path / filename
    path.write_text(textwrap.dedent(source))
    return load(str(path))


def _first_subject(mod):
    return numpy_class.find_candidates(mod, mod.__file__, Options())[0].build()


BROKEN = """
    import numpy as np

    class SqueezeCell:
        def __init__(self, input_size, hidden_size):
            self.W = np.full((input_size, hidden_size), 0.1)
            self.U = np.eye(hidden_size) * 0.5

        def forward(self, x, h_prev):
            if np.abs(x).max() > 100:
                raise ValueError("input out of range")
            return np.squeeze(np.tanh(x @ self.W + h_prev @ self.U))

    class NoneCell:
        def __init__(self, input_size, hidden_size):
            self.W = np.zeros((input_size, hidden_size))

        def forward(self, x, h_prev):
            h = np.tanh(x @ self.W + h_prev)

    class TransposedCell:
        def __init__(self, input_size, hidden_size):
            self.W = np.ones((input_size, hidden_size))

        def forward(self, x, h_prev):
            return np.tanh(x @ self.W + h_prev).T
"""


def test_user_errors_become_subject_errors(tmp_path):
    mod = _module(tmp_path, "broken_cells.py", BROKEN)
    found = {c.id.split("::")[1]: c for c in numpy_class.find_candidates(mod, mod.__file__,
                                                                         Options())}
    s = found["SqueezeCell"].build()
    assert s.layout == "row"
    xs, h0 = inputs(s)
    with pytest.raises(SubjectRaised) as raised:
        s.run(xs * 1000, h0)
    assert raised.value.location.file == os.path.abspath(mod.__file__)
    assert raised.value.location.line == 11 and raised.value.exc_type == "ValueError"
    # np.squeeze drops the batch axis of a batch of one: a shape error, with both shapes
    with pytest.raises(SubjectOutputError) as bad:
        s.run(xs[:, :1], h0[:1])
    assert bad.value.kind == "shape" and bad.value.expected == (1, 7) and bad.value.got == (7,)
    assert "SqueezeCell.forward" in bad.value.message

    with pytest.raises(SubjectOutputError) as none:
        found["NoneCell"].build()
    assert none.value.kind == "type" and "None" in none.value.message
    # .T is harmless on 1-D arrays: grudiag runs it one example at a time and keeps the batched
    # failure for the shape checks
    s = found["TransposedCell"].build()
    assert (s.layout, s.batched) == ("vector", False)
    failure = s.batch_failure
    assert isinstance(failure, SubjectOutputError) and failure.kind == "shape"
    assert (failure.expected, failure.got) == ((3, 7), (7, 3))
    assert failure.location.qualname == "TransposedCell.forward"


def test_constructor_errors_are_raised_during_construct(tmp_path):
    mod = _module(tmp_path, "bad_init.py", """
        import numpy as np
        class GRUCell:
            def __init__(self, input_size, hidden_size):
                self.W = np.zeros((input_size, hidden_size))
                raise RuntimeError("cuda not available")
            def forward(self, x, h):
                return h
    """)
    cand = numpy_class.find_candidates(mod, mod.__file__, Options())[0]
    with pytest.raises(SubjectRaised) as raised:
        cand.build()
    assert raised.value.during == "construct" and raised.value.location.line == 6


GRADIENT_QUIRKS = """
    import numpy as np

    class NoPrevGrad:
        '''backward forgets dh_prev and names one gradient oddly.'''
        def __init__(self, input_size, hidden_size):
            self.W = np.full((input_size, hidden_size), 0.2)
            self.U = np.eye(hidden_size) * 0.3
            self.b = np.zeros(hidden_size)

        def forward(self, x, h_prev):
            self.x, self.h_prev = x, h_prev
            self.h = np.tanh(x @ self.W + h_prev @ self.U + self.b)
            return self.h

        def backward(self, dh):
            da = dh * (1 - self.h ** 2)
            return {"dW": self.x.T @ da, "dU": self.h_prev.T @ da, "bias_gradient": da.sum(0),
                    "dx": da @ self.W.T}

    class SgdInBackward:
        '''backward updates the weights itself and returns nothing.'''
        def __init__(self, input_size, hidden_size):
            self.W = np.full((input_size, hidden_size), 0.2)
            self.U = np.eye(hidden_size) * 0.3

        def forward(self, x, h_prev):
            self.x, self.h_prev = x, h_prev
            self.h = np.tanh(x @ self.W + h_prev @ self.U)
            return self.h

        def backward(self, dh, lr=0.1):
            da = dh * (1 - self.h ** 2)
            self.W -= lr * self.x.T @ da
            self.U -= lr * self.h_prev.T @ da

    class StoresGrads:
        '''backward leaves its gradients on the object, PyTorch-style.'''
        def __init__(self, input_size, hidden_size):
            self.W = np.full((input_size, hidden_size), 0.2)
            self.U = np.eye(hidden_size) * 0.3
            self.dW = np.zeros_like(self.W)
            self.dU = np.zeros_like(self.U)

        def forward(self, x, h_prev):
            self.x, self.h_prev = x, h_prev
            self.h = np.tanh(x @ self.W + h_prev @ self.U)
            return self.h

        def backward(self, dh):
            da = dh * (1 - self.h ** 2)
            self.dW += self.x.T @ da
            self.dU += self.h_prev.T @ da
            self.dx = da @ self.W.T
            self.dh_prev = da @ self.U.T
"""


def test_backward_quirks(tmp_path):
    mod = _module(tmp_path, "quirks.py", GRADIENT_QUIRKS)
    found = {c.id.split("::")[1]: c.build()
             for c in numpy_class.find_candidates(mod, mod.__file__, Options())}

    s = found["NoPrevGrad"]
    assert s.gradient_source == "user-backward"
    assert sorted(s.parameters()) == ["U", "W", "b"]  # self.x / self.h are caches
    xs, h0 = inputs(s, T=3)
    g = s.vjp(xs, h0, np.ones((3, 3, 7)))
    assert g.params["b"] is None and g.params["W"] is not None
    assert np.all(g.h0 == 0)
    assert any("h_prev" in n for n in s.notes) and any("bias_gradient" in n for n in s.notes)
    assert any("no gradient for b" in n for n in s.notes)

    s = found["SgdInBackward"]
    assert s.gradient_source is None
    assert any("None" in n for n in s.notes)

    s = found["StoresGrads"]
    assert s.gradient_source == "user-backward"
    dhs = np.random.default_rng(0).normal(size=(3, 3, 7))
    g = s.vjp(xs, h0, dhs)
    fd = _fd(lambda v: _objective(s.with_parameters({"U": v}), xs, h0, dhs),
             s.parameters()["U"])
    np.testing.assert_allclose(g.params["U"], fd, rtol=1e-5, atol=1e-7)


def test_wrong_gradient_shape_is_an_output_error(tmp_path):
    mod = _module(tmp_path, "bad_grad.py", """
        import numpy as np
        class BiasNotSummed:
            def __init__(self, input_size, hidden_size):
                self.W = np.full((input_size, hidden_size), 0.2)
                self.b = np.zeros(hidden_size)
            def forward(self, x, h_prev):
                self.x, self.h = x, np.tanh(x @ self.W + h_prev + self.b)
                return self.h
            def backward(self, dh):
                da = dh * (1 - self.h ** 2)
                return {"dW": self.x.T @ da, "db": da, "dx": da @ self.W.T, "dh_prev": da}
    """)
    s = _first_subject(mod)
    assert s.gradient_source == "user-backward"
    with pytest.raises(SubjectOutputError) as bad:
        s.vjp(*inputs(s), np.ones((6, 3, 7)))
    assert bad.value.kind == "shape" and bad.value.expected == (7,) and bad.value.got == (3, 7)


# ---------------------------------------------------------------------------------------------
# Isolation: global RNG, the user's objects, carried state
# ---------------------------------------------------------------------------------------------

def test_global_rng_untouched_and_builds_reproducible():
    state = np.random.get_state()
    a = subject("numpy_row_split.py", "GRUCell")
    b = subject("numpy_row_split.py", "GRUCell")
    c = subject("fn_andrew_ng.py", "gru_cell_forward")  # its factory calls np.random.seed(1)
    a.run(*inputs(a))
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]
    for name, value in a.parameters().items():
        np.testing.assert_array_equal(value, b.parameters()[name])
    other = subject("numpy_row_split.py", "GRUCell", Options(seed=1))
    assert not np.allclose(other.parameters()["Wz"], a.parameters()["Wz"])
    assert c.parameters()


def test_user_instance_and_params_are_never_touched():
    mod = load(os.path.join(CORPUS, "numpy_params_dict.py"))
    cell = mod.DictGRU(4, 6)
    snapshot = {k: v.copy() for k, v in cell.params.items()}
    s = numpy_class.candidate_for_object(cell, Options(), name="cell").build()
    assert (s.input_size, s.hidden_size, s.sizes_fixed) == (4, 6, True)
    s.with_parameters({"params.W_z": np.zeros((4, 6))}).run(*inputs(s))
    s.vjp(*inputs(s), np.ones((6, 3, 6)))
    for k, v in snapshot.items():
        np.testing.assert_array_equal(cell.params[k], v)

    fmod = load(os.path.join(CORPUS, "fn_pair.py"))
    params = fmod.make_params(4, 6)
    before = {k: v.copy() for k, v in params.items()}
    s = function.candidate_for_object((fmod.cell_forward, params, fmod.cell_backward),
                                      Options()).build()
    assert (s.input_size, s.hidden_size, s.kind) == (4, 6, "function-pair")
    s.with_parameters({"Wu": np.zeros((4, 6))}).run(*inputs(s))
    for k, v in before.items():
        np.testing.assert_array_equal(params[k], v)


def test_state_carried_by_the_object_is_visible_across_calls(tmp_path):
    # A stale-state bug must stay measurable: run() keeps using one working copy.
    mod = _module(tmp_path, "stale.py", """
        import numpy as np
        class LeakyCell:
            def __init__(self, input_size, hidden_size):
                self.W = np.full((input_size, hidden_size), 0.1)
                self.calls = 0
            def forward(self, x, h_prev):
                self.calls += 1
                return np.tanh(x @ self.W + h_prev + 0.01 * self.calls)
    """)
    s = _first_subject(mod)
    xs, h0 = inputs(s)
    assert not np.allclose(s.run(xs, h0), s.run(xs, h0))
    np.testing.assert_array_equal(s.fresh().run(xs, h0), s.fresh().run(xs, h0))


def test_canonical_cell_agrees_with_the_reference_gru():
    from grudiag.reference import numpy_gru

    for name, prefix in [("GRUCell", ""), ("Encoder", "cell.")]:
        s = subject("numpy_nested.py", name)
        params = {k[len(prefix):]: v for k, v in s.parameters().items()}
        xs, h0 = inputs(s)
        expected, _ = numpy_gru.forward(params, xs, h0)
        np.testing.assert_allclose(s.run(xs, h0), expected, rtol=1e-12, atol=1e-12)


SGD_AND_GRADIENTS = """
    import numpy as np

    class SgdAndGradients:
        '''A correct backward that also takes an SGD step on its weights in place.'''
        def __init__(self, input_size, hidden_size):
            rng = np.random.default_rng(1)
            self.W = rng.normal(0, 0.5, (input_size, hidden_size))
            self.U = rng.normal(0, 0.5, (hidden_size, hidden_size))

        def forward(self, x, h_prev):
            self.x, self.h_prev = x, h_prev
            self.h = np.tanh(x @ self.W + h_prev @ self.U)
            return self.h

        def backward(self, dh):
            da = dh * (1 - self.h ** 2)
            grads = {"dW": self.x.T @ da, "dU": self.h_prev.T @ da,
                     "dx": da @ self.W.T, "dh_prev": da @ self.U.T}
            self.W -= 0.5 * grads["dW"]
            self.U -= 0.5 * grads["dU"]
            return grads
"""


def test_per_step_copies_stay_separate_when_a_backward_changes_weights_in_place(tmp_path):
    # The per-step copies of one vjp share their parameters; an in-place update by one step's
    # backward must not reach the next step's (nor the subject's own parameters).
    mod = _module(tmp_path, "sgd_grads.py", SGD_AND_GRADIENTS)
    s = _first_subject(mod)
    assert s.gradient_source == "user-backward"
    before = s.parameters()
    xs, h0 = inputs(s, T=3)
    dhs = np.random.default_rng(2).normal(size=(3, 3, s.hidden_size))
    g = s.vjp(xs, h0, dhs)
    for name, value in before.items():
        np.testing.assert_array_equal(s.parameters()[name], value)
    fd_u = _fd(lambda v: _objective(s.with_parameters({"U": v}), xs, h0, dhs), before["U"])
    np.testing.assert_allclose(g.params["U"], fd_u, rtol=1e-6, atol=1e-8)
    fd_h0 = _fd(lambda v: _objective(s, xs, v, dhs), h0)
    np.testing.assert_allclose(g.h0, fd_h0, rtol=1e-6, atol=1e-8)


ALIASED_WEIGHTS = """
    import numpy as np

    class AliasedWeights:
        '''Reads W through a dict that holds the same array as the attribute.'''
        def __init__(self, input_size, hidden_size):
            rng = np.random.default_rng(3)
            self.W = rng.normal(0, 0.5, (input_size, hidden_size))
            self.U = rng.normal(0, 0.5, (hidden_size, hidden_size))
            self.weights = {"W": self.W}

        def forward(self, x, h_prev):
            return np.tanh(x @ self.weights["W"] + h_prev @ self.U)
"""


def test_with_parameters_reaches_every_reference_and_checks_at_once(tmp_path):
    mod = _module(tmp_path, "aliased.py", ALIASED_WEIGHTS)
    s = _first_subject(mod)
    xs, h0 = inputs(s, T=2)
    before = s.run(xs, h0)
    name = next(n for n in s.parameters() if s.parameters()[n].shape[0] == s.input_size)
    zero = s.with_parameters({name: np.zeros_like(s.parameters()[name])})
    # the dict entry is the same array as the attribute: the copy's forward sees the new value
    np.testing.assert_allclose(zero.run(xs, h0)[0], np.tanh(h0 @ s.parameters()["U"]),
                               rtol=1e-12)
    np.testing.assert_array_equal(s.run(xs, h0), before)  # the original is untouched
    with pytest.raises(KeyError, match="unknown parameter 'nope'"):
        s.with_parameters({"nope": np.zeros(3)})
    with pytest.raises(ValueError, match="has shape"):
        s.with_parameters({"U": np.zeros((2, 2))})
