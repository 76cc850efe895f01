"""Proves the torch reference against PyTorch itself (nn.GRUCell and nn.GRU) in float64.

Weights are drawn from a private generator over U(−0.8, 0.8) so that biases and h0 are non-zero
and W_hn is far from diagonal: the conditions under which a reset-before/after mix-up would show.
"""
import numpy as np
import pytest
import torch
from torch import nn

from grudiag.reference import conversions as cv
from grudiag.reference import numpy_gru as npg
from grudiag.reference import torch_gru as tg
from grudiag.reference.variants import ALL_VARIANTS, CHO, Variant

D, H, B, T = 5, 7, 3, 6
F64 = torch.float64


def randomise(module, seed, scale=0.8):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=F64) * 2 * scale - scale)
    return module


def randn(seed, *shape):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def max_diff(a, b):
    return (a - b).abs().max().item()


@pytest.mark.parametrize("bias", [True, False])
def test_step_matches_nn_grucell(bias, record_property):
    cell = randomise(nn.GRUCell(D, H, bias=bias, dtype=F64), seed=1)
    params = tg.to_torch(cv.from_torch_cell(cell.weight_ih, cell.weight_hh,
                                            cell.bias_ih, cell.bias_hh))
    variant = Variant(bias=bias)
    xs, h = randn(2, T, B, D), 0.9 * torch.tanh(randn(3, B, H))
    errs = []
    with torch.no_grad():
        h_ref = h
        for x in xs:  # a whole sequence, so errors could compound
            h, h_ref = cell(x, h), tg.step(params, x, h_ref, variant)
            errs.append(max_diff(h, h_ref))
        errs.append(max_diff(cell(xs[0, 1], h[1]), tg.step(params, xs[0, 1], h[1], variant)))
    record_property("max_abs_diff", max(errs))
    assert max(errs) <= 1e-12


def test_forward_matches_nn_gru_two_layers_bidirectional_batch_first(record_property):
    gru = randomise(nn.GRU(D, H, num_layers=2, batch_first=True, bidirectional=True, dtype=F64), 4)
    x, h0 = randn(5, B, T, D), 0.9 * torch.tanh(randn(6, 4, B, H))
    with torch.no_grad():
        out, h_n = gru(x, h0)

        # Each layer and direction run separately on its own canonical parameters; layer 1 is fed
        # the [forward, backward] concatenation of the reference's layer 0, as nn.GRU does.
        layer_input, finals = x.transpose(0, 1), []
        for layer in range(2):
            halves = []
            for reverse in (False, True):
                k = 2 * layer + reverse
                params = tg.to_torch(cv.from_torch_gru(gru, layer, reverse))
                seq = layer_input.flip(0) if reverse else layer_input
                hs = tg.forward(params, seq, h0[k])
                finals.append(hs[-1])
                halves.append(hs.flip(0) if reverse else hs)
            layer_input = torch.cat(halves, -1)
    err_out = max_diff(out, layer_input.transpose(0, 1))
    err_hn = max_diff(h_n, torch.stack(finals))
    record_property("max_abs_diff", max(err_out, err_hn))
    assert err_out <= 1e-12 and err_hn <= 1e-12
    # Layer 0 reverse on its own: its final state is output[0, :, H:] of layer 0, i.e. h_n[1].
    assert max_diff(h_n[1], finals[1]) <= 1e-12


def test_from_torch_gru_accepts_a_state_dict():
    gru = randomise(nn.GRU(D, H, num_layers=2, dtype=F64), 7)
    from_module = cv.from_torch_gru(gru, layer=1)
    from_sd = cv.from_torch_gru(gru.state_dict(), layer=1)
    assert all(np.array_equal(from_module[k], from_sd[k]) for k in npg.PARAM_NAMES)
    assert from_module["W_ir"].shape == (H, H)  # layer 1's input is layer 0's output


# ------------------------------------------------------------------------- the modules


@pytest.mark.parametrize("bias", [True, False])
def test_reference_cell_initialises_like_nn_grucell(bias, record_property):
    with torch.random.fork_rng():
        torch.manual_seed(11)
        ours = tg.ReferenceGRUCell(D, H, bias=bias, dtype=F64)
        torch.manual_seed(11)
        theirs = nn.GRUCell(D, H, bias=bias, dtype=F64)
    expected = cv.from_torch_cell(theirs.weight_ih, theirs.weight_hh, theirs.bias_ih, theirs.bias_hh)
    got = tg.to_numpy(ours.canonical_params())
    assert set(got) == set(npg.PARAM_NAMES if bias else npg.WEIGHT_NAMES)
    assert all(np.array_equal(got[k], expected[k]) for k in got)
    assert len(list(ours.parameters())) == (12 if bias else 6)
    assert max(p.abs().max().item() for p in ours.parameters()) <= 1 / np.sqrt(H)

    x, h = randn(12, B, D), randn(13, B, H)
    with torch.no_grad():
        err = max(max_diff(ours(x, h), theirs(x, h)), max_diff(ours(x), theirs(x)),
                  max_diff(ours(x[0]), theirs(x[0])))
        assert torch.equal(ours(x), ours(x, torch.zeros(B, H, dtype=F64)))
    record_property("max_abs_diff", err)
    assert err <= 1e-12


