"""Proves the NumPy reference: forward against the torch reference, analytic BPTT against autograd
and finite differences, and the convention facts (family and update blind spots) the checker uses.

Sizes are all different (D=5, H=7, B=3, T=6) so a transposed or mis-sliced block cannot pass.
Every measured error is stored with ``record_property`` so it shows up in the junit report.
"""

import numpy as np
import pytest
import torch

from grudiag.reference import conversions
from grudiag.reference import numpy_gru as npg
from grudiag.reference import torch_gru as tg
from grudiag.reference.variants import ALL_VARIANTS, CHO, PYTORCH, Variant

D, H, B, T = 5, 7, 3, 6
LOSS_STEPS = {"steps 2 and 5": [2, 5], "all steps": list(range(T))}


def problem(seed, scale=0.8):
    """Generic weights (non-zero biases), inputs and a non-zero h0; scale 0.8 keeps gates unsaturated."""
    rng = np.random.default_rng(seed)
    params = npg.init_params(D, H, rng, scale=scale)
    xs = rng.standard_normal((T, B, D))
    h0 = rng.uniform(-0.9, 0.9, (B, H))
    return params, xs, h0, rng


def loss_weights(rng, steps):
    """dL/dh_t for L = Σ_t <dhs_t, h_t>: random on the chosen steps, zero elsewhere."""
    dhs = np.zeros((T, B, H))
    dhs[steps] = rng.standard_normal((len(steps), B, H))
    return dhs


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


# ------------------------------------------------------------------------------ variants


def test_variants_enumerate_all_eight_combinations():
    assert len(ALL_VARIANTS) == 8 == len(set(ALL_VARIANTS))
    assert len({v.name for v in ALL_VARIANTS}) == 8
    assert PYTORCH == Variant() == Variant("reset-after", "torch", True)
    assert CHO == Variant("reset-before", "torch", True)
    assert PYTORCH.name == "reset-after" and CHO.name == "reset-before"
    assert Variant("reset-before", "chung", False).name == "reset-before, chung update, no bias"
    assert "PyTorch" in PYTORCH.description and "Cho" in CHO.description
    with pytest.raises(ValueError):
        Variant("reset_after")
    with pytest.raises(ValueError):
        Variant(update="keras")


def test_init_params_shapes_bounds_and_biases():
    p = npg.init_params(D, H, np.random.default_rng(0))
    assert tuple(p) == npg.PARAM_NAMES
    assert p["W_ir"].shape == (H, D) and p["W_hn"].shape == (H, H) and p["b_hn"].shape == (H,)
    bound = 1 / np.sqrt(H)
    assert all(v.dtype == np.float64 and np.abs(v).max() <= bound for v in p.values())
    assert all(np.all(p[n] != 0) for n in npg.BIAS_NAMES)
    no_bias = npg.init_params(D, H, np.random.default_rng(0), scale=2.0, bias=False)
    assert all(not no_bias[n].any() for n in npg.BIAS_NAMES)
    assert np.abs(no_bias["W_iz"]).max() > 1.0


# ------------------------------------------------------------------------------- forward


@pytest.mark.parametrize("variant", ALL_VARIANTS, ids=lambda v: v.name)
def test_numpy_matches_torch_reference(variant, record_property):
    params, xs, h0, _ = problem(1)
    hs, caches = npg.forward(params, xs, h0, variant)
    record = {}
    hs_t = tg.forward(tg.to_torch(params), torch.from_numpy(xs), torch.from_numpy(h0), variant, record)
    err = max_diff(hs, hs_t.numpy())
    for g, values in npg.gates(caches).items():
        err = max(err, max_diff(values, torch.stack(record[g]).numpy()))
    record_property("max_abs_diff", err)
    assert hs.shape == (T, B, H)
    assert err <= 1e-12


def test_step_accepts_unbatched_inputs():
    params, xs, h0, _ = problem(2)
    batched, _ = npg.step(params, xs[0], h0)
    single, cache = npg.step(params, xs[0, 1], h0[1])
    assert single.shape == (H,) and cache.h.shape == (1, H)
    # A matrix-vector product may round differently from the batched matrix-matrix one.
    np.testing.assert_allclose(single, batched[1], rtol=0, atol=1e-15)
    with pytest.raises(ValueError):
        npg.step(params, xs[0], h0[1])


def test_gates_are_stacked_activations():
    params, xs, h0, _ = problem(3)
    _, caches = npg.forward(params, xs, h0)
    g = npg.gates(caches)
    assert {k: v.shape for k, v in g.items()} == {k: (T, B, H) for k in "rzn"}
    assert 0 < g["r"].min() and g["z"].max() < 1 and np.abs(g["n"]).max() < 1


