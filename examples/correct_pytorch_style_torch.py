"""A GRU cell written the PyTorch way: fused weights in r|z|n order, reset applied after the
recurrent matmul (reset-after), h' = (1 - z) * n + z * h. Equivalent to nn.GRUCell.

Expected categories: none
"""
import math

import torch
from torch import nn


class FusedGRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x, h):
        gi = x @ self.weight_ih.T + self.bias_ih
        gh = h @ self.weight_hh.T + self.bias_hh
        i_r, i_z, i_n = gi.chunk(3, dim=1)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h


if __name__ == "__main__":
    cell = FusedGRUCell(5, 7)
    h = torch.zeros(3, 7)
    for t in range(4):
        h = cell(torch.randn(3, 5), h)
    print(h.shape)