@pytest.mark.parametrize("config", [dict(num_layers=1), dict(num_layers=2, batch_first=True,
                                                             bidirectional=True)], ids=str)
def test_reference_gru_matches_nn_gru_from_the_same_seed(config, record_property):
    with torch.random.fork_rng():
        torch.manual_seed(21)
        ours = tg.ReferenceGRU(D, H, dtype=F64, **config)
        torch.manual_seed(21)
        theirs = nn.GRU(D, H, dtype=F64, **config)
    n_states = config["num_layers"] * (2 if config.get("bidirectional") else 1)
    x = randn(22, B, T, D) if config.get("batch_first") else randn(22, T, B, D)
    h0 = randn(23, n_states, B, H)
    with torch.no_grad():
        errs = []
        for args in ((x, h0), (x,), (x[0] if config.get("batch_first") else x[:, 0], h0[:, 0])):
            (o1, h1), (o2, h2) = ours(*args), theirs(*args)
            assert o1.shape == o2.shape and h1.shape == h2.shape
            errs += [max_diff(o1, o2), max_diff(h1, h2)]
    record_property("max_abs_diff", max(errs))
    assert max(errs) <= 1e-12
    with pytest.raises(ValueError):
        ours(x, h0[:1, :1])


@pytest.mark.parametrize("variant", ALL_VARIANTS, ids=lambda v: v.name)
def test_reference_cell_computes_its_variant(variant):
    cell = tg.ReferenceGRUCell(D, H, variant, dtype=F64)
    params = tg.to_numpy(cell.canonical_params())
    x, h = randn(31, B, D), randn(32, B, H)
    with torch.no_grad():
        got = cell(x, h).numpy()
    expected = npg.step(params, x.numpy(), h.numpy(), variant)[0]
    assert np.abs(got - expected).max() <= 1e-12


def test_record_collects_detached_gates():
    params = tg.to_torch(npg.init_params(D, H, np.random.default_rng(0)))
    params = {k: v.requires_grad_() for k, v in params.items()}
    record = {}
    hs = tg.forward(params, randn(41, T, B, D), randn(42, B, H), CHO, record)
    assert hs.requires_grad and hs.shape == (T, B, H)
    assert {k: len(v) for k, v in record.items()} == {"r": T, "z": T, "n": T}
    assert all(not g.requires_grad and g.shape == (B, H) for v in record.values() for g in v)


def test_autograd_reaches_every_parameter_of_the_cell():
    cell = tg.ReferenceGRUCell(D, H, dtype=F64)
    x, h = randn(51, B, D), randn(52, B, H).requires_grad_()
    cell(x, h).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in cell.parameters())
    assert h.grad is not None


def test_float32_cell_tracks_float64(record_property):
    with torch.random.fork_rng():
        torch.manual_seed(61)
        cell32 = tg.ReferenceGRUCell(D, H, dtype=torch.float32)
        torch.manual_seed(61)
        ref32 = nn.GRUCell(D, H, dtype=torch.float32)
    x, h = randn(62, B, D).float(), randn(63, B, H).float()
    with torch.no_grad():
        err = max_diff(cell32(x, h), ref32(x, h))
    record_property("max_abs_diff", err)
    assert cell32(x, h).dtype == torch.float32 and err <= 1e-6


def test_load_canonical_round_trip_and_bias_guard():
    params = npg.init_params(D, H, np.random.default_rng(1))
    cell = tg.ReferenceGRUCell(D, H, dtype=F64).load_canonical(params)
    got = tg.to_numpy(cell.canonical_params())
    assert all(np.array_equal(got[k], params[k]) for k in params)
    with pytest.raises(ValueError):
        tg.ReferenceGRUCell(D, H, bias=False, dtype=F64).load_canonical(params)
    with pytest.raises(ValueError):
        cell.load_canonical(dict(params, W_hn=np.zeros((H, D))))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_reference_cell_runs_on_cuda():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(71)
        cell = tg.ReferenceGRUCell(D, H, device="cuda", dtype=F64)
    ref = nn.GRUCell(D, H, device="cuda", dtype=F64)
    cv.load_into(ref, tg.to_numpy(cell.canonical_params()))
    x, h = randn(72, B, D).cuda(), randn(73, B, H).cuda()
    with torch.no_grad():
        assert max_diff(cell(x, h), ref(x, h)) <= 1e-12
