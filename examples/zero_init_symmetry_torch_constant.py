"""A fused PyTorch GRU cell whose weights are all set to the constant 0.5.

A constant matrix has identical rows, so every hidden unit sees the same input, computes the
same state and gets the same gradient: the units are copies and stay copies.

Expected categories: zero-init-symmetry
"""
import torch
from torch import nn


class ConstantInitGRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.zeros(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.zeros(3 * hidden_size))
        nn.init.constant_(self.weight_ih, 0.5)  # BUG: same value everywhere
        nn.init.constant_(self.weight_hh, 0.5)

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
    cell = ConstantInitGRUCell(5, 7)
    h = torch.zeros(3, 7)
    for _ in range(4):
        h = cell(torch.randn(3, 5), h)
    print(h)
