"""Proves every layout conversion: exact round trips, and each converted form evaluated by a small
independent implementation of *that framework's* equations (written here from its documentation,
not from grudiag) matching the NumPy reference under the variant the conversion claims.
"""
import numpy as np
import pytest
import torch
from torch import nn

from grudiag.reference import conversions as cv
from grudiag.reference import numpy_gru as npg
from grudiag.reference import torch_gru as tg
from grudiag.reference.variants import CHO, PYTORCH, Variant

D, H, B, T = 5, 7, 3, 6


def problem(seed):
    rng = np.random.default_rng(seed)
    params = npg.init_params(D, H, rng, scale=0.8)
    return params, rng.standard_normal((T, B, D)), rng.uniform(-0.9, 0.9, (B, H))


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def max_diff_dicts(a, b):
    assert set(a) == set(b)
    return max(max_diff(a[k], b[k]) for k in a)


def sig(a):
    return 1.0 / (1.0 + np.exp(-a))


# ------------------------------------------- framework equations, batch as the leading axis


def keras_cell(x, h, kernel, recurrent_kernel, bias, reset_after):
    """Keras GRUCell (keras/src/layers/rnn/gru.py): x @ kernel, columns z | r | h."""
    U_z, U_r, U_h = np.split(recurrent_kernel, 3, axis=1)
    b_in, b_rec = (bias[0], bias[1]) if reset_after else (bias, np.zeros_like(bias))
    x_z, x_r, x_h = np.split(x @ kernel + b_in, 3, axis=-1)
    rb_z, rb_r, rb_h = np.split(b_rec, 3)
    z = sig(x_z + h @ U_z + rb_z)
    r = sig(x_r + h @ U_r + rb_r)
    hh = np.tanh(x_h + r * (h @ U_h + rb_h)) if reset_after else np.tanh(x_h + (r * h) @ U_h)
    return z * h + (1 - z) * hh


def onnx_cell(X, H_, W, R, B_, linear_before_reset):
    """ONNX GRU operator doc, f = Sigmoid, g = Tanh, one direction."""
    Wz, Wr, Wh = np.split(W[0], 3)
    Rz, Rr, Rh = np.split(R[0], 3)
    Wbz, Wbr, Wbh, Rbz, Rbr, Rbh = np.split(B_[0], 6)
    zt = sig(X @ Wz.T + H_ @ Rz.T + Wbz + Rbz)
    rt = sig(X @ Wr.T + H_ @ Rr.T + Wbr + Rbr)
    if linear_before_reset:
        ht = np.tanh(X @ Wh.T + rt * (H_ @ Rh.T + Rbh) + Wbh)
    else:
        ht = np.tanh(X @ Wh.T + (rt * H_) @ Rh.T + Rbh + Wbh)
    return (1 - zt) * ht + zt * H_


def split_cell(x, h, Wz, Uz, bz, Wr, Ur, br, Wh, Uh, bh, bhn=None):
    """Cho et al. 2014 with one bias per gate; reset-after when b_hn is given."""
    z = sig(x @ Wz.T + h @ Uz.T + bz)
    r = sig(x @ Wr.T + h @ Ur.T + br)
    if bhn is None:
        cand = np.tanh(x @ Wh.T + (r * h) @ Uh.T + bh)
    else:
        cand = np.tanh(x @ Wh.T + bh + r * (h @ Uh.T + bhn))
    return z * h + (1 - z) * cand


def ng_cell(x, c, Wu, bu, Wr, br, Wc, bc):
    """deeplearning.ai full GRU: [c, x] hidden first, Γ_u multiplies the candidate."""
    cx = np.concatenate([c, x], axis=-1)
    gamma_u = sig(cx @ Wu.T + bu)
    gamma_r = sig(cx @ Wr.T + br)
    c_tilde = np.tanh(np.concatenate([gamma_r * c, x], axis=-1) @ Wc.T + bc)
    return gamma_u * c_tilde + (1 - gamma_u) * c