def test_missing_biases_mean_zero_biases():
    params, xs, h0, rng = problem(4)
    weights_only = {k: params[k] for k in npg.WEIGHT_NAMES}
    zeros = dict(params, **{k: np.zeros(H) for k in npg.BIAS_NAMES})
    variant = Variant(bias=False)
    hs, caches = npg.forward(weights_only, xs, h0, variant)
    np.testing.assert_array_equal(hs, npg.forward(params, xs, h0, variant)[0])
    np.testing.assert_array_equal(hs, npg.forward(zeros, xs, h0, PYTORCH)[0])
    grads = npg.backward(weights_only, caches, loss_weights(rng, [5]), variant)
    assert all(not grads[n].any() for n in npg.BIAS_NAMES)


# ------------------------------------------------------------------------------ backward


@pytest.mark.parametrize("steps", LOSS_STEPS.values(), ids=LOSS_STEPS.keys())
@pytest.mark.parametrize("variant", ALL_VARIANTS, ids=lambda v: v.name)
def test_backward_matches_autograd(variant, steps, record_property):
    params, xs, h0, rng = problem(5)
    dhs = loss_weights(rng, steps)
    hs, caches = npg.forward(params, xs, h0, variant)
    grads = npg.backward(params, caches, dhs, variant)

    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    leaves["xs"] = torch.tensor(xs, requires_grad=True)
    leaves["h0"] = torch.tensor(h0, requires_grad=True)
    hs_t = tg.forward(leaves, leaves["xs"], leaves["h0"], variant)
    (hs_t * torch.from_numpy(dhs)).sum().backward()

    assert set(grads) == set(leaves)
    err = 0.0
    for name, leaf in leaves.items():
        # With bias=False the torch reference never touches the biases: autograd leaves them None.
        expected = np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.numpy()
        assert grads[name].shape == expected.shape, name
        err = max(err, max_diff(grads[name], expected))
    record_property("max_abs_diff", err)
    assert err <= 1e-10


def _loss(params, xs, h0, dhs, variant):
    return float(np.sum(npg.forward(params, xs, h0, variant)[0] * dhs))


@pytest.mark.parametrize("variant", ALL_VARIANTS, ids=lambda v: v.name)
def test_backward_matches_finite_differences(variant, record_property):
    eps = 1e-6
    params, xs, h0, rng = problem(6)
    dhs = loss_weights(rng, [2, 5])
    grads = npg.backward(params, npg.forward(params, xs, h0, variant)[1], dhs, variant)
    point = dict(params, xs=xs, h0=h0)

    def loss_at(shifted):
        p = {k: shifted[k] for k in npg.PARAM_NAMES}
        return _loss(p, shifted["xs"], shifted["h0"], dhs, variant)

    # One directional derivative through every parameter, input and h0 at once.
    v = {k: rng.standard_normal(a.shape) for k, a in point.items()}
    fd = (loss_at({k: a + eps * v[k] for k, a in point.items()})
          - loss_at({k: a - eps * v[k] for k, a in point.items()})) / (2 * eps)
    analytic = sum(float(np.sum(grads[k] * v[k])) for k in point)
    rel_dir = abs(fd - analytic) / abs(analytic)

    # Individual entries: the three largest-gradient entries of every block. At eps = 1e-6 the
    # central difference carries ~1e-9 of absolute rounding noise (L ≈ 4), so a 1e-7 relative
    # bound is only meaningful where |gradient| ≳ 1e-2; autograd above covers every entry.
    # Blocks whose gradient is identically zero (biases of a bias-free variant) must give fd == 0.
    rel_entries = 0.0
    for name in npg.PARAM_NAMES + ("xs", "h0"):
        flat = np.abs(grads[name]).ravel()
        for k in np.argsort(flat)[-3:]:
            idx = np.unravel_index(k, grads[name].shape)
            plus, minus = dict(point), dict(point)
            plus[name], minus[name] = point[name].copy(), point[name].copy()
            plus[name][idx] += eps
            minus[name][idx] -= eps
            fd_entry = (loss_at(plus) - loss_at(minus)) / (2 * eps)
            if not flat.any():
                assert fd_entry == 0.0, name
                continue
            rel_entries = max(rel_entries, abs(fd_entry - grads[name][idx]) / abs(grads[name][idx]))
    record_property("directional_rel_err", rel_dir)
    record_property("entry_rel_err", rel_entries)
    assert rel_dir <= 1e-7
    assert rel_entries <= 1e-7


@pytest.mark.parametrize("variant", [v for v in ALL_VARIANTS if v.bias], ids=lambda v: v.name)
def test_bias_gradient_identities(variant):
    params, xs, h0, rng = problem(7)
    hs, caches = npg.forward(params, xs, h0, variant)
    g = npg.backward(params, caches, loss_weights(rng, list(range(T))), variant)
    # r and z see their two biases only through the sum b_i* + b_h*: identical gradients, bitwise.
    np.testing.assert_array_equal(g["b_ir"], g["b_hr"])
    np.testing.assert_array_equal(g["b_iz"], g["b_hz"])
    if variant.reset_after:
        # b_hn sits inside the reset product, so it is *not* redundant with b_in.
        assert max_diff(g["b_in"], g["b_hn"]) > 1e-3
    else:
        np.testing.assert_array_equal(g["b_in"], g["b_hn"])


