"""A Cho-style GRU cell (one nn.Linear per gate) that computes the reset gate and then forgets
to use it: the candidate reads the whole previous state. It trains, but it is not a GRU, and
the reset gate's weights never receive a gradient.

Expected categories: equation-mismatch, ignored-recurrence
"""
import torch
from torch import nn


class NoResetGRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.W_r = nn.Linear(input_size, hidden_size)
        self.U_r = nn.Linear(hidden_size, hidden_size, bias=False)
        self.W_z = nn.Linear(input_size, hidden_size)
        self.U_z = nn.Linear(hidden_size, hidden_size, bias=False)
        self.W_h = nn.Linear(input_size, hidden_size)
        self.U_h = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, x, h_prev):
        r = torch.sigmoid(self.W_r(x) + self.U_r(h_prev))
        z = torch.sigmoid(self.W_z(x) + self.U_z(h_prev))
        h_tilde = torch.tanh(self.W_h(x) + self.U_h(h_prev))  # BUG: should be self.U_h(r * h_prev)
        return z * h_prev + (1 - z) * h_tilde


if __name__ == "__main__":
    cell = NoResetGRUCell(5, 7)
    h = torch.zeros(3, 7)
    for _ in range(4):
        h = cell(torch.randn(3, 5), h)
    print(h.shape)