def tf1_cell(x, h, gate_kernel, gate_bias, candidate_kernel, candidate_bias):
    """TF1 rnn_cell.GRUCell: [x, h] input first, gate columns r | u."""
    ru = sig(np.concatenate([x, h], axis=-1) @ gate_kernel + gate_bias)
    r, u = np.split(ru, 2, axis=-1)
    c = np.tanh(np.concatenate([x, r * h], axis=-1) @ candidate_kernel + candidate_bias)
    return u * h + (1 - u) * c


def run(cell, xs, h0, *weights, **kw):
    h, hs = h0, []
    for x in xs:
        h = cell(x, h, *weights, **kw)
        hs.append(h)
    return np.stack(hs)


# (name, to-layout, framework forward on the layout, variant the canonical params are read with)
LAYOUTS = {
    "keras reset_after=True": (lambda c: cv.to_keras(c, True),
                               lambda xs, h0, k: run(keras_cell, xs, h0, *k, reset_after=True), PYTORCH),
    "keras reset_after=False": (lambda c: cv.to_keras(c, False),
                                lambda xs, h0, k: run(keras_cell, xs, h0, *k, reset_after=False), CHO),
    "onnx lbr=1": (lambda c: cv.to_onnx(c, 1),
                   lambda xs, h0, o: run(onnx_cell, xs, h0, *o, linear_before_reset=1), PYTORCH),
    "onnx lbr=0": (lambda c: cv.to_onnx(c, 0),
                   lambda xs, h0, o: run(onnx_cell, xs, h0, *o, linear_before_reset=0), CHO),
    "split reset-after": (lambda c: cv.to_split(c, True),
                          lambda xs, h0, s: run(split_cell, xs, h0, **s), PYTORCH),
    "split reset-before": (lambda c: cv.to_split(c, False),
                           lambda xs, h0, s: run(split_cell, xs, h0, **s), CHO),
    "andrew ng concat [h, x]": (cv.to_concat_hx, lambda xs, h0, n: run(ng_cell, xs, h0, **n), CHO),
    "tf1 concat [x, h]": (cv.to_tf1, lambda xs, h0, t: run(tf1_cell, xs, h0, **t), CHO),
}

# Inverse of each layout, taking what the to-layout function returned.
FROM = {
    "keras reset_after=True": lambda k: cv.from_keras(*k),
    "keras reset_after=False": lambda k: cv.from_keras(*k),
    "onnx lbr=1": lambda o: cv.from_onnx(*o),
    "onnx lbr=0": lambda o: cv.from_onnx(*o),
    "split reset-after": lambda s: cv.from_split(**s),
    "split reset-before": lambda s: cv.from_split(**s),
    "andrew ng concat [h, x]": lambda n: cv.from_concat_hx(**n),
    "tf1 concat [x, h]": lambda t: cv.from_tf1(**t),
}

# Layouts with two biases per gate keep every canonical array; the others fold b_i + b_h.
LOSSLESS = {"keras reset_after=True", "onnx lbr=1", "onnx lbr=0"}


def as_tuple(layout):
    return tuple(layout.values()) if isinstance(layout, dict) else tuple(layout)


@pytest.mark.parametrize("name", LAYOUTS)
def test_framework_equations_on_converted_weights_match_reference(name, record_property):
    to_layout, framework_forward, variant = LAYOUTS[name]
    params, xs, h0 = problem(1)
    expected = npg.forward(params, xs, h0, variant)[0]
    err = max_diff(framework_forward(xs, h0, to_layout(params)), expected)
    record_property("max_abs_diff", err)
    assert err <= 1e-12