def test_backward_rejects_mismatched_output_gradients():
    params, xs, h0, _ = problem(8)
    _, caches = npg.forward(params, xs, h0)
    with pytest.raises(ValueError):
        npg.backward(params, caches, np.zeros((T - 1, B, H)))


# ------------------------------------------------------- conventions and their blind spots


def test_reset_before_and_after_disagree_on_generic_weights(record_property):
    params, xs, h0, _ = problem(9)
    assert np.abs(params["W_hn"] - np.diag(np.diag(params["W_hn"]))).max() > 0.1
    diff = max_diff(npg.forward(params, xs, h0, PYTORCH)[0], npg.forward(params, xs, h0, CHO)[0])
    record_property("max_abs_diff", diff)
    assert diff > 1e-2


def test_reset_families_blind_spots(record_property):
    """The two families agree whenever the reset gate acts on something that commutes with
    W_hn: at h = 0 with b_hn = 0 (first step only), and with diagonal W_hn and b_hn = 0.
    A probe built from zero h0 or zero b_hn therefore cannot tell them apart."""
    params, xs, h0, _ = problem(10)
    zero_h0 = np.zeros_like(h0)
    no_bhn = dict(params, b_hn=np.zeros(H))

    first_step = {v: npg.step(no_bhn, xs[0], zero_h0, v)[0] for v in (PYTORCH, CHO)}
    agree_h0 = max_diff(first_step[PYTORCH], first_step[CHO])
    # b_hn alone already separates them at h = 0 (RA scales it by r, RB does not).
    with_bhn = max_diff(npg.step(params, xs[0], zero_h0, PYTORCH)[0],
                        npg.step(params, xs[0], zero_h0, CHO)[0])
    diagonal = dict(no_bhn, W_hn=np.diag(np.diag(params["W_hn"])))
    agree_diag = max_diff(npg.forward(diagonal, xs, h0, PYTORCH)[0],
                          npg.forward(diagonal, xs, h0, CHO)[0])
    record_property("agree_h0_zero_bhn_zero", agree_h0)
    record_property("agree_diagonal_W_hn", agree_diag)
    record_property("disagree_h0_zero_bhn_nonzero", with_bhn)
    assert agree_h0 <= 1e-14
    assert agree_diag <= 1e-14
    assert with_bhn > 1e-2


@pytest.mark.parametrize("family", ["reset-after", "reset-before"])
def test_update_conventions_disagree_and_flip_update_reconciles(family, record_property):
    params, xs, h0, rng = problem(11)
    torch_v, chung_v = Variant(family, "torch"), Variant(family, "chung")
    hs_torch, caches_torch = npg.forward(params, xs, h0, torch_v)
    disagree = max_diff(hs_torch, npg.forward(params, xs, h0, chung_v)[0])

    flipped = conversions.flip_update(params)
    hs_flip, caches_flip = npg.forward(flipped, xs, h0, chung_v)
    agree = max_diff(hs_torch, hs_flip)

    # Gradients map by negation on the update gate and are unchanged elsewhere.
    dhs = loss_weights(rng, [2, 5])
    g_torch = npg.backward(params, caches_torch, dhs, torch_v)
    g_flip = npg.backward(flipped, caches_flip, dhs, chung_v)
    flip_sign = {"W_iz", "W_hz", "b_iz", "b_hz"}
    grad_err = max(max_diff(g_flip[k], -g_torch[k] if k in flip_sign else g_torch[k]) for k in g_torch)

    record_property("disagree", disagree)
    record_property("agree_after_flip", agree)
    record_property("grad_err_after_flip", grad_err)
    assert disagree > 1e-2
    assert agree <= 1e-14
    assert grad_err <= 1e-13


def test_update_conventions_blind_spot_when_h_equals_n():
    """z and 1 − z give the same h' when h = n: a probe must keep h away from the candidate."""
    params, xs, _, _ = problem(12)
    # With W_hn = 0 and b_hn = 0 the candidate ignores h, so feeding h := n makes h = n.
    no_reset_input = dict(params, W_hn=np.zeros((H, H)), b_hn=np.zeros(H))
    h = npg.step(no_reset_input, xs[0], np.zeros((B, H)))[1].n
    _, c = npg.step(no_reset_input, xs[0], h)
    np.testing.assert_allclose(c.n, h, rtol=0, atol=0)
    h_torch = npg.step(no_reset_input, xs[0], h, Variant(update="torch"))[0]
    h_chung = npg.step(no_reset_input, xs[0], h, Variant(update="chung"))[0]
    assert max_diff(h_torch, h_chung) <= 1e-15
