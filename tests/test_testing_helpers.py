"""`grudiag.testing`: each helper passes on a correct cell and fails readably on a buggy one."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from grudiag.testing import (GrudiagAssertionError, assert_gradients_match,
                             assert_matches_reference)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def seeded():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def test_matches_reference_passes_for_the_pytorch_convention(seeded):
    assert_matches_reference(nn.GRUCell(5, 7), "torch.nn.GRUCell")
    cho = load_example("correct_cho_reset_before_torch").ChoGRUCell(5, 7)
    assert_matches_reference(cho, "reset-before")


def test_matches_reference_names_the_convention_that_differs(seeded):
    cho = load_example("correct_cho_reset_before_torch").ChoGRUCell(5, 7)
    with pytest.raises(GrudiagAssertionError) as info:
        assert_matches_reference(cho, "torch.nn.GRUCell")
    message = str(info.value)
    assert message.startswith("cell does not match reset-after: it implements reset-before "
                              "(max |Δh| ")
    assert "used by PyTorch nn.GRU/nn.GRUCell" in message


def test_matches_reference_names_a_known_mistake(seeded):
    relu = load_example("equation_mismatch_torch_relu").ReluGRUCell(5, 7)
    with pytest.raises(GrudiagAssertionError, match="known mistake"):
        assert_matches_reference(relu, "torch.nn.GRUCell")


def test_matches_reference_against_a_callable_reports_the_worst_entry(seeded):
    cell = nn.GRUCell(5, 7).double()

    def reference(x, h):
        with torch.no_grad():
            return cell(torch.as_tensor(x), torch.as_tensor(h)).numpy()

    assert_matches_reference(cell, reference, atol=1e-12, rtol=0)

    def off_by_a_bit(x, h):
        return reference(x, h) + np.where(np.arange(7) == 3, 1e-3, 0.0)

    with pytest.raises(GrudiagAssertionError) as info:
        assert_matches_reference(cell, off_by_a_bit, atol=1e-6, rtol=0)
    message = str(info.value)
    assert "of 126 state values differ" in message
    assert "unit 3" in message and "allowed: atol=1e-06 + rtol=0·|expected|" in message


def test_gradients_match_passes_on_a_correct_backward_and_fails_on_a_wrong_one():
    good = load_example("correct_numpy_backward_row").GRUCell(5, 7)
    assert_gradients_match(good)
    bad = load_example("wrong_gradient_numpy").GRUCell(5, 7)
    with pytest.raises(GrudiagAssertionError) as info:
        assert_gradients_match(bad)
    message = str(info.value)
    assert "GD401 [error] backward-disagrees-with-finite-differences" in message
    assert "relative error" in message and "Reproduce:" in message
