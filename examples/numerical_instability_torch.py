"""A PyTorch GRU cell with a hand-written sigmoid 1 / (1 + exp(-a)).

The forward value is fine (exp(-a) = inf gives 0), but autograd's derivative there is
inf / inf = NaN: for a < -88.72 in float32 (-709.78 in float64) one large input makes every
gradient NaN. torch.sigmoid has a finite derivative everywhere.

Expected categories: numerical-instability
"""
import math

import torch
from torch import nn


def my_sigmoid(a):
    return 1 / (1 + torch.exp(-a))  # BUG: NaN gradient once exp(-a) overflows


class HandSigmoidGRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        bound = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x, h):
        gi = x @ self.weight_ih.T + self.bias_ih
        gh = h @ self.weight_hh.T + self.bias_hh
        i_r, i_z, i_n = gi.chunk(3, dim=1)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
        r = my_sigmoid(i_r + h_r)
        z = my_sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h


if __name__ == "__main__":
    cell = HandSigmoidGRUCell(5, 7)
    x = torch.randn(3, 5) * 1000  # unnormalised inputs
    h = cell(x, torch.zeros(3, 7))
    h.sum().backward()
    print(cell.weight_ih.grad.isnan().any())  # tensor(True)
