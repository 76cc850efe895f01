"""A PyTorch GRU cell that sets the update-gate bias to +10 so that it "remembers by default".

z = sigmoid(10 + ...) is 0.99995 in every unit, so h' = (1 - z) * n + z * h is h: no input ever
gets into the state, and sigma'(10) = 4.5e-5 means the gate cannot learn its way out.

Expected categories: gate-saturation
"""
import math

import torch
from torch import nn


class RememberingGRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        k = 1 / math.sqrt(hidden_size)
        self.W_z = nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-k, k))
        self.U_z = nn.Parameter(torch.empty(hidden_size, hidden_size).uniform_(-k, k))
        self.b_z = nn.Parameter(torch.full((hidden_size,), 10.0))  # BUG: update gate pinned at 1
        self.W_r = nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-k, k))
        self.U_r = nn.Parameter(torch.empty(hidden_size, hidden_size).uniform_(-k, k))
        self.b_r = nn.Parameter(torch.empty(hidden_size).uniform_(-k, k))
        self.W_n = nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-k, k))
        self.U_n = nn.Parameter(torch.empty(hidden_size, hidden_size).uniform_(-k, k))
        self.b_n = nn.Parameter(torch.empty(hidden_size).uniform_(-k, k))

    def forward(self, x, h):
        z = torch.sigmoid(x @ self.W_z.T + h @ self.U_z.T + self.b_z)
        r = torch.sigmoid(x @ self.W_r.T + h @ self.U_r.T + self.b_r)
        n = torch.tanh(x @ self.W_n.T + (r * h) @ self.U_n.T + self.b_n)
        return (1 - z) * n + z * h


if __name__ == "__main__":
    cell = RememberingGRUCell(5, 7)
    h = torch.zeros(3, 7)
    for _ in range(4):
        h = cell(torch.randn(3, 5), h)
    print(h)  # stays ~0: the input never gets in