@pytest.mark.parametrize("name", LAYOUTS)
def test_layout_round_trips_exactly(name, record_property):
    to_layout, _, variant = LAYOUTS[name]
    params, xs, h0 = problem(2)
    layout = to_layout(params)
    back = FROM[name](layout)
    # Framework side: layout -> canonical -> layout is the identity for every layout.
    err = max(max_diff(a, b) for a, b in zip(as_tuple(to_layout(back)), as_tuple(layout)))
    assert all(a.shape == b.shape for a, b in zip(as_tuple(to_layout(back)), as_tuple(layout)))
    if name in LOSSLESS:
        err = max(err, max_diff_dicts(back, params))
    record_property("max_abs_diff", err)
    assert err <= 1e-15
    # Folded layouts give different but equivalent canonical parameters (the fold rounds once).
    equivalent = max_diff(npg.forward(back, xs, h0, variant)[0], npg.forward(params, xs, h0, variant)[0])
    record_property("function_diff", equivalent)
    assert equivalent <= 1e-14


def test_torch_layouts_round_trip_exactly():
    params, _, _ = problem(3)
    cell = cv.to_torch_cell(params)
    assert {k: v.shape for k, v in cell.items()} == {
        "weight_ih": (3 * H, D), "weight_hh": (3 * H, H), "bias_ih": (3 * H,), "bias_hh": (3 * H,)}
    assert max_diff_dicts(cv.from_torch_cell(**cell), params) == 0.0
    layer = cv.to_torch_gru_layer(params, layer=1, reverse=True)
    assert set(layer) == {"weight_ih_l1_reverse", "weight_hh_l1_reverse",
                          "bias_ih_l1_reverse", "bias_hh_l1_reverse"}
    assert max_diff_dicts(cv.from_torch_gru(layer, layer=1, reverse=True), params) == 0.0
    assert max_diff_dicts(cv.flip_update(cv.flip_update(params)), params) == 0.0


def test_torch_blocks_are_r_z_n_rows():
    params, _, _ = problem(4)
    cell = cv.to_torch_cell(params)
    np.testing.assert_array_equal(cell["weight_ih"][H:2 * H], params["W_iz"])
    np.testing.assert_array_equal(cell["bias_hh"][2 * H:], params["b_hn"])
    W, R, B_ = cv.to_onnx(params)
    np.testing.assert_array_equal(W[0, :H], params["W_iz"])  # ONNX puts z first
    np.testing.assert_array_equal(B_[0, 5 * H:], params["b_hn"])


def test_load_into_torch_modules_reproduces_reference(record_property):
    params, xs, h0 = problem(5)
    expected = npg.forward(params, xs, h0)[0]
    xs_t, h0_t = torch.from_numpy(xs), torch.from_numpy(h0)
    errs = []
    with torch.no_grad():
        cell = cv.load_into(nn.GRUCell(D, H, dtype=torch.float64), params)
        h, hs = h0_t, []
        for x in xs_t:
            h = cell(x, h)
            hs.append(h)
        errs.append(max_diff(torch.stack(hs).numpy(), expected))

        # Layer 1, reverse direction of a 2-layer bidirectional GRU, checked through from_torch_gru
        # and by running the layer on its own.
        params_l1 = npg.init_params(2 * H, H, np.random.default_rng(6))
        gru = cv.load_into(nn.GRU(D, H, num_layers=2, bidirectional=True, dtype=torch.float64),
                           params_l1, layer=1, reverse=True)
        assert max_diff_dicts(cv.from_torch_gru(gru, 1, True), params_l1) == 0.0

        single = cv.load_into(nn.GRU(D, H, dtype=torch.float32), params)  # dtype follows module
        out, _ = single(xs_t.float(), h0_t.float()[None])
        assert max_diff(out.double().numpy(), expected) <= 1e-5

        ours = cv.load_into(tg.ReferenceGRUCell(D, H, dtype=torch.float64), params)
        errs.append(max_diff(ours(xs_t[0], h0_t).numpy(), expected[0]))
    record_property("max_abs_diff", max(errs))
    assert max(errs) <= 1e-12


