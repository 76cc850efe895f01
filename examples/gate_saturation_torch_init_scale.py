"""A PyTorch GRU cell initialised with torch.randn(...) * 10 "to give the gates a strong signal".

Pre-activations have a standard deviation of about 35, so almost every sigmoid output is 0 or 1
and every tanh output is +-1: the derivatives are ~0 and the gates cannot learn.

Expected categories: gate-saturation
"""
import torch
from torch import nn


class LoudGRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        # BUG: N(0, 100) weights; a GRU wants U(-1/sqrt(H), 1/sqrt(H)) or Xavier.
        self.W = nn.Parameter(torch.randn(input_size, 3 * hidden_size) * 10)
        self.U = nn.Parameter(torch.randn(hidden_size, 3 * hidden_size) * 10)
        self.b = nn.Parameter(torch.zeros(3 * hidden_size))
        self.hidden_size = hidden_size

    def forward(self, x, h):
        H = self.hidden_size
        gx = x @ self.W + self.b
        gh = h @ self.U
        z = torch.sigmoid(gx[:, :H] + gh[:, :H])
        r = torch.sigmoid(gx[:, H:2 * H] + gh[:, H:2 * H])
        n = torch.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
        return z * h + (1 - z) * n


if __name__ == "__main__":
    cell = LoudGRUCell(5, 7)
    h = torch.zeros(3, 7)
    for _ in range(4):
        h = cell(torch.randn(3, 5), h)
    print(h)  # entries are +-1 or copies of h
