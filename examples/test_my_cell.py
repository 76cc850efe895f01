"""How a user puts grudiag in their own test suite (runs as part of grudiag's suite too).

With grudiag installed, pytest finds the plugin by itself: the `grudiag` fixture and the
`@pytest.mark.grudiag` marker need no configuration.
"""
import pytest
import torch
from torch import nn

from grudiag.testing import assert_findings, assert_matches_reference, assert_no_findings


class MyGRUCell(nn.Module):
    """The cell under test: a PyTorch-convention GRU written by hand."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.x2h = nn.Linear(input_size, 3 * hidden_size)
        self.h2h = nn.Linear(hidden_size, 3 * hidden_size)

    def forward(self, x, h):
        x_r, x_z, x_n = self.x2h(x).chunk(3, dim=1)
        h_r, h_z, h_n = self.h2h(h).chunk(3, dim=1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h


class ForgetfulCell(MyGRUCell):
    """A known bug kept as a regression test: the state is detached every step."""

    def forward(self, x, h):
        return super().forward(x, h.detach())


def test_my_cell_has_no_errors(grudiag):
    report = grudiag.check(MyGRUCell(5, 7))
    assert_no_findings(report)


def test_my_cell_matches_pytorch():
    assert_matches_reference(MyGRUCell(5, 7), "torch.nn.GRUCell", atol=1e-10, rtol=0)


@pytest.mark.grudiag(select=("truncated-bptt",))
def test_the_detach_bug_is_still_caught(grudiag):
    assert_findings(grudiag.check(ForgetfulCell(5, 7)), ["truncated-bptt"])