def test_load_into_refuses_biases_a_module_cannot_hold():
    params, _, _ = problem(7)
    with pytest.raises(ValueError):
        cv.load_into(nn.GRUCell(D, H, bias=False), params)
    no_bias = {k: params[k] for k in npg.WEIGHT_NAMES}
    cv.load_into(nn.GRUCell(D, H, bias=False), no_bias)  # zero biases fit
    with pytest.raises(ValueError):
        cv.load_into(nn.GRUCell(D + 1, H), params)


def test_from_torch_accepts_tensors_and_missing_biases():
    cell = nn.GRUCell(D, H, bias=False, dtype=torch.float64)
    c = cv.from_torch_cell(cell.weight_ih, cell.weight_hh)
    assert tuple(c) == npg.PARAM_NAMES and all(not c[k].any() for k in npg.BIAS_NAMES)
    assert all(v.dtype == np.float64 for v in c.values())
    c2 = cv.from_torch_gru(nn.GRU(D, H, bias=False), 0)
    assert all(not c2[k].any() for k in npg.BIAS_NAMES)
    with pytest.raises(KeyError, match="from_torch_cell"):
        cv.from_torch_gru(cell)


def test_keras_and_onnx_edge_cases():
    params, _, _ = problem(8)
    kernel, recurrent, bias = cv.to_keras(params)
    assert kernel.shape == (D, 3 * H) and recurrent.shape == (H, 3 * H) and bias.shape == (2, 3 * H)
    assert cv.to_keras(params, reset_after=False)[2].shape == (3 * H,)
    assert all(not v.any() for k, v in cv.from_keras(kernel, recurrent).items() if k.startswith("b_"))
    with pytest.raises(ValueError):
        cv.from_keras(kernel, recurrent, bias[:, :-1])
    # The arrays do not depend on linear_before_reset; only the node attribute does.
    assert all(np.array_equal(a, b) for a, b in zip(cv.to_onnx(params, 0), cv.to_onnx(params, 1)))
    with pytest.raises(ValueError):
        cv.to_onnx(params, 2)
    # A bidirectional node stacks [forward, reverse]; direction=1 reads the second.
    other, _, _ = problem(9)
    W, R, B_ = (np.concatenate(p) for p in zip(cv.to_onnx(params), cv.to_onnx(other)))
    assert max_diff_dicts(cv.from_onnx(W, R, B_, direction=1), other) == 0.0


def test_flip_update_keeps_missing_biases_missing():
    params, _, _ = problem(10)
    weights = {k: params[k] for k in npg.WEIGHT_NAMES}
    flipped = cv.flip_update(weights)
    assert set(flipped) == set(weights)
    np.testing.assert_array_equal(flipped["W_hz"], -weights["W_hz"])
    np.testing.assert_array_equal(flipped["W_hr"], weights["W_hr"])


def test_andrew_ng_form_is_the_chung_update_of_the_flipped_canonical():
    """Ng's Γ_u multiplies the candidate: his parameters, read as canonical ones, run with the
    chung update, which is the same as the converted canonical under the torch update."""
    params, xs, h0 = problem(11)
    ng = cv.to_concat_hx(params)
    as_chung = {"W_hz": ng["Wu"][:, :H], "W_iz": ng["Wu"][:, H:], "b_iz": ng["bu"], "b_hz": np.zeros(H),
                "W_hr": ng["Wr"][:, :H], "W_ir": ng["Wr"][:, H:], "b_ir": ng["br"], "b_hr": np.zeros(H),
                "W_hn": ng["Wc"][:, :H], "W_in": ng["Wc"][:, H:], "b_in": ng["bc"], "b_hn": np.zeros(H)}
    got = npg.forward(as_chung, xs, h0, Variant("reset-before", "chung"))[0]
    assert max_diff(got, npg.forward(params, xs, h0, CHO)[0]) <= 1e-14
