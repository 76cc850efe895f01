"""A PyTorch-style GRU cell whose candidate uses relu instead of tanh ("relu trains faster").
The rest is right (fused r|z|n weights, reset-after, (1 - z) * n + z * h), but the candidate is
no longer bounded, so the state can grow without limit over long sequences.

Expected categories: equation-mismatch
"""
import math

import torch
from torch import nn


class ReluGRUCell(nn.Module):
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
        i_r, i_z, i_n = (x @ self.weight_ih.T + self.bias_ih).chunk(3, dim=1)
        h_r, h_z, h_n = (h @ self.weight_hh.T + self.bias_hh).chunk(3, dim=1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.relu(i_n + r * h_n)  # BUG: the candidate must go through tanh
        return (1 - z) * n + z * h


if __name__ == "__main__":
    cell = ReluGRUCell(5, 7)
    h = torch.zeros(3, 7)
    for _ in range(4):
        h = cell(torch.randn(3, 5), h)
    print(h.shape)
